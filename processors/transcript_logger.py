"""Records each session as it happens: user and bot turns, tool calls, interruptions, latency.

Gemini Live pushes the user's transcription UPSTREAM from the LLM and the bot's words DOWNSTREAM,
so, like Pipecat's context aggregator pair, the logger has two halves sharing one writer:

    transport.input() → … → user context aggregator → logger.user() → Gemini Live
        → [TTS] → tool-call processor → logger.assistant() → transport.output() → …

`logger.user()` must sit after the user context aggregator, which consumes `TranscriptionFrame`s.

- The user half sees the `TranscriptionFrame` chunks coming up from the LLM, the interruptions and
  `BotStarted/StoppedSpeakingFrame`s coming up from the output transport, and the input audio going
  down; with a VAD analyzer it times the end of the user's speech locally, since Gemini's
  server-side turn detection gives the pipeline no such signal.
- The assistant half sees the bot's words (`TTSTextFrame`, or `LLMTextFrame` alone in TEXT mode
  without a TTS), its first audio, the response and TTS brackets, interruptions, tool-call and
  session events, and the end of the pipeline.

Turns: Pipecat splits the user's transcription on sentence ends, so consecutive chunks before the
bot answers are one user turn. Realtime models may deliver the tail of that transcription only
after the answer has started, so, as Pipecat's own realtime handoff does, the user turn stays open
for `late_transcript_s` after the bot's first words or audio (or until the bot turn ends, or a tool
call finishes) before it is written; what the user says after that starts their next turn. A bot
turn is written when it ends: the response's end (or the TTS stop for speech without an LLM
response) or an interruption, which marks it `interrupted` and starts a fresh turn. An
interruption while the bot's audio still plays after the model finished adds an `interruption`
line for the turn already written. The event schema is in `processors.transcript_store`.

Latency is measured from the end of the user's speech to the first bot audio of the answer. The
end of speech comes from, in order of preference: the logger's own VAD (`vad=`), else a
`VADUserStoppedSpeakingFrame` from a VAD already upstream in the pipeline (free), else the arrival
of the last transcription chunk, which comes after the real end, so the latency reads low (the
emulator's transcription lags speech by about a second on two cores).

Both halves run in direct mode: they do a few dictionary updates per frame and an append of one
line per event, so queueing would cost more than it saves, and direct mode keeps frames in exactly
the order the previous processor pushed them. A failure inside the logger is logged and never stops
a frame.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADState
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    TextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.stt_latency import DEFAULT_TTFS_P99
from pipecat.utils.string import TextPartForConcatenation, concatenate_aggregated_text

from processors.frames import SessionEventFrame, ToolCallEvent, ToolCallEventFrame
from processors.transcript_store import (
    SessionWriter,
    Transcript,
    TranscriptStore,
    check_session_id,
    new_session_id,
)

_USER, _ASSISTANT = "user", "assistant"


LOUD_RMS = 500.0
"""RMS (of 16-bit samples) above which input audio counts as the user speaking, when no VAD runs:
speech at a normal level is in the thousands, a quiet room in the tens."""


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)))


class TranscriptLogger:
    """One session's transcript, fed by a user half and an assistant half.

    Args:
        store: Where the session is written (`TranscriptStore(settings.transcripts, ...)`).
        session_id: Names the file; a new sortable id (`20250101-120000-3f9a1c`) by default.
        vad: A voice activity detector run on the input audio to time the end of the user's
            speech (e.g. `SileroVADAnalyzer()`, not shared with another processor: the logger
            owns and cleans it up). None times it by the last transcription chunk instead.
        late_transcript_s: How long after the bot starts answering a late transcription chunk
            still joins the user turn being answered (Pipecat's default STT p99 latency);
            0 writes the user turn as soon as the bot answers.
        metadata: Written on the session's `started` event and in the index (bot name, model...).
        max_result_chars: Tool results and errors longer than this, as JSON, are stored as a
            truncated preview; the transcript is for reading, not for replaying tools.
        clock: Wall-clock time in epoch seconds; tests pass a fake one.
    """

    def __init__(
        self,
        store: TranscriptStore,
        session_id: str | None = None,
        *,
        vad: VADAnalyzer | None = None,
        late_transcript_s: float = DEFAULT_TTFS_P99,
        metadata: Mapping[str, Any] | None = None,
        max_result_chars: int = 2000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if late_transcript_s < 0:
            raise ValueError("late_transcript_s must not be negative")
        self.store = store
        self.session_id = check_session_id(session_id) if session_id else new_session_id(clock())
        self.vad = vad
        self.clock = clock
        self._late_s = late_transcript_s
        self._metadata = dict(metadata or {})
        self._max_result_chars = max_result_chars

        self._writer: SessionWriter | None = None
        self._finished = False
        self._active: set[str] = set()
        self._seen: deque[int] = deque(maxlen=32)
        self._early: list[tuple[str, float, dict[str, Any]]] = []

        # The user turn being collected.
        self._user_chunks: list[str] = []
        self._user_started_at = 0.0
        self._user_last_at = 0.0
        self._user_answered = False
        self._late_timer: asyncio.TimerHandle | None = None
        self._user_count = 0
        self._awaiting_reply: int | None = None
        self._speech_end: float | None = None
        self._upstream_vad = False
        self._last_loud_at: float | None = None  # the last input audio above LOUD_RMS

        # The bot turn being collected.
        self._bot_open = False
        self._bot_content = False
        self._bot_from_llm = False
        self._bot_started_at = 0.0
        self._bot_first_audio_at: float | None = None
        self._bot_speech_end: float | None = None
        self._bot_reply_to: int | None = None
        self._bot_llm: list[TextPartForConcatenation] = []
        self._bot_tts: list[TextPartForConcatenation] = []
        self._bot_count = 0
        self._bot_speaking = False
        self._last_interrupted: int | None = None

        self._user_half = UserTranscriptLogger(self)
        self._assistant_half = AssistantTranscriptLogger(self)

    def user(self) -> UserTranscriptLogger:
        """The half placed right before the LLM, after the user context aggregator."""
        return self._user_half

    def assistant(self) -> AssistantTranscriptLogger:
        """The half placed after the LLM (and TTS) and the tool-call processor."""
        return self._assistant_half

    @property
    def writer(self) -> SessionWriter | None:
        """The session's writer once the pipeline has started."""
        return self._writer

    @property
    def transcript(self) -> Transcript:
        """What has been recorded so far, from memory (complete even if the disk failed)."""
        events = list(self._writer.events) if self._writer else []
        return Transcript.from_events(self.session_id, events)

    # ----------------------------------------------------------------------------------------
    # Session

    def _record(self, kind: str, now: float, **fields: Any) -> None:
        if self._finished:
            return
        if self._writer is None:
            # A half in direct mode handles a frame that overtakes the StartFrame (a session
            # event pushed while the LLM connects): keep it for when the session starts.
            self._early.append((kind, now, fields))
            return
        self._writer.write(kind, now, fields)

    def _first_sight(self, frame: Frame) -> bool:
        """False for a frame, or the sibling of a broadcast frame, already handled by a half."""
        if frame.id in self._seen or frame.broadcast_sibling_id in self._seen:
            return False
        self._seen.append(frame.id)
        return True

    def _start(self, half: str, now: float) -> None:
        self._active.add(half)
        if self._writer is not None or self._finished:
            return
        self.store.purge_expired(now=now, keep={self.session_id})
        self._writer = self.store.open_session(self.session_id, started_at=now, meta=self._metadata)
        self._record("session", now, event="started", detail="", meta=self._metadata)
        for kind, at, fields in self._early:
            self._record(kind, max(at, now), **fields)
        self._early.clear()
        logger.info(f"transcript {self.session_id} → {self._writer.path}")

    def _stop(self, half: str, now: float, frame: EndFrame | CancelFrame) -> None:
        self._active.discard(half)
        if not self._active:
            self._finish(now, str(frame.reason or ""), cancelled=isinstance(frame, CancelFrame))

    def _finish(self, now: float, detail: str, *, cancelled: bool) -> None:
        """Write what is still open and the `ended` event; later frames are not recorded."""
        if self._writer is None or self._finished:
            return
        self._close_bot(now, interrupted=False)
        self._write_user(now)
        self._record("session", now, event="ended", detail=detail, cancelled=cancelled)
        self._finished = True
        self._writer.close(
            ts=now,
            summary={
                "user_turns": self._user_count,
                "bot_turns": self._bot_count,
                "detail": detail,
                "cancelled": cancelled,
            },
        )

    def _session_event(self, frame: SessionEventFrame, now: float) -> None:
        if self._first_sight(frame):
            self._record("session", now, event=str(frame.kind), detail=frame.detail)

    # ----------------------------------------------------------------------------------------
    # User side

    def _user_text(self, text: str, now: float) -> None:
        text = text.strip()
        if not text:
            return
        if not self._user_chunks:
            self._user_started_at = now
        self._user_chunks.append(text)
        self._user_last_at = now
        # A late chunk of the turn being answered is not a new end of speech. Without a VAD, the
        # last loud input audio is a far better end of speech than the transcription's arrival
        # (which comes after the server's silence wait and its speech recognition).
        if not self._vad_timed and not self._user_answered:
            loud = self._last_loud_at
            self._speech_end = loud if loud is not None and loud <= now else now

    def _speech_ended(self, at: float) -> None:
        self._speech_end = at

    @property
    def _vad_timed(self) -> bool:
        """Whether a VAD (ours, or one upstream in the pipeline) times the end of speech."""
        return self.vad is not None or self._upstream_vad

    def _upstream_vad_stopped(self, frame: VADUserStoppedSpeakingFrame) -> None:
        if self.vad is None:  # our own VAD, when there is one, already heard the same audio
            self._upstream_vad = True
            self._speech_ended(frame.timestamp - frame.stop_secs)

    def _answer_user(self) -> None:
        """The bot's first words or audio: they answer the pending user turn, if any."""
        if self._user_chunks and not self._user_answered:
            self._user_answered = True
            self._bot_reply_to = self._user_count + 1
            self._awaiting_reply = None
            if self._late_s <= 0:
                self._write_user(self.clock())
            else:
                self._late_timer = asyncio.get_running_loop().call_later(
                    self._late_s, self._late_window_closed
                )
        elif self._awaiting_reply is not None:
            self._bot_reply_to = self._awaiting_reply
            self._awaiting_reply = None

    def _late_window_closed(self) -> None:
        self._late_timer = None
        try:
            self._write_user(self.clock())
        except Exception:  # a timer callback has no caller to report to
            logger.exception(f"transcript {self.session_id}: writing a user turn failed")

    def _write_user(self, now: float) -> None:
        if self._late_timer is not None:
            self._late_timer.cancel()
            self._late_timer = None
        if not self._user_chunks:
            return
        self._user_count += 1
        self._record(
            "user_turn",
            now,
            turn=self._user_count,
            text=" ".join(self._user_chunks),
            started_at=round(self._user_started_at, 3),
            ended_at=round(self._user_last_at, 3),
        )
        if not self._user_answered:
            self._awaiting_reply = self._user_count
        self._user_chunks = []
        self._user_answered = False

    def _bot_speaking_changed(self, speaking: bool) -> None:
        self._bot_speaking = speaking

    # ----------------------------------------------------------------------------------------
    # Bot side

    def _open_bot(self, now: float) -> None:
        self._bot_open = True
        self._bot_content = False
        self._bot_from_llm = False
        self._bot_started_at = now
        self._bot_first_audio_at = None
        self._bot_speech_end = None
        self._bot_reply_to = None
        self._bot_llm = []
        self._bot_tts = []

    def _bot_produced(self, now: float) -> None:
        if not self._bot_open:
            self._open_bot(now)
        if not self._bot_content:
            self._bot_content = True
            self._answer_user()

    def _bot_text(self, frame: TextFrame, now: float, *, spoken: bool) -> None:
        if not frame.text:
            return
        self._bot_produced(now)
        part = TextPartForConcatenation(
            frame.text, includes_inter_part_spaces=frame.includes_inter_frame_spaces
        )
        (self._bot_tts if spoken else self._bot_llm).append(part)

    def _bot_audio(self, now: float) -> None:
        self._bot_produced(now)
        self._bot_first_audio_at = now
        # Each end of speech is used once: a second answer (after a tool call) or a greeting
        # has no latency.
        if self._speech_end is not None:
            self._bot_speech_end = self._speech_end
            self._speech_end = None

    def _response_started(self, now: float) -> None:
        if self._bot_open and self._bot_content and self._bot_from_llm:
            self._close_bot(now, interrupted=False)  # its end frame never came
        if not self._bot_open:
            self._open_bot(now)
        self._bot_from_llm = True

    def _tts_started(self, now: float) -> None:
        if not self._bot_open:
            self._open_bot(now)

    def _tts_stopped(self, now: float) -> None:
        # With an LLM response the response's end closes the turn: a TTS service may speak
        # a response in several TTS segments.
        if not self._bot_from_llm:
            self._close_bot(now, interrupted=False)

    def _close_bot(self, now: float, *, interrupted: bool) -> None:
        if not self._bot_open:
            return
        self._bot_open = False
        if not self._bot_content:
            return  # a response with no words and no audio (say, only a tool call)
        if self._user_answered:
            self._write_user(now)  # its late window is moot: the answer is over
        self._bot_count += 1
        parts = self._bot_tts or self._bot_llm  # spoken words when the TTS reports them
        first_audio = self._bot_first_audio_at
        speech_end = self._bot_speech_end
        latency = None
        if first_audio is not None and speech_end is not None:
            latency = round((first_audio - speech_end) * 1000.0, 1)
        self._record(
            "bot_turn",
            now,
            turn=self._bot_count,
            text=concatenate_aggregated_text(parts),
            interrupted=interrupted,
            latency_ms=latency,
            reply_to=self._bot_reply_to,
            started_at=round(self._bot_started_at, 3),
            first_audio_at=None if first_audio is None else round(first_audio, 3),
            speech_ended_at=None if speech_end is None else round(speech_end, 3),
        )
        if interrupted:
            self._record("interruption", now, bot_turn=self._bot_count)
            self._last_interrupted = self._bot_count

    def _interruption(self, frame: InterruptionFrame, now: float) -> None:
        if not self._first_sight(frame):
            return
        if self._bot_open:
            self._close_bot(now, interrupted=True)
        elif self._bot_speaking and self._bot_count and self._last_interrupted != self._bot_count:
            # The model had finished, but its audio was still playing when the user cut in.
            self._record("interruption", now, bot_turn=self._bot_count)
            self._last_interrupted = self._bot_count

    def _tool_call(self, event: ToolCallEvent, now: float) -> None:
        self._write_user(now)
        record = event.to_json()
        record["result"] = self._capped(record.get("result"))
        record["error"] = self._capped(record.get("error"))
        record["reply_to"] = self._user_count or None
        self._record("tool_call", now, **record)

    def _capped(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) <= self._max_result_chars:
            return value
        return {"truncated": True, "chars": len(text), "preview": text[: self._max_result_chars]}


Handler = Callable[[Frame, FrameDirection, float], None]


class _TranscriptHalf(FrameProcessor):
    """What both halves share: direct mode, the owner, and frames always pushed on.

    Each half lists the frame classes it records in `_HANDLES`, most specific first; the handler
    for a concrete frame type is looked up once and cached, so the frames a half does not record
    (most of the traffic) cost one dictionary lookup.
    """

    _HANDLES: ClassVar[tuple[tuple[type[Frame], str], ...]] = ()

    def __init__(self, owner: TranscriptLogger, role: str) -> None:
        super().__init__(enable_direct_mode=True)
        self._owner = owner
        self._role = role
        self._handlers: dict[type[Frame], Handler | None] = {}

    def _handler(self, kind: type[Frame]) -> Handler | None:
        try:
            return self._handlers[kind]
        except KeyError:
            pass
        handler: Handler | None = None
        for cls, name in self._HANDLES:
            if issubclass(kind, cls):
                handler = getattr(self, name)
                break
        self._handlers[kind] = handler
        return handler

    def _record(self, frame: Frame, direction: FrameDirection) -> None:
        handler = self._handler(type(frame))
        if handler is None:
            return
        try:
            handler(frame, direction, self._owner.clock())
        except Exception:  # the transcript must never stop the conversation
            logger.exception(f"{self}: could not record {frame.name}")

    def _on_start(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._start(self._role, now)

    def _on_stop(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, EndFrame | CancelFrame)
        self._owner._stop(self._role, now, frame)

    def _on_interruption(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, InterruptionFrame)
        self._owner._interruption(frame, now)

    def _on_session_event(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, SessionEventFrame)
        self._owner._session_event(frame, now)

    async def cleanup(self) -> None:
        """Close the session if the pipeline stops without an EndFrame or CancelFrame."""
        await super().cleanup()
        self._owner._finish(self._owner.clock(), "pipeline stopped", cancelled=True)


class UserTranscriptLogger(_TranscriptHalf):
    """The user half of a `TranscriptLogger`: user transcription, end of speech, bot speaking."""

    _HANDLES = (
        (TranscriptionFrame, "_on_transcription"),
        (InterruptionFrame, "_on_interruption"),
        (BotStartedSpeakingFrame, "_on_bot_started"),
        (BotStoppedSpeakingFrame, "_on_bot_stopped"),
        (VADUserStoppedSpeakingFrame, "_on_vad_stopped"),
        (SessionEventFrame, "_on_session_event"),
        (StartFrame, "_on_start"),
        (EndFrame, "_on_stop"),
        (CancelFrame, "_on_stop"),
    )

    def __init__(self, owner: TranscriptLogger) -> None:
        super().__init__(owner, _USER)
        self._vad = owner.vad
        self._vad_rate = 0
        self._vad_speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Record what the frame says about the user, then push it on unchanged."""
        await super().process_frame(frame, direction)
        if self._vad is not None and isinstance(frame, InputAudioRawFrame):
            heard_at = self._owner.clock()
            await self.push_frame(frame, direction)  # the VAD only timestamps: never delay audio
            await self._analyze(frame, heard_at)
            return
        if isinstance(frame, InputAudioRawFrame):
            if _rms(frame.audio) >= LOUD_RMS:
                self._owner._last_loud_at = self._owner.clock()
            await self.push_frame(frame, direction)
            return
        self._record(frame, direction)
        await self.push_frame(frame, direction)

    def _on_transcription(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, TranscriptionFrame)
        self._owner._user_text(frame.text, now)

    def _on_vad_stopped(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, VADUserStoppedSpeakingFrame)
        self._owner._upstream_vad_stopped(frame)

    def _on_bot_started(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._bot_speaking_changed(True)

    def _on_bot_stopped(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._bot_speaking_changed(False)

    async def _analyze(self, frame: InputAudioRawFrame, heard_at: float) -> None:
        assert self._vad is not None
        try:
            if frame.sample_rate != self._vad_rate:
                self._vad.set_sample_rate(frame.sample_rate)
                self._vad_rate = frame.sample_rate
            state = await self._vad.analyze_audio(frame.audio)
        except Exception:
            logger.exception(f"{self}: VAD failed; timing the end of speech by transcription")
            self._vad = None
            self._owner.vad = None
            return
        if state == VADState.SPEAKING:
            self._vad_speaking = True
        elif state == VADState.QUIET and self._vad_speaking:
            self._vad_speaking = False
            # QUIET is declared after `stop_secs` of silence: the speech ended that long ago.
            self._owner._speech_ended(heard_at - self._vad.params.stop_secs)

    async def cleanup(self) -> None:
        """Release the VAD's worker thread."""
        await super().cleanup()
        if self._vad is not None:
            await self._vad.cleanup()


class AssistantTranscriptLogger(_TranscriptHalf):
    """The assistant half of a `TranscriptLogger`: bot words and audio, tools, session events."""

    _HANDLES = (
        (TTSAudioRawFrame, "_on_audio"),
        (TTSTextFrame, "_on_spoken_text"),
        (LLMTextFrame, "_on_llm_text"),
        (LLMFullResponseStartFrame, "_on_response_start"),
        (LLMFullResponseEndFrame, "_on_response_end"),
        (TTSStartedFrame, "_on_tts_started"),
        (TTSStoppedFrame, "_on_tts_stopped"),
        (InterruptionFrame, "_on_interruption"),
        (ToolCallEventFrame, "_on_tool_call"),
        (SessionEventFrame, "_on_session_event"),
        (StartFrame, "_on_start"),
        (EndFrame, "_on_stop"),
        (CancelFrame, "_on_stop"),
    )

    def __init__(self, owner: TranscriptLogger) -> None:
        super().__init__(owner, _ASSISTANT)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Record what the frame says about the bot, then push it on unchanged."""
        await super().process_frame(frame, direction)
        owner = self._owner
        # Audio is most of the traffic: only the first chunk of a turn matters.
        if not (
            isinstance(frame, TTSAudioRawFrame)
            and owner._bot_open
            and owner._bot_first_audio_at is not None
        ):
            self._record(frame, direction)
        await self.push_frame(frame, direction)

    def _on_audio(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._bot_audio(now)

    def _on_spoken_text(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, TextFrame)
        self._owner._bot_text(frame, now, spoken=True)

    def _on_llm_text(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, TextFrame)
        self._owner._bot_text(frame, now, spoken=False)

    def _on_response_start(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._response_started(now)

    def _on_response_end(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._close_bot(now, interrupted=False)

    def _on_tts_started(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._tts_started(now)

    def _on_tts_stopped(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        self._owner._tts_stopped(now)

    def _on_tool_call(self, frame: Frame, direction: FrameDirection, now: float) -> None:
        assert isinstance(frame, ToolCallEventFrame)
        if frame.event is not None:
            self._owner._tool_call(frame.event, now)
