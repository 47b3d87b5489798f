"""Serving the app with uvicorn, and stopping it the way process managers expect.

Docker and systemd send SIGTERM and wait before SIGKILL. The first SIGTERM or Ctrl-C stops new
sessions, lets each bot finish the sentence it is saying and record its end (`bots.lifecycle`),
then stops the server; a second one cancels whatever is left at once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI
from loguru import logger


class StoppingServer(uvicorn.Server):
    """`uvicorn.Server` whose first stop signal drains the sessions before the server stops."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain: Callable[[], Awaitable[None]],
        cancel: Callable[[], None],
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._cancel = cancel
        self._signals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list | None = None) -> None:  # type: ignore[override]
        """Serve until stopped (see the module docstring)."""
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Called from the signal handler: hand over to the loop."""
        if self._loop is None:
            self.should_exit = True
            return
        self._loop.call_soon_threadsafe(self._stop_signal, signal.Signals(sig).name)

    def _stop_signal(self, name: str) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.info(f"{name}: ending the sessions gracefully, then stopping")
            self._draining = asyncio.ensure_future(self._drain_then_exit())
        else:
            logger.info(f"{name} again: stopping now")
            self._cancel()
            self.should_exit = True
            self.force_exit = True

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        finally:
            self.should_exit = True


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    *,
    drain: Callable[[], Awaitable[None]],
    cancel: Callable[[], None],
    close: Callable[[], Awaitable[None]],
) -> None:
    """Serve `app` on `host:port` until a stop signal (or two) has been handled, then `close()`.

    `close` runs whether or not uvicorn ran the app's shutdown (a forced exit skips it), so each
    session's own teardown runs in order before the event loop cancels what is left.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    try:
        await StoppingServer(config, drain=drain, cancel=cancel).serve()
    finally:
        await close()
