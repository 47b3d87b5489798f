"""Serving the app with uvicorn, and stopping it the way process managers expect.

Docker and systemd send SIGTERM and wait before SIGKILL. The first SIGTERM or Ctrl-C stops new
sessions, lets each bot finish the sentence it is saying and record its end (`bots.lifecycle`),
then stops the server; a second one cancels whatever is left at once.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from loguru import logger

from bots.server.loop_watch import LoopWatch


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


LEFTOVER_GRACE_SECS = 1.0
"""After the server and its sessions have stopped, how long other tasks get to unwind."""
CLOSE_GRACE_SECS = 5.0
"""After the server stopped, how long the sessions get to unwind before their peers close."""


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    *,
    drain: Callable[[], Awaitable[None]],
    cancel: Callable[[], None],
    close: Callable[[float], Awaitable[None]],
) -> None:
    """Serve `app` on `host:port` until a stop signal (or two) has been handled, then close.

    `close(grace_secs)` runs whether or not uvicorn ran the app's shutdown (a forced exit skips
    it), so each session's own teardown runs in order; after a second signal it gets a second.
    """
    # No lifespan: what shutdown must do is `close`, which a forced exit does not skip.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = StoppingServer(config, drain=drain, cancel=cancel)
    async with LoopWatch().watching():
        try:
            await server.serve()
        finally:
            await close(LEFTOVER_GRACE_SECS if server.force_exit else CLOSE_GRACE_SECS)


def run(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)`, except that a task which ignores its cancellation cannot hold the
    process: what has not unwound `LEFTOVER_GRACE_SECS` after `main` is left behind, counted."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
        leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.wait(leftover, timeout=LEFTOVER_GRACE_SECS))
        stuck = [t for t in leftover if not t.done()]
        if stuck:
            logger.warning(f"{len(stuck)} task(s) did not stop in time; exiting without them")
            # Their "destroyed but pending" reports would only repeat the line above.
            loop.set_exception_handler(lambda _loop, _context: None)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
