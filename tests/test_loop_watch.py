"""The event-loop watchdog (issue 14, point 8): a stall of the loop that carries the audio is
logged while it lasts, with what the loop was running, and again when it ends, with how long."""

from __future__ import annotations

import threading

import pytest
from loguru import logger

from bots.server.loop_watch import LoopWatch
from testkit.waiting import until

pytestmark = pytest.mark.unit


def parse_a_huge_document(reported: threading.Event) -> None:
    """Stands in for blocking work done on the loop: it holds the loop until the stall is seen."""
    assert reported.wait(30), "the watchdog never reported the stall"


async def test_a_blocked_loop_is_reported_with_what_blocked_it_and_for_how_long(
    warnings: list[str],
) -> None:
    reported = threading.Event()
    sink = logger.add(
        lambda m: reported.set() if "stalled" in m.record["message"] else None, level="WARNING"
    )
    try:
        async with LoopWatch(stall_ms=50).watching() as watch:
            parse_a_huge_document(reported)
            await until(lambda: watch.stalls, "the end of the stall to be logged")
    finally:
        logger.remove(sink)
    stalled = [w for w in warnings if "stalled" in w]
    assert len(stalled) == 1, warnings
    assert "running: " in stalled[0] and "parse_a_huge_document" in stalled[0]
    blocked = [w for w in warnings if w.startswith("event loop was blocked for")]
    assert len(blocked) == 1
    assert int(blocked[0].split()[-2]) >= 50


async def test_the_watchdog_stops_with_its_block() -> None:
    async with LoopWatch().watching():
        running = {t.name for t in threading.enumerate()}
    assert "loop-watch" in running
    assert "loop-watch" not in {t.name for t in threading.enumerate()}
