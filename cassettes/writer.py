"""Writing a cassette as the session goes: one line per message, never failing the session.

The file is opened when the socket opens and each line is written when its message crosses
it, so a crash leaves every message up to it. A full disk or any other write error stops the
recording with one warning; the conversation goes on. A cassette is capped in size.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from loguru import logger

from cassettes.format import FORMAT, Side
from cassettes.scrub import Scrubber

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
"""Past this a cassette stops growing (about 40 minutes of kept audio both ways)."""


class CassetteWriter:
    """One cassette file, for one connection.

    Args:
        path: The file to create.
        scrubber: Shared by the session's connections (so a handle keeps its name).
        header: More header fields (model, bot, ...).
        max_bytes: The size at which writing stops.
        clock: Monotonic seconds; `t` counts from the writer's creation.
    """

    def __init__(
        self,
        path: Path,
        scrubber: Scrubber,
        *,
        header: dict[str, Any] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Any = time.monotonic,
    ) -> None:
        self.path = path
        self._scrubber = scrubber
        self._clock = clock
        self._opened = clock()
        self._max_bytes = max_bytes
        self._written = 0
        self._file: IO[str] | None = None
        self.failed: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("x", encoding="utf-8")
        except OSError as exc:
            self._fail(f"cannot create {path}: {exc.strerror}")
            return
        self._line(
            {
                "format": FORMAT,
                "recorded_at": round(time.time(), 3),
                "audio": scrubber.audio,
                **(header or {}),
            }
        )

    def message(self, side: Side, raw: str | bytes) -> None:
        """One message as it crossed the socket (unparsable ones are noted, not kept)."""
        if self._file is None:
            return
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            message = {"unparsed": len(raw)}
        self._line({"t": self._t(), "from": side, "message": self._scrubber.scrub(message)})

    def closed(self, side: Side, code: int | None, reason: str = "") -> None:
        """The socket closed (`side` closed it); the cassette is complete."""
        if self._file is None:
            return
        close = {"code": code, "reason": self._scrubber.scrub(reason)}
        self._line({"t": self._t(), "from": side, "close": close})
        self.finish()

    def finish(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self._fail(f"cannot finish {self.path}: {exc.strerror}")
            self._file = None

    def _t(self) -> float:
        return round(self._clock() - self._opened, 4)

    def _line(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        if self._written + len(line) > self._max_bytes:
            self._fail(f"{self.path} reached {self._max_bytes} bytes; later messages are not kept")
            return
        try:
            self._file.write(line)
            self._written += len(line)
        except OSError as exc:
            self._fail(f"cannot write {self.path}: {exc.strerror}")

    def _fail(self, why: str) -> None:
        if self.failed is None:
            logger.warning(f"recording stopped: {why}; the session goes on")
        self.failed = why
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError:
                pass
