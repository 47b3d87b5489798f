"""The Pipecat side of a transcript: the aggregators' events and one observer feed the recorder.

Pipecat already decides the turns. `TranscriptObserver.attach()` subscribes the recorder
(`transcripts.recorder.TranscriptRecorder`) to the context aggregators' events:

- `on_user_turn_message_added` (user aggregator): the committed user turn with its finalized
  text. In realtime mode Pipecat commits it once the answer starts plus one STT p99 window, or at
  the answer's end, or at the session's end, so late transcription joins the turn it belongs to.
  (`on_user_turn_stopped` carries no text in realtime mode.)
- `on_assistant_turn_started` / `on_assistant_turn_stopped` (assistant aggregator, after the
  output transport): the bot turn with the words that were played, `interrupted` when an
  `InterruptionFrame` (or the session's cancellation) ended it before its response did. A
  response that only calls a tool opens no turn: Gemini sends no response start for it.

The observer adds what those events do not carry, from the first push of each frame:

- Latency, end of the user's speech to the answer's first audio. Pipecat's
  `UserBotLatencyObserver` measures from `VADUserStoppedSpeakingFrame`, which a pipeline that
  leaves turn detection to Gemini's server never has; so the end of speech here is a VAD's stop
  when one runs upstream, else the last loud input audio (`observers.loudness`) before the
  transcription arrived, else the transcription's arrival.
- Transcription chunks arriving (the user turn's `started_at`/`ended_at`), the bot's first audio,
  the bot speaking, interruptions, tool-call records (`ToolCallEventFrame`), connection events
  (`SessionEventFrame`), and typed input (`InputTextRawFrame`, which Pipecat also aggregates
  into the bot's turn: the recorder takes it out again).

The session starts with the pipeline's `StartFrame` and ends when the worker cleans its observers
up: by then the `EndFrame` or `CancelFrame` has passed the aggregators, whose last events (the user
turn still open, the bot turn being spoken) have run. Observers run off the pipeline's path, on
their own queue, so a frame is never delayed here; the handlers are looked up once per frame type.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputTextRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMContextAggregatorPair,
    UserTurnMessageAddedMessage,
)

from observers.loudness import is_speech
from processors.frames import SessionEventFrame, ToolCallEventFrame
from transcripts.recorder import TranscriptRecorder

Handler = Callable[[Any], None]

DRAIN_TIMEOUT_S = 10.0
"""How long the pipeline's end waits for the transcript's last lines to reach the disk."""

RECENT_INPUT_FRAMES = 500
"""Input frames kept for the loudness scan: 10 s of 20 ms frames, longer than any wait between
the end of an utterance and its transcription."""


class TranscriptObserver(BaseObserver):
    """Feeds a `TranscriptRecorder` from a pipeline; never changes the frame flow.

    Args:
        recorder: Where the session is recorded.
        clock: Wall-clock time in epoch seconds (the recorder's); tests pass a fake one.
        on_latency: Called with each latency measured, in seconds (the metrics' histogram).
    """

    # Most specific first: the handler of a concrete frame type is the first match.
    _HANDLES: tuple[tuple[type[Frame], str], ...] = (
        (InputAudioRawFrame, "_on_input_audio"),
        (TTSAudioRawFrame, "_on_bot_audio"),
        (TranscriptionFrame, "_on_transcription"),
        (InputTextRawFrame, "_on_typed"),
        (VADUserStoppedSpeakingFrame, "_on_vad_stopped"),
        (LLMFullResponseStartFrame, "_on_response_started"),
        (TTSStartedFrame, "_on_response_started"),
        (LLMFullResponseEndFrame, "_on_response_ended"),
        (TTSStoppedFrame, "_on_response_ended"),
        (InterruptionFrame, "_on_interruption"),
        (BotStartedSpeakingFrame, "_on_bot_started_speaking"),
        (BotStoppedSpeakingFrame, "_on_bot_stopped_speaking"),
        (ToolCallEventFrame, "_on_tool_call"),
        (SessionEventFrame, "_on_session_event"),
        (StartFrame, "_on_start"),
        (EndFrame, "_on_end"),
        (CancelFrame, "_on_end"),
    )

    def __init__(
        self,
        recorder: TranscriptRecorder,
        *,
        clock: Callable[[], float] | None = None,
        on_latency: Callable[[float], None] | None = None,
    ):
        super().__init__(observe_every_push=False)
        self.recorder = recorder
        self._clock = clock or recorder.clock
        self._on_latency = on_latency
        self._handlers: dict[type[Frame], Handler | None] = {}
        self._seen: deque[int] = deque(maxlen=32)  # broadcast frames already handled
        self._end: tuple[str, bool] | None = None  # (reason, cancelled)

        # Recent input audio, scanned for loudness only when a transcription needs it: a
        # transcription arrives a few times a turn, audio 50 times a second.
        self._recent_input: deque[tuple[float, bytes]] = deque(maxlen=RECENT_INPUT_FRAMES)
        self._scanned_until: float | None = None  # input newer than this is not yet scanned
        self._last_loud_at: float | None = None
        self._speech_end: float | None = None  # not yet measured against an answer
        self._vad_times_speech = False
        self._responding = False
        self._bot_speaking = False
        self._audio_started = False  # the current response's audio has begun

    def attach(self, aggregators: LLMContextAggregatorPair) -> None:
        """Record the turns the aggregators commit (call once, before the pipeline runs)."""
        aggregators.user().add_event_handler("on_user_turn_message_added", self._on_user_turn)
        assistant = aggregators.assistant()
        assistant.add_event_handler("on_assistant_turn_started", self._on_bot_turn_started)
        assistant.add_event_handler("on_assistant_turn_stopped", self._on_bot_turn_stopped)

    async def on_push_frame(self, data: FramePushed) -> None:
        """Record what a frame says about the conversation."""
        handler = self._handler(type(data.frame))
        if handler is None:
            return
        try:
            handler(data.frame)
        except Exception:  # the transcript must never stop the conversation
            logger.exception(f"{self}: could not record {data.frame.name}")

    async def cleanup(self) -> None:
        """End the session (the pipeline is over) and wait, off the loop, for its last lines."""
        await super().cleanup()
        reason, cancelled = self._end or ("pipeline stopped", True)
        self.recorder.end(reason, cancelled=cancelled)
        if not await self.recorder.drained(DRAIN_TIMEOUT_S):
            logger.warning(
                f"transcript {self.recorder.session_id}: the disk has not taken the last lines "
                f"after {DRAIN_TIMEOUT_S:g} s; they are written when it does"
            )

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

    def _first_sight(self, frame: Frame) -> bool:
        """False for the second copy of a frame broadcast both ways."""
        if frame.broadcast_sibling_id is not None and frame.broadcast_sibling_id in self._seen:
            return False
        self._seen.append(frame.id)
        return True

    # ----------------------------------------------------------------------------------------
    # Aggregator events (each runs in its own task, in the order the aggregator raised them)

    def _on_user_turn(self, _aggregator: object, message: UserTurnMessageAddedMessage) -> None:
        self.recorder.user_turn(message.content)

    def _on_bot_turn_started(self, _aggregator: object) -> None:
        self.recorder.bot_started()

    def _on_bot_turn_stopped(
        self, _aggregator: object, message: AssistantTurnStoppedMessage
    ) -> None:
        self.recorder.bot_turn(message.content, interrupted=message.interrupted)

    # ----------------------------------------------------------------------------------------
    # Frames (first push only)

    def _on_input_audio(self, frame: InputAudioRawFrame) -> None:
        self._recent_input.append((self._clock(), frame.audio))

    def _last_loud_input(self) -> float | None:
        """When the last loud input frame was heard, scanning each frame at most once."""
        fresh: list[tuple[float, bytes]] = []
        for heard_at, pcm in reversed(self._recent_input):
            if self._scanned_until is not None and heard_at <= self._scanned_until:
                break
            fresh.append((heard_at, pcm))
        if fresh:
            self._scanned_until = fresh[0][0]
        for heard_at, pcm in fresh:  # newest first: the first loud one is the last loud one
            if is_speech(pcm):
                self._last_loud_at = heard_at
                break
        return self._last_loud_at

    def _on_transcription(self, frame: TranscriptionFrame) -> None:
        if not frame.text.strip():
            return
        self.recorder.user_heard()
        # Words that arrive while the bot answers are the tail of the question being answered
        # (or speech over the bot), not a new end of speech to time the next answer from.
        if self._vad_times_speech or self._responding or self._bot_speaking:
            return
        now = self._clock()
        loud = self._last_loud_input()
        self._speech_end = loud if loud is not None and loud <= now else now

    def _on_typed(self, frame: InputTextRawFrame) -> None:
        self.recorder.user_typed(frame.text)

    def _on_vad_stopped(self, frame: VADUserStoppedSpeakingFrame) -> None:
        self._vad_times_speech = True
        self._speech_end = frame.timestamp - frame.stop_secs

    def _on_response_started(self, frame: Frame) -> None:
        self._responding = True
        self._audio_started = False

    def _on_response_ended(self, frame: Frame) -> None:
        self._responding = False
        self._audio_started = False

    def _on_bot_audio(self, frame: TTSAudioRawFrame) -> None:
        if self._audio_started:
            return
        self._audio_started = True
        now = self._clock()
        self.recorder.bot_audio()
        if self._speech_end is not None:  # each end of speech times one answer
            self.recorder.latency(self._speech_end, now)
            if self._on_latency is not None:
                self._on_latency(max(now - self._speech_end, 0.0))
            self._speech_end = None

    def _on_interruption(self, frame: InterruptionFrame) -> None:
        if not self._first_sight(frame):
            return
        self._responding = False
        self._audio_started = False
        self.recorder.interruption()

    def _on_bot_started_speaking(self, frame: Frame) -> None:
        self._bot_speaking = True
        self.recorder.bot_speaking(True)

    def _on_bot_stopped_speaking(self, frame: Frame) -> None:
        self._bot_speaking = False
        self.recorder.bot_speaking(False)

    def _on_tool_call(self, frame: ToolCallEventFrame) -> None:
        if frame.event is not None and self._first_sight(frame):
            self.recorder.tool_call(frame.event.to_json())

    def _on_session_event(self, frame: SessionEventFrame) -> None:
        if self._first_sight(frame):
            self.recorder.session_event(str(frame.kind), frame.detail)

    def _on_start(self, frame: StartFrame) -> None:
        self.recorder.start()

    def _on_end(self, frame: EndFrame | CancelFrame) -> None:
        cancelled = isinstance(frame, CancelFrame)
        if self._end is None or cancelled:
            self._end = (str(frame.reason or ""), cancelled)
