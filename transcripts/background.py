"""A live session's store work on a thread of its own: the event loop only hands events over.

The loop that runs a bot's pipeline also carries its audio, so a slow or stalled disk (or a slow
database) must not stall it. A `BackgroundSession` keeps each event in memory the moment it is
recorded and queues its write; one thread per session runs the queued work in order (retention,
opening the session, one `append` per event, closing), so the store gets the same events in the
same order as if each were written on the spot, and each is stored once its write on that thread
returns. The store is a folder (`transcripts.store`) or PostgreSQL (`transcripts.postgres`); this
module sees only `transcripts.backend`'s protocols.

At most `max_pending` events wait for the thread. A store that falls that far behind is treated
like a full one: logged once, and the rest of the session is kept in memory only, so the file
(or the table) stays a clean prefix of the session.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from loguru import logger

from transcripts.backend import TranscriptBackend, TranscriptWriter
from transcripts.files import check_session_id
from transcripts.store import make_event

DEFAULT_MAX_PENDING = 10_000
"""Events queued for the writer thread before a session goes memory-only: minutes of a busy
conversation, so only a disk that has stopped answering reaches it."""

_STOP = None


class BackgroundSession:
    """One session written by its own thread; the methods called on the loop never block.

    Args:
        store: Where the transcript goes: the folder's store, or PostgreSQL's.
        session_id: The session's id (it names the file, or keys the rows).
        max_pending: Events that may wait for the thread before the session goes memory-only.
    """

    def __init__(
        self, store: TranscriptBackend, session_id: str, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.store = store
        self.session_id = check_session_id(session_id)
        self.where = store.where(session_id)
        """Where the session is written, for log lines."""
        self.events: list[dict[str, Any]] = []
        """Every event recorded, written or not, in order."""
        self._max_pending = max_pending
        # Unbounded as a type, bounded in use: `write` admits at most `max_pending` events, and
        # the other jobs are a session's open, close and flush markers.
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._writer: TranscriptWriter | None = None
        self._behind = False
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"transcript-{session_id}", daemon=True
        )

    # ----------------------------------------------------------------------------------------
    # Called on the event loop

    def open(self, *, started_at: float, meta: Mapping[str, Any], purge: bool = True) -> None:
        """Start the thread: it applies retention (keeping this session), then opens the
        session in the store."""
        if self._thread.is_alive() or self._closed:
            return
        self._thread.start()
        self._jobs.put(partial(self._open, started_at, dict(meta), purge))

    def write(self, kind: str, ts: float, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record one event: in memory now, in the store as soon as the thread gets to it."""
        event = make_event(self.session_id, kind, ts, fields)
        self.events.append(event)
        if self._closed or self._behind:
            return event
        with self._lock:
            admitted = self._pending < self._max_pending
            if admitted:
                self._pending += 1
        if not admitted:
            self._behind = True
            logger.warning(
                f"transcript {self.session_id}: cannot write {self.where} (the store is "
                f"{self._max_pending} events behind); the session goes on and its transcript "
                "is kept in memory only"
            )
            return event
        self._jobs.put(partial(self._append, event))
        return event

    def close(self, *, ts: float, summary: Mapping[str, Any]) -> None:
        """Queue the session's end (the index's end line, or its row's) and its release; the
        thread ends after them."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            return
        self._jobs.put(partial(self._close, ts, dict(summary)))
        self._jobs.put(_STOP)

    async def drained(self, within: float | None = None) -> bool:
        """Wait, without blocking the loop, until the work queued so far is done; False if
        `within` seconds ran out first (the thread goes on writing)."""
        if not self._thread.is_alive():
            return True
        return await asyncio.to_thread(self.flush, within)

    # ----------------------------------------------------------------------------------------
    # Safe from any thread

    def flush(self, timeout: float | None = None) -> bool:
        """Block until the work queued so far is done; False if `timeout` ran out first."""
        if not self._thread.is_alive():
            return True
        if self._closed:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        done = threading.Event()
        self._jobs.put(done.set)
        return done.wait(timeout)

    @property
    def written(self) -> int:
        """Events stored so far."""
        return self._writer.written if self._writer is not None else 0

    @property
    def in_memory_only(self) -> bool:
        """True once the store failed or fell too far behind: later events stay in memory."""
        return self._behind or (self._writer is not None and self._writer.in_memory_only)

    # ----------------------------------------------------------------------------------------
    # The writer thread

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            try:
                job()
            except Exception:  # the thread serves the whole session: one bad job must not end it
                logger.exception(f"transcript {self.session_id}: writing failed")

    def _open(self, started_at: float, meta: dict[str, Any], purge: bool) -> None:
        if purge:
            self.store.purge_expired(now=started_at, keep={self.session_id})
        self._writer = self.store.open_session(self.session_id, started_at=started_at, meta=meta)

    def _append(self, event: dict[str, Any]) -> None:
        try:
            if self._writer is not None:
                self._writer.append(event)
        finally:
            with self._lock:
                self._pending -= 1

    def _close(self, ts: float, summary: dict[str, Any]) -> None:
        if self._writer is not None:
            self._writer.close(ts=ts, summary=summary)
