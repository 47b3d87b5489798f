"""Recording each Gemini Live connection to a cassette (`RECORD_DIR`), at the socket itself.

Every message the SDK sends and receives goes through the one WebSocket its `live.connect()`
opens, the setup and `setupComplete` included, so that socket is where a faithful recording is
made. The SDK opens it with `google.genai.live.ws_connect`; `install()` wraps that function
once, and the wrapper records only inside `recorded()`, the stage's own connects: any other
use of the SDK in the process is untouched. It is a private name of google-genai: a test
(`tests/test_record_replay.py`) fails, naming it, when an SDK release stops opening its socket
through it, instead of a recording silently coming out empty.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from loguru import logger

from cassettes import CassetteWriter, Scrubber
from cassettes.format import Side
from cassettes.scrub import AudioMode

_RECORDING: ContextVar[CassetteWriter | None] = ContextVar("gemini_live_recording", default=None)
_original: Callable[..., Any] | None = None
_numbers = itertools.count(1)


class Recorder:
    """Where one stage's connections are recorded: one cassette per connection.

    Args:
        folder: `RECORD_DIR`.
        secrets: Never written (the API key).
        audio: `hash` (the default) or `keep` the audio and images.
        label: Starts each file name (the bot's name).
    """

    def __init__(
        self, folder: Path, *, secrets: list[str], audio: AudioMode = "hash", label: str = "live"
    ) -> None:
        self.folder = folder
        self.audio = audio
        self.label = label
        self._scrubber = Scrubber(secrets, audio=audio)

    def writer(self, model: str) -> CassetteWriter:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.folder / f"{self.label}-{stamp}-{next(_numbers):04d}.jsonl"
        return CassetteWriter(path, self._scrubber, header={"model": model})


class _RecordingSocket:
    """The SDK's WebSocket, with every message written down as it passes."""

    def __init__(self, socket: Any, writer: CassetteWriter) -> None:
        self._socket = socket
        self._writer = writer
        self._closing = False  # the client (the stage) is closing it

    async def send(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._writer.message("client", message)
        await self._socket.send(message, *args, **kwargs)

    async def recv(self, *args: Any, **kwargs: Any) -> Any:
        try:
            raw = await self._socket.recv(*args, **kwargs)
        except Exception:
            self._closed("client" if self._closing else "server")
            raise
        self._writer.message("server", raw)
        return raw

    async def close(self, *args: Any, **kwargs: Any) -> None:
        self._closing = True
        await self._socket.close(*args, **kwargs)
        self._closed("client")

    def _closed(self, side: Side) -> None:
        code = getattr(self._socket, "close_code", None)
        reason = getattr(self._socket, "close_reason", None) or ""
        self._writer.closed(side, code, reason)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)


@contextlib.asynccontextmanager
async def _recording_connect(opened: Any, writer: CassetteWriter) -> AsyncIterator[Any]:
    async with opened as socket:
        try:
            yield _RecordingSocket(socket, writer)
        finally:
            writer.finish()


def _connect(*args: Any, **kwargs: Any) -> Any:
    assert _original is not None
    opened = _original(*args, **kwargs)
    writer = _RECORDING.get()
    return opened if writer is None else _recording_connect(opened, writer)


def install() -> None:
    """Wrap the SDK's socket opener (once per process)."""
    global _original
    from google.genai import live

    if _original is None:
        _original = live.ws_connect
        live.ws_connect = _connect  # type: ignore[misc,assignment]


@contextlib.asynccontextmanager
async def recorded(connect: Any, recorder: Recorder | None, model: str) -> AsyncIterator[Any]:
    """Enter the SDK's `live.connect()` context, recording its socket when `recorder` is set."""
    if recorder is None:
        async with connect as session:
            yield session
        return
    install()
    writer = recorder.writer(model)
    token: Any = _RECORDING.set(writer)
    try:
        async with connect as session:
            _RECORDING.reset(token)  # the socket is open: later connects are not this one's
            token = None
            yield session
    finally:
        if token is not None:
            _RECORDING.reset(token)
        writer.finish()
        if writer.failed is None:
            logger.debug(f"recorded the connection to {writer.path}")
