"""Conversations through the real SDK: speech in, tool calls, speech out, barge-in, held calls.

Issue 3, points 5 and 6: the emulator hears real speech (VAD and Whisper), answers with real speech
at 24 kHz whose transcription is what it said, calls declared tools and reads their results back,
and behaves as users report the real service behaves around interruptions and tool calls.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import load_wav
from emulator_helpers import (
    CALC_TOOL,
    MODEL,
    NATIVE_AUDIO_MODEL,
    SILENCE_1S,
    TIME_TOOL,
    audio_config,
    audio_parts,
    has_audio,
    input_transcript,
    interrupted,
    live,
    model_text,
    output_transcript,
    post,
    said,
    say_text,
    send_audio,
    summarize,
    text_config,
    tools,
    wait_session,
)
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.server import Running

pytestmark = pytest.mark.emulator

OUTPUT_RATE = 24000


def tool_call_of(message: types.LiveServerMessage) -> types.FunctionCall:
    assert message.tool_call and message.tool_call.function_calls, summarize([message])
    (call,) = message.tool_call.function_calls
    return call


def answer(call: types.FunctionCall, response: dict[str, Any], **kw: Any) -> types.FunctionResponse:
    return types.FunctionResponse(id=call.id, name=call.name, response=response, **kw)


def first_index(messages: list[types.LiveServerMessage], predicate: Any) -> int:
    for i, m in enumerate(messages):
        if predicate(m):
            return i
    raise AssertionError(f"no such message in {summarize(messages)}")


def mentions(text: str) -> Any:
    """A predicate: the message's text or output transcription contains `text`."""
    return lambda m: text.lower() in said([m]).lower()


async def session_of(r: Running, session: Any) -> dict[str, Any]:
    return await wait_session(r, lambda s: s["conversation_id"] == session.session_id and s["open"])


# ------------------------------------------------------------------ text


async def test_text_in_text_out(emulator: Running) -> None:
    async with live(emulator, text_config()) as (session, box):
        await say_text(session, "What is twelve times seven?")
        messages = await box.turn()
    assert "84" in model_text(messages)
    assert not any(has_audio(m) for m in messages)


async def test_usage_metadata_arrives_with_turn_complete(emulator: Running) -> None:
    async with live(emulator, text_config()) as (session, box):
        await say_text(session, "Hello, can you hear me?")
        messages = await box.turn()
    last = messages[-1]
    assert last.usage_metadata is not None, summarize(messages)
    usage = last.usage_metadata
    assert usage.prompt_token_count and usage.response_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.response_token_count
    assert not any(m.usage_metadata for m in messages[:-1])


# ------------------------------------------------------------------ speech


@pytest.mark.speech
async def test_a_spoken_time_question_calls_the_time_tool_and_speaks_its_result(
    emulator: Running,
) -> None:
    config = audio_config(tools=tools(TIME_TOOL))
    async with live(emulator, config) as (session, box):
        await send_audio(session, load_wav("what_time_tokyo.wav") + SILENCE_1S)
        before = await box.until(lambda m: m.tool_call)
        assert "tokyo" in input_transcript(before).lower()
        call = tool_call_of(before[-1])
        assert call.name == "get_time"
        assert call.args == {"city": "Tokyo"}
        await session.send_tool_response(
            function_responses=[answer(call, {"time": "22:15", "timezone": "Asia/Tokyo"})]
        )
        after = await box.turn()
    transcript = output_transcript(after)
    assert "22:15" in transcript
    blobs = [b for m in after for b in audio_parts(m)]
    assert blobs and {b.mime_type for b in blobs} == {"audio/pcm;rate=24000"}
    pcm = b"".join(b.data or b"" for b in blobs)
    assert len(pcm) % 2 == 0
    seconds = len(pcm) / 2 / OUTPUT_RATE
    words = len(transcript.split())
    # Real speech: roughly 0.15-1 s per word, and not silence.
    assert 0.15 * words < seconds < 1.0 * words + 1, (seconds, transcript)
    assert max(
        abs(int.from_bytes(pcm[i : i + 2], "little", signed=True)) for i in range(0, 48000, 2)
    )
    assert after[-1].usage_metadata is not None


@pytest.mark.speech
async def test_a_spoken_multiplication_calls_the_calculator(emulator: Running) -> None:
    config = text_config(tools=tools(TIME_TOOL, CALC_TOOL))
    async with live(emulator, config) as (session, box):
        await send_audio(session, load_wav("multiply.wav") + SILENCE_1S)
        call = tool_call_of((await box.until(lambda m: m.tool_call))[-1])
        assert call.name == "calculate"
        assert re.fullmatch(r"12\s*[*x×]\s*7", str((call.args or {})["expression"]))
        await session.send_tool_response(function_responses=[answer(call, {"result": 84})])
        assert "84" in model_text(await box.turn())


@pytest.mark.speech
async def test_hello_gets_a_spoken_reply_with_its_transcription(emulator: Running) -> None:
    async with live(emulator, audio_config()) as (session, box):
        await send_audio(session, load_wav("hello.wav") + SILENCE_1S)
        messages = await box.turn()
    assert "hello" in input_transcript(messages).lower()
    assert "hear" in output_transcript(messages).lower()
    assert sum(len(b.data or b"") for m in messages for b in audio_parts(m)) > OUTPUT_RATE


@pytest.mark.speech
async def test_with_automatic_detection_disabled_activity_start_and_end_bracket_the_turn(
    emulator: Running,
) -> None:
    config = audio_config(
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        )
    )
    pcm = load_wav("hello.wav") + SILENCE_1S  # ~1.9 s of trailing silence: VAD would end it
    async with live(emulator, config) as (session, box):
        await session.send_realtime_input(activity_start=types.ActivityStart())
        await send_audio(session, pcm)
        chunks = -(-len(pcm) // 3200)
        # All audio processed, yet the user is still speaking: no silence ended the turn.
        held = await wait_session(
            emulator,
            lambda s: (
                s["conversation_id"] == session.session_id and s["frames"].get("audio") == chunks
            ),
        )
        assert held["user_speaking"] is True
        assert held["history"] == []
        await session.send_realtime_input(activity_end=types.ActivityEnd())
        messages = await box.turn()
    assert "hello" in input_transcript(messages).lower()
    assert output_transcript(messages)


@pytest.mark.speech
async def test_audio_stream_end_flushes_a_turn_whose_silence_was_never_sent(
    emulator: Running,
) -> None:
    pcm = load_wav("hello.wav")[: int(1.95 * 16000) * 2]  # speech ends at ~1.9 s
    async with live(emulator, audio_config()) as (session, box):
        await send_audio(session, pcm)
        speaking = await wait_session(
            emulator,
            lambda s: (
                s["conversation_id"] == session.session_id
                and s["frames"].get("audio") == -(-len(pcm) // 3200)
            ),
        )
        assert speaking["user_speaking"] is True, "VAD ended the turn without enough silence"
        await session.send_realtime_input(audio_stream_end=True)
        messages = await box.turn()
    assert "hello" in input_transcript(messages).lower()
    assert output_transcript(messages)


@pytest.mark.speech
@pytest.mark.parametrize("modality", ["AUDIO", "TEXT"])
async def test_what_the_model_says_is_exactly_the_text_of_its_turn(
    emulator: Running, modality: str
) -> None:
    text = "First sentence here. Second one follows! Is this the third?"
    config = audio_config() if modality == "AUDIO" else text_config()
    async with live(emulator, config) as (session, box):
        await post(emulator, f"/emulator/sessions/{session.session_id}/say", {"text": text})
        messages = await box.turn()
        summary = await session_of(emulator, session)
    assert said(messages) == text
    assert summary["history"] == [{"role": "model", "text": text, "source": "model"}]


# ------------------------------------------------------------------ barge-in


@pytest.mark.speech
async def test_speech_while_the_model_talks_interrupts_it(realtime_emulator: Running) -> None:
    r = realtime_emulator
    async with live(r, audio_config()) as (session, box):
        await send_audio(session, load_wav("long_story.wav") + SILENCE_1S)
        await box.until(has_audio)
        await send_audio(session, load_wav("stop.wav") + SILENCE_1S)
        await box.until(interrupted)
        summary = await wait_session(
            r,
            lambda s: (
                s["conversation_id"] == session.session_id
                and any(t.get("interrupted") for t in s["history"])
            ),
        )
    story = next(t for t in summary["history"] if t.get("interrupted"))
    assert story["role"] == "model"
    assert "dragon" in story["text"].lower()
    assert summary["history"][0]["role"] == "user"
    assert "story" in summary["history"][0]["text"].lower()


@pytest.mark.speech
async def test_no_interruption_lets_the_model_finish_while_the_user_talks(
    realtime_emulator: Running,
) -> None:
    r = realtime_emulator
    config = audio_config(
        realtime_input_config=types.RealtimeInputConfig(
            activity_handling=types.ActivityHandling.NO_INTERRUPTION
        )
    )
    speech = "Here is a short announcement that keeps going for a while."
    stop = load_wav("stop.wav") + SILENCE_1S
    async with live(r, config) as (session, box):
        sid = session.session_id
        assert (await post(r, f"/emulator/sessions/{sid}/say", {"text": speech})).is_success
        head = await box.until(has_audio)
        await send_audio(session, stop)
        overlap = await wait_session(
            r,
            lambda s: (
                s["conversation_id"] == sid and s["frames"].get("audio") == -(-len(stop) // 3200)
            ),
        )
        assert overlap["model_speaking"], "the user's speech must overlap the model's"
        first = head + await box.turn()
        second = await box.until(lambda m: output_transcript([m]))  # the answer begins
        summary = await session_of(r, session)
    assert not any(interrupted(m) for m in first + second)
    assert output_transcript(first) == speech
    model_turns = [t for t in summary["history"] if t["role"] == "model"]
    assert model_turns[0] == {"role": "model", "text": speech, "source": "model"}
    assert any("stop" in t["text"].lower() for t in summary["history"] if t["role"] == "user")


# ------------------------------------------------------------------ blocking tool calls


async def test_a_blocking_call_holds_new_input_until_it_is_answered(emulator: Running) -> None:
    async with live(emulator, text_config(tools=tools(TIME_TOOL))) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of((await box.until(lambda m: m.tool_call))[-1])
        await say_text(session, "What is twelve times seven?")
        # The question is in the history: the server has taken it in while the call is pending.
        await wait_session(
            emulator,
            lambda s: (
                s["conversation_id"] == session.session_id
                and any("twelve" in t["text"] for t in s["history"])
            ),
        )
        await session.send_tool_response(function_responses=[answer(call, {"time": "22:15"})])
        messages = await box.until(mentions("84"))
    spoken = [m for m in messages if model_text([m])]
    assert "22:15" in model_text(spoken[:1]), "the first output after the call must be its result"
    assert "84" not in model_text(messages[: first_index(messages, mentions("22:15")) + 1])


@pytest.mark.speech
async def test_a_voice_barge_in_cancels_an_unanswered_blocking_call(emulator: Running) -> None:
    config = text_config(tools=tools(TIME_TOOL))
    async with live(emulator, config) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of((await box.until(lambda m: m.tool_call))[-1])
        await send_audio(session, load_wav("stop.wav") + SILENCE_1S)
        messages = await box.until(interrupted)
        summary = await session_of(emulator, session)
    cancellations = [m.tool_call_cancellation for m in messages if m.tool_call_cancellation]
    assert [c.ids for c in cancellations] == [[call.id]]
    assert first_index(messages, lambda m: m.tool_call_cancellation) < len(messages) - 1
    (record,) = summary["tool_calls"]
    assert (record["id"], record["status"], record["blocking"]) == (call.id, "cancelled", True)


async def test_non_blocking_declarations_block_on_gemini_3_1(emulator: Running) -> None:
    decl = TIME_TOOL.model_copy(update={"behavior": types.Behavior.NON_BLOCKING})
    async with live(emulator, text_config(tools=tools(decl)), model=MODEL) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        before = await box.until(lambda m: m.tool_call)
        summary = await session_of(emulator, session)
    assert summary["config"]["tools"] == [
        {"name": "get_time", "behavior": "NON_BLOCKING", "declared": "NON_BLOCKING"}
    ]
    assert [c["blocking"] for c in summary["tool_calls"]] == [True]
    assert model_text(before) == "", "a blocking call comes without a preamble"


# ------------------------------------------------------------------ non-blocking tool calls
# How their results are scheduled (SILENT, WHEN_IDLE, INTERRUPT) is tested over the models, this
# one included, in test_emulator_gemini38.py.


def _non_blocking_config() -> types.LiveConnectConfig:
    decl = TIME_TOOL.model_copy(update={"behavior": types.Behavior.NON_BLOCKING})
    return text_config(tools=tools(decl))


async def test_non_blocking_calls_let_the_model_go_on_talking(emulator: Running) -> None:
    async with live(emulator, _non_blocking_config(), model=NATIVE_AUDIO_MODEL) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        first = await box.turn()
        assert any(m.tool_call for m in first)
        assert model_text(first), "a non-blocking call comes with a preamble"
        await say_text(session, "What is twelve times seven?")
        assert "84" in model_text(await box.turn()), "new input is answered while the call runs"
        summary = await session_of(emulator, session)
    assert [(c["blocking"], c["status"]) for c in summary["tool_calls"]] == [(False, "pending")]


# ------------------------------------------------------------------ history and results


async def test_initial_history_in_client_content_with_turn_complete_is_answered_at_once(
    emulator: Running,
) -> None:
    config = text_config(history_config=types.HistoryConfig(initial_history_in_client_content=True))
    turns = [
        types.Content(role="user", parts=[types.Part(text="Hello there.")]),
        types.Content(role="model", parts=[types.Part(text="Hi! How can I help?")]),
        types.Content(role="user", parts=[types.Part(text="What is twelve times seven?")]),
    ]
    async with live(emulator, config) as (session, box):
        await session.send_client_content(turns=turns, turn_complete=True)
        messages = await box.turn()
        summary = await session_of(emulator, session)
    assert "84" in model_text(messages)
    assert [t["source"] for t in summary["history"]] == ["client_content"] * 3 + ["model"]
    assert "text" not in summary["frames"], "answered with no realtime input"


async def test_client_content_without_history_config_is_taken_mid_session_on_3_1(
    emulator: Running,
) -> None:
    # Google's 3.1 page now accepts client content with explicit roles for the whole session.
    async with live(emulator, text_config()) as (session, box):
        await say_text(session, "Hello, can you hear me?")
        await box.turn()
        await session.send_client_content(
            turns=[
                types.Content(role="user", parts=[types.Part(text="What is twelve times seven?")])
            ],
            turn_complete=True,
        )
        # Pipecat follows client content with a blank text on every 3.x model: nothing new.
        await say_text(session, " ")
        messages = await box.turn()
        # Turns are handled in order: a second answer to the content would come before this.
        await say_text(session, "What is two plus two?")
        following = model_text(await box.turn())
        summary = await session_of(emulator, session)
    assert "84" in model_text(messages)
    assert "4" in following and "84" not in following, following
    sources = ["text", "model", "client_content", "model", "text", "model"]
    assert [t["source"] for t in summary["history"]] == sources


scalars = st.one_of(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32).filter(lambda x: x != 0),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1),
)
results = st.dictionaries(
    st.from_regex(r"[a-z][a-z_]{0,10}[a-z]", fullmatch=True), scalars, min_size=1, max_size=4
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(result=results)
async def test_every_value_of_a_tool_result_reaches_the_model(
    emulator: Running, result: dict[str, Any]
) -> None:
    async with live(emulator, text_config(tools=tools(TIME_TOOL))) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of((await box.until(lambda m: m.tool_call))[-1])
        await session.send_tool_response(function_responses=[answer(call, result)])
        text = model_text(await box.turn())
    for value in result.values():
        assert str(value) in text, (result, text)
