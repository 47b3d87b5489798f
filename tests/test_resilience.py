"""Sessions that survive: goAway, dropped sockets, failed connects, tool cancellation (issue 6).

Every test runs the whole assistant bot (`build_assistant`: transport, aggregators, Gemini stage,
tools, RTVI) on an in-memory transport against the emulator, and injects faults through the
emulator's control API. The emulator's records say what the model heard and said; the pipeline's
frames and the RTVI messages say what the transcript and the browser were told.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import load_wav
from emulator_helpers import post
from google.genai.types import Blob, FunctionResponse, LiveServerContent, LiveServerMessage
from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.frames.frames import ErrorFrame, FunctionCallCancelFrame, UserMuteStartedFrame
from pipecat.services.llm_service import FunctionCallParams
from resilience_harness import INPUT_RATE, Bot, GateTool, run_bot, until

from bots.resilient_gemini import ResilientGeminiLiveLLMService
from emulator.server import Emulator, Running, start
from emulator.speech import split_sentences
from emulator.state import ToolCallRecord
from processors.frames import SessionEvent
from transcripts import list_sessions, load_session

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]


MODEL = "gemini-3.1-flash-live-preview"
QUICK_RETRIES = {"reconnect_base_delay_secs": 0.05, "reconnect_max_delay_secs": 0.4}


def tone(seconds: float, hz: float = 440.0) -> bytes:
    """A loud sine tone, 16 kHz PCM16: audible input that is not speech."""
    t = np.arange(int(INPUT_RATE * seconds)) / INPUT_RATE
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


async def drop(bot: Bot) -> None:
    await _control(bot, "drop")


async def go_away(bot: Bot, time_left_s: float) -> None:
    await _control(bot, "goaway", {"time_left_s": time_left_s})


async def _control(bot: Bot, action: str, body: dict[str, Any] | None = None) -> None:
    sid = bot.llm.session_id
    response = await post(bot.emulator, f"/emulator/sessions/{sid}/{action}", body)
    assert response.status_code == 200, response.text


async def call_tool(bot: Bot, name: str) -> ToolCallRecord:
    """Make the model call a tool now; return the emulator's record of the call."""
    conv = bot.conversation()
    assert conv is not None
    before = len(conv.tool_calls)
    await _control(bot, "tool_call", {"name": name, "args": {}})
    return await until(lambda: len(conv.tool_calls) > before and conv.tool_calls[-1], "a call")


def pending_blocking(bot: Bot) -> list[ToolCallRecord]:
    conv = bot.conversation()
    assert conv is not None
    return [c for c in conv.tool_calls if c.blocking and c.status == "pending"]


async def wait_connected(bot: Bot) -> None:
    """Wait until the bot has a socket it sends on directly, no switch pending, and a handle for
    its last turn."""
    await until(
        lambda: bot.llm._gate_open and bot.llm._goaway_deadline is None and bot.live() is not None,
        "a usable connection",
    )
    await bot.wait_idle_with_handle()


# --------------------------------------------------------------------------------------------
# Points 1, 2 and 7: faults in a row, the conversation goes on, no turn lost or repeated


async def test_ten_goaways_and_ten_drops_in_a_row_lose_and_repeat_no_turn(
    emulator: Running, tmp_path: Path
) -> None:
    async with run_bot(emulator, tmp_path) as bot:
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

        conv = bot.conversation()
        assert conv is not None
        assert bot.user_texts() == bot.asked, "every question reached the model exactly once"
        answers = [t for t in conv.history if t.role == "model"]
        assert len(answers) == len(bot.asked), "every question was answered exactly once"
        assert not [t.text for t in answers if t.interrupted], "no answer was cut off"

        # What the transcript will be built from: the bot's own context. Typed input passes
        # through to the assistant aggregator as well and lands between sentences, so each
        # spoken sentence is counted rather than each answer compared.
        def said() -> str:
            return " ".join(
                str(m.get("content") or "")
                for m in bot.context.get_messages()
                if isinstance(m, dict) and m.get("role") == "assistant"
            )

        sentences = Counter(s.strip() for t in answers for s in split_sentences(t.text))
        last = split_sentences(answers[-1].text)[0].strip()
        await until(lambda: last in said(), "the last answer in the bot's context")
        assert {s: said().count(s) for s in sentences} == dict(sentences), (
            "the bot's context has every spoken sentence exactly as often as the model said it"
        )

        connections = bot.connections()
        assert len(connections) == 21
        assert all(c.resumed_from for c in connections[1:]), "every reconnect resumed"
        assert {c.conv.id for c in connections if c.conv} == {conv.id}
        for old, new in itertools.pairwise(connections):
            assert old.closed_at is not None and old.closed_at <= new.opened_at, (
                "the old socket was closed before the session was resumed"
            )
        switched = connections[:10]
        assert all(c.close_code == 1000 for c in switched), "we left before goAway's time was up"
        assert all(c.close_code == 1006 for c in connections[10:20]), "the drops were drops"

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
        assert [t.text.strip() for t in transcript.bot_turns] == [a.text.strip() for a in answers]
        assert not [t for t in transcript.bot_turns if t.interrupted]
        events = Counter(e["event"] for e in transcript.session_events)
        assert events["resumed"] == 10 and events["reconnected"] == 10, events


async def test_a_goaway_followed_by_silence_still_switches_before_time_left(
    emulator: Running, tmp_path: Path
) -> None:
    """A tool that runs past the deadline keeps the turn open, and the server says nothing more:
    only the timer can move the session, and the tool's result goes to the new socket."""
    gate = GateTool()
    async with run_bot(emulator, tmp_path, extra_tools=[gate.function()]) as bot:
        call = await call_tool(bot, gate.name)
        await until(gate.started.is_set, "the tool to start")
        spoken = bot.model_turns()
        old = bot.live()
        assert old is not None
        sent_at = time.time()
        await go_away(bot, 2.0)
        new = await until(
            lambda: next((c for c in bot.connections() if c.resumed_from), None),
            "a resumed connection",
        )
        # The switch is due a safety margin (1 s, at most half of timeLeft) before time is up.
        assert old.closed_at is not None and old.closed_at - sent_at < 2.0
        assert old.close_code == 1000, "we closed it; the emulator would have closed with 1001"
        assert new.opened_at - sent_at < 2.0
        (resumed,) = await until(lambda: bot.log.events(SessionEvent.RESUMED), "RESUMED")
        assert resumed.detail == "switched connections after goAway"
        assert not bot.log.server_messages("service-reconnecting"), "a switch is not an outage"

        gate.opened.set()
        await until(lambda: call.status == "answered", "the tool result to reach the model")
        assert call.responses[-1]["response"] == {"gate": "open"}
        assert new.frames["tool_response"] == 1 and old.frames["tool_response"] == 0
        await until(lambda: bot.model_turns() > spoken, "the model to speak the result")


async def test_an_answer_still_going_at_the_goaway_deadline_is_cut_a_margin_before_it(
    realtime_emulator: Running, tmp_path: Path
) -> None:
    async with run_bot(realtime_emulator, tmp_path) as bot:
        await bot.ask("Tell me a long story about a dragon.")
        await until(lambda: bot.llm._bot_is_responding, "the story to start")
        old = bot.live()
        assert old is not None
        sent_at = time.time()
        await go_away(bot, 2.0)
        await until(lambda: old.closed_at is not None, "the switch")
        assert old.close_code == 1000 and 0.9 < old.closed_at - sent_at < 2.0
        # What the old connection said (a resume may drop it from the conversation's history:
        # the handle it resumes with was issued before the story).
        story = old.spoken
        assert len(story) == 1 and story[0].interrupted, "the story was cut by the switch"
        await until(lambda: not bot.llm._bot_is_responding, "the bot turn to be closed")
        await wait_connected(bot)
        await bot.ask("Stop.")
        await bot.wait_answered("Stop.")
        assert [e.kind for e in bot.log.events()][-1] == SessionEvent.RESUMED


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
        assert error.fatal and error.error == failed.detail
        assert "after 3 retries" in error.error and "HTTP 503" in error.error
        (rtvi_error,) = bot.transport.output().rtvi("error")
        assert rtvi_error["data"] == {"error": error.error, "fatal": True}
        assert not log.server_messages("service-reconnected")
        assert not emulator.emulator.sessions, "no connection was ever accepted"


# --------------------------------------------------------------------------------------------
# Point 3: tool calls cancelled by the model, by an interruption, and by a timeout


async def test_a_tool_cancelled_by_a_voice_barge_in_is_cancelled_here_and_not_answered(
    emulator: Running, tmp_path: Path
) -> None:
    gate = GateTool()
    async with run_bot(emulator, tmp_path, extra_tools=[gate.function()]) as bot:
        told: list[list[str]] = []
        bot.llm.add_event_handler(
            "on_tool_calls_cancelled_by_model", lambda _, ids: told.append(ids)
        )
        call = await call_tool(bot, gate.name)
        await until(gate.started.is_set, "the tool to start")
        await bot.speak(load_wav("stop.wav"), silence_secs=1.0)
        await until(lambda: gate.cancelled, "the running tool to be cancelled")
        assert gate.cancelled == [call.id] and not gate.finished
        (cancel,) = await until(lambda: bot.log.of(FunctionCallCancelFrame), "the cancel frame")
        assert cancel.tool_call_id == call.id
        assert told == [[call.id]], "a registry hears that the model cancelled it"
        assert call.status == "cancelled" and call.responses == [], (
            "no answer to a call the model dropped"
        )
        await until(
            lambda: (
                (c := bot.conversation()) is not None
                and any(t.role == "user" and t.source == "audio" for t in c.history)
                and c.history[-1].role == "model"
            ),
            "the barge-in to be answered",
        )
        assert not pending_blocking(bot)


async def test_a_server_interruption_cancels_a_running_call_and_answers_it(
    emulator: Running, tmp_path: Path
) -> None:
    """The emulator cancels blocking calls itself on a barge-in, so the `interrupted` that comes
    without a cancellation (as on a real server, or on a call the server does not track) is
    injected into the service's message handler."""
    gate = GateTool()
    async with run_bot(emulator, tmp_path, extra_tools=[gate.function()]) as bot:
        call = await call_tool(bot, gate.name)
        await until(gate.started.is_set, "the tool to start")
        spoken = bot.model_turns()
        await bot.llm._handle_server_message(
            LiveServerMessage(server_content=LiveServerContent(interrupted=True))
        )
        await until(lambda: call.status == "answered", "the cancelled call to be answered")
        assert gate.cancelled == [call.id]
        assert call.responses[-1]["response"] == {"error": "The function call was cancelled."}
        assert [f.tool_call_id for f in bot.log.of(FunctionCallCancelFrame)] == [call.id]
        assert not pending_blocking(bot), "no blocking call is left holding the model"
        await until(lambda: bot.model_turns() > spoken, "the model to speak after the answer")
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
        call = await call_tool(bot, "slow_lookup")
        await until(lambda: call.status == "answered", "the timed-out call to be answered")
        (response,) = call.responses
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
        call = await call_tool(bot, "stubborn_lookup")
        await until(lambda: call.status == "answered", "the call to be answered")
        (response,) = call.responses
        assert response["response"] == {
            "error": "The function timed out after 2.3 seconds and was cancelled."
        }
        assert [f.tool_call_id for f in bot.log.of(FunctionCallCancelFrame)] == [call.id]
        assert not pending_blocking(bot)


# --------------------------------------------------------------------------------------------
# Points 1 and 2: what is sent during a reconnect is delivered


async def test_a_tool_result_and_user_text_sent_during_a_reconnect_are_both_delivered(
    emulator: Running, tmp_path: Path
) -> None:
    gate = GateTool()
    options = {"reconnect_base_delay_secs": 0.2, "reconnect_jitter": 0.0}
    async with run_bot(emulator, tmp_path, options=options, extra_tools=[gate.function()]) as bot:
        call = await call_tool(bot, gate.name)
        await until(gate.started.is_set, "the tool to start")
        await post(emulator, "/emulator/faults", {"refuse_for_s": 1.0})
        await drop(bot)
        await until(lambda: bot.log.events(SessionEvent.RECONNECTING), "the outage")
        gate.opened.set()
        await bot.ask("Did my result arrive?")
        await until(lambda: len(bot.llm._queue) >= 2, "both to be queued")
        assert [q.kind for q in bot.llm._queue][-2:] == ["tool_response", "text"]

        await until(lambda: call.status == "answered", "the queued tool result to arrive")
        await bot.wait_answered("Did my result arrive?")
        assert call.responses == [
            {"response": {"gate": "open"}, "scheduling": "WHEN_IDLE", "will_continue": False}
        ]
        assert bot.user_texts() == ["Did my result arrive?"]
        assert len(bot.log.events(SessionEvent.RECONNECTING)) >= 2, "it was refused at least once"
        assert bot.log.events(SessionEvent.RECONNECTED)
        assert not bot.log.of(ErrorFrame)


# --------------------------------------------------------------------------------------------
# Point 4: audioStreamEnd


async def test_audio_stream_end_is_sent_once_when_the_microphone_stops_and_rearmed_by_audio(
    emulator: Running, tmp_path: Path
) -> None:
    options = {"quiet_mic_timeout_secs": 0.3}
    async with run_bot(emulator, tmp_path, options=options) as bot:
        live = bot.live()
        assert live is not None
        await bot.speak(load_wav("hello.wav"))
        await until(lambda: live.frames["audio_stream_end"] == 1, "audioStreamEnd")
        # The flush ends the turn the trailing silence never ended.
        await until(
            lambda: any(t.source == "audio" for t in live.conv.history if live.conv), "a turn"
        )
        quiet_until = time.monotonic() + 1.0
        await until(lambda: time.monotonic() > quiet_until, "a quiet second")
        assert live.frames["audio_stream_end"] == 1, "once per pause"

        await bot.speak(load_wav("hello.wav")[:16000])
        await until(lambda: live.frames["audio_stream_end"] == 2, "a second audioStreamEnd")


async def test_digital_silence_counts_as_quiet_and_is_held_back_after_the_stream_ends(
    emulator: Running, tmp_path: Path
) -> None:
    """A muted WebRTC track keeps sending frames of zeros; any audio re-opens Gemini's stream."""
    options = {"quiet_mic_timeout_secs": 0.3}
    async with run_bot(emulator, tmp_path, options=options) as bot:
        live = bot.live()
        assert live is not None
        await bot.speak(load_wav("hello.wav"))
        await until(lambda: live.frames["audio_stream_end"] == 1, "audioStreamEnd")
        sent = live.frames["audio"]
        await bot.speak(b"", silence_secs=1.0)  # 50 frames of zeros
        await bot.speak(tone(0.1))  # 5 frames of sound
        await until(lambda: live.frames["audio"] >= sent + 5, "the speech after the silence")
        assert live.frames["audio"] == sent + 5, "the zeros were not sent"
        await until(lambda: live.frames["audio_stream_end"] == 2, "the next pause")


async def test_muting_the_user_sends_audio_stream_end_at_once(
    emulator: Running, tmp_path: Path
) -> None:
    options = {"quiet_mic_timeout_secs": 60.0}
    async with run_bot(emulator, tmp_path, options=options) as bot:
        live = bot.live()
        assert live is not None
        await bot.speak(load_wav("hello.wav")[:16000])
        await until(lambda: live.frames["audio"] >= 25, "the audio")
        await bot.worker.queue_frame(UserMuteStartedFrame())
        await until(lambda: live.frames["audio_stream_end"] == 1, "audioStreamEnd on mute")


# --------------------------------------------------------------------------------------------
# Point 5: resumption handles past their lifetime, or refused


async def test_an_expired_handle_falls_back_to_a_fresh_session_seeded_with_the_conversation(
    emulator: Running, tmp_path: Path
) -> None:
    options = {"resumption_handle_ttl_secs": 0.3, "quiet_mic_timeout_secs": 0.3}
    async with run_bot(emulator, tmp_path, options=options) as bot:
        first = bot.conversation()
        assert first is not None
        await bot.speak(load_wav("hello.wav"))
        await until(lambda: [t.role for t in first.history] == ["user", "model"], "a voice turn")
        said = [(t.role, t.text) for t in first.history]
        await bot.wait_idle_with_handle()  # the handle issued after that turn
        await until(
            lambda: time.monotonic() - bot.llm._handle_received_at > 0.3, "the handle to expire"
        )
        await drop(bot)
        await until(lambda: bot.conversation() is not first, "a new conversation")
        second = bot.conversation()
        assert second is not None
        new = bot.live()
        assert new is not None and new.resumed_from is None
        await until(lambda: len(second.history) >= 2, "the seed")
        assert [(t.role, t.text) for t in second.history] == said
        assert {t.source for t in second.history} == {"client_content"}
        (event,) = bot.log.events(SessionEvent.RECONNECTED)
        assert event.detail == "started a fresh session seeded with the conversation so far"
        await wait_connected(bot)
        await bot.ask("Do you still know what I said?")
        await bot.wait_answered("Do you still know what I said?")


async def test_a_handle_refused_after_an_emulator_restart_falls_back_to_seeding_history(
    cert_dir: Path, tmp_path: Path
) -> None:
    first = await start(Emulator(pace=0, connection_lifetime_s=None), cert_dir=cert_dir)
    port = first.port
    options = {**QUICK_RETRIES, "quiet_mic_timeout_secs": 0.3}
    second: Running | None = None
    try:
        async with run_bot(first, tmp_path, options=options) as bot:
            await bot.speak(load_wav("hello.wav"))
            conv = bot.conversation()
            assert conv is not None
            await until(lambda: [t.role for t in conv.history] == ["user", "model"], "a turn")
            said = [(t.role, t.text) for t in conv.history]
            await bot.wait_idle_with_handle()

            await first.stop()
            await until(lambda: bot.log.events(SessionEvent.RECONNECTING), "the outage")
            second = await start(
                Emulator(pace=0, connection_lifetime_s=None), cert_dir=cert_dir, port=port
            )
            bot.emulator = second
            await until(lambda: bot.live() is not None, "a session on the new emulator")
            new = bot.conversation()
            assert new is not None and new.id != conv.id
            await until(lambda: len(new.history) >= 2, "the seed")
            assert [(t.role, t.text) for t in new.history] == said
            refused = [s for s in second.emulator.sessions.values() if s.close_code == 1008]
            assert len(refused) == 1 and "resumption handle" in refused[0].close_reason
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


def service(**options: Any) -> ResilientGeminiLiveLLMService:
    return ResilientGeminiLiveLLMService(
        api_key="unused",
        settings=ResilientGeminiLiveLLMService.Settings(model="models/" + MODEL),
        **options,
    )


def pcm_blob(seconds: float) -> Blob:
    return Blob(data=b"\x01\x00" * int(INPUT_RATE * seconds), mime_type="audio/pcm;rate=16000")


async def test_the_outbox_drops_only_old_audio_and_stale_video_and_keeps_the_order() -> None:
    llm = service(max_queued_audio_secs=1.0)
    send = llm._submit
    await send("send_realtime_input", {"audio": pcm_blob(0.5)})
    await send("send_realtime_input", {"text": "first"})
    await send("send_realtime_input", {"video": Blob(data=b"1", mime_type="image/jpeg")})
    await send("send_realtime_input", {"audio": pcm_blob(0.5)})
    response = FunctionResponse(id="call-1", name="tool", response={"ok": True})
    await send("send_tool_response", {"function_responses": response})
    await send("send_realtime_input", {"video": Blob(data=b"2", mime_type="image/jpeg")})
    await send("send_realtime_input", {"audio": pcm_blob(0.5)})
    await send("send_client_content", {"turn_complete": True})
    await send("send_realtime_input", {"audio_stream_end": True})
    kinds = [(q.kind, q.kwargs.get("text") or q.kwargs.get("video")) for q in llm._queue]
    assert [k for k, _ in kinds] == [
        "text",
        "audio",
        "tool_response",
        "video",
        "audio",
        "client_content",
        "audio_stream_end",
    ], "the oldest audio and the older video frame went; text and the result stayed, in order"
    assert kinds[3][1].data == b"2"
    assert llm._dropped_audio_secs == pytest.approx(0.5)


def test_retries_back_off_exponentially_with_jitter_up_to_the_ceiling() -> None:
    llm = service(
        reconnect_base_delay_secs=0.25, reconnect_max_delay_secs=2.0, reconnect_jitter=0.2
    )
    assert llm._retry_delay(1, after_healthy=True) == 0.0, "one lost socket is retried at once"
    for attempt, nominal in [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (5, 2.0), (9, 2.0)]:
        delays = [llm._retry_delay(attempt, after_healthy=False) for _ in range(200)]
        assert min(delays) >= nominal * 0.8 - 1e-9
        assert max(delays) <= min(2.0, nominal * 1.2) + 1e-9
        assert len(set(delays)) > 50, "jittered"
