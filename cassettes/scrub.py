"""What a cassette must never hold: keys, tokens, resumption handles; and, unless asked, media.

A cassette is meant to be committed next to the tests that replay it, so it is scrubbed as it
is written: a handle becomes `handle-1`, `handle-2`... (the same handle the same name, so a
resumption still reads as one), the API key and anything shaped like a Google key or an
ephemeral token becomes `<redacted>`, and with `audio="hash"` the bytes of audio and images
become their SHA-256 and length (a replay sends silence of that length).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from typing import Any, Literal

AudioMode = Literal["hash", "keep"]

REDACTED = "<redacted>"
SECRET_SHAPES = re.compile(
    r"AIza[0-9A-Za-z_\-]{20,}"  # a Google API key
    r"|auth_tokens/[0-9A-Za-z_\-.]+"  # an ephemeral token's name
    r"|ya29\.[0-9A-Za-z_\-.]+"  # an OAuth access token
)
HANDLE_KEYS = frozenset({"handle", "newhandle"})
"""Keys (compared without case or underscores) whose string value is a resumption handle."""
MEDIA_PREFIXES = ("audio/", "image/", "video/")


def plain_key(key: str) -> str:
    """`new_handle`, `newHandle` -> `newhandle`: the SDK writes snake case, the service camel."""
    return key.replace("_", "").lower()


class Scrubber:
    """Scrubs every message of one session (handle names are kept across its connections).

    Args:
        secrets: Exact strings never to write (the API key); empty ones are ignored.
        audio: `hash` replaces media bytes by their hash and length; `keep` writes them.
    """

    def __init__(self, secrets: Iterable[str] = (), *, audio: AudioMode = "hash") -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.audio: AudioMode = audio
        self._handles: dict[str, str] = {}

    def scrub(self, message: Any) -> Any:
        """A copy of the message with nothing secret left in it."""
        return self._value(message, key="")

    def handle_name(self, handle: str) -> str:
        name = self._handles.get(handle)
        if name is None:
            name = f"handle-{len(self._handles) + 1}"
            self._handles[handle] = name
        return name

    def _value(self, value: Any, *, key: str) -> Any:
        if isinstance(value, dict):
            return self._object(value)
        if isinstance(value, list):
            return [self._value(item, key=key) for item in value]
        if isinstance(value, str):
            if plain_key(key) in HANDLE_KEYS and value:
                return self.handle_name(value)
            return self._text(value)
        return value

    def _object(self, value: dict[str, Any]) -> dict[str, Any]:
        mime = value.get("mimeType", value.get("mime_type"))
        media = isinstance(mime, str) and mime.startswith(MEDIA_PREFIXES)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if media and key == "data" and isinstance(item, str) and self.audio == "hash":
                out.update(hashed(item))
            elif media and key == "data" and isinstance(item, str):
                out[key] = item  # base64 media, kept as asked: no secret can hide in it
            else:
                out[self._text(key)] = self._value(item, key=key)
        return out

    def _text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for handle, name in self._handles.items():
            if handle in text:
                text = text.replace(handle, name)
        return SECRET_SHAPES.sub(REDACTED, text)


def hashed(data: str) -> dict[str, Any]:
    """Base64 media as `{"data": "", "sha256": ..., "bytes": N}`."""
    text = data.strip().replace("-", "+").replace("_", "/")  # the Python SDK sends URL-safe
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = data.encode()
    return {"data": "", "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
