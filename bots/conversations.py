"""A conversation that outlives its process: what a bot takes from the store and keeps there.

The page keeps one conversation id per tab and sends it with every `/start`. The store holds,
per conversation, its user, Gemini's latest resumption handle (with when it was issued) and the
conversation so far as text. A bot that receives a known id, on whichever process, resumes the
Gemini session with the handle; when the handle is too old or Gemini refuses it, the stage seeds
a fresh session with the stored history instead, as it does after a reconnect on one machine.

`ConversationKeeper` writes the handle and the history as they change, off the event loop and
newest first: at most one write of each kind waits, and a newer one replaces it, so a slow or
unreachable database costs the conversation nothing but the freshness of what is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.utils.base_object import BaseObject

from stores.conversations import (
    Conversation,
    ConversationStore,
    NotYours,
    bounded_history,
    check_conversation_id,
)
from transcripts import TranscriptRecorder

MOVE_POLL_SECS = 0.05
"""How often a draining session looks whether its answer has finished."""

__all__ = [
    "ConversationKeeper",
    "Resumed",
    "conversation_id_in",
    "messages_of",
    "new_conversation_id",
    "resume",
    "turns_of",
]


def new_conversation_id() -> str:
    """An id for a conversation the client did not name (22 URL-safe characters)."""
    return secrets.token_urlsafe(16)


def conversation_id_in(body: Mapping[str, Any] | None) -> str | None:
    """The conversation id a client sent in its `/start` body, checked; None if it sent none.

    Raises:
        ValueError: The id is not one the page makes (the message says what is allowed).
    """
    value = (body or {}).get("conversation_id")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("conversation_id must be a string")
    return check_conversation_id(value)


def turns_of(events: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """A transcript's user and bot turns as stored history, in the order they happened (spoken
    or typed; tool calls and the system instruction are not history: the setup brings them)."""
    history: list[dict[str, str]] = []
    for event in events:
        role = {"user_turn": "user", "bot_turn": "assistant"}.get(str(event.get("type")))
        text = str(event.get("text") or "").strip()
        if role and text:
            history.append({"role": role, "text": text})
    return history


def messages_of(history: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Stored history as the messages of an `LLMContext`."""
    return [{"role": item["role"], "content": item["text"]} for item in history]


@dataclass(frozen=True)
class Resumed:
    """What a session starts from: its conversation, and how the stage should begin it."""

    conversation_id: str
    conversation: Conversation | None
    """None when the store could not be reached: the conversation goes on, unkept."""
    owner: str = ""
    """The process that claimed it (and lets go of it when the session ends)."""

    @property
    def stage_options(self) -> dict[str, Any]:
        """`StageOptions` fields that resume the stored Gemini session, or continue it."""
        conversation = self.conversation
        if conversation is None or not (conversation.history or conversation.handle):
            return {}
        options: dict[str, Any] = {"continues_conversation": True}
        if conversation.handle and conversation.handle_issued_at is not None:
            options["resume_handle"] = conversation.handle
            age = time.time() - conversation.handle_issued_at
            options["resume_handle_age_secs"] = max(0.0, age)
        return options

    @property
    def messages(self) -> list[Any]:
        """The stored conversation, for the session's context."""
        return messages_of(self.conversation.history) if self.conversation else []


async def resume(
    store: ConversationStore, conversation_id: str | None, user_id: str, owner: str
) -> Resumed:
    """Claim the conversation for this process (creating it when it is new).

    Another user's conversation is never resumed: the server refuses its id at `/start`; if it
    gets here all the same (two starts racing), the session starts a conversation of its own.
    """
    conversation_id = conversation_id or new_conversation_id()
    try:
        conversation = await asyncio.to_thread(store.claim, conversation_id, user_id, owner)
    except NotYours:
        logger.warning("a conversation id of another user reached a bot; starting a new one")
        conversation_id = new_conversation_id()
        conversation = await asyncio.to_thread(store.claim, conversation_id, user_id, owner)
    except Exception as exc:
        logger.warning(
            f"conversation store unavailable ({type(exc).__name__}: {exc}); this conversation "
            "goes on here but cannot move to another process"
        )
        return Resumed(conversation_id, None, owner)
    if conversation.history or conversation.handle:
        logger.info(
            f"conversation {conversation_id[:6]}…: continuing ({len(conversation.history)} "
            f"messages, {'a' if conversation.handle else 'no'} resumption handle)"
        )
    return Resumed(conversation_id, conversation, owner)


class ConversationKeeper:
    """Keeps a running conversation's handle and history in the store, newest write first.

    Args:
        store: The conversation store.
        conversation_id: The conversation (claimed with `resume`).
        owner: This process's name, released when the session ends.
        clock: Wall clock for the handle's issue time (another process computes its age).
    """

    def __init__(
        self,
        store: ConversationStore,
        conversation_id: str,
        owner: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.owner = owner
        self._clock = clock
        self._pending: dict[str, Callable[[], None]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._failed = False
        self._llm: BaseObject | None = None
        self._recorder: TranscriptRecorder | None = None
        self._earlier: list[dict[str, str]] = []
        self.writes = 0

    def attach(
        self,
        llm: BaseObject,
        aggregators: LLMContextAggregatorPair,
        recorder: TranscriptRecorder,
        *,
        earlier: Sequence[Mapping[str, str]] = (),
    ) -> None:
        """Save each new handle, and the history after each turn (call before the pipeline runs).

        The history is the stored one (`earlier`) followed by this session's turns as its
        transcript has them, spoken and typed alike, read when the write happens.
        """
        self._llm = llm
        self._recorder = recorder
        self._earlier = [dict(m) for m in earlier]

        async def on_handle(_service: object, handle: str) -> None:
            self.handle(handle)
            self.history()

        async def on_turn(*_args: object) -> None:
            self.history()

        llm.add_event_handler("on_resumption_handle", on_handle)
        aggregators.user().add_event_handler("on_user_turn_message_added", on_turn)
        aggregators.assistant().add_event_handler("on_assistant_turn_stopped", on_turn)

    def handle(self, handle: str) -> None:
        """A new resumption handle: keep it, with the time it was issued."""
        issued_at = self._clock()
        self._put("handle", lambda: self.store.save_handle(self.conversation_id, handle, issued_at))

    def history(self) -> None:
        """The conversation moved on: keep it as it is when the write happens."""
        self._put("history", lambda: self.store.save_history(self.conversation_id, self.current()))

    def current(self) -> list[dict[str, str]]:
        """The conversation so far: what was stored before, then this session's turns."""
        events = self._recorder.transcript.events if self._recorder is not None else []
        return bounded_history([*self._earlier, *turns_of(events)])

    def _put(self, kind: str, write: Callable[[], None]) -> None:
        self._pending[kind] = write
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"conversation-{self.conversation_id[:6]}"
            )

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                kind = next(iter(self._pending))
                write = self._pending.pop(kind)
                try:
                    await asyncio.to_thread(write)
                    self.writes += 1
                except Exception as exc:
                    if not self._failed:
                        logger.warning(
                            f"conversation {self.conversation_id[:6]}…: could not keep its "
                            f"{kind} ({type(exc).__name__}: {exc}); it stays in this process"
                        )
                    self._failed = True
            self._idle.set()

    async def ready_to_move(self) -> None:
        """Wait until the client may leave for another process without losing a word: the
        model is not answering, the handle that covers its last answer has arrived, and it is
        stored. (Unbounded: the drain bounds it.)"""
        while True:
            status = getattr(self._llm, "status", None)
            if status is None or (
                not status.bot_responding
                and (status.handle_covers_last_turn or status.resumption_handle is None)
            ):
                break
            await asyncio.sleep(MOVE_POLL_SECS)
        await self.flush(within=None)

    async def flush(self, within: float | None = 5.0) -> bool:
        """Wait until what was kept so far is written (or `within` seconds); whether it was."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    async def close(self, within: float = 5.0) -> None:
        """Write what is pending, then let go of the conversation (another process may take
        it)."""
        await self.flush(within)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.to_thread(self.store.release, self.conversation_id, self.owner), within
            )
