"""A watchdog for the event loop that carries every session's audio.

One blocking call on that loop (file I/O, a slow tool run inline, a CPU-heavy parse) delays every
conversation at once, and shows up only as choppy audio. A heartbeat task notes each time the loop
runs it; a thread wakes beside the loop and, when the heartbeat is late by more than the threshold,
logs the stall with the loop thread's stack at that moment: what was running, not only that
something was. When the loop runs again the heartbeat logs how long the stall lasted.

Every beat's lateness goes to the `event_loop_lag_seconds` histogram, and every stall to
`event_loop_stalls_total` (`bots.metrics`): a scrape shows the loop's health between stalls too.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator

from loguru import logger

from bots import metrics

STALL_MS = 50
"""A loop that has not run the heartbeat for this long (beyond its own interval) is stalled."""
BEAT_MS = 20
"""How often the heartbeat runs, and how often the watching thread looks."""
STACK_FRAMES = 4
"""Innermost frames of the loop thread's stack put in the stall line."""


class LoopWatch:
    """Logs stalls of the running event loop; use `watching()` to run one for a block."""

    def __init__(self, stall_ms: float = STALL_MS, beat_ms: float = BEAT_MS) -> None:
        self.stall_s = stall_ms / 1000
        self.beat_s = beat_ms / 1000
        self.stalls = 0
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._reported = False
        self._stop = threading.Event()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.beat_s)
            now = time.monotonic()
            late = now - self._beat - self.beat_s
            self._beat = now
            metrics.LOOP_LAG.observe(max(late, 0.0))
            if late > self.stall_s:
                self.stalls += 1
                metrics.LOOP_STALLS.inc()
                logger.warning(f"event loop was blocked for {late * 1000:.0f} ms")
            self._reported = False

    def _watch(self) -> None:
        while not self._stop.wait(self.beat_s):
            late = time.monotonic() - self._beat - self.beat_s
            if late > self.stall_s and not self._reported:
                self._reported = True
                logger.warning(
                    f"event loop stalled for {late * 1000:.0f} ms so far; running: {self._where()}"
                )

    def _where(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "unknown"
        stack = traceback.extract_stack(frame)[-STACK_FRAMES:]
        return " <- ".join(f"{f.name} ({f.filename}:{f.lineno})" for f in reversed(stack))

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[LoopWatch]:
        """Watch the running loop until the block ends."""
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        beat = asyncio.create_task(self._heartbeat(), name="loop-watch")
        watcher = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        watcher.start()
        try:
            yield self
        finally:
            self._stop.set()
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            watcher.join()
