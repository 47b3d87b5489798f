"""The transcript's Pipecat side: the observer's frames, and the aggregators' turns, on disk.

Two ways in. The observer alone is fed first pushes of frames (`FramePushed`) with a fake clock,
and the aggregator events it relies on are played into its recorder directly: latency, loudness,
the VAD's end of speech, deduplication. The wiring tests run a real pipeline, Pipecat's
`LLMContextAggregatorPair` in realtime mode around `FakeRealtimeLLM` (which pushes what the test
emits, as Gemini Live does), so turn text, interruptions and the late-transcription window come
from Pipecat itself; each step waits for the aggregators to have handled it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import load_wav
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    DataFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    STTMetadataFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import run_test
from pipecat.workers.runner import WorkerRunner
from transcript_expectations import assert_an_interrupted_story

from observers.transcript import TranscriptObserver
from processors.frames import (
    SessionEvent,
    SessionEventFrame,
    ToolCallEvent,
    ToolCallEventFrame,
    ToolOutcome,
)
from testkit.clock import FakeClock
from testkit.frames import PassThrough, said
from testkit.waiting import until
from transcripts import Transcript, TranscriptRecorder, TranscriptStore, load_session

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
SID = "test-session"
UP, DOWN = FrameDirection.UPSTREAM, FrameDirection.DOWNSTREAM
START_TIMEOUT = 30.0  # `run_test`'s 1 s is too short on a loaded machine


def transcription(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id="", timestamp="")


def audio_out() -> TTSAudioRawFrame:
    return TTSAudioRawFrame(audio=b"\1\0" * 480, sample_rate=24000, num_channels=1)


def audio_in(loud: bool) -> InputAudioRawFrame:
    return InputAudioRawFrame(
        audio=(b"\0\x10" if loud else b"\0\0") * 320, sample_rate=16000, num_channels=1
    )


def tool_event(result: Any = None) -> ToolCallEventFrame:
    return ToolCallEventFrame(
        event=ToolCallEvent(
            "get_time", "call-1", {"zone": "Asia/Tokyo"}, ToolOutcome.OK, result, None, T0, 12.5
        )
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


# ------------------------------------------------------------------------------------------------
# The observer alone: first pushes in, the recorder's lines out


class Feed:
    """Plays frames into an observer as first pushes, and aggregator events into its recorder."""

    def __init__(self, folder: Path, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.recorder = TranscriptRecorder(TranscriptStore(folder), SID, clock=clock)
        self.observer = TranscriptObserver(self.recorder)
        self._here, self._there = FrameProcessor(name="from"), FrameProcessor(name="to")

    async def frames(self, *frames: Frame | float, direction: FrameDirection = DOWN) -> None:
        """Each frame as pushed now; a number moves the (fake) clock on by that many seconds."""
        for item in frames:
            if isinstance(item, int | float):
                assert isinstance(self.clock, FakeClock)
                self.clock.advance(item)
                continue
            await self.observer.on_push_frame(
                FramePushed(self._here, self._there, item, direction, timestamp=0)
            )

    def answer(self, text: str, *, interrupted: bool = False) -> None:
        """The assistant aggregator ends the bot turn it started."""
        self.recorder.bot_turn(text, interrupted=interrupted)

    async def short_answer(self, text: str, *, turn_started: bool = False) -> None:
        """A response of one chunk of audio, which the aggregator then ends as bot turn `text`
        (`turn_started`: the aggregator started that bot turn before the response)."""
        if turn_started:
            self.recorder.bot_started()
        await self.frames(LLMFullResponseStartFrame(), audio_out(), LLMFullResponseEndFrame())
        self.answer(text)

    async def transcript(self) -> Transcript:
        await self.observer.cleanup()
        return load_session(self.recorder.store.folder, SID)


@pytest.fixture
async def feed(tmp_path: Path, clock: FakeClock) -> Feed:
    feed = Feed(tmp_path, clock)
    await feed.frames(StartFrame())
    return feed


async def test_latency_runs_from_the_last_chunk_to_the_first_bot_audio_without_a_vad(
    feed: Feed,
) -> None:
    await feed.frames(transcription("Hello."), 0.3, direction=UP)
    await feed.frames(transcription("How are you?"), 0.2, direction=UP)
    feed.recorder.user_turn("Hello. How are you?")
    feed.recorder.bot_started()
    await feed.frames(TTSStartedFrame(), LLMFullResponseStartFrame(), *said(" Fine"), 0.4)
    await feed.frames(audio_out(), 0.1, audio_out(), TTSStoppedFrame(), LLMFullResponseEndFrame())
    feed.answer("Fine")  # words before audio do not stop the clock: latency is to audio
    # A second answer with no new speech (after a tool, say) has no latency.
    await feed.short_answer("Really.", turn_started=True)
    turns = (await feed.transcript()).bot_turns
    assert [t.latency_ms for t in turns] == [600.0, None]


async def test_latency_runs_from_a_vads_end_of_speech(feed: Feed) -> None:
    for n, loud in enumerate([True] * 10 + [False] * 15):  # 200 ms of speech, then silence
        await feed.frames(audio_in(loud))
        if n == 10:
            # A VAD deciding at once (Pipecat's, with stop_secs=0.2) at the first quiet frame,
            # heard at +0.2 s: QUIET means `stop_secs` of silence already.
            await feed.frames(VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=T0 + 0.2))
        await feed.frames(0.02)
    # Transcription comes later than the end of speech: it is not used.
    await feed.frames(transcription("Hello."), 0.2, direction=UP)
    feed.recorder.user_turn("Hello.")
    await feed.short_answer("Hi.")
    transcript = await feed.transcript()
    (turn,) = transcript.bot_turns
    assert turn.latency_ms == pytest.approx((0.5 + 0.2 - 0.0) * 1000.0)
    assert transcript.events[2]["speech_ended_at"] == pytest.approx(T0)


async def test_a_vad_upstream_in_the_pipeline_times_the_end_of_speech_for_free(
    feed: Feed,
) -> None:
    await feed.frames(VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=T0 + 0.5), 0.9)
    await feed.frames(transcription("Hello."), 0.1, direction=UP)  # later than the VAD: not used
    feed.recorder.user_turn("Hello.")
    await feed.frames(audio_out(), LLMFullResponseEndFrame())
    feed.answer("Hi.")
    (turn,) = (await feed.transcript()).bot_turns
    assert turn.latency_ms == pytest.approx(700.0)


async def test_without_a_vad_the_last_loud_input_audio_times_the_end_of_speech(
    feed: Feed,
) -> None:
    for loud in [True] * 10 + [False] * 25:  # 200 ms of speech, then 500 ms of silence
        await feed.frames(audio_in(loud), 0.02)
    await feed.frames(0.3)  # the server's silence wait and its speech recognition
    await feed.frames(transcription("Hello."), 0.2, direction=UP)
    feed.recorder.user_turn("Hello.")
    await feed.short_answer("Hi.")
    (turn,) = (await feed.transcript()).bot_turns
    # The last loud frame was heard at +0.18 s; the answer's first audio at +1.2 s.
    assert turn.latency_ms == pytest.approx((1.2 - 0.18) * 1000.0)


async def test_a_late_chunk_of_the_question_being_answered_is_no_new_end_of_speech(
    feed: Feed,
) -> None:
    await feed.frames(transcription("What is the weather"), 0.5, direction=UP)
    await feed.frames(LLMFullResponseStartFrame(), audio_out(), BotStartedSpeakingFrame(), 0.2)
    await feed.frames(transcription("in Paris?"), direction=UP)
    await feed.frames(audio_out(), LLMFullResponseEndFrame(), 1.0, BotStoppedSpeakingFrame())
    feed.recorder.user_turn("What is the weather in Paris?")
    feed.answer("Sunny.")
    await feed.short_answer("Anything else?", turn_started=True)
    turns = (await feed.transcript()).bot_turns
    assert [t.latency_ms for t in turns] == [500.0, None]


async def test_a_response_that_only_calls_a_tool_writes_no_empty_bot_turn(feed: Feed) -> None:
    await feed.frames(transcription("What time is it?"), direction=UP)
    await feed.frames(tool_event(result="09:00"), 0.8)  # Gemini opens no bot turn for it
    feed.recorder.bot_started()
    await feed.frames(LLMFullResponseStartFrame(), audio_out(), *said(" Nine."))
    feed.recorder.user_turn("What time is it?")  # Pipecat commits once the answer has started
    await feed.frames(LLMFullResponseEndFrame())
    feed.answer("Nine.")
    transcript = await feed.transcript()
    assert [e["type"] for e in transcript.events[1:-1]] == ["user_turn", "tool_call", "bot_turn"]
    # The tool call is written after the user turn it answers; the bot's words answer it too, and
    # the latency runs from the user's words, across the tool call, to the answer's first audio.
    assert transcript.tool_calls[0]["reply_to"] == 1
    assert transcript.bot_turns[0].reply_to == 1
    assert transcript.bot_turns[0].latency_ms == 800.0


async def test_the_two_copies_of_a_broadcast_interruption_count_once(feed: Feed) -> None:
    down_copy, up_copy = InterruptionFrame(), InterruptionFrame()
    down_copy.broadcast_sibling_id = up_copy.id
    up_copy.broadcast_sibling_id = down_copy.id
    await feed.short_answer("A long answer.", turn_started=True)  # its audio still plays
    await feed.frames(BotStartedSpeakingFrame(), direction=UP)
    await feed.frames(up_copy, direction=UP)
    await feed.frames(down_copy)
    assert len((await feed.transcript()).interruptions) == 1


async def test_tool_calls_and_session_events_arrive_as_frames(feed: Feed) -> None:
    await feed.frames(SessionEventFrame(kind=SessionEvent.CONNECTED, detail="first"))
    await feed.frames(tool_event(result={"time": "09:00"}), ToolCallEventFrame())  # no event: skip
    await feed.frames(SessionEventFrame(kind=SessionEvent.RECONNECTING, detail="dropped"))
    await feed.frames(CancelFrame(reason="client disconnected"))
    transcript = await feed.transcript()
    assert [(e["type"], e.get("event") or e.get("name")) for e in transcript.events] == [
        ("session", "started"),
        ("session", "connected"),
        ("tool_call", "get_time"),
        ("session", "reconnecting"),
        ("session", "ended"),
    ]
    assert transcript.tool_calls[0]["result"] == {"time": "09:00"}
    assert transcript.ended is not None
    assert (transcript.ended["detail"], transcript.ended["cancelled"]) == (
        "client disconnected",
        True,
    )


async def test_a_pipeline_that_stops_without_an_end_frame_still_ends_the_session(
    feed: Feed,
) -> None:
    transcript = await feed.transcript()
    assert transcript.ended is not None
    assert (transcript.ended["detail"], transcript.ended["cancelled"]) == ("pipeline stopped", True)


# ------------------------------------------------------------------------------------------------
# Wired to Pipecat's aggregators


@dataclass
class Emit(DataFrame):
    """Sent to `FakeRealtimeLLM`, which pushes `inner` in `direction` as the model would."""

    inner: Frame | None = None
    direction: FrameDirection = FrameDirection.DOWNSTREAM


@dataclass
class Marker(DataFrame):
    """Pushed behind a step: once it has left an aggregator, that aggregator handled the step."""


class FakeRealtimeLLM(FrameProcessor):
    """Gemini Live's place in the pipeline: it pushes the frames the test emits, and announces
    its speech recognition's latency (the aggregator's late-transcription window) at start."""

    def __init__(self, ttfs_p99_latency: float) -> None:
        super().__init__()
        self._ttfs = ttfs_p99_latency

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, Emit):
            assert frame.inner is not None
            await self.push_frame(frame.inner, frame.direction)
            return
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.broadcast_frame(
                STTMetadataFrame, service_name="fake-live", ttfs_p99_latency=self._ttfs
            )


class MarkerWatch(BaseObserver):
    """Sees every push, and remembers which aggregators markers have left."""

    def __init__(self, user: FrameProcessor, assistant: FrameProcessor) -> None:
        super().__init__()
        self._ends = (user, assistant)
        self.left: set[int] = set()

    async def on_push_frame(self, data: FramePushed) -> None:
        if isinstance(data.frame, Marker) and data.source in self._ends:
            self.left.add(data.frame.id)


class Conversation:
    """A running pipeline: user aggregator → FakeRealtimeLLM → assistant aggregator."""

    def __init__(self, folder: Path, clock: FakeClock, ttfs: float) -> None:
        self.recorder = TranscriptRecorder(TranscriptStore(folder), SID, clock=clock)
        self.observer = TranscriptObserver(self.recorder)
        self.pair = LLMContextAggregatorPair(LLMContext(), realtime_service_mode=True)
        self._watch = MarkerWatch(self.pair.user(), self.pair.assistant())
        self.worker = PipelineWorker(
            Pipeline([self.pair.user(), FakeRealtimeLLM(ttfs), self.pair.assistant()]),
            params=PipelineParams(),
            observers=[self.observer, self._watch],
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        self.observer.attach(self.pair)
        self.folder = folder

    async def emit(self, *frames: Frame, direction: FrameDirection = DOWN) -> None:
        """The model pushes these; returns once both aggregators have handled them."""
        up, down = Marker(), Marker()
        steps = [Emit(inner=f, direction=direction) for f in frames]
        await self.worker.queue_frames([*steps, Emit(inner=up, direction=UP), Emit(inner=down)])
        await until(lambda: {up.id, down.id} <= self._watch.left, "the aggregators to catch up")

    async def user(self, *texts: str) -> None:
        await self.emit(*(transcription(t) for t in texts), direction=UP)

    def transcript(self) -> Transcript:
        return self.recorder.transcript

    def saved(self) -> Transcript:
        """The session as its file has it (complete once the conversation has ended)."""
        return load_session(self.folder, SID)


@asynccontextmanager
async def conversation(
    folder: Path, clock: FakeClock, *, ttfs: float = 30.0, end: Frame | None = None
) -> AsyncIterator[Conversation]:
    """Run a conversation; on leaving, end it (`EndFrame` unless `end` says otherwise)."""
    conv = Conversation(folder, clock, ttfs)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(conv.worker)
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: conv.recorder.writer is not None or task.done(), "the session start")
        yield conv
        await conv.worker.queue_frame(end or EndFrame())
        await asyncio.wait_for(task, 30)
    finally:
        if not task.done():
            await conv.worker.cancel()
            await asyncio.wait_for(task, 30)


Talk = Callable[..., AbstractAsyncContextManager[Conversation]]


@pytest.fixture
def talk(tmp_path: Path, clock: FakeClock) -> Talk:
    """`async with talk(ttfs=..., end=...) as conv`: a conversation in the test's folder, on
    the fake clock."""
    return functools.partial(conversation, tmp_path, clock)


async def test_sentence_chunks_before_the_bot_answers_form_one_user_turn(talk: Talk) -> None:
    async with talk() as conv:
        await conv.user("Hello.", "Can you hear me?", " ", "I have a question.")
        await conv.emit(LLMFullResponseStartFrame(), *said(" Yes."), LLMFullResponseEndFrame())
        await conv.user("Good.")
    assert [(t.role, t.turn, t.text) for t in conv.saved().turns] == [
        ("user", 1, "Hello. Can you hear me? I have a question."),
        ("bot", 1, "Yes."),
        ("user", 2, "Good."),
    ]


@pytest.mark.parametrize("audio_mode", [True, False], ids=["audio-mode", "text-mode"])
async def test_bot_words_count_once_whether_or_not_they_are_spoken(
    talk: Talk, audio_mode: bool
) -> None:
    async with talk() as conv:
        words = [
            f
            for w in (" Twelve", " times seven", " is 84.")
            for f in said(w, audio_mode=audio_mode)
        ]
        await conv.emit(LLMFullResponseStartFrame(), *words, LLMFullResponseEndFrame())
    assert [t.text for t in conv.saved().bot_turns] == ["Twelve times seven is 84."]


async def test_only_the_words_spoken_before_an_interruption_are_kept(talk: Talk) -> None:
    async with talk() as conv:
        written = LLMTextFrame(" Once upon a time there was a dragon.")
        written.append_to_context = False
        spoken = TTSTextFrame("Once upon a time", text_type="sentence")
        await conv.emit(LLMFullResponseStartFrame(), written, audio_out(), spoken)
        await conv.emit(InterruptionFrame())
    (turn,) = conv.saved().bot_turns
    assert (turn.text, turn.interrupted) == ("Once upon a time", True)


async def test_an_interrupted_bot_turn_is_marked_and_not_merged_with_the_next(talk: Talk) -> None:
    async with talk(ttfs=0.05) as conv:
        await conv.user("Tell me a story.")
        await conv.emit(TTSStartedFrame(), LLMFullResponseStartFrame(), audio_out())
        await until(lambda: conv.transcript().user_turns, "the question committed")
        await conv.emit(*said(" Once upon"))
        await conv.emit(InterruptionFrame(), TTSStoppedFrame())  # Gemini's own stop after it
        await conv.user("Stop.")
        await conv.emit(
            TTSStartedFrame(), LLMFullResponseStartFrame(), audio_out(), *said(" Sure.")
        )
        await conv.emit(TTSStoppedFrame(), LLMFullResponseEndFrame())
    events = conv.saved().events
    assert_an_interrupted_story(events)


async def test_a_late_chunk_joins_the_turn_being_answered_until_the_window_closes(
    talk: Talk,
) -> None:
    async with talk(ttfs=0.1) as conv:
        await conv.user("What is the weather")
        await conv.emit(LLMFullResponseStartFrame(), audio_out())
        await conv.user("in Paris?")  # Gemini's last words arrive after the answer started
        await conv.emit(*said(" Sunny."))
        # Pipecat writes the user turn when its window closes.
        await until(lambda: conv.transcript().user_turns, "the window to close")
        await conv.user("Thanks.")  # heard while the bot speaks on, after the window
        await conv.emit(LLMFullResponseEndFrame())
        await conv.user("Bye.")
    events = conv.saved().events
    # Words after the window are Pipecat's next user turn, committed when the answer ends (so
    # before its bot turn is written) and at the session's end.
    assert [(e["type"], e.get("text")) for e in events[1:-1]] == [
        ("user_turn", "What is the weather in Paris?"),
        ("user_turn", "Thanks."),
        ("bot_turn", "Sunny."),
        ("user_turn", "Bye."),
    ]
    assert events[3]["reply_to"] == 1


async def test_the_end_of_the_bot_turn_closes_the_late_window_early(talk: Talk) -> None:
    async with talk(ttfs=30.0) as conv:
        await conv.user("Hi")
        await conv.emit(LLMFullResponseStartFrame(), *said(" Hello."))
        await conv.user("there.")
        await conv.emit(LLMFullResponseEndFrame())
        await conv.user("Next.")
    assert [t.text for t in conv.saved().turns] == ["Hi there.", "Hello.", "Next."]


async def test_a_cancelled_pipeline_ends_the_session_with_its_reason(talk: Talk) -> None:
    async with talk(end=CancelFrame(reason="client disconnected")) as conv:
        await conv.user("Are you")
        await conv.emit(LLMFullResponseStartFrame(), *said(" I"))
    transcript = conv.saved()
    assert [t.text for t in transcript.turns] == ["Are you", "I"]
    assert transcript.ended == {
        "type": "session",
        "ts": T0,
        "session_id": SID,
        "event": "ended",
        "detail": "client disconnected",
        "cancelled": True,
    }


async def test_the_session_ends_after_the_last_turn_reached_the_aggregators(talk: Talk) -> None:
    async with talk() as conv:
        await conv.worker.queue_frames(
            [Emit(inner=LLMFullResponseStartFrame()), *(Emit(inner=f) for f in said(" Bye."))]
        )  # and the EndFrame right behind them
    assert [e["type"] for e in conv.saved().events] == [
        "session",
        "bot_turn",
        "session",
    ]
    writer = conv.recorder.writer
    assert writer is not None and writer.events == conv.recorder.transcript.events


async def test_the_transcript_leaves_every_frame_as_it_was(
    tmp_path: Path, clock: FakeClock
) -> None:
    recorder = TranscriptRecorder(TranscriptStore(tmp_path), SID, clock=clock)
    sent: list[Frame] = [
        audio_in(True),
        transcription("Hello."),
        TTSStartedFrame(),
        LLMFullResponseStartFrame(),
        audio_out(),
        *said(" Hi."),
        tool_event(),
        SessionEventFrame(kind=SessionEvent.RESUMED),
        BotStartedSpeakingFrame(),
        InterruptionFrame(),
        BotStoppedSpeakingFrame(),
        TTSStoppedFrame(),
        LLMFullResponseEndFrame(),
    ]
    for direction in (DOWN, UP):
        down, up = await run_test(
            PassThrough(enable_direct_mode=True),
            frames_to_send=sent,
            frames_to_send_direction=direction,
            observers=[TranscriptObserver(recorder)],
            start_timeout=START_TIMEOUT,
        )
        received = down if direction == DOWN else up
        assert [f.name for f in received] == [f.name for f in sent]
        assert all(r is s for r, s in zip(received, sent, strict=True))


# ------------------------------------------------------------------------------------------------
# A real VAD upstream: Pipecat's, with Silero, on recorded speech


@pytest.mark.speech
async def test_a_real_silero_vad_times_the_end_of_recorded_speech(tmp_path: Path) -> None:
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.processors.audio.vad_processor import VADProcessor

    pcm = load_wav("hello.wav") + b"\0\0" * 16000  # a second of silence after the question
    step = 640  # 20 ms at 16 kHz
    chunks = [pcm[i : i + step] for i in range(0, len(pcm) - step + 1, step)]
    loud = [
        max(abs(int.from_bytes(c[j : j + 2], "little", signed=True)) for j in range(0, step, 2))
        for c in chunks
    ]
    last_loud = max(i for i, peak in enumerate(loud) if peak > 2000)
    down, _ = await run_test(
        VADProcessor(vad_analyzer=SileroVADAnalyzer()),
        frames_to_send=[
            InputAudioRawFrame(audio=c, sample_rate=16000, num_channels=1) for c in chunks
        ],
        start_timeout=START_TIMEOUT,
    )
    # The VAD pushes its stop frame right after the chunk that confirmed the silence.
    heard = [f for f in down if isinstance(f, InputAudioRawFrame | VADUserStoppedSpeakingFrame)]
    stop = [f for f in heard if isinstance(f, VADUserStoppedSpeakingFrame)][-1]
    ended_in_audio = heard.index(stop) * 0.02 - stop.stop_secs
    assert ended_in_audio == pytest.approx((last_loud + 1) * 0.02, abs=0.3)
    # The transcript times the end of speech by that frame.
    feed = Feed(tmp_path, time.time)
    await feed.frames(StartFrame(), stop, LLMFullResponseStartFrame(), audio_out())
    feed.answer("Hello!")
    (turn,) = [e for e in (await feed.transcript()).events if e["type"] == "bot_turn"]
    assert turn["speech_ended_at"] == round(stop.timestamp - stop.stop_secs, 3)
