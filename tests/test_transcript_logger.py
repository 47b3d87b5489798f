"""The transcript logger pair: frames pass unchanged, and the session file says what happened.

Each half is driven with `run_test`. Where both directions matter (the user's words come up from
the LLM, the bot's go down), the halves run in one pipeline with `Relay` standing in for the LLM:
it turns an `Up(frame)` sent downstream into `frame` pushed upstream, and moves the fake clock on
`Advance`. Everything runs in direct mode, so frames are handled in exactly the order sent.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import os
import tempfile
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    DataFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from processors import transcript_store
from processors.frames import (
    SessionEvent,
    SessionEventFrame,
    ToolCallEvent,
    ToolCallEventFrame,
    ToolOutcome,
)
from processors.transcript_logger import TranscriptLogger
from processors.transcript_store import TranscriptStore, load_session

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
SID = "test-session"
AUDIO_DIR = Path(__file__).resolve().parent / "fixtures" / "audio"


# ------------------------------------------------------------------------------------------------
# Helpers


class FakeClock:
    """Wall-clock time that moves only on `Advance`, so the files can be compared exactly."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Up(DataFrame):
    """Sent downstream to the relay, which pushes `inner` upstream (as the LLM does)."""

    inner: Frame | None = None


@dataclass
class Advance(DataFrame):
    """Sent downstream to the relay, which moves the fake clock on by `seconds`."""

    seconds: float = 0.0


class Relay(FrameProcessor):
    """Stands in for the LLM between the two halves; consumes `Up` and `Advance`."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(enable_direct_mode=True)
        self._clock = clock

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, Up):
            assert frame.inner is not None
            await self.push_frame(frame.inner, FrameDirection.UPSTREAM)
        elif isinstance(frame, Advance):
            self._clock.now += frame.seconds
        else:
            await self.push_frame(frame, direction)


class ScriptedVAD(VADAnalyzer):
    """Any non-zero sample is speech, decided at once: the end of speech is exactly timed."""

    def __init__(self, stop_secs: float = 0.2) -> None:
        super().__init__(params=VADParams(stop_secs=stop_secs))

    def num_frames_required(self) -> int:
        return 320

    def voice_confidence(self, buffer: bytes) -> float:
        return 1.0 if any(buffer) else 0.0

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return VADState.SPEAKING if any(buffer) else VADState.QUIET


class BrokenVAD(ScriptedVAD):
    async def analyze_audio(self, buffer: bytes) -> VADState:
        raise RuntimeError("model file missing")


def user(text: str) -> Up:
    return Up(inner=TranscriptionFrame(text=text, user_id="", timestamp=""))


def spaced(frame: TextFrame) -> TextFrame:
    frame.includes_inter_frame_spaces = True
    return frame


def said(text: str, *, tts: bool = True) -> list[Frame]:
    """One chunk of output transcription as Gemini Live pushes it (TEXT mode: `tts=False`)."""
    chunk: list[Frame] = [spaced(LLMTextFrame(text))]
    if tts:
        chunk.append(spaced(TTSTextFrame(text, text_type="sentence")))
    return chunk


def audio_out() -> TTSAudioRawFrame:
    return TTSAudioRawFrame(audio=b"\1\0" * 480, sample_rate=24000, num_channels=1)


def audio_in(loud: bool) -> InputAudioRawFrame:
    return InputAudioRawFrame(
        audio=(b"\0\x10" if loud else b"\0\0") * 320, sample_rate=16000, num_channels=1
    )


def tool_event(
    outcome: ToolOutcome = ToolOutcome.OK, *, result: Any = None, error: str | None = None
) -> ToolCallEventFrame:
    return ToolCallEventFrame(
        event=ToolCallEvent(
            name="get_time",
            call_id="call-1",
            arguments={"zone": "Asia/Tokyo"},
            outcome=outcome,
            result=result,
            error=error,
            started_at=T0,
            duration_ms=12.5,
        )
    )


def make_logger(folder: Path, clock: FakeClock, **kwargs: Any) -> TranscriptLogger:
    kwargs.setdefault("late_transcript_s", 0)
    return TranscriptLogger(TranscriptStore(folder), SID, clock=clock, **kwargs)


def pair(tl: TranscriptLogger, clock: FakeClock) -> Pipeline:
    return Pipeline([tl.user(), Relay(clock), tl.assistant()])


def assert_same_frames(received: Sequence[Frame], expected: Sequence[Frame]) -> None:
    """The very frames sent, in order: nothing dropped, added, copied or reordered."""
    assert [f.name for f in received] == [f.name for f in expected]
    assert all(r is e for r, e in zip(received, expected, strict=True))


def passed_down(sent: Sequence[Frame]) -> list[Frame]:
    return [f for f in sent if not isinstance(f, Up | Advance)]


def passed_up(sent: Sequence[Frame]) -> list[Frame]:
    return [f.inner for f in sent if isinstance(f, Up) and f.inner is not None]


def lines_of(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().splitlines()]


def ev(kind: str, ts: float = T0, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "ts": ts, "session_id": SID, **fields}


def started(ts: float = T0) -> dict[str, Any]:
    return ev("session", ts, event="started", detail="", meta={})


def ended(ts: float = T0, detail: str = "", cancelled: bool = False) -> dict[str, Any]:
    return ev("session", ts, event="ended", detail=detail, cancelled=cancelled)


def user_turn(n: int, text: str, ts: float = T0, start: float = T0, end: float = T0) -> dict:
    return ev("user_turn", ts, turn=n, text=text, started_at=start, ended_at=end)


def bot_turn(n: int, text: str, ts: float = T0, **fields: Any) -> dict[str, Any]:
    base = {
        "turn": n,
        "text": text,
        "interrupted": False,
        "latency_ms": None,
        "reply_to": None,
        "started_at": T0,
        "first_audio_at": None,
        "speech_ended_at": None,
    }
    return ev("bot_turn", ts, **{**base, **fields})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


# ------------------------------------------------------------------------------------------------
# Frames pass unchanged


async def test_the_user_half_pushes_every_frame_on_unchanged(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        TranscriptionFrame(text="Hello.", user_id="", timestamp=""),
        InterruptionFrame(),
        BotStartedSpeakingFrame(),
        BotStoppedSpeakingFrame(),
        SessionEventFrame(kind=SessionEvent.CONNECTED),
    ]
    down, up = await run_test(
        tl.user(), frames_to_send=sent, frames_to_send_direction=FrameDirection.UPSTREAM
    )
    assert down == []
    assert_same_frames(up, sent)


async def test_the_assistant_half_pushes_every_frame_on_unchanged(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        TTSStartedFrame(),
        LLMFullResponseStartFrame(),
        audio_out(),
        *said(" Hi."),
        audio_out(),
        tool_event(),
        SessionEventFrame(kind=SessionEvent.RESUMED),
        TTSStoppedFrame(),
        LLMFullResponseEndFrame(),
        InterruptionFrame(),
    ]
    down, up = await run_test(tl.assistant(), frames_to_send=sent)
    assert up == []
    assert_same_frames(down, sent)


async def test_both_halves_push_every_frame_on_in_both_directions(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock, vad=ScriptedVAD())
    sent: list[Frame] = [
        audio_in(True),
        user("Hello."),
        audio_in(False),
        TTSStartedFrame(),
        audio_out(),
        *said(" Hi."),
        Up(inner=BotStartedSpeakingFrame()),
        InterruptionFrame(),
        TTSStoppedFrame(),
    ]
    down, up = await run_test(pair(tl, clock), frames_to_send=sent)
    assert_same_frames(down, passed_down(sent))
    assert_same_frames(up, passed_up(sent))


# ------------------------------------------------------------------------------------------------
# What the file says


async def test_a_conversation_is_written_exactly_as_it_happened(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock, metadata={"bot": "assistant"})
    sent: list[Frame] = [
        SessionEventFrame(kind=SessionEvent.CONNECTED),
        Advance(seconds=1.0),
        user("What time is it"),
        Advance(seconds=0.5),
        user("in Tokyo?"),
        Advance(seconds=0.25),
        tool_event(result={"time": "09:00"}),
        Advance(seconds=0.5),
        TTSStartedFrame(),
        LLMFullResponseStartFrame(),
        audio_out(),
        *said(" It is"),
        audio_out(),
        *said(" nine o'clock."),
        TTSStoppedFrame(),
        Advance(seconds=2.0),
        LLMFullResponseEndFrame(),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    assert lines_of(tmp_path / f"{SID}.jsonl") == [
        ev("session", T0, event="started", detail="", meta={"bot": "assistant"}),
        ev("session", T0, event="connected", detail=""),
        user_turn(1, "What time is it in Tokyo?", T0 + 1.75, start=T0 + 1, end=T0 + 1.5),
        ev(
            "tool_call",
            T0 + 1.75,
            name="get_time",
            call_id="call-1",
            arguments={"zone": "Asia/Tokyo"},
            outcome="ok",
            result={"time": "09:00"},
            error=None,
            started_at=T0,
            duration_ms=12.5,
            reply_to=1,
        ),
        bot_turn(
            1,
            "It is nine o'clock.",
            T0 + 4.25,
            latency_ms=750.0,  # last chunk at +1.5 s, first audio at +2.25 s
            reply_to=1,
            started_at=T0 + 2.25,
            first_audio_at=T0 + 2.25,
            speech_ended_at=T0 + 1.5,
        ),
        ended(T0 + 4.25),
    ]
    assert lines_of(tmp_path / "index.jsonl") == [
        {
            "session_id": SID,
            "event": "started",
            "ts": T0,
            "file": f"{SID}.jsonl",
            "meta": {"bot": "assistant"},
        },
        {
            "session_id": SID,
            "event": "ended",
            "ts": T0 + 4.25,
            "user_turns": 1,
            "bot_turns": 1,
            "detail": "",
            "cancelled": False,
        },
    ]


async def test_sentence_chunks_before_the_bot_answers_form_one_user_turn(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        user("Hello."),
        user("Can you hear me?"),
        user(" "),  # a blank chunk adds nothing
        user("I have a question."),
        *said(" Yes."),
        LLMFullResponseEndFrame(),
        user("Good."),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    turns = load_session(tmp_path, SID).turns
    assert [(t.role, t.turn, t.text) for t in turns] == [
        ("user", 1, "Hello. Can you hear me? I have a question."),
        ("bot", 1, "Yes."),
        ("user", 2, "Good."),
    ]


@pytest.mark.parametrize("tts", [True, False], ids=["audio-mode", "text-mode"])
async def test_bot_words_count_once_whether_or_not_a_tts_reports_them(
    tmp_path: Path, clock: FakeClock, tts: bool
) -> None:
    tl = make_logger(tmp_path, clock)
    sent = [
        LLMFullResponseStartFrame(),
        *said(" Twelve", tts=tts),
        *said(" times seven", tts=tts),
        *said(" is 84.", tts=tts),
        LLMFullResponseEndFrame(),
    ]
    await run_test(tl.assistant(), frames_to_send=sent)
    assert [t.text for t in load_session(tmp_path, SID).bot_turns] == ["Twelve times seven is 84."]


async def test_the_spoken_words_win_when_the_tts_reports_fewer_than_the_llm_wrote(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent = [
        LLMFullResponseStartFrame(),
        spaced(LLMTextFrame(" Once upon a time")),
        spaced(LLMTextFrame(" there was a dragon.")),
        TTSTextFrame("Once upon a time", text_type="sentence"),
        InterruptionFrame(),
    ]
    await run_test(tl.assistant(), frames_to_send=sent)
    (turn,) = load_session(tmp_path, SID).bot_turns
    assert (turn.text, turn.interrupted) == ("Once upon a time", True)


async def test_an_interrupted_bot_turn_is_marked_and_not_merged_with_the_next(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        user("Tell me a story."),
        TTSStartedFrame(),
        LLMFullResponseStartFrame(),
        audio_out(),
        *said(" Once upon"),
        InterruptionFrame(),
        TTSStoppedFrame(),  # Gemini's own stop after the interruption: no turn of its own
        user("Stop."),
        TTSStartedFrame(),
        LLMFullResponseStartFrame(),
        audio_out(),
        *said(" Sure."),
        TTSStoppedFrame(),
        LLMFullResponseEndFrame(),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    events = lines_of(tmp_path / f"{SID}.jsonl")
    assert [(e["type"], e.get("turn"), e.get("text")) for e in events] == [
        ("session", None, None),
        ("user_turn", 1, "Tell me a story."),
        ("bot_turn", 1, "Once upon"),
        ("interruption", None, None),
        ("user_turn", 2, "Stop."),
        ("bot_turn", 2, "Sure."),
        ("session", None, None),
    ]
    assert [e["interrupted"] for e in events if e["type"] == "bot_turn"] == [True, False]
    assert events[3]["bot_turn"] == 1


async def test_cutting_off_audio_still_playing_after_the_model_finished_marks_that_turn(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        LLMFullResponseStartFrame(),
        audio_out(),
        *said(" A long answer."),
        Up(inner=BotStartedSpeakingFrame()),
        LLMFullResponseEndFrame(),  # the model is done; its audio plays on
        InterruptionFrame(),
        InterruptionFrame(),  # a second one cuts nothing new
        Up(inner=BotStoppedSpeakingFrame()),
        InterruptionFrame(),  # nothing is playing: not an interruption of the bot
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    transcript = load_session(tmp_path, SID)
    assert [e["type"] for e in transcript.events] == [
        "session",
        "bot_turn",
        "interruption",
        "session",
    ]
    assert transcript.events[1]["interrupted"] is False  # as written when the model finished
    assert transcript.bot_turns[0].interrupted is True  # as read back
    assert transcript.interruptions[0]["bot_turn"] == 1


async def test_the_two_copies_of_a_broadcast_interruption_count_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    down_copy, up_copy = InterruptionFrame(), InterruptionFrame()
    down_copy.broadcast_sibling_id = up_copy.id
    up_copy.broadcast_sibling_id = down_copy.id
    sent: list[Frame] = [
        LLMFullResponseStartFrame(),
        audio_out(),
        Up(inner=BotStartedSpeakingFrame()),
        LLMFullResponseEndFrame(),
        Up(inner=up_copy),
        down_copy,
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    assert len(load_session(tmp_path, SID).interruptions) == 1


async def test_an_interruption_before_the_bot_says_anything_records_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        user("Hi"),
        LLMFullResponseStartFrame(),
        InterruptionFrame(),
        LLMFullResponseEndFrame(),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    assert [e["type"] for e in load_session(tmp_path, SID).events] == [
        "session",
        "user_turn",
        "session",
    ]


async def test_a_response_that_only_calls_a_tool_writes_no_empty_bot_turn(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        user("What time is it?"),
        LLMFullResponseStartFrame(),
        tool_event(result="09:00"),
        LLMFullResponseEndFrame(),
        Advance(seconds=0.8),
        LLMFullResponseStartFrame(),
        audio_out(),
        *said(" Nine."),
        LLMFullResponseEndFrame(),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    transcript = load_session(tmp_path, SID)
    assert [e["type"] for e in transcript.events[1:-1]] == ["user_turn", "tool_call", "bot_turn"]
    # The user turn was written by the tool call; the bot's words still answer it, and the
    # latency runs from the user's words, across the tool call, to the answer's first audio.
    assert transcript.bot_turns[0].reply_to == 1
    assert transcript.bot_turns[0].latency_ms == 800.0


async def test_a_greeting_answers_no_one_and_has_no_latency(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent = [TTSStartedFrame(), audio_out(), *said(" Hello!"), TTSStoppedFrame()]
    await run_test(tl.assistant(), frames_to_send=sent)
    (turn,) = load_session(tmp_path, SID).bot_turns
    assert (turn.text, turn.reply_to, turn.latency_ms) == ("Hello!", None, None)


async def test_speech_without_an_llm_response_ends_with_the_tts_stop(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent = [
        TTSStartedFrame(),
        *said(" One."),
        TTSStoppedFrame(),
        TTSStartedFrame(),
        *said(" Two."),
        TTSStoppedFrame(),
    ]
    await run_test(tl.assistant(), frames_to_send=sent)
    assert [t.text for t in load_session(tmp_path, SID).bot_turns] == ["One.", "Two."]


async def test_a_response_whose_end_never_came_is_closed_by_the_next_one(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent = [
        LLMFullResponseStartFrame(),
        *said(" First."),
        LLMFullResponseStartFrame(),
        *said(" Second."),
        LLMFullResponseEndFrame(),
    ]
    await run_test(tl.assistant(), frames_to_send=sent)
    assert [t.text for t in load_session(tmp_path, SID).bot_turns] == ["First.", "Second."]


# ------------------------------------------------------------------------------------------------
# Late transcription


async def test_a_late_chunk_joins_the_turn_being_answered_until_the_window_closes(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock, late_transcript_s=0.1)
    sent: list[Frame] = [
        user("What is the weather"),
        LLMFullResponseStartFrame(),
        audio_out(),
        user("in Paris?"),  # Gemini's last words arrive after the answer started
        *said(" Sunny."),
        SleepFrame(sleep=0.3),  # the window closes: the user turn is written now
        user("Thanks."),  # heard while the bot speaks on, after the window
        LLMFullResponseEndFrame(),
        user("Bye."),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    events = load_session(tmp_path, SID).events
    assert [(e["type"], e.get("text")) for e in events[1:-1]] == [
        ("user_turn", "What is the weather in Paris?"),
        ("bot_turn", "Sunny."),
        ("user_turn", "Thanks. Bye."),
    ]


async def test_the_end_of_the_bot_turn_closes_the_late_window_early(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock, late_transcript_s=30)
    sent: list[Frame] = [
        user("Hi"),
        *said(" Hello."),
        user("there."),
        LLMFullResponseEndFrame(),
        user("Next."),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    assert [t.text for t in load_session(tmp_path, SID).turns] == ["Hi there.", "Hello.", "Next."]


# ------------------------------------------------------------------------------------------------
# Latency


async def test_latency_runs_from_the_last_chunk_to_the_first_bot_audio_without_a_vad(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        user("Hello."),
        Advance(seconds=0.3),
        user("How are you?"),
        Advance(seconds=0.2),
        LLMFullResponseStartFrame(),
        *said(" Fine"),  # words before audio do not stop the clock: latency is to audio
        Advance(seconds=0.4),
        audio_out(),
        Advance(seconds=0.1),
        audio_out(),
        LLMFullResponseEndFrame(),
        # A second answer with no new speech (after a tool, say) has no latency.
        LLMFullResponseStartFrame(),
        audio_out(),
        LLMFullResponseEndFrame(),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    turns = load_session(tmp_path, SID).bot_turns
    assert [t.latency_ms for t in turns] == [600.0, None]


async def test_latency_runs_from_the_vads_end_of_speech(tmp_path: Path, clock: FakeClock) -> None:
    tl = make_logger(tmp_path, clock, vad=ScriptedVAD(stop_secs=0.2))
    sent: list[Frame] = []
    for loud in [True] * 10 + [False] * 15:  # 200 ms of speech, then silence, 20 ms frames
        sent += [audio_in(loud), Advance(seconds=0.02)]
    sent += [
        user("Hello."),  # transcription comes later than the end of speech: it is not used
        Advance(seconds=0.2),
        LLMFullResponseStartFrame(),
        audio_out(),
        LLMFullResponseEndFrame(),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent)
    (turn,) = load_session(tmp_path, SID).bot_turns
    # The first quiet frame is heard at +0.2 s; QUIET means `stop_secs` of silence already.
    assert turn.latency_ms == pytest.approx((0.5 + 0.2 - 0.0) * 1000.0)
    assert load_session(tmp_path, SID).events[2]["speech_ended_at"] == pytest.approx(T0)


async def test_a_vad_upstream_in_the_pipeline_times_the_end_of_speech_for_free(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        VADUserStoppedSpeakingFrame(stop_secs=0.2, timestamp=T0 + 0.5),  # speech ended at +0.3
        Advance(seconds=0.9),
        user("Hello."),  # later than the VAD: not used from now on
        Advance(seconds=0.1),
        audio_out(),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(pair(tl, clock), frames_to_send=sent)
    assert_same_frames(down, passed_down(sent))
    (turn,) = load_session(tmp_path, SID).bot_turns
    assert turn.latency_ms == pytest.approx(700.0)


async def test_a_real_silero_vad_times_the_end_of_recorded_speech(
    tmp_path: Path, clock: FakeClock
) -> None:
    from pipecat.audio.vad.silero import SileroVADAnalyzer

    with wave.open(str(AUDIO_DIR / "hello.wav"), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    pcm += b"\0\0" * 16000  # a second of silence after the question
    step = 640  # 20 ms at 16 kHz
    chunks = [pcm[i : i + step] for i in range(0, len(pcm) - step + 1, step)]
    loud = [
        max(abs(int.from_bytes(c[j : j + 2], "little", signed=True)) for j in range(0, step, 2))
        for c in chunks
    ]
    last_loud = max(i for i, peak in enumerate(loud) if peak > 2000)
    tl = make_logger(tmp_path, clock, vad=SileroVADAnalyzer())
    sent: list[Frame] = []
    for chunk in chunks:
        sent += [
            InputAudioRawFrame(audio=chunk, sample_rate=16000, num_channels=1),
            Advance(seconds=0.02),
        ]
    sent += [LLMFullResponseStartFrame(), audio_out(), LLMFullResponseEndFrame()]
    await run_test(pair(tl, clock), frames_to_send=sent)
    (turn,) = [e for e in load_session(tmp_path, SID).events if e["type"] == "bot_turn"]
    assert turn["speech_ended_at"] == pytest.approx(T0 + (last_loud + 1) * 0.02, abs=0.3)


async def test_a_failing_vad_falls_back_to_transcription_timing(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock, vad=BrokenVAD())
    sent: list[Frame] = [
        audio_in(True),
        audio_in(False),
        user("Hello."),
        Advance(seconds=0.5),
        audio_out(),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(pair(tl, clock), frames_to_send=sent)
    assert_same_frames(down, passed_down(sent))
    assert load_session(tmp_path, SID).bot_turns[0].latency_ms == 500.0


# ------------------------------------------------------------------------------------------------
# Tool calls and session events


@pytest.mark.parametrize("outcome", list(ToolOutcome))
async def test_every_tool_outcome_is_recorded(
    tmp_path: Path, clock: FakeClock, outcome: ToolOutcome
) -> None:
    tl = make_logger(tmp_path, clock)
    error = None if outcome == ToolOutcome.OK else "the tool did not answer"
    await run_test(tl.assistant(), frames_to_send=[tool_event(outcome, error=error)])
    (call,) = load_session(tmp_path, SID).tool_calls
    assert (call["outcome"], call["error"], call["reply_to"]) == (str(outcome), error, None)


async def test_a_huge_tool_result_is_stored_as_a_preview(tmp_path: Path, clock: FakeClock) -> None:
    tl = make_logger(tmp_path, clock, max_result_chars=100)
    big = {"rows": ["x" * 50] * 100}
    await run_test(tl.assistant(), frames_to_send=[tool_event(result=big), ToolCallEventFrame()])
    (call,) = load_session(tmp_path, SID).tool_calls
    assert call["result"]["truncated"] is True
    assert call["result"]["preview"] == json.dumps(big)[:100]
    assert call["result"]["chars"] == len(json.dumps(big))


async def test_session_events_are_recorded_with_their_detail(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    kinds = [SessionEvent.CONNECTED, SessionEvent.RECONNECTING, SessionEvent.RECONNECTED]
    sent: list[Frame] = [SessionEventFrame(kind=k, detail=f"d-{k}") for k in kinds]
    sent.append(SessionEventFrame(kind=SessionEvent.FAILED, detail="3 failures"))
    await run_test(tl.assistant(), frames_to_send=sent)
    events = load_session(tmp_path, SID).session_events
    assert [(e["event"], e["detail"]) for e in events] == [
        ("started", ""),
        ("connected", "d-connected"),
        ("reconnecting", "d-reconnecting"),
        ("reconnected", "d-reconnected"),
        ("failed", "3 failures"),
        ("ended", ""),
    ]


async def test_a_session_event_that_overtakes_the_start_frame_is_kept_for_the_session(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    early = SessionEventFrame(kind=SessionEvent.CONNECTED, detail="first connection")
    # Direct mode handles a frame the moment it arrives, even before the StartFrame.
    await tl.assistant().process_frame(early, FrameDirection.DOWNSTREAM)
    await run_test(tl.assistant(), frames_to_send=[])
    events = load_session(tmp_path, SID).session_events
    assert [(e["event"], e["detail"]) for e in events] == [
        ("started", ""),
        ("connected", "first connection"),
        ("ended", ""),
    ]


async def test_a_cancelled_pipeline_ends_the_session_with_its_reason(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        user("Are you"),
        LLMFullResponseStartFrame(),
        *said(" I"),
        CancelFrame(reason="client disconnected"),
    ]
    await run_test(pair(tl, clock), frames_to_send=sent, send_end_frame=False)
    transcript = load_session(tmp_path, SID)
    assert [t.text for t in transcript.turns] == ["Are you", "I"]
    assert transcript.ended == ended(detail="client disconnected", cancelled=True)


async def test_the_session_ends_when_the_last_half_sees_the_end(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    # The user half sees the EndFrame first; frames still on their way to the assistant half
    # belong to the session.
    await run_test(pair(tl, clock), frames_to_send=[*said(" Bye.")])
    assert [e["type"] for e in load_session(tmp_path, SID).events] == [
        "session",
        "bot_turn",
        "session",
    ]
    assert tl.writer is not None and tl.writer.events == tl.transcript.events


async def test_old_sessions_are_deleted_when_a_session_starts(
    tmp_path: Path, clock: FakeClock
) -> None:
    old = tmp_path / "old-session.jsonl"
    old.write_text('{"type":"session"}\n')
    os.utime(old, (T0 - 40 * 86400, T0 - 40 * 86400))
    tl = TranscriptLogger(
        TranscriptStore(tmp_path, retention_days=30), SID, clock=clock, late_transcript_s=0
    )
    await run_test(tl.assistant(), frames_to_send=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.jsonl", f"{SID}.jsonl"]


# ------------------------------------------------------------------------------------------------
# Storage failures: logged once, the session goes on in memory


async def test_an_unwritable_folder_keeps_the_transcript_in_memory(
    tmp_path: Path, clock: FakeClock, warnings: list[str]
) -> None:
    (tmp_path / "not-a-folder").write_text("")
    tl = make_logger(tmp_path / "not-a-folder" / "transcripts", clock)
    sent: list[Frame] = [user("Hello."), *said(" Hi."), tool_event(), LLMFullResponseEndFrame()]
    down, up = await run_test(pair(tl, clock), frames_to_send=sent)
    assert_same_frames(down, passed_down(sent))
    assert_same_frames(up, passed_up(sent))
    assert len(warnings) == 1 and "kept in memory only" in warnings[0]
    assert [e["type"] for e in tl.transcript.events] == [
        "session",
        "user_turn",
        "tool_call",  # finished while the bot was speaking: the bot turn is written at its end
        "bot_turn",
        "session",
    ]
    assert tl.writer is not None and tl.writer.in_memory_only and tl.writer.written == 0


async def test_a_disk_that_fills_mid_session_is_logged_once_and_the_rest_kept_in_memory(
    tmp_path: Path, clock: FakeClock, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if data.startswith(b'{"type":"bot_turn"') or b'"event":"ended"' in data:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(transcript_store.os, "write", write)
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = [
        user("One."),
        *said(" Two."),
        LLMFullResponseEndFrame(),
        user("Three."),
        *said(" Four."),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(pair(tl, clock), frames_to_send=sent)
    monkeypatch.undo()
    assert_same_frames(down, passed_down(sent))
    assert len(warnings) == 1 and "disk full" in warnings[0]
    on_disk = load_session(tmp_path, SID)
    assert [e["type"] for e in on_disk.events] == ["session", "user_turn"]
    assert on_disk.skipped_lines == 0
    assert [t.text for t in tl.transcript.turns] == ["One.", "Two.", "Three.", "Four."]


# ------------------------------------------------------------------------------------------------
# Property: any interleaving gives ordered turns whose text is the concatenation of their chunks

WORDS = st.text(alphabet="ab .?", min_size=1, max_size=6)
STEPS = st.one_of(
    st.tuples(st.just("user"), WORDS),
    st.tuples(st.just("bot"), WORDS),
    st.tuples(st.just("audio"), st.just("")),
    st.tuples(st.just("start"), st.just("")),
    st.tuples(st.just("end"), st.just("")),
    st.tuples(st.just("interrupt"), st.just("")),
    st.tuples(st.just("tool"), st.sampled_from([str(o) for o in ToolOutcome])),
    st.tuples(st.just("session"), st.sampled_from([str(k) for k in SessionEvent])),
)


def frames_for(script: list[tuple[str, str]], audio_mode: bool) -> list[Frame]:
    frames: list[Frame] = []
    for step, arg in script:
        if step == "user":
            frames.append(user(arg))
        elif step == "bot":
            frames += said(arg, tts=audio_mode)
        elif step == "audio":
            frames.append(audio_out())
        elif step == "start":
            frames += [TTSStartedFrame()] if audio_mode else []
            frames.append(LLMFullResponseStartFrame())
        elif step == "end":
            frames += [TTSStoppedFrame()] if audio_mode else []
            frames.append(LLMFullResponseEndFrame())
        elif step == "interrupt":
            frames.append(InterruptionFrame())
        elif step == "tool":
            frames.append(tool_event(ToolOutcome(arg)))
        else:
            frames.append(SessionEventFrame(kind=SessionEvent(arg)))
    return frames


def expected_events(script: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """The transcript as a reader expects it, computed from the script alone."""
    out: list[tuple[Any, ...]] = [("session", "started")]
    pending: list[str] = []  # the user's chunks not yet written
    bot: list[str] | None = None  # the open bot turn's chunks (None: no turn open)
    bot_spoke = False
    from_llm = False
    users = bots = 0

    def flush_user() -> None:
        nonlocal pending, users
        words = [c.strip() for c in pending if c.strip()]
        if words:
            users += 1
            out.append(("user_turn", users, " ".join(words)))
        pending = []

    def close_bot(interrupted: bool) -> None:
        nonlocal bot, bots
        if bot is not None and bot_spoke:
            bots += 1
            out.append(("bot_turn", bots, "".join(bot).strip(), interrupted))
            if interrupted:
                out.append(("interruption", bots))
        bot = None

    def bot_produces() -> None:
        nonlocal bot, bot_spoke, from_llm
        if bot is None:
            bot, bot_spoke, from_llm = [], False, False
        if not bot_spoke:
            bot_spoke = True
            flush_user()  # answered at once (late_transcript_s=0)

    for step, arg in script:
        if step == "user":
            pending.append(arg)
        elif step == "bot":
            bot_produces()
            assert bot is not None
            bot.append(arg)
        elif step == "audio":
            bot_produces()
        elif step == "start":
            if bot is not None and bot_spoke and from_llm:
                close_bot(False)
            if bot is None:
                bot, bot_spoke = [], False
            from_llm = True
        elif step == "end":
            close_bot(False)
        elif step == "interrupt":
            close_bot(True)
        elif step == "tool":
            flush_user()
            out.append(("tool_call", arg))
        else:
            out.append(("session", arg))
    close_bot(False)
    flush_user()
    out.append(("session", "ended"))
    return out


def as_read(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for e in events:
        if e["type"] == "user_turn":
            rows.append(("user_turn", e["turn"], e["text"]))
        elif e["type"] == "bot_turn":
            rows.append(("bot_turn", e["turn"], e["text"], e["interrupted"]))
        elif e["type"] == "interruption":
            rows.append(("interruption", e["bot_turn"]))
        elif e["type"] == "tool_call":
            rows.append(("tool_call", e["outcome"]))
        else:
            rows.append(("session", e["event"]))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(STEPS, max_size=30), audio_mode=st.booleans())
def test_any_interleaving_gives_ordered_turns_made_of_their_chunks(
    script: list[tuple[str, str]], audio_mode: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        clock = FakeClock()
        tl = make_logger(Path(folder), clock)
        sent = frames_for(script, audio_mode)
        down, up = asyncio.run(run_test(pair(tl, clock), frames_to_send=sent))
        assert_same_frames(down, passed_down(sent))
        assert_same_frames(up, passed_up(sent))
        transcript = load_session(folder, SID)
    assert as_read(transcript.events) == expected_events(script)
    assert [t.turn for t in transcript.user_turns] == list(range(1, len(transcript.user_turns) + 1))
    assert [t.turn for t in transcript.bot_turns] == list(range(1, len(transcript.bot_turns) + 1))
    assert transcript.events == tl.transcript.events  # what memory holds is what the disk holds
    assert not math.isnan(sum(e["ts"] for e in transcript.events))


async def test_without_a_vad_the_last_loud_input_audio_times_the_end_of_speech(
    tmp_path: Path, clock: FakeClock
) -> None:
    tl = make_logger(tmp_path, clock)
    sent: list[Frame] = []
    for loud in [True] * 10 + [False] * 25:  # 200 ms of speech, then 500 ms of silence
        sent += [audio_in(loud), Advance(seconds=0.02)]
    sent += [
        Advance(seconds=0.3),  # the server's silence wait and its speech recognition
        user("Hello."),
        Advance(seconds=0.2),
        LLMFullResponseStartFrame(),
        audio_out(),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(pair(tl, clock), frames_to_send=sent)
    assert_same_frames(down, passed_down(sent))
    (turn,) = load_session(tmp_path, SID).bot_turns
    # The last loud frame was heard at +0.18 s; the answer's first audio at +1.2 s.
    assert turn.latency_ms == pytest.approx((1.2 - 0.18) * 1000.0)
