"""The emulator plays the Gemini 3.8 Live family as Google documents it, against the real SDK.

Issue 12, point 1: `gemini-3.8-live` and `gemini-3.8-live-extended-thinking` next to
`gemini-3.1-flash-live-preview`. The 3.8 family answers only in AUDIO, so a test that has the
model answer on 3.8 runs Piper and carries the speech marker; setups that are refused, and setups
that are only read, need no answer. Where the models differ, the tests run over all three. How
the result of a NON_BLOCKING call is scheduled (SILENT, WHEN_IDLE, INTERRUPT) is tested here for
2.5's native-audio model too, where the function is declared NON_BLOCKING.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from emulator_helpers import (
    MODEL,
    MODEL_38,
    MODEL_38_THINKING,
    MODELS_38,
    NATIVE_AUDIO_MODEL,
    TIME_TOOL,
    audio_config,
    close_of,
    declared,
    has_audio,
    interrupted,
    live,
    model_config,
    output_transcript,
    post,
    raw,
    recv_json,
    said,
    say_text,
    summarize,
    text_config,
    tools,
    turn_complete,
    wait_session,
)
from google.genai import errors, types
from PIL import Image

from emulator.server import Running

pytestmark = pytest.mark.emulator

SPOKEN = pytest.mark.speech
"""The model answers aloud (on the 3.8 family it always does): Piper runs."""

OVER_THREE_MODELS = [
    pytest.param(MODEL_38, marks=SPOKEN),
    pytest.param(MODEL_38_THINKING, marks=SPOKEN),
    pytest.param(MODEL),
]
OVER_3_8 = [pytest.param(m, marks=SPOKEN) for m in MODELS_38]
SCHEDULED_ALOUD = [pytest.param(NATIVE_AUDIO_MODEL, marks=SPOKEN), *OVER_3_8]
"""The models whose NON_BLOCKING results are scheduled, each answering aloud."""

NOTE_TOOL = types.FunctionDeclaration(
    name="save_note",
    description="Remember a note for the user.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"note": types.Schema(type=types.Type.STRING)},
        required=["note"],
    ),
)


def mentions(text: str) -> Any:
    """A predicate: the message's text or output transcription contains `text`."""
    return lambda m: text.lower() in said([m]).lower()


def first_index(messages: list[types.LiveServerMessage], predicate: Any) -> int:
    for i, m in enumerate(messages):
        if predicate(m):
            return i
    raise AssertionError(f"no such message in {summarize(messages)}")


def tool_call_of(messages: list[types.LiveServerMessage]) -> types.FunctionCall:
    (call,) = next(m for m in messages if m.tool_call).tool_call.function_calls  # type: ignore[union-attr]
    return call


def answer(call: types.FunctionCall, response: dict[str, Any], **kw: Any) -> types.FunctionResponse:
    return types.FunctionResponse(id=call.id, name=call.name, response=response, **kw)


async def in_history(r: Running, session: Any, word: str) -> dict[str, Any]:
    """The session's summary once a turn of its history mentions `word` (the input is held)."""
    return await wait_session(
        r,
        lambda s: (
            s["conversation_id"] == session.session_id
            and any(word in t["text"] for t in s["history"])
        ),
    )


async def summary_of(r: Running, session: Any) -> dict[str, Any]:
    return await wait_session(r, lambda s: s["conversation_id"] == session.session_id and s["open"])


async def first_call_answered(r: Running, session: Any) -> dict[str, Any]:
    """The session's summary once its first tool call has been answered (its result taken in)."""
    return await wait_session(
        r,
        lambda s: (
            s["conversation_id"] == session.session_id
            and s["tool_calls"][0]["status"] == "answered"
        ),
    )


def scheduling_config(model: str, modality: str = "AUDIO") -> types.LiveConnectConfig:
    """A session whose time tool runs NON_BLOCKING, so its result can be scheduled: declared so on
    2.5 (in `modality`, both transcriptions on for AUDIO); the 3.8 family runs every call so."""
    if model in MODELS_38:
        return model_config(model, tools=tools(TIME_TOOL))
    make = audio_config if modality == "AUDIO" else text_config
    return make(tools=tools(declared(TIME_TOOL, "NON_BLOCKING")))


# ------------------------------------------------------------------ setups refused and accepted

REFUSED = [
    pytest.param(
        MODEL_38,
        {"thinking_config": types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)},
        "generationConfig.thinkingConfig is not supported by models/gemini-3.8-live",
        id="a thinking level on gemini-3.8-live",
    ),
    pytest.param(
        MODEL_38,
        {"thinking_config": types.ThinkingConfig(include_thoughts=True)},
        "generationConfig.thinkingConfig is not supported by models/gemini-3.8-live",
        id="any thinking config on gemini-3.8-live",
    ),
    *[
        pytest.param(
            model,
            {"proactivity": types.ProactivityConfig(proactive_audio=False)},
            f"proactivity.proactiveAudio false is not supported by models/{model}",
            id=f"proactive audio off on {model}",
        )
        for model in MODELS_38
    ],
    *[
        pytest.param(
            model,
            {"enable_affective_dialog": value},
            f"generationConfig.enableAffectiveDialog is not supported by models/{model}",
            id=f"enable_affective_dialog {value} on {model}",
        )
        for model in MODELS_38
        for value in (True, False)
    ],
    pytest.param(
        MODEL_38_THINKING,
        {"thinking_config": None},
        "thinkingConfig.thinkingLevel is required by models/gemini-3.8-live-extended-thinking",
        id="no thinking level on the extended-thinking model",
    ),
    pytest.param(
        MODEL_38_THINKING,
        {"thinking_config": types.ThinkingConfig(thinking_level=types.ThinkingLevel.MINIMAL)},
        "thinkingConfig.thinkingLevel MINIMAL is not supported",
        id="thinking level MINIMAL on the extended-thinking model",
    ),
    pytest.param(
        MODEL_38_THINKING,
        {"tools": tools(declared(TIME_TOOL, "BLOCKING"))},
        "behavior BLOCKING is not supported by models/gemini-3.8-live-extended-thinking",
        id="a BLOCKING function on the extended-thinking model",
    ),
]


async def refusal(r: Running, model: str, config: types.LiveConnectConfig) -> errors.APIError:
    """Connect with the SDK, which raises the close the setup was answered with."""
    with pytest.raises(errors.APIError) as caught:
        async with live(r, config, model=model):
            pass
    return caught.value


@pytest.mark.parametrize(("model", "extra", "reason"), REFUSED)
async def test_a_setup_the_model_refuses_is_closed_with_1007_and_a_reason_naming_the_field(
    emulator: Running, model: str, extra: dict[str, Any], reason: str
) -> None:
    error = await refusal(emulator, model, model_config(model, **extra))
    assert error.code == 1007
    assert reason in str(error)
    summary = await wait_session(emulator, lambda s: s["close_code"] is not None)
    assert summary["close_code"] == 1007 and reason in summary["close_reason"]
    assert summary["history"] == [] and summary["frames"] == {"setup": 1}


@pytest.mark.parametrize("model", MODELS_38)
async def test_a_text_response_modality_is_refused_on_the_3_8_family(
    emulator: Running, model: str
) -> None:
    config = text_config(
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
        if model == MODEL_38_THINKING
        else None
    )
    error = await refusal(emulator, model, config)
    assert error.code == 1007
    assert f"responseModalities TEXT is not supported by models/{model}" in str(error)


@pytest.mark.parametrize("spelling", ["camel", "snake"])
async def test_an_unknown_thinking_level_is_refused_naming_it(
    emulator: Running, spelling: str
) -> None:
    camel = spelling == "camel"
    generation = {
        "responseModalities" if camel else "response_modalities": ["AUDIO"],
        "thinkingConfig" if camel else "thinking_config": {
            "thinkingLevel" if camel else "thinking_level": "ULTRA"
        },
    }
    key = "generationConfig" if camel else "generation_config"
    setup = {"setup": {"model": f"models/{MODEL_38_THINKING}", key: generation}}
    async with raw(emulator) as ws:
        await ws.send(json.dumps(setup))
        code, reason = await close_of(ws)
    assert code == 1007
    assert reason.startswith("thinkingConfig.thinkingLevel ULTRA is not supported"), reason


@pytest.mark.parametrize("level", ["LOW", "MEDIUM", "HIGH"])
async def test_the_extended_thinking_model_takes_low_medium_and_high(
    emulator: Running, level: str
) -> None:
    config = model_config(
        MODEL_38_THINKING, thinking_config=types.ThinkingConfig(thinking_level=level)
    )
    async with live(emulator, config, model=MODEL_38_THINKING) as (session, _):
        summary = await summary_of(emulator, session)
    assert summary["config"]["thinking"] == {"thinking_level": level}


@pytest.mark.parametrize("model", MODELS_38)
@pytest.mark.parametrize("proactive", [True, None], ids=["proactive audio on", "no proactivity"])
async def test_proactive_audio_on_or_unset_is_accepted_on_the_3_8_family(
    emulator: Running, model: str, proactive: bool | None
) -> None:
    proactivity = types.ProactivityConfig(proactive_audio=True) if proactive else None
    async with live(emulator, model_config(model, proactivity=proactivity), model=model) as (
        session,
        _,
    ):
        summary = await summary_of(emulator, session)
    assert summary["config"]["proactivity"] == ({"proactive_audio": True} if proactive else None)


async def test_gemini_3_1_still_takes_what_the_3_8_family_refuses(emulator: Running) -> None:
    config = text_config(
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.MINIMAL),
        proactivity=types.ProactivityConfig(proactive_audio=False),
        enable_affective_dialog=True,
        tools=tools(declared(TIME_TOOL, "BLOCKING")),
    )
    async with live(emulator, config, model=MODEL) as (session, _):
        summary = await summary_of(emulator, session)
    assert summary["config"]["modality"] == "TEXT"
    assert summary["config"]["thinking"] == {"thinking_level": "MINIMAL"}


# ------------------------------------------------------------------ media resolution, coverage


@pytest.mark.parametrize("model", [MODEL_38, MODEL_38_THINKING, MODEL])
@pytest.mark.parametrize("resolution", ["LOW", "MEDIUM", "HIGH"])
async def test_media_resolution_is_accepted_and_shown_and_turn_coverage_defaults_to_all_video(
    emulator: Running, model: str, resolution: str
) -> None:
    value = types.MediaResolution(f"MEDIA_RESOLUTION_{resolution}")
    async with live(emulator, model_config(model, media_resolution=value), model=model) as (
        session,
        _,
    ):
        config = (await summary_of(emulator, session))["config"]
    assert config["media_resolution"] == f"MEDIA_RESOLUTION_{resolution}"
    assert config["turn_coverage"] is None
    assert config["turn_coverage_in_effect"] == "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"


@pytest.mark.parametrize("spelling", ["camel", "snake"])
async def test_media_resolution_is_read_in_both_spellings_and_a_bad_value_is_refused(
    emulator: Running, spelling: str
) -> None:
    camel = spelling == "camel"
    name = "mediaResolution" if camel else "media_resolution"
    key = "generationConfig" if camel else "generation_config"

    def setup(value: str) -> str:
        body = {"responseModalities": ["AUDIO"], name: value}
        return json.dumps({"setup": {"model": f"models/{MODEL_38}", key: body}})

    async with raw(emulator) as ws:
        await ws.send(setup("MEDIA_RESOLUTION_HIGH"))
        assert "setupComplete" in await recv_json(ws)
        summary = await wait_session(emulator, lambda s: s["open"] and s["config"])
    assert summary["config"]["media_resolution"] == "MEDIA_RESOLUTION_HIGH"
    async with raw(emulator) as ws:
        await ws.send(setup("MEDIA_RESOLUTION_ULTRA"))
        code, reason = await close_of(ws)
    assert code == 1007
    assert "generationConfig.mediaResolution" in reason and "MEDIA_RESOLUTION_LOW" in reason


def red_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (220, 20, 30)).save(out, format="JPEG")
    return out.getvalue()


@SPOKEN
async def test_on_3_8_a_video_frame_sent_outside_speech_is_seen(emulator: Running) -> None:
    async with live(emulator, model_config(MODEL_38), model=MODEL_38) as (session, box):
        await session.send_realtime_input(video=types.Blob(data=red_jpeg(), mime_type="image/jpeg"))
        await wait_session(
            emulator,
            lambda s: s["conversation_id"] == session.session_id and s["video_frames"],
        )
        await say_text(session, "What do you see?")
        text = said(await box.turn())
        summary = await summary_of(emulator, session)
    assert "320 by 240" in text and "red" in text, text
    assert [f["during_speech"] for f in summary["video_frames"]] == [False]


# ------------------------------------------------------------------ interaction status


@pytest.mark.parametrize("model", OVER_THREE_MODELS)
async def test_turn_complete_carries_interaction_status_idle_only_on_the_thinking_model(
    emulator: Running, model: str
) -> None:
    async with live(emulator, model_config(model), model=model) as (session, box):
        await say_text(session, "Hello, can you hear me?")
        messages = await box.turn()
    statuses = [m.server_content.interaction_status for m in messages if m.server_content]
    expected = types.InteractionStatus.IDLE if model == MODEL_38_THINKING else None
    assert statuses[-1] == expected, summarize(messages)
    assert all(s is None for s in statuses[:-1]), "the status goes only with turnComplete"
    assert "hear" in said(messages).lower()


# ------------------------------------------------------------------ function calls


@pytest.mark.parametrize("model", OVER_THREE_MODELS)
async def test_a_function_declared_without_behavior_runs_as_the_model_runs_it(
    emulator: Running, model: str
) -> None:
    non_blocking = model in MODELS_38
    async with live(emulator, model_config(model, tools=tools(TIME_TOOL)), model=model) as (
        session,
        box,
    ):
        await say_text(session, "What time is it in Tokyo?")
        first = await box.until(lambda m: m.tool_call)
        call = tool_call_of(first)
        await say_text(session, "What is twelve times seven?")
        if non_blocking:
            # Not held: the toolCall's turn completes and the new question is answered while
            # the call is still open.
            later = await box.until(mentions("84"))
            summary = await summary_of(emulator, session)
        else:
            await in_history(emulator, session, "twelve")
            summary = await summary_of(emulator, session)
            await session.send_tool_response(function_responses=[answer(call, {"time": "22:15"})])
            later = await box.until(mentions("84"))
    behavior = "NON_BLOCKING" if non_blocking else "BLOCKING"
    assert summary["config"]["tools"] == [
        {"name": "get_time", "behavior": behavior, "declared": ""}
    ]
    assert [(c["blocking"], c["status"]) for c in summary["tool_calls"]] == [
        (not non_blocking, "pending")
    ]
    if non_blocking:
        assert "let me check" in said(first).lower(), "a non-blocking call comes with a preamble"
        assert any(turn_complete(m) for m in later[: first_index(later, mentions("84"))])
    else:
        assert said(first) == "", "a blocking call comes without a preamble"
        assert first_index(later, mentions("22:15")) < first_index(later, mentions("84"))


@pytest.mark.parametrize("model", [pytest.param(MODEL_38, marks=SPOKEN), MODEL])
async def test_a_function_declared_blocking_holds_the_model_until_its_final_answer(
    emulator: Running, model: str
) -> None:
    config = model_config(model, tools=tools(declared(TIME_TOOL, "BLOCKING")))
    async with live(emulator, config, model=model) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        first = await box.until(lambda m: m.tool_call)
        call = tool_call_of(first)
        await say_text(session, "What is twelve times seven?")
        held = await in_history(emulator, session, "twelve")
        await session.send_tool_response(function_responses=[answer(call, {"time": "22:15"})])
        later = await box.until(mentions("84"))
    assert said(first) == "" and not any(turn_complete(m) for m in first)
    assert held["config"]["tools"] == [
        {"name": "get_time", "behavior": "BLOCKING", "declared": "BLOCKING"}
    ]
    assert [c["blocking"] for c in held["tool_calls"]] == [True]
    assert [t["role"] for t in held["history"]] == ["user", "user"], "held: nothing answered"
    assert first_index(later, mentions("22:15")) < first_index(later, mentions("84"))


@pytest.mark.parametrize("model", [NATIVE_AUDIO_MODEL, *OVER_3_8])
async def test_a_silent_result_is_taken_in_and_not_spoken(emulator: Running, model: str) -> None:
    config = scheduling_config(model, "TEXT")
    async with live(emulator, config, model=model) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of(await box.turn())
        silent = types.FunctionResponseScheduling.SILENT
        await session.send_tool_response(
            function_responses=[answer(call, {"time": "22:15"}, scheduling=silent)]
        )
        await first_call_answered(emulator, session)
        # Turns are handled in order: anything the result made the model say comes before this.
        await say_text(session, "What is twelve times seven?")
        next_turn = await box.turn()
    assert "22:15" not in said(next_turn)
    assert "84" in said(next_turn)
    assert not any(turn_complete(m) for m in next_turn[:-1])


@pytest.mark.parametrize("model", SCHEDULED_ALOUD)
async def test_a_when_idle_result_waits_for_the_current_output_to_end(
    realtime_emulator: Running, model: str
) -> None:
    r = realtime_emulator
    async with live(r, scheduling_config(model), model=model) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of(await box.turn())
        text = "I am still talking about something else."
        await post(r, f"/emulator/sessions/{session.session_id}/say", {"text": text})
        head = await box.until(has_audio)
        when_idle = types.FunctionResponseScheduling.WHEN_IDLE
        await session.send_tool_response(
            function_responses=[answer(call, {"time": "22:15"}, scheduling=when_idle)]
        )
        busy = head + await box.turn()
        result = await box.until(mentions("22:15"))
    assert said(busy) == text
    assert output_transcript(busy) == text
    assert not any(interrupted(m) for m in busy + result)


@pytest.mark.parametrize("model", SCHEDULED_ALOUD)
async def test_an_interrupt_result_cuts_in(realtime_emulator: Running, model: str) -> None:
    r = realtime_emulator
    async with live(r, scheduling_config(model), model=model) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of(await box.turn())
        await say_text(session, "Tell me a long story about a dragon.")
        await box.until(mentions("dragon"))
        cut_in = types.FunctionResponseScheduling.INTERRUPT
        await session.send_tool_response(
            function_responses=[answer(call, {"time": "22:15"}, scheduling=cut_in)]
        )
        messages = await box.until(mentions("22:15"))
    assert any(interrupted(m) for m in messages), "INTERRUPT must stop the story first"
    assert first_index(messages, interrupted) < first_index(messages, mentions("22:15"))


@SPOKEN
async def test_intermediate_results_are_taken_in_and_the_final_one_closes_the_call(
    emulator: Running,
) -> None:
    async with live(emulator, model_config(MODEL_38, tools=tools(TIME_TOOL)), model=MODEL_38) as (
        session,
        box,
    ):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of(await box.turn())
        await session.send_tool_response(
            function_responses=[answer(call, {"time": "22:14"}, will_continue=True)]
        )
        first = await box.until(mentions("22:14"))
        open_call = await wait_session(
            emulator,
            lambda s: (
                s["conversation_id"] == session.session_id and s["tool_calls"][0]["responses"]
            ),
        )
        await session.send_tool_response(
            function_responses=[answer(call, {"time": "22:15"}, will_continue=False)]
        )
        final = await box.until(mentions("22:15"))
        closed = await first_call_answered(emulator, session)
    assert open_call["tool_calls"][0]["status"] == "pending"
    assert [r["will_continue"] for r in closed["tool_calls"][0]["responses"]] == [True, False]
    assert "22:15" not in said(first) and "22:14" not in said(final)


# ------------------------------------------------------------------ the Vertex-guide options


async def set_options(r: Running, **options: bool) -> None:
    response = await post(r, "/emulator/options", options)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert {name: answer[name] for name in ("cancel_blocking_on_input", "polite_interrupt")} == {
        "cancel_blocking_on_input": False,
        "polite_interrupt": False,
        **options,
    }


@pytest.mark.parametrize("model", [pytest.param(MODEL_38, marks=SPOKEN), MODEL])
async def test_with_cancel_blocking_on_input_new_input_cancels_a_blocking_call_on_3_8_only(
    emulator: Running, model: str
) -> None:
    await set_options(emulator, cancel_blocking_on_input=True)
    config = model_config(model, tools=tools(declared(TIME_TOOL, "BLOCKING")))
    async with live(emulator, config, model=model) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of(await box.until(lambda m: m.tool_call))
        await say_text(session, "What is twelve times seven?")
        if model == MODEL:
            # The option is for the 3.8 family: gemini-3.1 holds the input as before.
            await in_history(emulator, session, "twelve")
            await session.send_tool_response(function_responses=[answer(call, {"time": "22:15"})])
        messages = await box.until(mentions("84"))
        summary = await summary_of(emulator, session)
    cancellations = [m.tool_call_cancellation.ids for m in messages if m.tool_call_cancellation]
    if model == MODEL:
        assert cancellations == []
        assert summary["tool_calls"][0]["status"] == "answered"
    else:
        assert cancellations == [[call.id]]
        assert first_index(messages, lambda m: m.tool_call_cancellation) < first_index(
            messages, mentions("84")
        )
        assert summary["tool_calls"][0]["status"] == "cancelled"
        assert not any(interrupted(m) for m in messages), "nothing was being said"


@SPOKEN
@pytest.mark.parametrize("polite", [True, False], ids=["polite", "default"])
async def test_polite_interrupt_holds_an_interrupt_result_until_the_user_has_finished(
    emulator: Running, polite: bool
) -> None:
    await set_options(emulator, polite_interrupt=polite)
    config = model_config(
        MODEL_38,
        tools=tools(TIME_TOOL),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        ),
    )
    async with live(emulator, config, model=MODEL_38) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of(await box.turn())
        await session.send_realtime_input(activity_start=types.ActivityStart())
        await wait_session(
            emulator, lambda s: s["conversation_id"] == session.session_id and s["user_speaking"]
        )
        cut_in = types.FunctionResponseScheduling.INTERRUPT
        await session.send_tool_response(
            function_responses=[answer(call, {"time": "22:15"}, scheduling=cut_in)]
        )
        # The result is taken in (its call answered) before it is spoken or held back.
        await first_call_answered(emulator, session)
        marker = "This sentence marks the moment."
        await post(emulator, f"/emulator/sessions/{session.session_id}/say", {"text": marker})
        messages = await box.until(mentions(marker))
        messages += await box.turn()
        await session.send_realtime_input(activity_end=types.ActivityEnd())
        if polite:
            messages += await box.until(mentions("22:15"))
    # Polite: the marker, said while the user was still speaking, comes before the held result.
    # Default: the result was spoken at once, over the user, before the marker.
    text = said(messages)
    assert "22:15" in text
    assert (text.index(marker) < text.index("22:15")) is polite, text


# ------------------------------------------------------------------ client content in session


@pytest.mark.parametrize("model", OVER_THREE_MODELS)
async def test_client_content_without_turn_complete_joins_the_history_and_the_model_waits(
    emulator: Running, model: str
) -> None:
    async with live(emulator, model_config(model), model=model) as (session, box):
        await say_text(session, "Hello, can you hear me?")
        await box.turn()
        await session.send_client_content(
            turns=[
                types.Content(role="user", parts=[types.Part(text="What is twelve times seven?")]),
                types.Content(role="model", parts=[types.Part(text="Let me think.")]),
            ],
            turn_complete=False,
        )
        await say_text(session, "What is two plus two?")
        reply = said(await box.turn())
        summary = await summary_of(emulator, session)
    assert "4" in reply and "84" not in reply, reply
    assert [(t["role"], t["source"]) for t in summary["history"]] == [
        ("user", "text"),
        ("model", "model"),
        ("user", "client_content"),
        ("model", "client_content"),
        ("user", "text"),
        ("model", "model"),
    ]


@SPOKEN
@pytest.mark.parametrize("model", [MODEL_38, MODEL_38_THINKING, MODEL])
async def test_client_content_with_turn_complete_interrupts_the_model_and_is_answered(
    realtime_emulator: Running, model: str
) -> None:
    r = realtime_emulator
    config = model_config(model) if model in MODELS_38 else audio_config()
    story = "This is a long announcement. " * 6
    async with live(r, config, model=model) as (session, box):
        await post(r, f"/emulator/sessions/{session.session_id}/say", {"text": story})
        await box.until(has_audio)
        await session.send_client_content(
            turns=[
                types.Content(role="user", parts=[types.Part(text="What is twelve times seven?")])
            ],
            turn_complete=True,
        )
        # No realtime input follows (Pipecat would send a blank text): every model answers.
        messages = await box.until(mentions("84"))
        messages += await box.turn()
        # Answered once: the next turn answers the next question, not the content again.
        await say_text(session, "What is two plus two?")
        following = said(await box.turn())
        summary = await summary_of(r, session)
    assert first_index(messages, interrupted) < first_index(messages, mentions("84"))
    assert "4" in following and "84" not in following, following
    model_turns = [t for t in summary["history"] if t["role"] == "model"]
    assert model_turns[0]["interrupted"] is True
    assert ["84" in t["text"] for t in model_turns] == [False, True, False]


@pytest.mark.parametrize("model", OVER_THREE_MODELS)
async def test_client_content_with_turn_complete_is_answered_without_a_nudge_on_every_model(
    emulator: Running, model: str
) -> None:
    async with live(emulator, model_config(model), model=model) as (session, box):
        await session.send_client_content(
            turns=[
                types.Content(role="user", parts=[types.Part(text="What is twelve times seven?")])
            ],
            turn_complete=True,
        )
        messages = await box.turn()
        summary = await summary_of(emulator, session)
    assert "84" in said(messages)
    assert "text" not in summary["frames"], "no realtime input was sent"


# ------------------------------------------------------------------ the model cancels a call


@pytest.mark.parametrize("model", [pytest.param(MODEL_38, marks=SPOKEN), MODEL])
async def test_the_control_api_makes_the_model_cancel_an_open_call_and_ignore_its_late_answer(
    emulator: Running, model: str
) -> None:
    async with live(emulator, model_config(model, tools=tools(TIME_TOOL)), model=model) as (
        session,
        box,
    ):
        await say_text(session, "What time is it in Tokyo?")
        call = tool_call_of(await box.until(lambda m: m.tool_call))
        summary = await summary_of(emulator, session)
        unknown = await post(
            emulator, f"/emulator/sessions/{summary['id']}/cancel_tool_calls", {"ids": ["nope"]}
        )
        cancelled = await post(
            emulator, f"/emulator/sessions/{summary['id']}/cancel_tool_calls", {"ids": [call.id]}
        )
        messages = await box.until(lambda m: m.tool_call_cancellation)
        await session.send_tool_response(function_responses=[answer(call, {"time": "22:15"})])
        await say_text(session, "What is twelve times seven?")
        later = await box.until(mentions("84"))
        after = await summary_of(emulator, session)
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]["message"]
    assert cancelled.status_code == 200, cancelled.text
    assert [m.tool_call_cancellation.ids for m in messages if m.tool_call_cancellation] == [
        [call.id]
    ]
    assert after["tool_calls"][0]["status"] == "cancelled"
    assert "22:15" not in said(later), "a late answer to a cancelled call is ignored"


async def test_cancelling_a_blocking_call_frees_the_model_to_answer_what_it_held(
    emulator: Running,
) -> None:
    config = model_config(MODEL, tools=tools(TIME_TOOL))
    async with live(emulator, config, model=MODEL) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        await box.until(lambda m: m.tool_call)
        await say_text(session, "What is twelve times seven?")
        held = await in_history(emulator, session, "twelve")
        cancelled = await post(emulator, f"/emulator/sessions/{held['id']}/cancel_tool_calls")
        later = await box.until(mentions("84"))
    assert cancelled.status_code == 200, cancelled.text
    assert any(m.tool_call_cancellation for m in later)
