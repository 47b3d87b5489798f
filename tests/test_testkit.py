"""The test kit's own helpers: waiting on a condition, fake time."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from testkit.clock import FakeClock
from testkit.waiting import until, wait_for

pytestmark = pytest.mark.unit


def counter(ready_at: int) -> tuple[list[int], Callable[[], int | None]]:
    calls: list[int] = []

    def predicate() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) >= ready_at else None

    return calls, predicate


async def test_until_returns_the_predicates_first_truthy_value() -> None:
    calls, predicate = counter(3)
    assert await until(predicate, "the third call", within=5, poll=0) == 3
    assert len(calls) == 3


async def test_until_fails_naming_what_never_happened() -> None:
    with pytest.raises(AssertionError, match="waiting for the moon"):
        await until(lambda: False, "the moon", within=0.05, poll=0.01)


def test_wait_for_is_the_same_wait_without_an_event_loop() -> None:
    _, predicate = counter(2)
    assert wait_for(predicate, "the second call", within=5, poll=0) == 2
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for nothing"):
        wait_for(lambda: 0, "nothing", within=0.05, poll=0.01)


def test_a_fake_clock_moves_only_when_told_and_never_back() -> None:
    clock = FakeClock(now=10.0)
    assert clock() == 10.0
    assert clock.advance(2.5) == 12.5 and clock() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock() == 12.5
