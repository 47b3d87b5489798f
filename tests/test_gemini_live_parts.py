"""The Gemini Live stage's parts alone, on a fake clock: retries, goAway, handles, turns,
the microphone watchdog, the record of tool calls, and how the SDK's sends are described."""

from __future__ import annotations

import asyncio
import random
import ssl
import types
from typing import Any

import numpy as np
import pytest
from google.genai import errors as genai_errors
from google.genai.types import (
    Blob,
    Content,
    FunctionCall,
    FunctionResponse,
    LiveServerContent,
    LiveServerMessage,
    LiveServerToolCall,
    Part,
    Transcription,
)
from hypothesis import given
from hypothesis import strategies as st
from pipecat.utils.network import exponential_backoff_time

from bots.gemini_live.calls import CallBook
from bots.gemini_live.errors import Verdict, classify
from bots.gemini_live.goaway import GoAwayPlan, duration_secs
from bots.gemini_live.handles import ResumptionHandles
from bots.gemini_live.messages import ServerMessages
from bots.gemini_live.microphone import MicWatchdog
from bots.gemini_live.supervisor import RetryPolicy
from bots.gemini_live.turns import REPLY_GRACE_SECS, TurnState
from bots.gemini_live.wire import describe_send, rate_of
from observers.loudness import SPEECH_RMS
from testkit.clock import FakeClock

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------------------------
# Retries


@given(
    attempt=st.integers(min_value=1, max_value=30),
    base=st.floats(min_value=0.0, max_value=2.0),
    ceiling=st.floats(min_value=0.0, max_value=10.0),
    seed=st.integers(),
)
def test_without_jitter_the_delay_is_pipecats_exponential_backoff(
    attempt: int, base: float, ceiling: float, seed: int
) -> None:
    policy = RetryPolicy(base_delay_secs=base, max_delay_secs=ceiling, jitter=0.0)
    expected = exponential_backoff_time(
        attempt, min_wait=0.0, max_wait=max(base, ceiling), multiplier=base
    )
    assert policy.delay(attempt, after_healthy=False, rng=random.Random(seed)) == expected


@given(attempt=st.integers(min_value=1, max_value=12), seed=st.integers())
def test_jitter_stays_within_its_share_and_under_the_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_delay_secs=0.25, max_delay_secs=2.0, jitter=0.2)
    nominal = min(2.0, 0.25 * 2 ** (attempt - 1))
    delay = policy.delay(attempt, after_healthy=False, rng=random.Random(seed))
    assert nominal * 0.8 - 1e-9 <= delay <= min(2.0, nominal * 1.2) + 1e-9


def test_only_the_first_retry_after_a_healthy_connection_is_immediate() -> None:
    policy = RetryPolicy(base_delay_secs=0.25, jitter=0.0)
    rng = random.Random(1)
    assert policy.delay(1, after_healthy=True, rng=rng) == 0.0
    assert policy.delay(2, after_healthy=True, rng=rng) == 0.5
    assert policy.delay(1, after_healthy=False, rng=rng) == 0.25


# --------------------------------------------------------------------------------------------
# What a failure means


def api_error(code: int) -> genai_errors.APIError:
    return genai_errors.APIError(code, {"error": {"message": "closed", "status": "X"}})


@pytest.mark.parametrize(
    ("error", "resuming", "opened", "verdict"),
    [
        (api_error(1008), True, False, Verdict.HANDLE_REFUSED),
        (api_error(1008), False, False, Verdict.PERMANENT),
        (api_error(1007), False, False, Verdict.PERMANENT),
        (api_error(1011), False, False, Verdict.RETRY),
        (api_error(1008), True, True, Verdict.RETRY),
        (ssl.SSLCertVerificationError("bad certificate"), False, False, Verdict.PERMANENT),
        (ConnectionRefusedError(), False, False, Verdict.RETRY),
        (TimeoutError(), True, False, Verdict.RETRY),
    ],
    ids=[
        "handle-refused",
        "setup-refused",
        "bad-field",
        "internal-error",
        "refused-after-open",
        "bad-certificate",
        "connection-refused",
        "connect-timeout",
    ],
)
def test_a_failure_is_retried_unless_retrying_cannot_help(
    error: Exception, resuming: bool, opened: bool, verdict: Verdict
) -> None:
    assert classify(error, resuming=resuming, opened=opened) is verdict


# --------------------------------------------------------------------------------------------
# goAway


def test_the_goaway_switch_is_due_a_margin_before_time_left_runs_out() -> None:
    clock = FakeClock()
    plan = GoAwayPlan(1.0, clock=clock)
    start = clock.now
    assert plan.announce("10s") == start + 9.0
    assert plan.deadline == start + 10.0


def test_on_short_notice_the_margin_is_at_most_half_of_time_left() -> None:
    clock = FakeClock()
    assert GoAwayPlan(1.0, clock=clock).announce("2s") == clock.now + 1.0
    assert GoAwayPlan(1.0, clock=clock).announce("0.5s") == clock.now + 0.25


def test_a_later_goaway_never_moves_the_deadline_back_but_an_earlier_one_does() -> None:
    clock = FakeClock()
    plan = GoAwayPlan(1.0, clock=clock)
    plan.announce("10s")
    clock.advance(1.0)
    assert plan.announce("20s") is None, "the first deadline stands"
    assert plan.announce("3s") == clock.now + 2.0
    plan.clear()
    assert plan.deadline is None


def test_a_goaway_with_no_time_left_is_left_soon() -> None:
    clock = FakeClock()
    assert GoAwayPlan(1.0, clock=clock).announce(None) == clock.now + 1.0
    assert duration_secs("9.5s") == 9.5 and duration_secs("soon") is None


# --------------------------------------------------------------------------------------------
# Handles and turns


def test_a_handle_is_used_for_its_lifetime_and_then_forgotten() -> None:
    clock = FakeClock()
    handles = ResumptionHandles(60.0, clock=clock)
    assert handles.usable() is None
    handles.received("h1")
    clock.advance(59.0)
    assert handles.usable() == "h1"
    clock.advance(1.0)
    assert handles.usable() is None and handles.latest is None


def test_a_handle_covers_the_last_turn_until_the_conversation_moves_on() -> None:
    handles = ResumptionHandles(clock=FakeClock())
    handles.received("h1")
    assert handles.covers_last_turn
    handles.outdated()
    assert not handles.covers_last_turn and handles.latest == "h1"
    handles.received("h2")
    assert handles.covers_last_turn


def boundary(turns: TurnState, **overrides: bool) -> bool:
    state = {"blocking_call_running": False, "user_speaking": False, "handle_covers_turn": True}
    return turns.at_boundary(**{**state, **overrides})


def test_a_turn_boundary_needs_a_silent_model_no_blocking_call_a_quiet_user_and_a_handle() -> None:
    turns = TurnState(clock=FakeClock())
    assert boundary(turns)
    assert not boundary(turns, blocking_call_running=True)
    assert not boundary(turns, user_speaking=True)
    assert not boundary(turns, handle_covers_turn=False)
    turns.bot_started()
    assert not boundary(turns)
    turns.bot_stopped()
    assert boundary(turns)


def test_a_reply_due_holds_the_boundary_for_a_grace_period() -> None:
    clock = FakeClock()
    turns = TurnState(clock=clock)
    turns.input_sent()
    assert not boundary(turns)
    clock.advance(REPLY_GRACE_SECS)
    assert boundary(turns), "no reply came: the switch goes ahead"
    turns.input_sent()
    turns.reply_started()
    assert boundary(turns)


def _dispatched() -> Any:
    """What the stage's parts hand Pipecat: the messages its service gets to dispatch. (Built
    without a class, so the contract test's scan does not take these Pipecat names for ours.)"""
    messages: list[LiveServerMessage] = []

    async def dispatch(message: LiveServerMessage) -> None:
        messages.append(message)

    async def nothing() -> None:
        pass

    return types.SimpleNamespace(
        messages=messages, _handle_server_message=dispatch, _handle_interruption=nothing
    )


class _Quiet:
    """A supervisor and tool control that have nothing to do in these tests."""

    def go_away(self, _time_left: object) -> None:
        pass

    def turn_completed(self) -> None:
        pass

    async def cancelled_by_model(self, _ids: list[str]) -> None:
        pass

    async def interrupted(self) -> None:
        pass


def reading(turns: TurnState) -> tuple[ServerMessages, Any]:
    service, quiet = _dispatched(), _Quiet()
    messages = ServerMessages(
        service=service,  # type: ignore[arg-type]
        supervisor=quiet,  # type: ignore[arg-type]
        handles=ResumptionHandles(clock=FakeClock()),
        turns=turns,
        calls=CallBook(),
        tools=quiet,  # type: ignore[arg-type]
        input_sent=lambda: None,
    )
    return messages, service


def said(text: str, **content: Any) -> LiveServerMessage:
    return LiveServerMessage(
        server_content=LiveServerContent(
            model_turn=Content(role="model", parts=[Part(text=text)]), **content
        )
    )


def ended(**content: Any) -> LiveServerMessage:
    return LiveServerMessage(server_content=LiveServerContent(**content))


async def test_the_rest_of_an_answer_cut_off_in_the_pipeline_is_dropped_until_its_turn_ends() -> (
    None
):
    turns = TurnState(clock=FakeClock())
    messages, service = reading(turns)
    await messages.handle(said("Once upon a time"))
    turns.bot_started()
    turns.interrupted_here()  # a local VAD heard the user while the model was still answering
    assert turns.cut_off and not turns.bot_responding
    service.messages.clear()

    await messages.handle(
        said(
            "and then the dragon",
            output_transcription=Transcription(text="and then the dragon"),
            input_transcription=Transcription(text="stop"),
        )
    )
    call = LiveServerMessage(
        tool_call=LiveServerToolCall(function_calls=[FunctionCall(id="c1", name="calculate")])
    )
    await messages.handle(call)
    await messages.handle(ended(turn_complete=True))
    await messages.handle(said("Okay, I'll stop."))

    dropped, kept_call, turn_end, next_answer = service.messages
    content = dropped.server_content
    assert content is not None and content.model_turn is None
    assert content.output_transcription is None
    assert content.input_transcription is not None, "the user's words are not the answer's"
    assert kept_call is call, "a tool call is never dropped: the model waits for its answer"
    assert turn_end.server_content is not None and turn_end.server_content.turn_complete
    assert next_answer.server_content is not None and next_answer.server_content.model_turn
    assert turns.dropped == 1 and not turns.cut_off


async def test_the_models_own_interrupted_ends_what_is_dropped_too() -> None:
    turns = TurnState(clock=FakeClock())
    messages, service = reading(turns)
    turns.bot_started()
    turns.interrupted_here()
    await messages.handle(ended(interrupted=True))
    assert not turns.cut_off
    await messages.handle(said("Okay."))
    assert service.messages[-1].server_content is not None
    assert service.messages[-1].server_content.model_turn is not None


async def test_an_interruption_after_the_models_turn_ended_does_not_cut_off_the_next_answer() -> (
    None
):
    turns = TurnState(clock=FakeClock())
    messages, service = reading(turns)
    await messages.handle(said("Checkpoint 3."))
    turns.bot_started()
    await messages.handle(ended(turn_complete=True))  # Pipecat may hold the turn open a while
    turns.interrupted_here()  # the next question interrupts what Pipecat still holds
    assert not turns.cut_off
    await messages.handle(said("Checkpoint 4."))
    content = service.messages[-1].server_content
    assert content is not None and content.model_turn is not None, "the next answer is kept"


async def test_the_echo_of_the_models_own_interrupted_does_not_cut_off_the_next_answer() -> None:
    turns = TurnState(clock=FakeClock())
    messages, service = reading(turns)
    await messages.handle(said("Once upon a time"))
    turns.bot_started()
    await messages.handle(ended(interrupted=True))  # the model heard the user and stopped
    await messages.handle(said("Okay."))  # its next answer begins
    turns.bot_started()
    turns.interrupted_here()  # Pipecat's broadcast of that interrupted, back down the pipeline
    assert not turns.cut_off
    await messages.handle(said("What would you like instead?"))
    content = service.messages[-1].server_content
    assert content is not None and content.model_turn is not None, "the answer is kept"


async def test_an_interruption_between_answers_drops_nothing() -> None:
    """TEXT modality's usual case: Gemini's turn was complete long before Piper stopped."""
    turns = TurnState(clock=FakeClock())
    messages, service = reading(turns)
    turns.bot_started()
    turns.bot_stopped()
    turns.interrupted_here()
    assert not turns.cut_off
    await messages.handle(said("Okay, I'll stop."))
    assert service.messages[-1].server_content is not None
    assert service.messages[-1].server_content.model_turn is not None
    assert turns.dropped == 0


# --------------------------------------------------------------------------------------------
# The microphone watchdog


def loud(seconds: float = 0.02) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def quiet_noise(seconds: float = 0.02) -> bytes:
    """Audible (not digital silence) but below the speech threshold."""
    samples = np.full(int(16000 * seconds), int(SPEECH_RMS / 2), dtype="<i2")
    return samples.tobytes()


ZEROS = b"\x00\x00" * 320


class Ended:
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.event = asyncio.Event()

    async def __call__(self, why: str) -> None:
        self.reasons.append(why)
        self.event.set()


def spawn(coro: Any, name: str) -> asyncio.Task[None]:
    return asyncio.create_task(coro, name=name)


async def test_audio_stream_end_is_sent_once_per_pause_and_rearmed_by_audible_audio() -> None:
    ended = Ended()
    mic = MicWatchdog(60.0, end_stream=ended, spawn=spawn)
    assert mic.observe(loud()) is False
    await mic.end_stream("the user is muted")
    await mic.end_stream("the user is muted")
    assert ended.reasons == ["the user is muted"], "once per pause"
    assert mic.stream_ended
    assert mic.observe(ZEROS) is True, "digital silence after the end is held back"
    assert mic.observe(quiet_noise()) is False and not mic.stream_ended, "audio re-opens it"
    await mic.end_stream("the user is muted")
    assert len(ended.reasons) == 2
    await mic.stop()


async def test_the_watchdog_ends_the_stream_when_only_digital_silence_arrives() -> None:
    ended = Ended()
    mic = MicWatchdog(0.05, end_stream=ended, spawn=spawn)
    mic.observe(loud())
    for _ in range(3):
        assert mic.observe(ZEROS) is False, "before the end, silence is sent on"
    await asyncio.wait_for(ended.event.wait(), 10)
    assert ended.reasons == ["no microphone audio for 0.05s"]
    await mic.stop()


def test_the_user_counts_as_speaking_for_a_second_after_a_loud_frame() -> None:
    clock = FakeClock()
    mic = MicWatchdog(1.0, end_stream=Ended(), spawn=lambda coro, name: _closed(coro), clock=clock)
    mic.observe(quiet_noise())
    assert not mic.user_speaking()
    mic.observe(loud())
    assert mic.user_speaking()
    clock.advance(1.0)
    assert not mic.user_speaking()


class _Done:
    def done(self) -> bool:
        return True


def _closed(coro: Any) -> Any:
    coro.close()  # no event loop in this test: the timer is not run
    return _Done()


# --------------------------------------------------------------------------------------------
# The record of tool calls


def test_a_call_is_answered_once_and_never_after_the_model_cancelled_it() -> None:
    book = CallBook()
    assert book.may_answer("a", is_final=False), "progress of a NON_BLOCKING call"
    assert book.may_answer("a", is_final=True)
    assert not book.may_answer("a", is_final=True), "one final answer"
    book.cancelled_by_model(["b"])
    assert not book.may_answer("b", is_final=True)
    assert not book.needs_answer_after_cancel("b") and not book.needs_answer_after_cancel("a")
    assert book.needs_answer_after_cancel("c")


def test_calls_of_an_earlier_session_are_stale_in_a_fresh_one() -> None:
    book = CallBook()
    book.issued(["old"])
    book.new_session()
    book.issued(["new"])
    assert book.stale(("old", "new", "unknown")) == ["old"]


def test_only_a_running_blocking_call_holds_the_turn() -> None:
    book = CallBook()
    book.started("n", "notify", cancel_on_interruption=False)
    assert not book.blocking_running()
    book.started("b", "lookup", cancel_on_interruption=True)
    assert book.blocking_running() and book.non_blocking("n") and not book.non_blocking("b")
    assert book.running_names(cancel_on_interruption=True) == ["lookup [b]"]
    book.finished("b")
    assert not book.blocking_running()


def test_a_second_cancel_of_the_same_call_is_noticed_in_each_direction() -> None:
    book = CallBook()
    assert book.first_cancel("a", downstream=True)
    assert book.first_cancel("a", downstream=False)
    assert not book.first_cancel("a", downstream=True)
    assert not book.first_cancel("a", downstream=False)


def test_the_record_of_calls_is_bounded() -> None:
    book = CallBook(max_calls=3)
    book.issued(["a", "b", "c", "d"])
    book.new_session()
    assert book.stale(("a", "b", "c", "d")) == ["b", "c", "d"], "the oldest was forgotten"


# --------------------------------------------------------------------------------------------
# The SDK's sends, as the outbox sees them


def test_each_sdk_send_gets_its_outbox_kind_its_audio_and_the_calls_it_answers() -> None:
    pcm = Blob(data=b"\x00\x00" * 24000, mime_type="audio/pcm;rate=48000")
    response = FunctionResponse(id="call-1", name="tool", response={})
    assert describe_send("send_realtime_input", {"audio": pcm}) == ("audio", 0.5, ())
    assert describe_send("send_tool_response", {"function_responses": [response]}) == (
        "tool_response",
        0.0,
        ("call-1",),
    )
    assert describe_send("send_client_content", {"turns": []})[0] == "client_content"
    assert describe_send("send_realtime_input", {"text": "hi"})[0] == "text"
    assert describe_send("send_realtime_input", {"audio_stream_end": True})[0] == (
        "audio_stream_end"
    )
    assert describe_send("send_realtime_input", {"activity_start": {}})[0] == "activity"
    assert rate_of("audio/pcm") == 16000 and rate_of("audio/pcm;rate=24000") == 24000
