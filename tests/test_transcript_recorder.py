"""The transcript recorder: conversation events in, the session file's lines out.

The recorder knows nothing of Pipecat: these tests call it as the aggregators' events and the
transcript observer do, with a fake clock, and read the file back once the writer thread has
written everything (`flush`). How the pipeline produces those events is tested in
`test_transcript_observer.py`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transcript_expectations import assert_an_interrupted_story

from processors.frames import SessionEvent, ToolCallEvent, ToolOutcome
from testkit.clock import FakeClock
from transcripts import TranscriptRecorder, TranscriptStore, load_session
from transcripts import store as transcript_store

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0
SID = "test-session"


# ------------------------------------------------------------------------------------------------
# Helpers


def make_recorder(folder: Path, clock: FakeClock, **kwargs: Any) -> TranscriptRecorder:
    return TranscriptRecorder(TranscriptStore(folder), SID, clock=clock, **kwargs)


def tool_record(
    outcome: ToolOutcome = ToolOutcome.OK, *, result: Any = None, error: str | None = None
) -> dict[str, Any]:
    return ToolCallEvent(
        name="get_time",
        call_id="call-1",
        arguments={"zone": "Asia/Tokyo"},
        outcome=outcome,
        result=result,
        error=error,
        started_at=T0,
        duration_ms=12.5,
    ).to_json()


def finish(recorder: TranscriptRecorder, detail: str = "", cancelled: bool = False) -> None:
    recorder.end(detail, cancelled=cancelled)
    assert recorder.flush(timeout=10), "the writer thread did not finish"


def lines_of(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode().splitlines()]


def ev(kind: str, ts: float = T0, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "ts": ts, "session_id": SID, **fields}


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


def answer(recorder: TranscriptRecorder, text: str, *, interrupted: bool = False) -> None:
    """A whole bot turn: the aggregator starts it, audio plays, the aggregator ends it."""
    recorder.bot_started()
    recorder.bot_audio()
    recorder.bot_turn(text, interrupted=interrupted)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


# ------------------------------------------------------------------------------------------------
# What the file says


def test_a_conversation_is_written_exactly_as_it_happened(tmp_path: Path, clock: FakeClock) -> None:
    rec = make_recorder(tmp_path, clock, metadata={"bot": "assistant"})
    rec.start()
    rec.session_event("connected")
    clock.advance(1.0)
    rec.user_heard()  # "What time is it"
    clock.advance(0.5)
    rec.user_heard()  # "in Tokyo?"
    clock.advance(0.25)
    rec.user_turn("What time is it in Tokyo?")
    rec.tool_call(tool_record(result={"time": "09:00"}))
    clock.advance(0.5)
    rec.bot_started()
    rec.bot_audio()
    rec.latency(T0 + 1.5, T0 + 2.25)
    clock.advance(2.0)
    rec.bot_turn(" It is nine o'clock.", interrupted=False)
    finish(rec)
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


def test_an_interrupted_bot_turn_is_followed_by_its_interruption_line(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.user_heard()
    rec.user_turn("Tell me a story.")
    answer(rec, "Once upon", interrupted=True)
    rec.user_heard()
    rec.user_turn("Stop.")
    answer(rec, "Sure.")
    finish(rec)
    events = lines_of(tmp_path / f"{SID}.jsonl")
    assert_an_interrupted_story(events)
    assert [e["reply_to"] for e in events if e["type"] == "bot_turn"] == [1, 2]


def test_cutting_off_audio_still_playing_after_the_model_finished_marks_that_turn(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    answer(rec, "A long answer.")  # the aggregator ended the turn; its audio plays on
    rec.bot_speaking(True)
    rec.interruption()
    rec.interruption()  # a second one cuts nothing new
    rec.bot_speaking(False)
    rec.interruption()  # nothing is playing: not an interruption of the bot
    finish(rec)
    transcript = load_session(tmp_path, SID)
    assert [e["type"] for e in transcript.events] == [
        "session",
        "bot_turn",
        "interruption",
        "session",
    ]
    assert transcript.events[1]["interrupted"] is False  # as written when the turn ended
    assert transcript.bot_turns[0].interrupted is True  # as read back
    assert transcript.interruptions[0]["bot_turn"] == 1


def test_an_interruption_of_a_turn_still_open_is_left_to_the_aggregator(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.bot_started()
    rec.bot_audio()
    rec.bot_speaking(True)
    rec.interruption()  # the aggregator ends this turn itself, marked interrupted
    rec.bot_turn("Once", interrupted=True)
    finish(rec)
    assert [e["type"] for e in load_session(tmp_path, SID).events] == [
        "session",
        "bot_turn",
        "interruption",
        "session",
    ]


def test_an_interruption_before_the_bot_says_anything_records_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.user_heard()
    rec.bot_started()
    rec.bot_turn("", interrupted=True)
    rec.user_turn("Hi")
    finish(rec)
    assert [e["type"] for e in load_session(tmp_path, SID).events] == [
        "session",
        "user_turn",
        "session",
    ]


def test_a_tool_call_before_its_question_is_committed_is_written_after_the_question(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.user_heard()
    rec.tool_call(tool_record(result="09:00"))  # Gemini calls the tool before Pipecat commits
    rec.bot_started()
    rec.bot_turn("", interrupted=False)  # a turn with nothing in it: no line
    clock.advance(0.8)
    rec.bot_started()
    rec.bot_audio()
    rec.user_turn("What time is it?")
    rec.bot_turn("Nine.", interrupted=False)
    finish(rec)
    transcript = load_session(tmp_path, SID)
    assert [e["type"] for e in transcript.events[1:-1]] == ["user_turn", "tool_call", "bot_turn"]
    assert transcript.tool_calls[0]["reply_to"] == 1
    assert transcript.bot_turns[0].reply_to == 1


def test_a_bot_turn_cut_off_before_its_question_is_committed_is_written_after_the_question(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.user_heard()  # "Tell me a story."
    clock.advance(0.5)
    answer(rec, "Once", interrupted=True)  # cut off inside Pipecat's late-transcription window
    clock.advance(0.5)
    rec.user_turn("Tell me a story.")
    finish(rec)
    events = load_session(tmp_path, SID).events
    assert [(e["type"], e.get("text")) for e in events[1:-1]] == [
        ("user_turn", "Tell me a story."),
        ("bot_turn", "Once"),
        ("interruption", None),
    ]
    assert events[2]["reply_to"] == 1 and events[3]["bot_turn"] == 1


def test_words_heard_after_the_bot_started_hold_nothing(tmp_path: Path, clock: FakeClock) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.user_heard()
    rec.user_turn("Tell me a story.")
    rec.bot_started()
    rec.bot_audio()
    clock.advance(2.0)
    rec.user_heard()  # the user talks over the bot
    rec.bot_turn("Once upon a time", interrupted=True)
    clock.advance(1.0)
    rec.user_turn("Stop!")
    finish(rec)
    assert [(e["type"], e.get("text")) for e in load_session(tmp_path, SID).events[1:-1]] == [
        ("user_turn", "Tell me a story."),
        ("bot_turn", "Once upon a time"),
        ("interruption", None),
        ("user_turn", "Stop!"),
    ]


@pytest.mark.parametrize(
    "heard",
    [
        'Checkpoint 1. You said: "Checkpoint 1.". Fine.',
        'You said: "Checkpoint 1.". Checkpoint 1. Fine.',
        'You said: "Checkpoint 1.". Fine. Checkpoint 1.',
        'Checkpoint 1.You said: "Checkpoint 1.". Fine.',
    ],
    ids=["before", "between", "after", "joined-with-no-space"],
)
def test_typed_text_that_landed_among_the_bots_words_is_taken_out(
    tmp_path: Path, clock: FakeClock, heard: str
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.user_typed("Checkpoint 1.")  # Pipecat aggregates it with the bot's words
    answer(rec, heard)
    answer(rec, "Checkpoint 1. Again.")  # the bot's own words later are its own
    finish(rec)
    assert [t.text for t in load_session(tmp_path, SID).bot_turns] == [
        'You said: "Checkpoint 1.". Fine.',
        "Checkpoint 1. Again.",
    ]


def test_a_greeting_answers_no_one_and_has_no_latency(tmp_path: Path, clock: FakeClock) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    answer(rec, "Hello!")
    finish(rec)
    (turn,) = load_session(tmp_path, SID).bot_turns
    assert (turn.text, turn.reply_to, turn.latency_ms) == ("Hello!", None, None)


def test_each_turn_the_aggregator_ends_is_a_turn_of_its_own(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    answer(rec, "One.")
    answer(rec, "Two.")
    finish(rec)
    assert [t.text for t in load_session(tmp_path, SID).bot_turns] == ["One.", "Two."]


def test_a_latency_times_one_answer_only(tmp_path: Path, clock: FakeClock) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.user_turn("Hello.")
    rec.bot_started()
    rec.latency(T0 - 0.6, T0)
    rec.bot_audio()
    rec.bot_turn("Fine.", interrupted=False)
    answer(rec, "And you?")  # a second answer with no new speech (after a tool, say)
    finish(rec)
    assert [t.latency_ms for t in load_session(tmp_path, SID).bot_turns] == [600.0, None]


# ------------------------------------------------------------------------------------------------
# Tool calls and session events


@pytest.mark.parametrize("outcome", list(ToolOutcome))
def test_every_tool_outcome_is_recorded(
    tmp_path: Path, clock: FakeClock, outcome: ToolOutcome
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    error = None if outcome == ToolOutcome.OK else "the tool did not answer"
    rec.tool_call(tool_record(outcome, error=error))
    finish(rec)
    (call,) = load_session(tmp_path, SID).tool_calls
    assert (call["outcome"], call["error"], call["reply_to"]) == (str(outcome), error, None)


def test_a_huge_tool_result_is_stored_as_a_preview(tmp_path: Path, clock: FakeClock) -> None:
    rec = make_recorder(tmp_path, clock, max_result_chars=100)
    rec.start()
    big = {"rows": ["x" * 50] * 100}
    rec.tool_call(tool_record(result=big))
    finish(rec)
    (call,) = load_session(tmp_path, SID).tool_calls
    assert call["result"]["truncated"] is True
    assert call["result"]["preview"] == json.dumps(big)[:100]
    assert call["result"]["chars"] == len(json.dumps(big))


def test_huge_tool_arguments_are_stored_as_a_preview_like_results(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock, max_result_chars=100)
    rec.start()
    arguments = {"text": "remember " + "y" * 5000}
    rec.tool_call({**tool_record(), "arguments": arguments})
    rec.tool_call(tool_record())
    finish(rec)
    big, small = load_session(tmp_path, SID).tool_calls
    assert big["arguments"] == {
        "truncated": True,
        "chars": len(json.dumps(arguments)),
        "preview": json.dumps(arguments)[:100],
    }
    assert small["arguments"] == {"zone": "Asia/Tokyo"}


def test_session_events_are_recorded_with_their_detail(tmp_path: Path, clock: FakeClock) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    for kind in [SessionEvent.CONNECTED, SessionEvent.RECONNECTING, SessionEvent.RECONNECTED]:
        rec.session_event(str(kind), f"d-{kind}")
    rec.session_event(str(SessionEvent.FAILED), "3 failures")
    finish(rec)
    events = load_session(tmp_path, SID).session_events
    assert [(e["event"], e["detail"]) for e in events] == [
        ("started", ""),
        ("connected", "d-connected"),
        ("reconnecting", "d-reconnecting"),
        ("reconnected", "d-reconnected"),
        ("failed", "3 failures"),
        ("ended", ""),
    ]


def test_a_session_event_that_comes_before_the_start_is_kept_for_the_session(
    tmp_path: Path, clock: FakeClock
) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.session_event("connected", "first connection")  # the LLM connects while the pipeline starts
    rec.start()
    finish(rec)
    events = load_session(tmp_path, SID).session_events
    assert [(e["event"], e["detail"]) for e in events] == [
        ("started", ""),
        ("connected", "first connection"),
        ("ended", ""),
    ]


def test_nothing_is_recorded_after_the_session_ended(tmp_path: Path, clock: FakeClock) -> None:
    rec = make_recorder(tmp_path, clock)
    rec.start()
    rec.end("client left")
    rec.user_turn("Too late.")
    rec.session_event("connected")
    finish(rec)
    transcript = load_session(tmp_path, SID)
    assert [e["type"] for e in transcript.events] == ["session", "session"]
    assert transcript.ended == ended(detail="client left")


def test_old_sessions_are_deleted_when_a_session_starts(tmp_path: Path, clock: FakeClock) -> None:
    old = TranscriptStore(tmp_path).open_session("old-session", started_at=T0 - 40 * 86400)
    old.close(ts=T0 - 40 * 86400 + 60, summary={})
    rec = TranscriptRecorder(TranscriptStore(tmp_path, retention_days=30), SID, clock=clock)
    rec.start()
    finish(rec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.jsonl", f"{SID}.jsonl"]


# ------------------------------------------------------------------------------------------------
# Storage failures: logged once, the session goes on in memory


def test_an_unwritable_folder_keeps_the_transcript_in_memory(
    tmp_path: Path, clock: FakeClock, warnings: list[str]
) -> None:
    (tmp_path / "not-a-folder").write_text("")
    rec = make_recorder(tmp_path / "not-a-folder" / "transcripts", clock)
    rec.start()
    rec.user_heard()
    rec.user_turn("Hello.")
    rec.bot_started()
    rec.bot_audio()
    rec.tool_call(tool_record())  # finished while the bot was speaking
    rec.bot_turn("Hi.", interrupted=False)
    finish(rec)
    assert len(warnings) == 1 and "kept in memory only" in warnings[0]
    assert [e["type"] for e in rec.transcript.events] == [
        "session",
        "user_turn",
        "tool_call",
        "bot_turn",
        "session",
    ]
    assert rec.writer is not None and rec.writer.in_memory_only and rec.writer.written == 0


def test_a_disk_that_fills_mid_session_is_logged_once_and_the_rest_kept_in_memory(
    tmp_path: Path, clock: FakeClock, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if data.startswith(b'{"type":"bot_turn"') or b'"event":"ended"' in data:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(transcript_store.os, "write", write)
    rec = make_recorder(tmp_path, clock)
    rec.start()
    for question, reply in (("One.", "Two."), ("Three.", "Four.")):
        rec.user_heard()
        rec.user_turn(question)
        answer(rec, reply)
    finish(rec)
    monkeypatch.undo()
    assert len(warnings) == 1 and "disk full" in warnings[0]
    on_disk = load_session(tmp_path, SID)
    assert [e["type"] for e in on_disk.events] == ["session", "user_turn"]
    assert on_disk.skipped_lines == 0
    assert [t.text for t in rec.transcript.turns] == ["One.", "Two.", "Three.", "Four."]


# ------------------------------------------------------------------------------------------------
# Property: any order of events gives numbered turns in a file that matches memory

WORDS = st.text(alphabet="ab .?", min_size=0, max_size=6)
STEPS = st.one_of(
    st.tuples(st.just("heard"), st.just("")),
    st.tuples(st.just("user"), WORDS),
    st.tuples(st.just("start"), st.just("")),
    st.tuples(st.just("audio"), st.just("")),
    st.tuples(st.just("bot"), WORDS),
    st.tuples(st.just("cut"), WORDS),
    st.tuples(st.just("tool"), st.sampled_from([str(o) for o in ToolOutcome])),
    st.tuples(st.just("session"), st.sampled_from([str(k) for k in SessionEvent])),
    st.tuples(st.just("tick"), st.just("")),
)


def play(rec: TranscriptRecorder, clock: FakeClock, script: list[tuple[str, str]]) -> None:
    for step, arg in script:
        if step == "heard":
            rec.user_heard()
        elif step == "user":
            rec.user_turn(arg)
        elif step == "start":
            rec.bot_started()
        elif step == "audio":
            rec.bot_audio()
        elif step in ("bot", "cut"):
            rec.bot_turn(arg, interrupted=step == "cut")
        elif step == "tool":
            rec.tool_call(tool_record(ToolOutcome(arg)))
        elif step == "session":
            rec.session_event(arg)
        else:
            clock.advance(0.1)


class Model:
    """What a reader expects from a script, written from the recorder's rules alone."""

    def __init__(self) -> None:
        self.out: list[tuple[Any, ...]] = [("session", "started")]
        self.held: list[list[tuple[Any, ...]]] = []  # lines waiting for the next user turn
        self.now = 0
        self.heard_at: int | None = None  # when the uncommitted words were first heard
        self.started_at: int | None = None
        self.audio = False
        self.users = self.bots = 0

    def emit(self, rows: list[tuple[Any, ...]], since: int) -> None:
        if (self.heard_at is not None and self.heard_at <= since) or self.held:
            self.held.append(rows)
        else:
            self.out.extend(rows)

    def user(self, text: str) -> None:
        if not text.strip():
            return
        self.users += 1
        self.out.append(("user_turn", self.users, text.strip()))
        self.heard_at = None
        self.release()

    def bot(self, text: str, cut: bool) -> None:
        since = self.now if self.started_at is None else self.started_at
        self.started_at = None
        if text.strip() or self.audio:
            self.bots += 1
            rows = [("bot_turn", self.bots, text.strip(), cut)]
            self.emit([*rows, ("interruption", self.bots)] if cut else rows, since)
        self.audio = False

    def release(self) -> None:
        for rows in self.held:
            self.out.extend(rows)
        self.held.clear()


def expected_events(script: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """The transcript as a reader expects it, computed from the script alone."""
    m = Model()
    for step, arg in script:
        if step == "heard":
            m.heard_at = m.now if m.heard_at is None else m.heard_at
        elif step == "user":
            m.user(arg)
        elif step == "start":
            m.started_at = m.now
        elif step == "audio":
            m.audio = True
        elif step in ("bot", "cut"):
            m.bot(arg, step == "cut")
        elif step == "tool":
            m.emit([("tool_call", arg)], m.now)
        elif step == "session":
            m.out.append(("session", arg))
        elif step == "tick":
            m.now += 1
    m.release()
    return [*m.out, ("session", "ended")]


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
@given(script=st.lists(STEPS, max_size=30))
def test_any_order_of_events_gives_numbered_turns_in_a_file_that_matches_memory(
    script: list[tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        clock = FakeClock(T0)
        rec = make_recorder(Path(folder), clock)
        rec.start()
        play(rec, clock, script)
        finish(rec)
        transcript = load_session(folder, SID)
    assert as_read(transcript.events) == expected_events(script)
    assert [t.turn for t in transcript.user_turns] == list(range(1, len(transcript.user_turns) + 1))
    assert [t.turn for t in transcript.bot_turns] == list(range(1, len(transcript.bot_turns) + 1))
    assert transcript.events == rec.transcript.events  # what memory holds is what the disk holds
    assert not math.isnan(sum(e["ts"] for e in transcript.events))
