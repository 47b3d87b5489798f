"""How many conversations run at once, per process and per client, and what is waiting to start.

Every `POST /start` reserves a place that its offer turns into a running session; a reservation no
offer follows within `start_ttl_secs` is dropped. Reservations count against both caps, so the map
of them is bounded by `max_sessions` and a client cannot fill the server with /start calls alone.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bots import metrics

BUSY_RETRY_SECS = 30
"""What `Retry-After` says when the process is full: about one short conversation."""


class Refused(Exception):
    """A session that cannot start now: the HTTP status, a message for the page, Retry-After."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """The caps a `SessionBook` enforces.

    Attributes:
        max_sessions: Running and reserved sessions this process takes at most.
        max_per_client: Running and reserved sessions of one client (user, or address).
        start_ttl_secs: How long a reservation waits for its offer.
        id_prefix: What every session id starts with (`REPLICA_ID`, then a dot): how a load
            balancer sends a session's later requests to the process that holds it.
    """

    max_sessions: int
    max_per_client: int
    start_ttl_secs: float = 60.0
    id_prefix: str = ""


@dataclass
class Entry:
    """One session, reserved by `/start` (`started` False) or running."""

    session_id: str
    client: str
    user: str
    body: dict[str, Any]
    created: float
    started: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class SessionBook:
    """Reservations and running sessions, under the process and per-client caps."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        if limits.max_sessions < 1 or limits.max_per_client < 1:
            raise ValueError("session limits must be at least 1")
        self.limits = limits
        self._clock = clock
        self._entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    @property
    def running(self) -> int:
        """Sessions whose offer has arrived."""
        return sum(1 for e in self._entries.values() if e.started)

    def reserve(self, client: str, user: str, body: dict[str, Any]) -> Entry:
        """A place for a new session of `client`; Refused (503 or 429) when a cap is reached."""
        self._expire()
        if len(self._entries) >= self.limits.max_sessions:
            metrics.refused("full")
            raise Refused(
                503,
                "The assistant is busy with other conversations. Try again in a moment.",
                BUSY_RETRY_SECS,
            )
        mine = [e for e in self._entries.values() if e.client == client]
        if len(mine) >= self.limits.max_per_client:
            waiting = [e for e in mine if not e.started]
            retry = (
                math.ceil(
                    min(e.created for e in waiting) + self.limits.start_ttl_secs - self._clock()
                )
                if waiting
                else BUSY_RETRY_SECS
            )
            metrics.refused("per_client")
            raise Refused(
                429,
                f"Too many conversations at once from you (at most {self.limits.max_per_client}). "
                "End one, then try again.",
                max(1, retry),
            )
        prefix = f"{self.limits.id_prefix}." if self.limits.id_prefix else ""
        entry = Entry(prefix + secrets.token_urlsafe(16), client, user, dict(body), self._clock())
        self._entries[entry.session_id] = entry
        return entry

    def get(self, session_id: str) -> Entry | None:
        """The reserved or running session, or None (unknown, ended, or its reservation expired)."""
        self._expire()
        return self._entries.get(session_id)

    def start(self, session_id: str) -> Entry:
        """Mark a reservation as running (its offer arrived); KeyError if there is none."""
        entry = self._entries[session_id]
        entry.started = True
        return entry

    def end(self, session_id: str) -> None:
        """Forget a session: it ended, or its start failed."""
        self._entries.pop(session_id, None)

    def _expire(self) -> None:
        cutoff = self._clock() - self.limits.start_ttl_secs
        for sid in [s for s, e in self._entries.items() if not e.started and e.created < cutoff]:
            del self._entries[sid]
