"""Sessions that survive: goAway, dropped sockets, failed connects, tool cancellation (issue 6).

Every test runs the whole assistant bot (`build_assistant`: transport, aggregators, Gemini stage,
tools, RTVI) on an in-memory transport against the emulator, and injects faults through the
emulator's control API. The emulator's control API says what the model heard and said; the
pipeline's frames and the RTVI messages say what the transcript and the browser were told.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import load_wav
from emulator_helpers import post
from google.genai.types import Blob, FunctionResponse
from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    FunctionCallCancelFrame,
    LLMFullResponseEndFrame,
    UserMuteStartedFrame,
)
from pipecat.services.llm_service import FunctionCallParams
from resilience_harness import INPUT_RATE, Bot, GateTool, Summary, run_bot

from bots.gemini_live.outbox import Outbox, Outgoing
from bots.gemini_live.supervisor import RetryPolicy
from bots.gemini_live.wire import SessionFacade
from emulator.server import Emulator, Running, start
from emulator.speech import split_sentences
from processors.frames import SessionEvent
from testkit.clock import FakeClock
from testkit.waiting import until
from transcripts import list_sessions, load_session

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]


MODELS = ("gemini-3.8-live", "gemini-3.1-flash-live-preview")
on_both_models = pytest.mark.parametrize("model", MODELS)
"""The goAway, drop and resume tests run on both live models: on 3.8 (the default) Pipecat
declares the test's tools BLOCKING, on 3.1 every call blocks. The other tests run on the default
model."""
QUICK_RETRIES = {"reconnect_base_delay_secs": 0.05, "reconnect_max_delay_secs": 0.4}


def tone(seconds: float, hz: float = 440.0) -> bytes:
    """A loud sine tone, 16 kHz PCM16: audible input that is not speech."""
    t = np.arange(int(INPUT_RATE * seconds)) / INPUT_RATE
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


async def drop(bot: Bot) -> None:
    await bot.control("drop")


async def go_away(bot: Bot, time_left_s: float) -> None:
    await bot.control("goaway", {"time_left_s": time_left_s})


def pending_blocking(bot: Bot) -> list[dict[str, Any]]:
    calls = (bot.live() or {}).get("tool_calls", [])
    return [c for c in calls if c["blocking"] and c["status"] == "pending"]


async def start_a_long_story(bot: Bot) -> tuple[Summary, list[str]]:
    """Ask for a long story and wait until it plays; the connection, and the handles it had
    issued before (an answer that ends issues one more)."""
    await bot.view.fresh()
    old = bot.live()
    assert old is not None
    await bot.ask("Tell me a long story about a dragon.")
    await until(lambda: bot.llm.status.bot_responding, "the story to start")
    return old, old["handles"]


async def wait_connected(bot: Bot) -> None:
    """Wait until the bot has a socket it sends on directly, no switch pending, and a handle for
    its last turn."""
    await until(
        lambda: (
            bot.llm.status.ready and not bot.llm.status.goaway_pending and bot.live() is not None
        ),
        "a usable connection",
    )
    await bot.wait_idle_with_handle()


# --------------------------------------------------------------------------------------------
# Points 1, 2 and 7: faults in a row, the conversation goes on, no turn lost or repeated


@on_both_models
async def test_ten_goaways_and_ten_drops_in_a_row_lose_and_repeat_no_turn(
    emulator: Running, tmp_path: Path, model: str
) -> None:
    async with run_bot(emulator, tmp_path, gemini_model=model) as bot:
        # Half of the goAways come while an answer is still being prepared (the model's first
        # audio is 150 ms late), so the switch has to wait for the end of the turn.
        await post(emulator, "/emulator/latency", {"first_audio_ms": 150})
        for i in range(10):
            await wait_connected(bot)
            question = f"Checkpoint {i} after a goAway."
            if i % 2:
                await bot.ask(question)
                await go_away(bot, 10.0)
            else:
                await go_away(bot, 10.0)
                await bot.ask(question)
            await bot.wait_answered(question)
        for i in range(10):
            await wait_connected(bot)
            await drop(bot)
            question = f"Checkpoint {i} after a drop."
            await bot.ask(question)
            await bot.wait_answered(question)
        await wait_connected(bot)
        await bot.view.fresh()

        history = bot.history()
        assert bot.user_texts() == bot.asked, "every question reached the model exactly once"
        answers = [t for t in history if t["role"] == "model"]
        assert len(answers) == len(bot.asked), "every question was answered exactly once"
        assert not [t["text"] for t in answers if t.get("interrupted")], "no answer was cut off"

        # What the transcript will be built from: the bot's own context. Typed input passes
        # through to the assistant aggregator as well and lands between sentences, so each
        # spoken sentence is counted rather than each answer compared.
        def said() -> str:
            return " ".join(
                str(m.get("content") or "")
                for m in bot.context.get_messages()
                if isinstance(m, dict) and m.get("role") == "assistant"
            )

        sentences = Counter(s.strip() for t in answers for s in split_sentences(t["text"]))
        last = split_sentences(answers[-1]["text"])[0].strip()
        await until(lambda: last in said(), "the last answer in the bot's context")
        assert {s: said().count(s) for s in sentences} == dict(sentences), (
            "the bot's context has every spoken sentence exactly as often as the model said it"
        )

        connections = bot.connections()
        assert len(connections) == 21
        assert all(c["resumed_from"] for c in connections[1:]), "every reconnect resumed"
        assert {c["conversation_id"] for c in connections} == {bot.llm.session_id}
        for old, new in itertools.pairwise(connections):
            assert old["closed_at"] is not None and old["closed_at"] <= new["opened_at"], (
                "the old socket was closed before the session was resumed"
            )
        switched = connections[:10]
        assert all(c["close_code"] == 1000 for c in switched), "we left before goAway's time"
        assert all(c["close_code"] == 1006 for c in connections[10:20]), "the drops were drops"

        log = bot.log
        assert len(log.events(SessionEvent.RESUMED)) == 10
        assert len(log.events(SessionEvent.RECONNECTED)) == 10
        assert len(log.events(SessionEvent.RECONNECTING)) == 10
        assert len(log.events(SessionEvent.CONNECTED)) == 1
        assert [m["attempt"] for m in log.server_messages("service-reconnecting")] == [1] * 10
        assert len(log.server_messages("service-reconnected")) == 10
        assert not log.of(ErrorFrame)
        assert not bot.transport.output().rtvi("error")

        # The transcript on disk has every answer once, in order, and every switch and reconnect.
        folder = tmp_path / "transcripts"
        await until(
            lambda: any(
                len(load_session(folder, s.session_id).bot_turns) >= len(answers)
                for s in list_sessions(folder)
            ),
            "every answer in the transcript",
        )
        (session,) = list_sessions(folder)
        transcript = load_session(folder, session.session_id)
        assert [t.text.strip() for t in transcript.bot_turns] == [
            a["text"].strip() for a in answers
        ]
        assert not [t for t in transcript.bot_turns if t.interrupted]
        events = Counter(e["event"] for e in transcript.session_events)
        assert events["resumed"] == 10 and events["reconnected"] == 10, events


@on_both_models
async def test_a_goaway_followed_by_silence_still_switches_before_time_left(
    emulator: Running, tmp_path: Path, model: str
) -> None:
    """A tool that runs past the deadline keeps the turn open, and the server says nothing more:
    only the timer can move the session, and the tool's result goes to the new socket."""
    gate = GateTool()
    async with run_bot(
        emulator, tmp_path, extra_tools=[gate.function()], gemini_model=model
    ) as bot:
        call_id = await bot.call_tool(gate.name)
        await until(gate.started.is_set, "the tool to start")
        spoken = bot.model_turns()
        old = bot.live()
        assert old is not None
        await go_away(bot, 2.0)
        new = await until(
            lambda: next((c for c in bot.connections() if c["resumed_from"]), None),
            "a resumed connection",
        )
        # The emulator closes a connection with 1001 when goAway's timeLeft is up; a close of
        # ours (1000) came before it. When the switch is due is `GoAwayPlan`'s (unit-tested
        # with a fake clock: a safety margin of 1 s, at most half of timeLeft).
        closed = bot.connection(old["id"])
        assert closed["close_code"] == 1000, (
            "we closed it; the emulator would have closed with 1001"
        )
        assert closed["closed_at"] <= new["opened_at"], "closed before the session was resumed"
        (resumed,) = await until(lambda: bot.log.events(SessionEvent.RESUMED), "RESUMED")
        assert resumed.detail == "switched connections after goAway"
        assert not bot.log.server_messages("service-reconnecting"), "a switch is not an outage"

        gate.opened.set()
        await until(
            lambda: bot.tool_call(call_id).get("status") == "answered",
            "the tool result to reach the model",
        )
        assert bot.tool_call(call_id)["responses"][-1]["response"] == {"gate": "open"}
        await bot.view.fresh()
        new, old = bot.connection(new["id"]), bot.connection(old["id"])
        assert new["frames"].get("tool_response") == 1 and not old["frames"].get("tool_response")
        await until(lambda: bot.model_turns() > spoken, "the model to speak the result")


@on_both_models
async def test_an_answer_still_going_at_the_goaway_deadline_is_cut_a_margin_before_it(
    realtime_emulator: Running, tmp_path: Path, model: str
) -> None:
    async with run_bot(realtime_emulator, tmp_path, gemini_model=model) as bot:
        old, handles_before = await start_a_long_story(bot)
        await go_away(bot, 2.0)
        closed = await until(
            lambda: (c := bot.connection(old["id"]))["closed_at"] is not None and c,
            "the switch",
        )
        # The emulator's own close at the end of timeLeft would be 1001. The story was cut by
        # the switch: an answer that ends issues a handle, and none was issued after it began.
        assert closed["close_code"] == 1000
        await until(lambda: len(bot.connections()) == 2, "the resumed connection")
        await bot.view.fresh()
        assert bot.connection(old["id"])["handles"] == handles_before, "the story was cut"
        assert bot.connections()[-1]["resumed_from"] == handles_before[-1]
        await until(lambda: not bot.llm.status.bot_responding, "the bot turn to be closed")
        await wait_connected(bot)
        await bot.ask("Stop.")
        await bot.wait_answered("Stop.")
        assert [e.kind for e in bot.log.events()][-1] == SessionEvent.RESUMED


async def test_a_session_ended_mid_answer_lets_it_go_on_briefly_then_closes_it(
    realtime_emulator: Running, tmp_path: Path
) -> None:
    options = {"finish_speaking_secs": 0.2}
    async with run_bot(realtime_emulator, tmp_path, options=options) as bot:
        old, handles_before = await start_a_long_story(bot)
        await bot.worker.queue_frame(EndFrame(reason="the test is over"))
        await bot.wait_ended()
        assert bot.log.of(LLMFullResponseEndFrame), "the answer's turn was closed"
        await bot.view.refresh()
        closed = bot.connection(old["id"])
        assert closed["close_code"] == 1000, "a normal close"
        assert closed["handles"] == handles_before, "the story was cut, not told to its end"


# --------------------------------------------------------------------------------------------
# Point 2: connections refused for a while, and for good


async def test_a_first_connect_refused_for_a_while_is_retried_until_accepted(
    emulator: Running, tmp_path: Path
) -> None:
    await post(emulator, "/emulator/faults", {"refuse_connections": 3})
    async with run_bot(emulator, tmp_path, options=QUICK_RETRIES) as bot:
        await bot.ask("Are you there now?")
        await bot.wait_answered("Are you there now?")
        log = bot.log
        assert [m["attempt"] for m in log.server_messages("service-reconnecting")] == [1, 2, 3]
        assert all(m["max_attempts"] == 6 for m in log.server_messages("service-reconnecting"))
        assert "HTTP 503" in log.server_messages("service-reconnecting")[0]["reason"]
        assert len(log.server_messages("service-reconnected")) == 1
        kinds = [e.kind for e in log.events()]
        assert kinds == [SessionEvent.RECONNECTING] * 3 + [SessionEvent.CONNECTED]
        assert not log.of(ErrorFrame)


async def test_an_emulator_that_never_accepts_ends_the_session_with_a_fatal_error(
    emulator: Running, tmp_path: Path
) -> None:
    await post(emulator, "/emulator/faults", {"refuse_for_s": 120})
    options = {**QUICK_RETRIES, "reconnect_attempts": 3}
    async with run_bot(emulator, tmp_path, options=options, ready=False) as bot:
        await bot.wait_ended()
        log = bot.log
        assert [m["attempt"] for m in log.server_messages("service-reconnecting")] == [1, 2, 3]
        (failed,) = log.events(SessionEvent.FAILED)
        (error,) = log.of(ErrorFrame)
        # Fatal, the way Pipecat 1.14 says it: the stage can no longer do its job.
        assert error.processor is bot.llm and not bot.llm.is_usable
        assert error.error == failed.detail
        assert "after 3 retries" in error.error and "HTTP 503" in error.error
        (rtvi_error,) = bot.transport.output().rtvi("error")
        assert rtvi_error["data"] == {"error": error.error, "fatal": True}
        assert not log.server_messages("service-reconnected")
        assert await bot.view.refresh() == [], "no connection was ever accepted"


# --------------------------------------------------------------------------------------------
# Point 3: tool calls cancelled by the model, by an interruption, and by a timeout


@pytest.mark.speech
async def test_a_tool_cancelled_by_a_voice_barge_in_is_cancelled_here_and_not_answered(
    emulator: Running, tmp_path: Path
) -> None:
    gate = GateTool()
    async with run_bot(emulator, tmp_path, extra_tools=[gate.function()]) as bot:
        told: list[list[str]] = []
        bot.llm.add_event_handler(
            "on_tool_calls_cancelled_by_model", lambda _, ids: told.append(ids)
        )
        call_id = await bot.call_tool(gate.name)
        await until(gate.started.is_set, "the tool to start")
        await bot.speak(load_wav("stop.wav"), silence_secs=1.0)
        await until(lambda: gate.cancelled, "the running tool to be cancelled")
        assert gate.cancelled == [call_id] and not gate.finished
        (cancel,) = await until(lambda: bot.log.of(FunctionCallCancelFrame), "the cancel frame")
        assert cancel.tool_call_id == call_id
        assert told == [[call_id]], "a registry hears that the model cancelled it"
        await until(
            lambda: (
                any(t["role"] == "user" and t.get("source") == "audio" for t in bot.history())
                and bot.history()[-1]["role"] == "model"
            ),
            "the barge-in to be answered",
        )
        call = bot.tool_call(call_id)
        assert call["status"] == "cancelled" and call["responses"] == [], (
            "no answer to a call the model dropped"
        )
        assert not pending_blocking(bot)


async def test_a_server_interruption_cancels_a_running_call_and_answers_it(
    realtime_emulator: Running, tmp_path: Path
) -> None:
    """The emulator cancels blocking calls itself on a voice barge-in, so the `interrupted` that
    comes without a cancellation (as on a real server, or for a call the server does not track)
    is brought about by typing while the model speaks: Gemini interrupts itself for typed input
    and cancels nothing."""
    gate = GateTool()
    async with run_bot(realtime_emulator, tmp_path, extra_tools=[gate.function()]) as bot:
        call_id = await bot.call_tool(gate.name)
        await until(gate.started.is_set, "the tool to start")
        await bot.control("say", {"text": "Let me tell you a long story while that runs. " * 4})
        await until(lambda: (bot.live() or {}).get("model_speaking"), "the model to speak")
        await bot.ask("Never mind.")
        await until(
            lambda: bot.tool_call(call_id).get("status") == "answered",
            "the cancelled call to be answered",
        )
        assert gate.cancelled == [call_id]
        assert bot.tool_call(call_id)["responses"][-1]["response"] == {
            "error": "The function call was cancelled."
        }
        assert [f.tool_call_id for f in bot.log.of(FunctionCallCancelFrame)] == [call_id]
        assert not pending_blocking(bot), "no blocking call is left holding the model"

        # The typed question is held while the blocking call is pending (it is in the history),
        # so a model turn after it comes only once the call has been answered.
        await bot.wait_answered("Never mind.")
        await wait_connected(bot)
        await bot.ask("Is the conversation still going?")
        await bot.wait_answered("Is the conversation still going?")


@tool_options(timeout_secs=0.5)
async def slow_lookup(params: FunctionCallParams) -> None:
    """Look something up, more slowly than this tool is allowed to take."""
    await asyncio.Event().wait()


async def test_a_blocking_tool_timed_out_here_is_answered_and_the_next_question_is_too(
    emulator: Running, tmp_path: Path
) -> None:
    async with run_bot(emulator, tmp_path, extra_tools=[slow_lookup]) as bot:
        spoken = bot.model_turns()
        call_id = await bot.call_tool("slow_lookup")
        await until(
            lambda: bot.tool_call(call_id).get("status") == "answered",
            "the timed-out call to be answered",
        )
        (response,) = bot.tool_call(call_id)["responses"]
        # The assistant's tool registry answers at its deadline; Pipecat's own deadline (which
        # this service answers, see the next test) is only its backstop.
        assert response["response"] == {"error": "The tool slow_lookup timed out after 0.5 s."}
        assert not pending_blocking(bot)
        await until(lambda: bot.model_turns() > spoken, "the model to speak about the timeout")
        await wait_connected(bot)
        await bot.ask("What is twelve plus seven?")
        await bot.wait_answered("What is twelve plus seven?")


@tool_options(timeout_secs=0.3)
async def stubborn_lookup(params: FunctionCallParams) -> None:
    """Look something up, ignoring the first request to stop."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()
    await asyncio.Event().wait()


async def test_a_tool_that_outlives_its_deadline_is_still_answered_by_pipecats_backstop(
    emulator: Running, tmp_path: Path
) -> None:
    """The registry's deadline cannot stop a tool that swallows its cancellation; Pipecat's later
    deadline cancels it, and this service answers the call, or Gemini would wait for good."""
    async with run_bot(emulator, tmp_path, extra_tools=[stubborn_lookup]) as bot:
        call_id = await bot.call_tool("stubborn_lookup")
        await until(
            lambda: bot.tool_call(call_id).get("status") == "answered", "the call to be answered"
        )
        (response,) = bot.tool_call(call_id)["responses"]
        assert response["response"] == {
            "error": "The function timed out after 2.3 seconds and was cancelled."
        }
        assert [f.tool_call_id for f in bot.log.of(FunctionCallCancelFrame)] == [call_id]
        assert not pending_blocking(bot)


# --------------------------------------------------------------------------------------------
# Points 1 and 2: what is sent during a reconnect is delivered


@on_both_models
async def test_a_tool_result_and_user_text_sent_during_a_reconnect_are_both_delivered(
    emulator: Running, tmp_path: Path, model: str
) -> None:
    gate = GateTool()
    options = {"reconnect_base_delay_secs": 0.2, "reconnect_jitter": 0.0}
    async with run_bot(
        emulator, tmp_path, options=options, extra_tools=[gate.function()], gemini_model=model
    ) as bot:
        call_id = await bot.call_tool(gate.name)
        await until(gate.started.is_set, "the tool to start")
        await post(emulator, "/emulator/faults", {"refuse_for_s": 1.0})
        await drop(bot)
        await until(lambda: bot.log.events(SessionEvent.RECONNECTING), "the outage")
        gate.opened.set()
        await bot.ask("Did my result arrive?")
        await until(lambda: len(bot.llm.status.queued) >= 2, "both to be queued")
        assert list(bot.llm.status.queued)[-2:] == ["tool_response", "text"]

        await until(
            lambda: bot.tool_call(call_id).get("status") == "answered",
            "the queued tool result to arrive",
        )
        await bot.wait_answered("Did my result arrive?")
        assert bot.tool_call(call_id)["responses"] == [
            {"response": {"gate": "open"}, "scheduling": "WHEN_IDLE", "will_continue": False}
        ]
        assert bot.user_texts() == ["Did my result arrive?"]
        assert len(bot.log.events(SessionEvent.RECONNECTING)) >= 2, "it was refused at least once"
        assert bot.log.events(SessionEvent.RECONNECTED)
        assert not bot.log.of(ErrorFrame)


# --------------------------------------------------------------------------------------------
# Point 4: audioStreamEnd


def said_in_context(bot: Bot) -> bool:
    """Both halves of the last turn are in the bot's context (what a fresh session is seeded
    with): the aggregators write them a little after the model's turn ends."""
    roles = [m.get("role") for m in bot.context.get_messages() if isinstance(m, dict)]
    return "user" in roles and "assistant" in roles


def frames(bot: Bot, kind: str) -> int:
    """How many client messages of one kind the current connection has received."""
    return int((bot.live() or {}).get("frames", {}).get(kind, 0))


async def stream_ends(bot: Bot, count: int, what: str) -> None:
    """Wait until the current connection has received `count` audioStreamEnd messages."""
    await until(lambda: frames(bot, "audio_stream_end") == count, what)


async def voice_turn(bot: Bot) -> list[tuple[str, str]]:
    """Ask a question aloud and wait until its turn is done, covered by a handle, and in the
    bot's context; return the turn as the model's history has it, (role, text) each."""
    await bot.speak(load_wav("hello.wav"))
    await until(lambda: [t["role"] for t in bot.history()] == ["user", "model"], "a turn")
    said = [(t["role"], t["text"]) for t in bot.history()]
    await bot.wait_idle_with_handle()  # the handle issued after that turn
    await until(lambda: said_in_context(bot), "the voice turn in the bot's context")
    return said


@pytest.fixture
def quiet_mic_secs() -> float:
    """How long the microphone stays quiet before the stage ends Gemini's audio stream."""
    return 0.3


@pytest.fixture
async def bot(emulator: Running, tmp_path: Path, quiet_mic_secs: float) -> AsyncIterator[Bot]:
    """The bot, ending Gemini's audio stream once the microphone is quiet `quiet_mic_secs`."""
    options = {"quiet_mic_timeout_secs": quiet_mic_secs}
    async with run_bot(emulator, tmp_path, options=options) as bot:
        yield bot


@pytest.mark.speech
async def test_audio_stream_end_is_sent_once_when_the_microphone_stops_and_rearmed_by_audio(
    bot: Bot,
) -> None:
    await bot.speak(load_wav("hello.wav"))
    await stream_ends(bot, 1, "audioStreamEnd")
    # The flush ends the turn the trailing silence never ended.
    await until(lambda: any(t.get("source") == "audio" for t in bot.history()), "a turn from audio")
    # Once per pause: digital silence that follows neither re-opens the stream nor ends it
    # again (the watchdog's once-per-pause rule is unit-tested with a fake clock).
    passed = bot.passed.audio_frames
    await bot.speak(b"", silence_secs=1.0)  # 50 frames of zeros
    await until(lambda: bot.passed.audio_frames >= passed + 50, "the silence to pass")
    await bot.view.fresh()
    assert frames(bot, "audio_stream_end") == 1, "once per pause"
    assert bot.llm.status.audio_stream_ended

    await bot.speak(load_wav("hello.wav")[:16000])
    await stream_ends(bot, 2, "a second audioStreamEnd")


@pytest.mark.speech
async def test_digital_silence_counts_as_quiet_and_is_held_back_after_the_stream_ends(
    bot: Bot,
) -> None:
    """A muted WebRTC track keeps sending frames of zeros; any audio re-opens Gemini's stream."""
    await bot.speak(load_wav("hello.wav"))
    await stream_ends(bot, 1, "audioStreamEnd")
    await bot.view.fresh()
    sent = frames(bot, "audio")
    await bot.speak(b"", silence_secs=1.0)  # 50 frames of zeros
    await bot.speak(tone(0.1))  # 5 frames of sound
    received = await until(
        lambda: frames(bot, "audio") >= sent + 5 and frames(bot, "audio"),
        "the speech after the silence",
    )
    assert received == sent + 5, "the zeros were not sent"
    await stream_ends(bot, 2, "the next pause")


@pytest.mark.speech
@pytest.mark.parametrize("quiet_mic_secs", [60.0], ids=["quiet-for-a-minute"])
async def test_muting_the_user_sends_audio_stream_end_at_once(
    bot: Bot,
) -> None:
    await bot.speak(load_wav("hello.wav")[:16000])
    await until(lambda: frames(bot, "audio") >= 25, "the audio")
    await bot.worker.queue_frame(UserMuteStartedFrame())
    await stream_ends(bot, 1, "audioStreamEnd on mute")


# --------------------------------------------------------------------------------------------
# Point 5: resumption handles past their lifetime, or refused


@pytest.mark.speech
@on_both_models
async def test_an_expired_handle_falls_back_to_a_fresh_session_seeded_with_the_conversation(
    emulator: Running, tmp_path: Path, model: str
) -> None:
    clock = FakeClock()
    options = {"resumption_handle_ttl_secs": 0.3, "quiet_mic_timeout_secs": 0.3, "clock": clock}
    async with run_bot(emulator, tmp_path, options=options, gemini_model=model) as bot:
        first = bot.llm.session_id
        said = await voice_turn(bot)
        clock.advance(1.0)  # the handle is now past its lifetime
        await drop(bot)
        await until(lambda: bot.llm.session_id != first, "a new conversation")
        new = await until(bot.live, "the new connection")
        assert new["resumed_from"] is None
        await until(lambda: len(bot.history()) >= 2, "the seed")
        assert [(t["role"], t["text"]) for t in bot.history()] == said
        assert {t.get("source") for t in bot.history()} == {"client_content"}
        (event,) = bot.log.events(SessionEvent.RECONNECTED)
        assert event.detail == "started a fresh session seeded with the conversation so far"
        await wait_connected(bot)
        await bot.ask("Do you still know what I said?")
        await bot.wait_answered("Do you still know what I said?")


@pytest.mark.speech
@on_both_models
async def test_a_handle_refused_after_an_emulator_restart_falls_back_to_seeding_history(
    cert_dir: Path, tmp_path: Path, model: str
) -> None:
    first = await start(Emulator(pace=0, connection_lifetime_s=None), cert_dir=cert_dir)
    port = first.port
    options = {**QUICK_RETRIES, "quiet_mic_timeout_secs": 0.3}
    second: Running | None = None
    try:
        async with run_bot(first, tmp_path, options=options, gemini_model=model) as bot:
            said = await voice_turn(bot)
            old = bot.llm.session_id

            await first.stop()
            await until(lambda: bot.log.events(SessionEvent.RECONNECTING), "the outage")
            second = await start(
                Emulator(pace=0, connection_lifetime_s=None), cert_dir=cert_dir, port=port
            )
            bot.emulator = second
            await bot.view.switch(second)
            await until(lambda: bot.live() is not None, "a session on the new emulator")
            assert bot.llm.session_id != old
            await until(lambda: len(bot.history()) >= 2, "the seed")
            assert [(t["role"], t["text"]) for t in bot.history()] == said
            refused = [s for s in bot.connections() if s["close_code"] == 1008]
            assert len(refused) == 1 and "resumption handle" in refused[0]["close_reason"]
            (event,) = bot.log.events(SessionEvent.RECONNECTED)
            assert event.detail == "started a fresh session seeded with the conversation so far"
            await wait_connected(bot)
            await bot.ask("Are we still talking?")
            await bot.wait_answered("Are we still talking?")
            assert not bot.log.of(ErrorFrame)
    finally:
        if second is not None:
            await second.stop()
        else:
            await first.stop()


# --------------------------------------------------------------------------------------------
# The outbox bound and the retry schedule, without a server


def pcm_blob(seconds: float) -> Blob:
    return Blob(data=b"\x01\x00" * int(INPUT_RATE * seconds), mime_type="audio/pcm;rate=16000")


async def test_the_outbox_drops_only_old_audio_and_stale_video_and_keeps_the_order() -> None:
    async def no_socket(item: Outgoing) -> bool:
        return False

    outbox = Outbox(no_socket, max_audio_secs=1.0)

    async def closed() -> None:
        pass

    session = SessionFacade(outbox, lambda: None, closed)
    await session.send_realtime_input(audio=pcm_blob(0.5))
    await session.send_realtime_input(text="first")
    await session.send_realtime_input(video=Blob(data=b"1", mime_type="image/jpeg"))
    await session.send_realtime_input(audio=pcm_blob(0.5))
    response = FunctionResponse(id="call-1", name="tool", response={"ok": True})
    await session.send_tool_response(function_responses=response)
    await session.send_realtime_input(video=Blob(data=b"2", mime_type="image/jpeg"))
    await session.send_realtime_input(audio=pcm_blob(0.5))
    await session.send_client_content(turn_complete=True)
    await session.send_realtime_input(audio_stream_end=True)
    queued = outbox.queued()
    assert [q.kind for q in queued] == [
        "text",
        "audio",
        "tool_response",
        "video",
        "audio",
        "client_content",
        "audio_stream_end",
    ], "the oldest audio and the older video frame went; text and the result stayed, in order"
    assert queued[3].payload[1]["video"].data == b"2"
    assert outbox.dropped_audio_secs == pytest.approx(0.5)


def test_retries_back_off_exponentially_with_jitter_up_to_the_ceiling() -> None:
    policy = RetryPolicy(base_delay_secs=0.25, max_delay_secs=2.0, jitter=0.2)
    rng = random.Random(7)
    assert policy.delay(1, after_healthy=True, rng=rng) == 0.0, "one lost socket: at once"
    for attempt, nominal in [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (5, 2.0), (9, 2.0)]:
        delays = [policy.delay(attempt, after_healthy=False, rng=rng) for _ in range(200)]
        assert min(delays) >= nominal * 0.8 - 1e-9
        assert max(delays) <= min(2.0, nominal * 1.2) + 1e-9
        assert len(set(delays)) > 50, "jittered"
