"""Session resumption handles: the latest one, how old it is, and whether it covers the last turn.

Gemini keeps a handle for about two hours; an older one would be refused, so it is not even
tried: the stage then starts a fresh session seeded with the conversation instead. A handle
issued after the model last did anything "covers" the conversation so far, which is what the
goAway switch waits for: resuming with an older handle would lose the turn since.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

DEFAULT_TTL_SECS = 7200.0


class ResumptionHandles:
    """The handle a reconnect resumes with.

    Args:
        ttl_secs: How long after it was issued a handle is used.
        clock: Monotonic clock (tests pass a fake one).
        on_received: Called with each new handle (the conversation store keeps the latest, so
            another process can resume the session).
    """

    def __init__(
        self,
        ttl_secs: float = DEFAULT_TTL_SECS,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_received: Callable[[str], object] | None = None,
    ) -> None:
        self._ttl = ttl_secs
        self._clock = clock
        self._on_received = on_received
        self._handle: str | None = None
        self._received_at = 0.0
        self._fresh = False

    @property
    def latest(self) -> str | None:
        """The newest handle received (whatever its age), or None."""
        return self._handle

    @property
    def covers_last_turn(self) -> bool:
        """Whether a handle arrived since the model last did anything."""
        return self._fresh

    def received(self, handle: str) -> None:
        """A resumable handle arrived (`sessionResumptionUpdate`)."""
        if self._handle is None:
            logger.debug("got a resumption handle")
        self._handle = handle
        self._received_at = self._clock()
        self._fresh = True
        if self._on_received is not None:
            self._on_received(handle)

    def restore(self, handle: str, age_secs: float) -> None:
        """Start from a handle another process received `age_secs` ago (a conversation that
        moved here): the first connection resumes with it while it is young enough."""
        self._handle = handle
        self._received_at = self._clock() - max(0.0, age_secs)
        self._fresh = True

    def outdated(self) -> None:
        """The conversation moved on (input went out, the model answered): the handle lags."""
        self._fresh = False

    def forget(self) -> None:
        """Start the next connection as a fresh session."""
        self._handle = None
        self._fresh = False

    def usable(self) -> str | None:
        """The handle to resume with, or None (no handle, or one past its lifetime)."""
        if self._handle is None:
            return None
        age = self._clock() - self._received_at
        if age >= self._ttl:
            logger.warning(
                f"the resumption handle is {age:.0f}s old, past its {self._ttl:.0f}s lifetime; "
                "starting a fresh session seeded with the conversation so far"
            )
            self.forget()
            return None
        return self._handle
