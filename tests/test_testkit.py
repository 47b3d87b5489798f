"""The test kit's own helpers: waiting on a condition, fake time, stopping a process group."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

import pytest

from testkit.clock import FakeClock
from testkit.processes import stop_group_async
from testkit.waiting import until, until_async, wait_for

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


async def test_until_async_awaits_each_check_and_returns_the_first_truthy_value() -> None:
    calls, predicate = counter(3)

    async def check() -> int | None:
        await asyncio.sleep(0)  # a check that really awaits, as an HTTP query does
        return predicate()

    assert await until_async(check, "the third call", within=5, poll=0) == 3
    assert len(calls) == 3


async def test_until_async_cancels_a_check_still_running_at_the_deadline() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> bool:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return True

    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for the answer"):
        await until_async(hangs, "the answer", within=0.05)
    assert cancelled.is_set()


async def test_until_async_lets_the_predicates_own_timeout_through() -> None:
    async def times_out() -> bool:
        raise TimeoutError("the query's own")

    with pytest.raises(TimeoutError, match="the query's own"):
        await until_async(times_out, "anything", within=5)


async def test_stop_group_async_ends_a_process_that_ignores_sigterm_with_sigkill() -> None:
    ignores = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    ignores += "print('ready', flush=True); time.sleep(60)"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ignores, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"ready\n"
    assert await stop_group_async(process, timeout=0.5) == -signal.SIGKILL

    polite = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", start_new_session=True
    )
    assert await stop_group_async(polite) == -signal.SIGTERM


def test_a_fake_clock_moves_only_when_told_and_never_back() -> None:
    clock = FakeClock(now=10.0)
    assert clock() == 10.0
    assert clock.advance(2.5) == 12.5 and clock() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock() == 12.5
