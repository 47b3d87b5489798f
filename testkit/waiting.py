"""Waiting on a condition instead of sleeping for a guessed time.

A test that sleeps "long enough" fails on a busy machine; one that polls for the event itself only
gets slower. The helpers return the predicate's value, so a wait can also fetch what it waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_WITHIN = 30.0
"""Upper bound of one wait: generous, since CI shares 2 cores with Whisper and Piper."""


async def until(
    predicate: Callable[[], T | None],
    what: str,
    within: float = DEFAULT_WITHIN,
    poll: float = 0.01,
) -> T:
    """Wait until `predicate()` is truthy and return it, or fail saying what never happened.

    Args:
        predicate: Checked at once, then every `poll` seconds, on the running event loop.
        what: Completes "timed out after Ns waiting for ..." in the failure.
        within: Seconds before giving up.
        poll: The polling interval (not a wait for a race to settle).

    Raises:
        AssertionError: `predicate()` stayed falsy for `within` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        if (value := _check(predicate, what, within, deadline)) is not None:
            return value
        await asyncio.sleep(poll)


async def until_async(
    predicate: Callable[[], Awaitable[T | None]],
    what: str,
    within: float = DEFAULT_WITHIN,
    poll: float = 0.01,
) -> T:
    """`until` for a predicate that awaits (an HTTP query, a control API): each check runs to its
    end before the next starts, and one that is still running at the deadline is cancelled.

    Raises:
        AssertionError: `await predicate()` stayed falsy for `within` seconds.
    """
    try:
        async with asyncio.timeout(within) as scope:
            while True:
                if value := await predicate():
                    return value
                await asyncio.sleep(poll)
    except TimeoutError:
        if not scope.expired():
            raise  # the predicate's own timeout, not this wait's
        raise AssertionError(f"timed out after {within:g}s waiting for {what}") from None


def wait_for(
    predicate: Callable[[], T | None],
    what: str,
    within: float = DEFAULT_WITHIN,
    poll: float = 0.05,
) -> T:
    """`until` for code with no event loop: polling processes, files or sockets."""
    deadline = time.monotonic() + within
    while True:
        if (value := _check(predicate, what, within, deadline)) is not None:
            return value
        time.sleep(poll)


def _check(
    predicate: Callable[[], T | None], what: str, within: float, deadline: float
) -> T | None:
    """The predicate's value when truthy, None to poll again; AssertionError past the deadline."""
    value = predicate()
    if value:
        return value
    if time.monotonic() >= deadline:
        raise AssertionError(f"timed out after {within:g}s waiting for {what}")
    return None
