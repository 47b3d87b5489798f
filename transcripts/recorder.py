"""Turns what happened in a conversation into transcript lines; knows nothing of the pipeline.

Pipecat decides what a turn is, and this module writes it down: the context aggregators say when a
user turn is committed (with its finalized text) and when a bot turn stops (with the words the
user heard, and whether it was cut off), and an observer (`observers.transcript`) reports the
rest: transcription chunks arriving, the bot's first audio, the latency it measured, tool calls,
connection events, the bot speaking. Each call here is a plain method call, so the rules below
are tested with a fake clock and no pipeline.

- A user turn is written when the user aggregator commits it. Its `started_at`/`ended_at` are
  when its first and last transcription chunk arrived.
- A bot turn is written when the assistant aggregator ends it: at the response's end, or cut off
  (`interrupted`, followed by an `interruption` line). One with no words and no audio (a
  response that only calls a tool, an interruption before anything was said) writes nothing.
  It answers (`reply_to`) the oldest user turn not yet answered; a greeting answers none.
- Its `first_audio_at` is the first bot audio since the previous bot turn; its latency is the
  latest measurement since then (the end of the user's speech to that first audio), each used
  once.
- Pipecat commits a user turn only once the answer has started (and one STT window has passed),
  so a tool call, or a bot turn cut off early, can end before the question it answers is
  committed. Such a line is held while words heard before it wait to be committed, and written
  right after their user turn, so the file reads in conversation order; words heard after it
  (the user talking over the bot) hold nothing. A tool call's `reply_to` is the latest user turn.
- An interruption while the bot's audio still plays after its turn was written adds an
  `interruption` line for that turn (once).
- Text the user typed reaches the assistant aggregator too (Pipecat passes `InputTextRawFrame`
  on and aggregates it with the bot's words), so it is taken out of the bot turn it lands in.
- Events before `start()` (a connection event while the pipeline starts) are kept for it.

The event schema is in `transcripts.store`; the store work runs on a writer thread
(`transcripts.background`), so no method here blocks.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from loguru import logger

from transcripts.backend import TranscriptBackend
from transcripts.background import DEFAULT_MAX_PENDING, BackgroundSession
from transcripts.files import check_session_id, new_session_id
from transcripts.reading import Transcript

MAX_EARLY = 64
"""Events kept from before the session started; a pipeline that starts sends one or two."""

MAX_HELD = 32
"""Lines held for the user turn they follow; more release them all at once."""

MAX_UNANSWERED = 16
"""User turns remembered as not yet answered by a bot turn."""

MAX_TYPED = 16
"""Typed texts remembered until the bot turn they landed in is written."""


class TranscriptRecorder:
    """One session's transcript, built from conversation events.

    Args:
        store: Where the session is written (`TranscriptStore(folder, retention_days=...)`,
            or `transcripts.postgres.PostgresTranscriptStore(database, retention_days=...)`).
        session_id: Names the file; a new sortable id (`20250101-120000-3f9a1c`) by default.
        metadata: Written on the session's `started` event and in the index (bot name, model...).
        max_result_chars: Tool arguments, results and errors longer than this, as JSON, are
            stored as a
            truncated preview; the transcript is for reading, not for replaying tools.
        clock: Wall-clock time in epoch seconds; tests pass a fake one.
        max_pending: Events that may wait for the writer thread (see `transcripts.background`).
    """

    def __init__(
        self,
        store: TranscriptBackend,
        session_id: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        max_result_chars: int = 2000,
        clock: Callable[[], float] = time.time,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.store = store
        self.clock = clock
        self.session_id = check_session_id(session_id) if session_id else new_session_id(clock())
        self._metadata = dict(metadata or {})
        self._max_result_chars = max_result_chars
        self._max_pending = max_pending
        self._session: BackgroundSession | None = None
        self._finished = False
        self._early: deque[tuple[str, float, dict[str, Any]]] = deque(maxlen=MAX_EARLY)

        self._user_count = 0
        self._heard_first: float | None = None  # transcription not yet committed as a turn
        self._heard_last: float | None = None
        self._unanswered: deque[int] = deque(maxlen=MAX_UNANSWERED)
        self._held: list[Callable[[], None]] = []  # writes waiting for the next user turn
        self._typed: deque[str] = deque(maxlen=MAX_TYPED)

        self._bot_count = 0
        self._bot_open = False
        self._bot_started_at: float | None = None
        self._first_audio_at: float | None = None
        self._latency: tuple[float, float] | None = None  # (speech ended, first audio)
        self._bot_speaking = False
        self._last_interrupted: int | None = None

    @property
    def writer(self) -> BackgroundSession | None:
        """The session's writer once the session has started."""
        return self._session

    @property
    def transcript(self) -> Transcript:
        """What has been recorded so far, from memory (complete even if the disk failed)."""
        events = list(self._session.events) if self._session else []
        return Transcript.from_events(self.session_id, events)

    @property
    def finished(self) -> bool:
        """True once `end()` has written the session's last line."""
        return self._finished

    # ----------------------------------------------------------------------------------------
    # Session

    def start(self) -> None:
        """Open the session (retention runs first, on the writer thread) and write `started`."""
        if self._session is not None or self._finished:
            return
        now = self.clock()
        self._session = BackgroundSession(
            self.store, self.session_id, max_pending=self._max_pending
        )
        self._session.open(started_at=now, meta=self._metadata)
        self._record("session", now, event="started", detail="", meta=self._metadata)
        for kind, at, fields in self._early:
            self._record(kind, max(at, now), **fields)
        self._early.clear()
        logger.info(f"transcript {self.session_id} → {self._session.where}")

    def session_event(self, event: str, detail: str = "") -> None:
        """The model connection changed (connected, resumed, reconnecting, failed, ...)."""
        self._record("session", self.clock(), event=str(event), detail=detail)

    def end(self, detail: str = "", *, cancelled: bool = False) -> None:
        """Write what is still held and the `ended` event; later events are not recorded."""
        if self._session is None or self._finished:
            return
        self._release_held()
        now = self.clock()
        self._record("session", now, event="ended", detail=detail, cancelled=cancelled)
        self._finished = True
        self._session.close(
            ts=now,
            summary={
                "user_turns": self._user_count,
                "bot_turns": self._bot_count,
                "detail": detail,
                "cancelled": cancelled,
            },
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything recorded so far is stored (tests and tools; not the loop)."""
        return self._session.flush(timeout) if self._session else True

    async def drained(self, within: float | None = None) -> bool:
        """Wait, off the loop, until everything recorded so far is stored; False if `within`
        seconds ran out first."""
        return await self._session.drained(within) if self._session else True

    # ----------------------------------------------------------------------------------------
    # User side

    def user_heard(self) -> None:
        """A chunk of the user's transcription arrived (before Pipecat commits the turn)."""
        now = self.clock()
        if self._heard_first is None:
            self._heard_first = now
        self._heard_last = now

    def user_turn(self, text: str) -> None:
        """Pipecat committed a user turn with its finalized text."""
        text = text.strip()
        if not text:
            return
        now = self.clock()
        self._user_count += 1
        self._record(
            "user_turn",
            now,
            turn=self._user_count,
            text=text,
            started_at=round(self._heard_first if self._heard_first is not None else now, 3),
            ended_at=round(self._heard_last if self._heard_last is not None else now, 3),
        )
        self._heard_first = self._heard_last = None
        self._unanswered.append(self._user_count)
        self._release_held()

    def user_typed(self, text: str) -> None:
        """The user typed text (it is no user turn: Gemini sends no transcription of it)."""
        if text.strip():
            self._typed.append(text.strip())

    def tool_call(self, record: Mapping[str, Any]) -> None:
        """A tool call finished: `ToolCallEvent.to_json()`."""
        stored = dict(record)
        stored["arguments"] = self._capped(stored.get("arguments"))
        stored["result"] = self._capped(stored.get("result"))
        stored["error"] = self._capped(stored.get("error"))
        self._after_pending_words(self.clock(), lambda: self._write_tool_call(stored))

    # ----------------------------------------------------------------------------------------
    # Bot side

    def bot_started(self) -> None:
        """The assistant aggregator started a bot turn."""
        self._bot_open = True
        self._bot_started_at = self.clock()

    def bot_audio(self) -> None:
        """The bot's audio started; the first since the previous bot turn is that turn's."""
        if self._first_audio_at is None:
            self._first_audio_at = self.clock()

    def latency(self, speech_ended_at: float, first_audio_at: float) -> None:
        """A measurement from the end of the user's speech to the answer's first audio."""
        self._latency = (speech_ended_at, first_audio_at)

    def bot_speaking(self, speaking: bool) -> None:
        """The output started or stopped playing the bot's audio."""
        self._bot_speaking = speaking

    def bot_turn(self, text: str, *, interrupted: bool) -> None:
        """The assistant aggregator ended a bot turn with the words the user heard."""
        now = self.clock()
        text = self._without_typed(text).strip()
        started_at = self._bot_started_at
        self._bot_open = False
        self._bot_started_at = None
        if not text and self._first_audio_at is None and self._latency is None:
            return  # nothing was said or played: only a tool call, or cut off before a word
        first_audio, speech_end, latency_ms = self._first_audio_at, None, None
        if self._latency is not None:
            speech_end, first_audio = self._latency
            latency_ms = round((first_audio - speech_end) * 1000.0, 1)
        self._first_audio_at = self._latency = None
        fields = {
            "text": text,
            "interrupted": interrupted,
            "latency_ms": latency_ms,
            "started_at": round(started_at if started_at is not None else now, 3),
            "first_audio_at": None if first_audio is None else round(first_audio, 3),
            "speech_ended_at": None if speech_end is None else round(speech_end, 3),
        }
        since = started_at if started_at is not None else now
        self._after_pending_words(since, lambda: self._write_bot_turn(fields))

    def interruption(self) -> None:
        """The user cut in. Only audio still playing after its turn was written needs a line:
        a turn still open is ended by the aggregator, already marked `interrupted`."""
        if self._bot_open or not self._bot_speaking or not self._bot_count:
            return
        if self._last_interrupted != self._bot_count:
            self._interruption_of(self._bot_count, self.clock())

    # ----------------------------------------------------------------------------------------

    def _record(self, kind: str, now: float, **fields: Any) -> None:
        if self._finished:
            return
        if self._session is None:
            self._early.append((kind, now, fields))
            return
        self._session.write(kind, now, fields)

    def _after_pending_words(self, since: float, write: Callable[[], None]) -> None:
        """Write now, or after the user turn of words heard by `since` (see the module doc)."""
        waiting = self._heard_first is not None and self._heard_first <= since
        if (waiting or self._held) and len(self._held) < MAX_HELD:
            self._held.append(write)
            return
        self._release_held()
        write()

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for write in held:
            write()

    def _write_bot_turn(self, fields: dict[str, Any]) -> None:
        now = self.clock()
        self._bot_count += 1
        reply_to = self._unanswered.popleft() if self._unanswered else None
        self._record(
            "bot_turn",
            now,
            turn=self._bot_count,
            text=fields["text"],
            interrupted=fields["interrupted"],
            latency_ms=fields["latency_ms"],
            reply_to=reply_to,
            started_at=fields["started_at"],
            first_audio_at=fields["first_audio_at"],
            speech_ended_at=fields["speech_ended_at"],
        )
        if fields["interrupted"]:
            self._interruption_of(self._bot_count, now)

    def _interruption_of(self, bot_turn: int, now: float) -> None:
        self._record("interruption", now, bot_turn=bot_turn)
        self._last_interrupted = bot_turn

    def _write_tool_call(self, stored: dict[str, Any]) -> None:
        self._record("tool_call", self.clock(), **stored, reply_to=self._user_count or None)

    def _without_typed(self, text: str) -> str:
        """The bot's words without the typed texts the aggregator put among them."""
        text, used = without_typed(text, list(self._typed))
        for typed in used:
            self._typed.remove(typed)
        return text

    def _capped(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) <= self._max_result_chars:
            return value
        return {"truncated": True, "chars": len(text), "preview": text[: self._max_result_chars]}


def without_typed(text: str, typed: list[str]) -> tuple[str, list[str]]:
    """`text` without each typed text the context aggregator put into it, and those it found.

    Each typed text was a part of its own: at the start of the bot's words (where TEXT modality
    joins the next part with no space) or between spaces; a quote of it by the bot, inside a
    sentence, is left alone.
    """
    found: list[str] = []
    for item in typed:
        if item and text.startswith(item):
            text = text[len(item) :].lstrip()
            found.append(item)
            continue
        match = re.search(r"(?<= )" + re.escape(item) + r"(?: |$)", text) if item else None
        if match is not None:
            start, end = match.span()
            text = (
                (text[: max(0, start - 1)] + " " + text[end:]).strip()
                if end < len(text)
                else text[: max(0, start - 1)]
            )
            found.append(item)
    return text, found
