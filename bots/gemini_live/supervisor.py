"""The connection supervisor: one task owns the Gemini Live socket for the whole session.

Pipecat 1.14 reconnects a dropped socket at most twice with no backoff, only logs a failed
connect (the bot then sits silent), and ignores `goAway`. The supervisor instead:

- connects, the first time too, and after every loss decides how to go on: retry with
  exponential backoff and jitter (`RetryPolicy`), resuming with the latest handle; start a
  fresh session when the handle is refused (close 1008) or past its lifetime; give up at once
  on a refused key, model or setup, or after `attempts` retries;
- tells the transcript (session events) and the browser (RTVI `service-reconnecting` /
  `service-reconnected`) what is going on, and counts connects, reconnects, goAways and
  failures (`bots.metrics`);
- after `goAway`, switches connections at the next turn boundary, and at the latest a safety
  margin before `timeLeft` runs out, on its own timer so a server gone silent is still left.
  The old socket is closed first (Gemini refuses a resume while an earlier socket of the
  session is open), then the session is resumed.

What a connection is used for (seeding, sending, reading messages) is the stage's: it reaches
the stage only through the `StageHooks` below.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.utils.network import exponential_backoff_time

from bots import metrics
from bots.gemini_live.errors import Verdict, classify, describe, failure_reason
from bots.gemini_live.goaway import GoAwayPlan
from bots.gemini_live.handles import ResumptionHandles
from bots.gemini_live.outbox import Outbox
from processors.frames import SessionEvent

if TYPE_CHECKING:
    from google.genai.live import AsyncSession
    from google.genai.types import LiveServerMessage

SERVICE_NAME = "Gemini Live"
HEALTHY_SECS = 5.0
"""A connection that lived this long, or completed a model turn, was healthy: its loss resets
the attempt counter and is retried at once."""
GOAWAY_POLL_SECS = 0.05
"""How often the goAway timer re-checks for a turn boundary."""

Connect = Callable[[str | None], AbstractAsyncContextManager["AsyncSession"]]
"""Opens a socket, resuming with the handle when one is given (None: a fresh session)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a lost or refused connection is tried again.

    Attributes:
        attempts: Retries after a drop or failed connect before giving up.
        base_delay_secs: Retry n waits `base * 2**(n-1)`, capped (Pipecat's backoff).
        max_delay_secs: Ceiling of the delay.
        jitter: Each delay is scaled by a random factor in `1 ± jitter`, so many bots cut off
            at once do not reconnect in lockstep.
    """

    attempts: int = 6
    base_delay_secs: float = 0.25
    max_delay_secs: float = 8.0
    jitter: float = 0.2

    def delay(self, attempt: int, *, after_healthy: bool, rng: random.Random) -> float:
        """Seconds to wait before retry ``attempt`` (1-based).

        The first retry after a healthy connection is immediate: one lost socket is the
        common case, and resuming at once keeps the gap short.
        """
        if attempt == 1 and after_healthy:
            return 0.0
        base = max(0.0, self.base_delay_secs)
        ceiling = max(base, self.max_delay_secs)
        nominal = exponential_backoff_time(attempt, min_wait=0.0, max_wait=ceiling, multiplier=base)
        jitter = min(max(self.jitter, 0.0), 1.0)
        return max(0.0, min(ceiling, nominal * (1.0 + rng.uniform(-jitter, jitter))))


@dataclass(frozen=True)
class StageHooks:
    """What the supervisor needs of the service it supervises.

    Attributes:
        spawn: Starts a task on the service's task manager.
        socket_opened: Makes a new socket ready: seed or resume, then send what was queued
            (``resumed``: the session was resumed; ``first``: the first socket of the service).
        socket_closed: The socket went away (``cancelled``: the session is ending).
        server_message: Handles one message from the server.
        session_event: Tells the transcript how the connection changed.
        tell_browser: Sends an RTVI server message to the client.
        give_up: The connection cannot be restored: end the session.
        at_turn_boundary: Whether a goAway switch now would cut nothing off.
        bot_responding: Whether the model is answering now.
        conversation_seeded: Whether the conversation was seeded on some socket already.
    """

    spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
    socket_opened: Callable[..., Awaitable[None]]
    socket_closed: Callable[..., Awaitable[None]]
    server_message: Callable[[LiveServerMessage], Awaitable[None]]
    session_event: Callable[[SessionEvent, str], Awaitable[None]]
    tell_browser: Callable[[dict[str, Any]], Awaitable[None]]
    give_up: Callable[[str, Exception], Awaitable[None]]
    at_turn_boundary: Callable[[], bool]
    bot_responding: Callable[[], bool]
    conversation_seeded: Callable[[], bool]


class Supervisor:
    """Owns the socket: connects, serves, and after every loss decides how to go on.

    Args:
        stage: The service the connection serves.
        outbox: Closed whenever the socket goes away or a switch begins.
        handles: The resumption handles the server issued.
        retry: The retry schedule.
        connect_timeout_secs: Limit for opening a socket and receiving `setupComplete`.
        goaway_margin_secs: How long before goAway's `timeLeft` runs out the switch happens
            at the latest (capped at half of `timeLeft`).
        clock: Monotonic clock.
        rng: Random numbers for the jitter.
    """

    def __init__(
        self,
        stage: StageHooks,
        *,
        outbox: Outbox,
        handles: ResumptionHandles,
        retry: RetryPolicy,
        connect_timeout_secs: float = 10.0,
        goaway_margin_secs: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._stage = stage
        self._outbox = outbox
        self._handles = handles
        self._retry = retry
        self._connect_timeout = connect_timeout_secs
        self._clock = clock
        self._rng = rng or random.Random()
        self._goaway = GoAwayPlan(goaway_margin_secs, clock=clock)
        self._goaway_task: asyncio.Task[None] | None = None
        self.socket: AsyncSession | None = None
        self.session_id: str | None = None
        self.switching = False
        self.stopping = False
        self.failed = False
        self.ever_connected = False
        self._progress = False  # a model turn completed on the current socket
        self._next_open_reason: str | None = None  # "goaway" or "outage"
        self._outage_announced = False

    # ------------------------------------------------------------------ state

    def usable(self) -> bool:
        """Whether there is a socket to send on (none while a switch is under way)."""
        return self.socket is not None and not self.switching

    @property
    def goaway_pending(self) -> bool:
        """Whether a goAway switch is due or under way."""
        return self._goaway.deadline is not None or self.switching

    def turn_completed(self) -> None:
        """A model turn completed on the current socket: it is healthy."""
        self._progress = True

    # ------------------------------------------------------------------ the loop

    async def run(self, connect: Connect) -> None:
        """Connect and serve until stopped or given up (the service's connection task)."""
        failures = 0
        while not self.stopping:
            handle = self._handles.usable()
            opened_at, error = await self._serve(connect, handle)
            if self.stopping:
                return
            if self._goaway.deadline is not None or self.switching:
                # Our own switch, or the server closing after goAway: resume at once.
                self._end_goaway()
                self._next_open_reason = self._next_open_reason or "goaway"
                failures = 0
                continue
            assert error is not None  # the receive loop only ends by raising
            failures = await self._after_loss(error, handle, opened_at, failures)
            if failures < 0:
                return

    async def _serve(
        self, connect: Connect, handle: str | None
    ) -> tuple[float | None, Exception | None]:
        """One connection, from opening to loss: when it opened, and what it ended with."""
        opened_at: float | None = None
        error: Exception | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(self._connect_timeout):
                    socket = await stack.enter_async_context(connect(handle))
                opened_at = self._clock()
                await self._opened(socket, resumed=handle is not None)
                while True:  # `receive()` ends after each turn; a close raises out of it
                    async for message in socket.receive():
                        await self._stage.server_message(message)
        except asyncio.CancelledError:
            await self._closed(cancelled=True)
            raise
        except Exception as exc:
            error = exc
        await self._closed(cancelled=False)
        return opened_at, error

    async def _after_loss(
        self, error: Exception, handle: str | None, opened_at: float | None, failures: int
    ) -> int:
        """Decide what follows a loss: the new failure count, or -1 after giving up."""
        verdict = classify(error, resuming=handle is not None, opened=opened_at is not None)
        metrics.gemini_failed(failure_reason(error, verdict, opened=opened_at is not None))
        if verdict is Verdict.HANDLE_REFUSED:
            logger.warning(
                f"Gemini refused the resumption handle ({describe(error)}); starting a fresh "
                "session seeded with the conversation so far"
            )
            self._handles.forget()
            return failures
        healthy = opened_at is not None and (
            self._progress or self._clock() - opened_at >= HEALTHY_SECS
        )
        failures = 1 if healthy else failures + 1
        if verdict is Verdict.PERMANENT or failures > self._retry.attempts:
            await self._give_up(error, failures - 1, permanent=verdict is Verdict.PERMANENT)
            return -1
        delay = self._retry.delay(failures, after_healthy=healthy, rng=self._rng)
        await self._announce_retry(error, failures, delay, lost=opened_at is not None)
        if delay > 0:
            await asyncio.sleep(delay)
        return failures

    async def _announce_retry(self, error: Exception, attempt: int, delay: float, *, lost: bool):
        reason = describe(error)
        attempts = self._retry.attempts
        logger.warning(
            f"Gemini Live connection {'lost' if lost else 'failed'} ({reason}); "
            f"retry {attempt} of {attempts} in {delay:.2f}s"
        )
        self._next_open_reason = "outage"
        self._outage_announced = True
        await self._stage.session_event(
            SessionEvent.RECONNECTING, f"attempt {attempt} of {attempts}: {reason}"
        )
        await self._stage.tell_browser(
            {
                "type": "service-reconnecting",
                "service": SERVICE_NAME,
                "attempt": attempt,
                "max_attempts": attempts,
                "reason": reason,
                "message": f"Reconnecting to {SERVICE_NAME} (attempt {attempt} of {attempts})…",
            }
        )

    async def _opened(self, socket: AsyncSession, *, resumed: bool) -> None:
        """Announce the connection, then let the stage make it ready."""
        self.socket = socket
        self._progress = False
        self.session_id = socket.session_id or self.session_id
        first = not self.ever_connected
        self.ever_connected = True
        reason, self._next_open_reason = self._next_open_reason, None
        metrics.GEMINI_CONNECTS.inc()
        if not first and reason != "goaway":
            metrics.GEMINI_RECONNECTS.inc()
        if resumed:
            how = "resumed the session"
        elif self._stage.conversation_seeded():
            how = "started a fresh session seeded with the conversation so far"
        else:
            how = "started a new session"
        logger.info(f"connected to Gemini Live ({how}; session {self.session_id})")
        if first:
            await self._stage.session_event(SessionEvent.CONNECTED, how)
        elif reason == "goaway" and resumed:
            await self._stage.session_event(
                SessionEvent.RESUMED, "switched connections after goAway"
            )
        else:
            await self._stage.session_event(SessionEvent.RECONNECTED, how)
        if self._outage_announced:
            self._outage_announced = False
            await self._stage.tell_browser({"type": "service-reconnected", "service": SERVICE_NAME})
        await self._stage.socket_opened(socket, resumed=resumed, first=first)

    async def _closed(self, *, cancelled: bool) -> None:
        self.socket = None
        self._outbox.close()
        await self._stage.socket_closed(cancelled=cancelled or self.stopping)

    async def _give_up(self, error: Exception, retries: int, *, permanent: bool) -> None:
        self.failed = True
        why = describe(error)
        message = (
            f"Could not connect to {SERVICE_NAME}: {why}. The session has ended."
            if permanent
            else (
                f"Lost the connection to {SERVICE_NAME} and could not restore it after "
                f"{retries} {'retry' if retries == 1 else 'retries'} (last error: {why}). "
                "The session has ended."
            )
        )
        logger.error(message)
        await self._stage.give_up(message, error)

    # ------------------------------------------------------------------ goAway

    def go_away(self, time_left: str | None) -> None:
        """The server announced the end of this connection."""
        metrics.GEMINI_GOAWAYS.inc()
        latest = self._goaway.announce(time_left)
        if latest is None:
            return
        if self._goaway_task is not None and not self._goaway_task.done():
            self._goaway_task.cancel()
        self._goaway_task = self._stage.spawn(self._switch_when_ready(latest), "goaway_switch")

    async def _switch_when_ready(self, latest: float) -> None:
        """The goAway timer: it runs on its own clock, so a server gone silent is still left."""
        while True:
            now = self._clock()
            if now >= latest:
                why = "the goAway deadline is near"
                break
            if self.socket is None:
                return  # lost already; the loop resumes
            if self._stage.at_turn_boundary():
                why = "between turns"
                break
            await asyncio.sleep(min(GOAWAY_POLL_SECS, latest - now))
        socket = self.socket
        if socket is None or self.switching:
            return
        self.switching = True
        self._outbox.close()
        self._next_open_reason = "goaway"
        if self._stage.bot_responding():
            logger.warning(f"switching connections mid-answer: {why}")
        else:
            logger.info(f"switching connections after goAway ({why})")
        # The loop sees the close and resumes.
        with contextlib.suppress(Exception):
            await socket.close()

    def _end_goaway(self) -> None:
        self._goaway.clear()
        self.switching = False
        task, self._goaway_task = self._goaway_task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # ------------------------------------------------------------------ stopping

    async def close_socket(self) -> None:
        """Close the socket in use with a normal close (1000), without stopping."""
        socket, self.socket = self.socket, None
        self._outbox.close()
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close()

    async def stop(self) -> None:
        """Close for good: nothing reconnects after this.

        The socket is closed here, with a normal close: Pipecat would cancel the receive task
        inside the SDK's `connect()`, and websockets then closes with 1011.
        """
        self.stopping = True
        task, self._goaway_task = self._goaway_task, None
        if task is not None and not task.done():
            task.cancel()
        await self.close_socket()
