"""When the conversation is between turns: the only safe moment to switch connections.

Gemini carries neither its VAD state nor a turn in progress over to a resumed connection, so
the goAway switch waits until the model is silent, no BLOCKING tool call holds its turn, no
reply to the user's last input is pending, the user is quiet, and a resumption handle covers
the last turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from loguru import logger

REPLY_GRACE_SECS = 3.0
"""A reply is expected this long after user input (text, a tool result, a transcribed turn);
the switch waits for it to start rather than cut it off."""


class TurnState:
    """What the stage has seen of the current turn.

    Args:
        clock: Monotonic clock (tests pass a fake one).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._bot_responding = False
        self._awaiting_reply_since: float | None = None
        self._cut_off = False
        self._dropped = 0
        self._model_sending = False  # the model's words or audio came, and no turn end yet
        self._echoes = 0  # interruptions Pipecat broadcast for the model's own `interrupted`

    @property
    def bot_responding(self) -> bool:
        """Whether the model's answer is in progress (between its response start and end)."""
        return self._bot_responding

    @property
    def cut_off(self) -> bool:
        """Whether the pipeline interrupted an answer the model is still sending: the rest of
        it is not to be played (see `interrupted_here`)."""
        return self._cut_off

    @property
    def dropped(self) -> int:
        """How many of the model's messages had their words and audio dropped (`cut_off`)."""
        return self._dropped

    @property
    def awaiting_reply(self) -> bool:
        """Whether user input went out and no reply has started yet."""
        return self._awaiting_reply_since is not None

    def bot_started(self) -> None:
        """The model's answer began."""
        self._bot_responding = True
        self._awaiting_reply_since = None

    def bot_stopped(self) -> None:
        """The model's answer ended (completed, interrupted, or cut with its socket)."""
        self._bot_responding = False

    def interrupted_here(self) -> None:
        """An interruption came from the pipeline (a local VAD heard the user, say).

        Pipecat's handling ends the answer for the pipeline, but the model goes on sending it
        until its own VAD sends `interrupted`, or to its `turnComplete`; played, the rest would
        start a new answer from the middle of the old one.
        """
        # Only an answer the model is still sending is cut off: once its turnComplete came (Pipecat
        # may still hold the turn open), nothing more of it will come, and the next answer's
        # words must not be taken for its rest. Nor is one cut off by the echo of the model's
        # own `interrupted`: Pipecat broadcasts it upstream too, and the worker sends it down
        # the pipeline again, to reach the stage after the next answer may have begun.
        if self._echoes:
            self._echoes -= 1
        else:
            self._cut_off = self._cut_off or (self._bot_responding and self._model_sending)
        self._bot_responding = False

    def model_interrupted(self) -> None:
        """The model's own `interrupted` came; its broadcast will come back as an interruption."""
        self._echoes = min(self._echoes + 1, 8)

    def model_says(self) -> None:
        """Words or audio of the model's answer came."""
        self._model_sending = True

    def output_dropped(self) -> None:
        """The words and audio of one message were dropped: they belong to a cut-off answer."""
        self._dropped += 1

    def model_turn_ended(self) -> None:
        """The model's `interrupted` or `turnComplete` came: what it sends next is new."""
        self._cut_off = False
        self._model_sending = False

    def socket_opened(self) -> None:
        """A new connection: nothing of an earlier answer, or of its echoes, carries over."""
        self.model_turn_ended()
        self._echoes = 0

    def input_sent(self) -> None:
        """User input, or a blocking tool's result, went out: a reply is due."""
        self._awaiting_reply_since = self._clock()

    def reply_started(self) -> None:
        """The model said something, or its turn ended: nothing is pending any more."""
        self._awaiting_reply_since = None

    def at_boundary(
        self, *, blocking_call_running: bool, user_speaking: bool, handle_covers_turn: bool
    ) -> bool:
        """Whether switching connections now would cut nothing off and lose nothing.

        Args:
            blocking_call_running: A BLOCKING tool call holds the model's turn (no resumable
                handle covers it); a NON_BLOCKING one does not, its result can go to the next
                socket.
            user_speaking: The microphone was loud recently.
            handle_covers_turn: A handle arrived since the model last did anything; resuming
                with an older one would resume without that turn.
        """
        if self._bot_responding or blocking_call_running or user_speaking:
            return False
        since = self._awaiting_reply_since
        if since is not None and self._clock() - since < REPLY_GRACE_SECS:
            return False
        return handle_covers_turn


class FinishSpeaking:
    """Closes an answer still going some time after the session was asked to end.

    Args:
        secs: How long the answer may go on; None leaves Pipecat's own limit.
        responding: Whether the model's answer is still in progress.
        close_turn: Ends the model's turn as its `turnComplete` would.
        spawn: Runs a coroutine as a task of the stage.
    """

    def __init__(
        self,
        secs: float | None,
        *,
        responding: Callable[[], bool],
        close_turn: Callable[[], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]],
    ) -> None:
        self._secs = secs
        self._responding = responding
        self._close_turn = close_turn
        self._spawn = spawn
        self._task: asyncio.Task[None] | None = None

    def soon(self) -> None:
        """The session is ending while the model answers: close the answer after `secs`."""
        if self._secs is None or (self._task is not None and not self._task.done()):
            return
        self._task = self._spawn(self._close_later(self._secs), "finish_speaking")

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _close_later(self, secs: float) -> None:
        await asyncio.sleep(secs)
        if self._responding():
            logger.info(f"the answer is still going {secs:g}s after the end; closing it")
            await self._close_turn()
