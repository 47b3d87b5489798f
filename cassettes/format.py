"""The cassette file: JSON Lines, a header, then one line per message or close.

    {"format": "gemini-live-cassette/1", "recorded_at": ..., "audio": "hash", "model": ...}
    {"t": 0.012, "from": "client", "message": {"setup": {...}}}
    {"t": 0.050, "from": "server", "message": {"setupComplete": {}}}
    ...
    {"t": 9.870, "from": "server", "close": {"code": 1000, "reason": ""}}

`t` is seconds since the socket opened. Messages are the JSON that crossed the socket, with
secrets scrubbed and, with `audio: "hash"`, media bytes replaced by their SHA-256 and length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

FORMAT = "gemini-live-cassette/1"
MAX_CASSETTE_BYTES = 512 * 1024 * 1024
"""The most a cassette file may hold to be read back (a longer one is refused, not loaded)."""

Side = Literal["client", "server"]


class CassetteError(ValueError):
    """A cassette that cannot be replayed, with the line at fault."""


@dataclass(frozen=True)
class Entry:
    """One line of a cassette after the header."""

    t: float
    side: Side
    message: dict[str, Any] | None = None
    close: dict[str, Any] | None = None


@dataclass
class Cassette:
    """A cassette read back."""

    header: dict[str, Any]
    entries: list[Entry] = field(default_factory=list)
    path: Path | None = None


def read_cassette(path: str | Path) -> Cassette:
    """Read and check a cassette.

    Raises:
        CassetteError: Not a cassette, too big, or a line that is not an entry.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CASSETTE_BYTES:
            raise CassetteError(f"{path}: {size} bytes is more than a cassette may hold")
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CassetteError(f"cannot read cassette {path}: {exc.strerror}") from exc
    if not lines:
        raise CassetteError(f"{path} is empty")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise CassetteError(f"{path}:1: not JSON: {exc.msg}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CassetteError(f"{path}:1: not a cassette (expected format {FORMAT!r})")
    cassette = Cassette(header, path=path)
    for number, line in enumerate(lines[1:], start=2):
        if line.strip():
            cassette.entries.append(_entry(line, f"{path}:{number}"))
    return cassette


def _entry(line: str, where: str) -> Entry:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CassetteError(f"{where}: not JSON: {exc.msg}") from exc
    if not isinstance(raw, dict) or raw.get("from") not in ("client", "server"):
        raise CassetteError(f"{where}: an entry needs 'from': 'client' or 'server'")
    t = raw.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool) or t < 0:
        raise CassetteError(f"{where}: 't' must be a number of seconds at least 0")
    message, close = raw.get("message"), raw.get("close")
    if (message is None) == (close is None) or not isinstance(message or close, dict):
        raise CassetteError(f"{where}: an entry holds one 'message' or one 'close' object")
    return Entry(float(t), raw["from"], message=message, close=close)
