"""Time that moves only when the test says so, for deterministic timing in unit tests."""

from __future__ import annotations


class FakeClock:
    """A callable clock (pass it where code takes `clock=time.time` or `time.monotonic`).

    Args:
        now: The starting time, in seconds.
    """

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time on and return the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds
        return self.now
