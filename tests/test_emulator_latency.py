"""Where an answer's time goes in the emulator, and what it does to keep that time short.

Issue 17, point 5. Each user turn's steps are stamped (`emulator.session.timing`) and listed by
`GET /emulator/sessions`, with the digests that tie its first and last chunks to the client's
own records. These tests check the marks' order and the digests, never how long anything took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import load_wav
from emulator_helpers import (
    CHUNK_BYTES,
    MODEL,
    SILENCE_1S,
    TIME_TOOL,
    audio_config,
    audio_parts,
    live,
    say_text,
    send_audio,
    tools,
    wait_session,
)
from google.genai import types
from hypothesis import given
from hypothesis import strategies as st

import emulator.session.speaker as speaker_module
from emulator.__main__ import build_parser
from emulator.server import Emulator, Running, running
from emulator.session.speaker import CHUNK_MS, FIRST_CHUNK_MS, chunk_bounds, speech_pieces
from emulator.session.timing import audio_digest
from emulator.speech import OUTPUT_RATE
from emulator.speech.audio import lead_in_ms, trim_lead_in
from emulator.speech.sentences import split_first_clause
from emulator.wire import decode_bytes

pytestmark = pytest.mark.emulator


def in_order(marks: dict[str, float], *steps: str) -> bool:
    """Every step is stamped, each no earlier than the one before."""
    times = [marks[s] for s in steps]
    return times == sorted(times)


async def timings_of(r: Running, session: Any, count: int = 1) -> list[dict[str, Any]]:
    """The session's turn timings, once `count` of them have their first audio."""
    found = await wait_session(
        r,
        lambda s: (
            s["conversation_id"] == session.session_id
            and sum("first_audio_sent" in t["marks"] for t in s["turn_timings"]) >= count
        ),
    )
    timings: list[dict[str, Any]] = found["turn_timings"]
    return timings


@pytest.mark.speech
async def test_a_spoken_turn_stamps_each_step_of_its_answer_in_order(emulator: Running) -> None:
    pcm = load_wav("hello.wav") + SILENCE_1S
    sent = {audio_digest(pcm[i : i + CHUNK_BYTES]) for i in range(0, len(pcm), CHUNK_BYTES)}
    async with live(emulator, audio_config()) as (session, box):
        await send_audio(session, pcm)
        messages = await box.turn()
        (timing,) = await timings_of(emulator, session)
    marks = timing["marks"]
    assert timing["source"] == "audio"
    assert in_order(marks, "speech_received", "turn_ended", "decided", "synthesis_started")
    assert in_order(marks, "transcribe_started", "transcribed", "decided")
    assert in_order(marks, "synthesis_started", "synthesized", "first_audio_sent")
    assert "tool_call_sent" not in marks
    # Whisper started while the VAD was still waiting out the silence.
    assert timing["early_transcript"] is True
    assert marks["transcribe_started"] < marks["turn_ended"]
    # The digests name a chunk the client sent and the first chunk it received.
    assert timing["speech_digest"] in sent
    first = next(b for m in messages for b in audio_parts(m))
    assert timing["first_audio_digest"] == audio_digest(first.data or b"")


@pytest.mark.speech
async def test_a_pause_inside_the_sentence_does_not_cut_the_turns_transcript(
    emulator: Running,
) -> None:
    """hello.wav pauses after "Hello," long enough for Whisper to start on it; the words after
    the pause make that pass stale, and the turn is transcribed from all of its speech."""
    async with live(emulator, audio_config()) as (session, box):
        await send_audio(session, load_wav("hello.wav") + SILENCE_1S)
        await box.turn()
        await timings_of(emulator, session)
        found = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    (user,) = [t for t in found["history"] if t["role"] == "user"]
    assert "hear me" in user["text"].lower()
    assert found["turn_timings"][0]["early_transcript"] is True


async def test_a_blocking_calls_round_trip_comes_before_the_first_audio(
    emulator: Running,
) -> None:
    async with live(emulator, audio_config(tools=tools(TIME_TOOL)), model=MODEL) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        (message,) = (await box.until(lambda m: m.tool_call))[-1:]
        assert message.tool_call and message.tool_call.function_calls
        call = message.tool_call.function_calls[0]
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"time": "22:15"})
            ]
        )
        await box.turn()
        (timing,) = await timings_of(emulator, session)
    marks = timing["marks"]
    assert timing["source"] == "text"
    assert "speech_received" not in marks and "transcribe_started" not in marks
    assert in_order(
        marks,
        "turn_ended",
        "decided",
        "tool_call_sent",
        "tool_response_received",
        "synthesis_started",
        "first_audio_sent",
    )


async def test_each_user_turn_gets_a_timing_of_its_own(emulator: Running) -> None:
    async with live(emulator, audio_config()) as (session, box):
        for question in ("Hello, can you hear me?", "What is twelve times seven?"):
            await say_text(session, question)
            await box.turn()
        timings = await timings_of(emulator, session, count=2)
    assert len(timings) == 2
    first, second = (t["marks"] for t in timings)
    assert first["first_audio_sent"] <= second["turn_ended"]
    assert timings[0]["first_audio_digest"] != timings[1]["first_audio_digest"]


# ------------------------------------------------------------------ the end-of-turn silence


@pytest.fixture
async def quick_emulator(cert_dir: Path) -> AsyncIterator[Running]:
    """An emulator started with a faster end-of-turn silence than Gemini's."""
    server = Emulator(pace=0, connection_lifetime_s=None, default_silence_ms=200)
    async with running(server, cert_dir=cert_dir) as r:
        yield r


async def silence_of(r: Running, config: types.LiveConnectConfig) -> int:
    async with live(r, config) as (session, _box):
        found = await wait_session(r, lambda s: s["conversation_id"] == session.session_id)
    silence: int = found["config"]["silence_duration_ms"]
    return silence


def vad(silence_ms: int) -> types.RealtimeInputConfig:
    return types.RealtimeInputConfig(
        automatic_activity_detection=types.AutomaticActivityDetection(
            silence_duration_ms=silence_ms
        )
    )


async def test_the_end_of_turn_silence_is_geminis_500_ms_unless_the_server_is_told_otherwise(
    emulator: Running,
) -> None:
    assert build_parser().parse_args([]).default_silence_ms == 500
    assert await silence_of(emulator, audio_config()) == 500


async def test_a_faster_server_default_applies_only_where_the_setup_sets_no_silence(
    quick_emulator: Running,
) -> None:
    assert build_parser().parse_args(["--default-silence-ms", "200"]).default_silence_ms == 200
    assert await silence_of(quick_emulator, audio_config()) == 200
    asked = audio_config(realtime_input_config=vad(800))
    assert await silence_of(quick_emulator, asked) == 800


@pytest.mark.parametrize("value", ["0", "-5", "60001", "2.5", "fast"])
def test_the_default_silence_option_refuses_what_a_setup_could_not_ask_for(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--default-silence-ms", value])
    assert exited.value.code == 2
    assert "--default-silence-ms" in capsys.readouterr().err


async def quiet_after(r: Running, silence_s: float) -> dict[str, Any]:
    """Say hello, then `silence_s` of silence; the summary once all of it has been heard."""
    speech = load_wav("hello.wav")[: int(1.95 * 16000) * 2]  # the words end at ~1.9 s
    pcm = speech + SILENCE_1S[: int(silence_s * 16000) * 2]
    async with live(r, audio_config()) as (session, _box):
        await send_audio(session, pcm)
        return await wait_session(
            r,
            lambda s: (
                s["conversation_id"] == session.session_id
                and s["frames"].get("audio") == -(-len(pcm) // CHUNK_BYTES)
                and (s["turn_timings"] or s["user_speaking"])
            ),
        )


@pytest.mark.speech
async def test_with_the_faster_default_a_short_pause_ends_the_turn_that_geminis_would_not(
    emulator: Running, quick_emulator: Running
) -> None:
    slow, quick = await quiet_after(emulator, 0.35), await quiet_after(quick_emulator, 0.35)
    assert slow["user_speaking"] is True and slow["turn_timings"] == []
    assert quick["user_speaking"] is False and len(quick["turn_timings"]) == 1


# ------------------------------------------------------------------ the start of an answer


@pytest.mark.parametrize(
    ("sentence", "pieces"),
    [
        ("Yes, I can hear you clearly. ", ["Yes, ", "I can hear you clearly. "]),
        (
            "The time in Tokyo (Asia/Tokyo) is 03:45. ",
            ["The time in Tokyo ", "(Asia/Tokyo) is 03:45. "],
        ),
        ("Note; it is done.", ["Note; ", "it is done."]),
        ("Well — that is odd.", ["Well — ", "that is odd."]),
        ("It is 10:30, in Paris.", ["It is 10:30, ", "in Paris."]),
    ],
)
def test_the_first_clause_is_cut_off_where_a_speaker_would_pause(
    sentence: str, pieces: list[str]
) -> None:
    assert split_first_clause(sentence) == pieces


@pytest.mark.parametrize(
    "sentence",
    ["12 * 7 is 84.", "1,000 people came at 10:30.", "A well-known fact.", "Hello! ", "Right, "],
)
def test_a_sentence_without_a_clause_boundary_between_words_stays_whole(sentence: str) -> None:
    assert split_first_clause(sentence) == [sentence]


@given(st.text(alphabet=st.sampled_from(list("ab ,;:-—(.!")), max_size=40))
def test_the_pieces_always_join_into_the_sentence(sentence: str) -> None:
    pieces = split_first_clause(sentence)
    assert "".join(pieces) == sentence
    assert len(pieces) <= 2 and all(pieces)


def test_only_the_answers_first_sentence_is_cut_and_it_joins_the_history_whole() -> None:
    sentences = ["Sure, I saved it. ", "It says blue, as you said."]
    assert speech_pieces(sentences) == [
        ("Sure, ", "Sure, I saved it. "),
        ("I saved it. ", ""),
        ("It says blue, as you said.", "It says blue, as you said."),
    ]
    assert speech_pieces([]) == []


def test_an_answers_first_chunk_is_short_and_the_rest_are_whole_chunks() -> None:
    size = OUTPUT_RATE * 2  # one second
    bounds = chunk_bounds(size, first=True)
    assert bounds[0] == (0, OUTPUT_RATE * 2 * FIRST_CHUNK_MS // 1000)
    assert all(end - start == OUTPUT_RATE * 2 * CHUNK_MS // 1000 for start, end in bounds[1:-1])
    assert [s for s, _ in bounds[1:]] == [e for _, e in bounds[:-1]] and bounds[-1][1] == size
    later = chunk_bounds(size, first=False)
    assert later[0] == (0, OUTPUT_RATE * 2 * CHUNK_MS // 1000)
    assert chunk_bounds(0, first=True) == []


def tone(ms: int, amplitude: int = 8000) -> bytes:
    samples = np.arange(OUTPUT_RATE * ms // 1000)
    wave = amplitude * np.sin(2 * np.pi * 220 * samples / OUTPUT_RATE)
    return wave.astype("<i2").tobytes()


def quiet(ms: int) -> bytes:
    return b"\x00\x00" * (OUTPUT_RATE * ms // 1000)


def test_pipers_quiet_lead_in_is_cut_to_ten_milliseconds() -> None:
    pcm = quiet(70) + tone(200)
    assert lead_in_ms(pcm) == 70
    trimmed = trim_lead_in(pcm, 10)
    assert lead_in_ms(trimmed) == 10
    assert trimmed.endswith(tone(200)) and len(trimmed) == len(quiet(10) + tone(200))


def test_audio_with_no_quiet_start_or_no_sound_at_all_is_left_whole() -> None:
    assert trim_lead_in(tone(100), 10) == tone(100)
    assert trim_lead_in(quiet(5) + tone(100), 10) == quiet(5) + tone(100)
    assert trim_lead_in(quiet(300), 10) == quiet(300)


async def test_the_first_chunk_is_sent_before_anything_waits_and_the_rest_are_paced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, Any]] = []
    waits: list[tuple[int, float]] = []  # (messages sent before it, seconds)

    async def fake_sleep(seconds: float) -> None:
        waits.append((len(sent), seconds))

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    ctx: Any = SimpleNamespace(
        options=SimpleNamespace(pace=1.0, lead_s=0.2),
        config=SimpleNamespace(output_transcription=True),
        channel=SimpleNamespace(send=send),
    )
    monkeypatch.setattr(speaker_module.asyncio, "sleep", fake_sleep)
    said = speaker_module._Said()
    await speaker_module.Speaker(ctx)._stream("Hello there.", tone(2000), said)
    first = sent[0]["server_content"]
    blob = first["model_turn"]["parts"][0]["inline_data"]
    assert len(decode_bytes(blob["data"])) == OUTPUT_RATE * 2 * FIRST_CHUNK_MS // 1000
    assert first["output_transcription"] == {"text": "Hello there."}
    assert all(before >= 1 for before, _ in waits), "something waited before the first chunk"
    assert any(seconds > 0 for _, seconds in waits), "the rest must be paced at real time"
    assert said.audio_s == pytest.approx(2.0)


async def test_an_answer_begins_with_its_first_clause_in_a_short_first_chunk(
    emulator: Running,
) -> None:
    async with live(emulator, audio_config()) as (session, box):
        await say_text(session, "Please remember that my favorite color is blue.")
        messages = await box.turn()
        found = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    pieces = [
        m.server_content.output_transcription.text or ""
        for m in messages
        if m.server_content and m.server_content.output_transcription
    ]
    (said,) = [t["text"] for t in found["history"] if t["role"] == "model"]
    assert "".join(pieces).strip() == said
    assert pieces[0].endswith(", ") and said.startswith(pieces[0])
    (first, *_rest) = [b for m in messages for b in audio_parts(m)]
    assert len(first.data or b"") == OUTPUT_RATE * 2 * FIRST_CHUNK_MS // 1000
    assert lead_in_ms(first.data or b"") <= 10
