"""Keys of the real shape for tests of what must never be written down, made at run time.

A literal of a Google key's shape in the repository reads as a leaked key to every scanner (and
to people); one made fresh for each run is never committed, and a test cannot pass by matching
a string it happens to contain.
"""

from __future__ import annotations

import secrets
import string

_KEY_CHARS = string.ascii_letters + string.digits + "-_"


def fake_google_key() -> str:
    """`AIza` and 35 random characters: the shape of a Google API key, valid nowhere."""
    return "AIza" + "".join(secrets.choice(_KEY_CHARS) for _ in range(35))
