"""The emulator speaks the Live API's wire protocol as official clients speak it.

The real google-genai SDK connects over a real TLS WebSocket; a raw `websockets` client sends what
the SDK cannot (malformed JSON, unknown kinds, other spellings, the JavaScript SDK's URL shape, a
10 MB frame) and reads the server's JSON exactly as it goes over the wire (issue 3, points 3-6, 9).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import load_wav
from emulator_helpers import (
    CHUNK_BYTES,
    MODEL,
    PCM_16K,
    SILENCE_1S,
    TIME_TOOL,
    assert_server_serves,
    b64,
    close_of,
    control,
    input_transcript,
    live,
    model_text,
    raw,
    raw_setup,
    raw_text,
    raw_turn_complete,
    recv_json,
    recv_until,
    say_text,
    sdk_client,
    send_audio,
    sessions,
    setup_message,
    text_config,
    tools,
    wait_session,
)
from google.genai import errors, types

from emulator.server import Emulator, Running, running
from emulator.wire import camelize, normalize

pytestmark = pytest.mark.emulator

# ------------------------------------------------------------------ helpers


def resample(pcm: bytes, rate: int) -> bytes:
    """16 kHz PCM16 to another rate by linear interpolation (independent of the emulator)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n_out = round(len(samples) * rate / 16000)
    positions = np.linspace(0, len(samples) - 1, n_out)
    return np.interp(positions, np.arange(len(samples)), samples).astype("<i2").tobytes()


def camel_keys_only(value: Any, path: str = "") -> list[str]:
    """Every field name under `value` that is not lowerCamelCase (user data under args skipped)."""
    bad: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not re.fullmatch(r"[a-z][a-zA-Z0-9]*", key):
                bad.append(f"{path}.{key}")
            if key not in ("args", "response"):
                bad.extend(camel_keys_only(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            bad.extend(camel_keys_only(item, f"{path}[{i}]"))
    return bad


# ------------------------------------------------------------------ connecting


async def test_the_sdk_gets_setup_complete_and_the_session_is_listed(emulator: Running) -> None:
    async with live(emulator, text_config()) as (session, _box):
        assert session.session_id, "setupComplete carried no session id"
        summary = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    assert summary["model"] == f"models/{MODEL}"
    assert summary["api_version"] == "v1beta"
    assert summary["frames"] == {"setup": 1}


async def test_setup_complete_is_the_first_server_message(emulator: Running) -> None:
    async with raw(emulator) as ws:
        await ws.send(setup_message(session_resumption={}))
        first = await recv_json(ws)
        second = await recv_json(ws)
    assert list(first) == ["setupComplete"]
    assert "sessionResumptionUpdate" in second


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
async def test_every_api_version_path_is_served(emulator: Running, version: str) -> None:
    client = sdk_client(emulator, api_version=version)
    async with live(emulator, text_config(), client=client) as (session, box):
        await say_text(session, "Hello")
        assert model_text(await box.turn())
        summary = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    assert summary["api_version"] == version


async def test_an_unknown_path_is_not_found(emulator: Running) -> None:
    async with control(emulator) as http:
        wrong_version = await http.get(
            "/ws/google.ai.generativelanguage.v2.GenerativeService.BidiGenerateContent"
        )
        wrong_method = await http.get(
            "/ws/google.ai.generativelanguage.v1beta.GenerativeService.Nope"
        )
    assert (wrong_version.status_code, wrong_method.status_code) == (404, 404)


async def test_the_key_is_accepted_as_the_key_query_parameter(emulator: Running) -> None:
    async with raw(emulator, in_query=True) as ws:
        await raw_setup(ws)


async def test_the_javascript_sdk_url_shape_is_accepted(emulator: Running) -> None:
    """`//ws/` (doubled slash), v1, key only in the query, camelCase JSON, as @google/genai 3.x."""
    async with raw(emulator, version="v1", in_query=True, double_slash=True) as ws:
        await raw_setup(ws)
        await ws.send(json.dumps({"realtimeInput": {"text": "What is twelve times seven?"}}))
        messages = await recv_until(ws, raw_turn_complete)
    assert "84" in raw_text(messages)


async def test_a_connection_without_any_key_is_refused(emulator: Running) -> None:
    async with raw(emulator, key=None) as ws:
        await ws.send(setup_message())
        code, reason = await close_of(ws)
    assert code == 1008
    assert "API key" in reason


async def test_a_wrong_api_key_is_refused_with_1008_and_other_sessions_go_on(
    cert_dir: Path,
) -> None:
    async with running(Emulator(api_key="k", pace=0), cert_dir=cert_dir) as r:
        with pytest.raises(errors.APIError) as refused:
            async with live(r, client=sdk_client(r, api_key="wrong")):
                pass
        assert refused.value.code == 1008
        assert "API key not valid" in str(refused.value)

        async with raw(r, key="wrong", in_query=True) as ws:
            await ws.send(setup_message())
            code, reason = await close_of(ws)
        assert (code, "API key not valid" in reason) == (1008, True)

        async with raw(r, key="k", in_query=True) as ws:
            await raw_setup(ws)
        await assert_server_serves(r, api_key="k")
        listed = await sessions(r)
        assert [s["close_code"] for s in listed].count(1008) == 2


async def test_an_unknown_model_is_refused_with_a_reason_naming_it(emulator: Running) -> None:
    with pytest.raises(errors.APIError) as refused:
        async with live(emulator, model="gemini-9.9-imaginary-live"):
            pass
    assert refused.value.code == 1008
    assert "gemini-9.9-imaginary-live" in str(refused.value)
    await assert_server_serves(emulator)


@pytest.mark.parametrize(
    "model", ["gemini-2.5-flash-native-audio-preview-12-2025", "gemini-live-2.5-flash-preview"]
)
async def test_deprecated_model_names_are_still_served(emulator: Running, model: str) -> None:
    async with live(emulator, text_config(), model=model) as (session, box):
        await say_text(session, "Hello")
        assert model_text(await box.turn())


# ------------------------------------------------------------------ bad input


def _setup() -> str:
    return setup_message(tools=[{"functionDeclarations": [{"name": "get_time"}]}])


def _audio(mime: str, data: bytes = b"\x00\x00" * 160) -> str:
    return json.dumps({"realtimeInput": {"audio": {"mimeType": mime, "data": b64(data)}}})


BAD_INPUTS: dict[str, tuple[list[str], str]] = {
    # name: (frames sent after connecting, a fragment the close reason must contain)
    "malformed JSON": ([_setup(), '{"realtimeInput": {"text": "hi"'], "not valid JSON"),
    "malformed JSON as the first frame": (["{setup: nope"], "not valid JSON"),
    "a JSON array": ([_setup(), "[1, 2]"], "JSON object"),
    "an unknown message kind": ([_setup(), '{"fancyNewThing": {}}'], "fancyNewThing"),
    "an unknown realtimeInput field": (
        [_setup(), '{"realtimeInput": {"smell": "roses"}}'],
        "smell",
    ),
    "a first message that is not setup": (['{"realtimeInput": {"text": "hi"}}'], "setup"),
    "a second setup": ([_setup(), _setup()], "setup"),
    "a toolResponse for an id never issued": (
        [
            _setup(),
            json.dumps(
                {
                    "toolResponse": {
                        "functionResponses": [
                            {"id": "never-issued-42", "name": "get_time", "response": {}}
                        ]
                    }
                }
            ),
        ],
        "never-issued-42",
    ),
    "audio at rate=0": ([_setup(), _audio("audio/pcm;rate=0")], "rate"),
    "audio at rate=abc": ([_setup(), _audio("audio/pcm;rate=abc")], "rate"),
    "audio that is not PCM": ([_setup(), _audio("audio/wav")], "audio/wav"),
    "odd-length PCM": ([_setup(), _audio(PCM_16K, b"\x01\x02\x03")], "even"),
    "audio that is not base64": (
        [_setup(), json.dumps({"realtimeInput": {"audio": {"mimeType": PCM_16K, "data": "!!!"}}})],
        "base64",
    ),
    "activityStart while automatic detection is on": (
        [_setup(), '{"realtimeInput": {"activityStart": {}}}'],
        "activityStart",
    ),
    "two responseModalities": (
        [
            json.dumps(
                {
                    "setup": {
                        "model": f"models/{MODEL}",
                        "generationConfig": {"responseModalities": ["AUDIO", "TEXT"]},
                    }
                }
            )
        ],
        "responseModalities",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_closes_with_1007_and_a_reason_and_the_server_lives(
    emulator: Running, case: str
) -> None:
    frames, fragment = BAD_INPUTS[case]
    async with raw(emulator) as ws:
        for frame in frames:
            await ws.send(frame)
        code, reason = await close_of(ws)
    assert code == 1007, (code, reason)
    assert fragment.lower() in reason.lower(), reason
    await assert_server_serves(emulator)


async def test_a_10_mb_frame_closes_with_1009_and_the_server_lives(emulator: Running) -> None:
    big = os.urandom(7_500_000)  # 10 MB of base64
    frame = json.dumps({"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": b64(big)}}})
    assert len(frame) > 10_000_000
    async with raw(emulator, compression=None) as ws:
        await raw_setup(ws)
        await ws.send(frame)
        code, reason = await close_of(ws)
    assert code == 1009
    assert "size" in reason.lower() or "limit" in reason.lower(), reason
    await assert_server_serves(emulator)


@pytest.mark.speech
@pytest.mark.parametrize("rate", [8000, 44100])
async def test_audio_at_other_rates_is_resampled_and_heard(emulator: Running, rate: int) -> None:
    pcm = resample(load_wav("what_time_tokyo.wav") + SILENCE_1S, rate)
    config = text_config(input_audio_transcription=types.AudioTranscriptionConfig())
    async with live(emulator, config) as (session, box):
        await send_audio(session, pcm, mime_type=f"audio/pcm;rate={rate}", chunk=rate // 5)
        await session.send_realtime_input(audio_stream_end=True)
        messages = await box.turn()
        summary = await wait_session(
            emulator,
            lambda s: (
                s["conversation_id"] == session.session_id and s["frames"].get("audio_stream_end")
            ),
        )
    heard = input_transcript(messages).lower()
    # Telephone-band audio (8 kHz) loses what Whisper needs for "Tokyo" now and then; the
    # question itself is always heard, which is what proves the audio was resampled, not garbled.
    assert "what time" in heard, heard
    if rate > 16000:
        assert "tokyo" in heard, heard
    # Every sample counts once audioStreamEnd drained the resampler: nothing is held back.
    assert summary["audio_in_s"] == pytest.approx(len(pcm) / 2 / rate, abs=0.002)
    assert summary["open"]


# ------------------------------------------------------------------ spellings


def _spelled(camel: bool, message: dict[str, Any]) -> str:
    """Write a message in camelCase or snake_case field names (user data untouched)."""
    return json.dumps(camelize(message) if camel else normalize(message))


@pytest.mark.parametrize("camel", [True, False], ids=["camelCase", "snake_case"])
async def test_both_spellings_are_accepted_in_setup_realtime_input_and_tool_response(
    emulator: Running, camel: bool
) -> None:
    setup = {
        "setup": {
            "model": f"models/{MODEL}",
            "generation_config": {"response_modalities": ["TEXT"]},
            "system_instruction": {"parts": [{"text": "You are Ava, a test assistant."}]},
            "tools": [
                {
                    "function_declarations": [
                        {
                            "name": "get_time",
                            "description": "Get the current time in a city.",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {"city_name": {"type": "STRING"}},
                            },
                        }
                    ]
                }
            ],
            "realtime_input_config": {"activity_handling": "NO_INTERRUPTION"},
        }
    }
    wire = _spelled(camel, setup)
    assert ("generationConfig" in wire) is camel and ("generation_config" in wire) is not camel
    async with raw(emulator) as ws:
        await raw_setup(ws, wire)
        await ws.send(_spelled(camel, {"realtime_input": {"text": "What time is it in Tokyo?"}}))
        until_call = await recv_until(ws, lambda m: "toolCall" in m)
        call = until_call[-1]["toolCall"]["functionCalls"][0]
        assert call["name"] == "get_time"
        assert call["args"] == {"city_name": "Tokyo"}, "the schema's property name was kept"
        response = {
            "tool_response": {
                "function_responses": [
                    {"id": call["id"], "name": "get_time", "response": {"local_time": "22:15"}}
                ]
            }
        }
        await ws.send(_spelled(camel, response))
        answer = await recv_until(ws, raw_turn_complete)
    assert "22:15" in raw_text(answer)
    summary = await wait_session(emulator, lambda s: s["tool_calls"])
    assert summary["config"]["modality"] == "TEXT"
    assert summary["config"]["system_instruction"] == "You are Ava, a test assistant."
    assert summary["config"]["activity_handling"] == "NO_INTERRUPTION"
    assert summary["tool_calls"][0]["status"] == "answered"
    assert summary["frames"] == {"setup": 1, "text": 1, "tool_response": 1}


async def test_the_sdk_mixes_spellings_in_one_session_and_is_understood(
    emulator: Running,
) -> None:
    """The SDK sends camelCase setup and snake_case realtime_input/tool_response in one session."""
    config = text_config(
        tools=tools(TIME_TOOL),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
    async with live(emulator, config) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        calls = await box.until(lambda m: m.tool_call)
        call = calls[-1].tool_call.function_calls[0]
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"time": "22:15"})
            ]
        )
        assert "22:15" in model_text(await box.turn())
        summary = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    assert summary["config"]["context_window_compression"] == {"sliding_window": {}}


async def _tokyo_audio_session(emulator: Running, urlsafe: bool) -> tuple[str, float, list[str]]:
    """Send the Tokyo question as raw base64 audio; return transcript, seconds heard, encodings."""
    pcm = load_wav("what_time_tokyo.wav") + SILENCE_1S
    setup = setup_message(inputAudioTranscription={})
    encoded = []
    async with raw(emulator) as ws:
        conversation = (await raw_setup(ws, setup))["setupComplete"]["sessionId"]
        for i in range(0, len(pcm), CHUNK_BYTES):
            data = b64(pcm[i : i + CHUNK_BYTES], urlsafe=urlsafe, pad=not urlsafe)
            encoded.append(data)
            await ws.send(
                json.dumps({"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": data}}})
            )
        messages = await recv_until(ws, raw_turn_complete)
    heard = "".join(
        m.get("serverContent", {}).get("inputTranscription", {}).get("text", "") for m in messages
    )
    summary = await wait_session(
        emulator, lambda s: s["conversation_id"] == conversation and not s["open"]
    )
    return heard, summary["audio_in_s"], encoded


@pytest.mark.speech
async def test_url_safe_and_standard_base64_audio_decode_identically(emulator: Running) -> None:
    std_heard, std_seconds, std_encoded = await _tokyo_audio_session(emulator, urlsafe=False)
    safe_heard, safe_seconds, safe_encoded = await _tokyo_audio_session(emulator, urlsafe=True)
    # The test means something only if the alphabets really differ in what was sent.
    assert any(c in "".join(std_encoded) for c in "+/")
    assert any(c in "".join(safe_encoded) for c in "-_")
    assert not any(c in "".join(safe_encoded) for c in "+/=")
    sent_seconds = len(load_wav("what_time_tokyo.wav")) / 32000 + 1
    assert safe_seconds == std_seconds == pytest.approx(sent_seconds, abs=0.002)
    assert "tokyo" in std_heard.lower()
    assert safe_heard == std_heard


# ------------------------------------------------------------------ what the server sends


@pytest.mark.speech
async def test_server_messages_are_camel_case_json_in_binary_frames(emulator: Running) -> None:
    setup = setup_message(
        modality="AUDIO",
        tools=[{"functionDeclarations": [{"name": "get_time", "description": "time in a city"}]}],
        outputAudioTranscription={},
        sessionResumption={},
    )
    async with raw(emulator) as ws:
        await raw_setup(ws, setup)  # recv_json asserts every frame is binary
        await ws.send(json.dumps({"realtimeInput": {"text": "What time is it in Tokyo?"}}))
        before = await recv_until(ws, lambda m: "toolCall" in m)
        call = before[-1]["toolCall"]["functionCalls"][0]
        await ws.send(
            json.dumps(
                {
                    "toolResponse": {
                        "functionResponses": [
                            {"id": call["id"], "name": "get_time", "response": {"time": "22:15"}}
                        ]
                    }
                }
            )
        )
        after = await recv_until(ws, raw_turn_complete)
    messages = before + after
    assert camel_keys_only(messages) == []
    audio = [
        p["inlineData"]
        for m in after
        for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
        if "inlineData" in p
    ]
    assert audio and all(a["mimeType"] == "audio/pcm;rate=24000" for a in audio)
    assert "22:15" in raw_text(after)
    assert after[-1]["serverContent"]["turnComplete"] is True
    assert after[-1]["usageMetadata"]["totalTokenCount"] > 0
    assert any("generationComplete" in m.get("serverContent", {}) for m in after)
    assert any(m.get("sessionResumptionUpdate", {}).get("newHandle") for m in messages)
