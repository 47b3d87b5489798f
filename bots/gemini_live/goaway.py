"""When a goAway switch is due at the latest: a safety margin before the server's `timeLeft`.

The margin is capped at half of `timeLeft`, so a short notice still leaves time to find a turn
boundary; a goAway that names no time is left at the next boundary, soon. A later goAway never
moves the deadline back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger


def duration_secs(value: str | None) -> float | None:
    """Seconds of a proto `Duration` in JSON form (`"9.5s"`), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip().removesuffix("s")))
    except ValueError:
        return None


class GoAwayPlan:
    """The deadline of the connection the server is closing.

    Args:
        margin_secs: How long before `timeLeft` runs out the switch happens at the latest.
        clock: Monotonic clock (tests pass a fake one).
    """

    def __init__(self, margin_secs: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._margin = max(0.0, margin_secs)
        self._clock = clock
        self.deadline: float | None = None

    def announce(self, time_left: str | None) -> float | None:
        """Take in a goAway; the time to switch by at the latest, or None if nothing changes.

        Args:
            time_left: The goAway's `timeLeft`, e.g. `"9.5s"`.
        """
        seconds = duration_secs(time_left)
        if seconds is None:
            seconds = 2 * self._margin  # unknown: leave at the next boundary, soon
        now = self._clock()
        deadline = now + seconds
        if self.deadline is not None and self.deadline <= deadline:
            return None
        self.deadline = deadline
        latest = deadline - min(self._margin, seconds / 2)
        logger.info(
            f"goAway with {seconds:.1f}s left; switching connections at the next turn "
            f"boundary, at the latest in {max(0.0, latest - now):.1f}s"
        )
        return latest

    def clear(self) -> None:
        """The connection has been left."""
        self.deadline = None
