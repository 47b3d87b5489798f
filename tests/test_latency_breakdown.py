"""How `bench.browser_latency` cuts a turn into steps from the page's, the bot's and the
emulator's records (`bench.latency_breakdown`): on made-up records, so no clock is involved."""

from __future__ import annotations

from typing import Any

import pytest

from bench.latency_breakdown import STEPS, breakdown, jitter_between, median_range

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def timing(**marks: float) -> dict[str, Any]:
    return {
        "source": "audio",
        "marks": {k: T0 + v for k, v in marks.items()},
        "speech_digest": "speech",
        "first_audio_digest": "first",
        "early_transcript": True,
        "lead_in_ms": 10.0,
    }


SPOKEN = timing(
    speech_received=0.102,
    transcribe_started=0.2,
    transcribed=0.55,
    turn_ended=0.62,
    decided=0.621,
    synthesis_started=0.621,
    synthesized=0.7,
    first_audio_sent=0.702,
)
EDGES = {
    "mic_in": [
        ["loud", T0 + 0.07, 0.2],
        ["soft", T0 + 0.09, 0.005],
        ["speech", T0 + 0.1, 0.004],
        ["after", T0 + 0.12, 0.0],
    ],
    "mic_to_llm": [["speech", T0 + 0.101]],
    "llm_out": [["first", T0 + 0.705]],
    "out_in": [["first", T0 + 0.706]],
    "bot_started": [[None, T0 + 0.5], [None, T0 + 0.716]],
}


def test_the_steps_follow_one_another_and_add_up_to_what_the_page_measured() -> None:
    part = breakdown(T0, T0 + 0.9, [SPOKEN], EDGES)
    assert set(part.steps) == set(STEPS)
    assert part.steps["webrtc_in"] == pytest.approx(70, abs=0.01)  # to the last loud frame
    assert part.steps["speech_tail"] == pytest.approx(30, abs=0.01)  # Silero heard more
    assert part.steps["bot_in"] == pytest.approx(2, abs=0.01)
    assert part.steps["vad_wait"] == pytest.approx(518, abs=0.01)
    assert part.steps["transcription"] == pytest.approx(0, abs=0.01)  # ready before the turn ended
    assert part.steps["tool"] == pytest.approx(0, abs=0.01)
    assert part.steps["bot_out"] == pytest.approx(4, abs=0.01)
    measured = [v for v in part.steps.values() if v is not None]
    assert sum(measured) == pytest.approx(part.total_ms, abs=0.01)
    assert part.total_ms == pytest.approx(900, abs=0.01)
    assert part.whisper_ms == pytest.approx(350, abs=0.01)
    assert part.in_pipeline_ms == pytest.approx(1, abs=0.01)
    assert part.out_pipeline_ms == pytest.approx(1, abs=0.01)
    assert part.out_transport_ms == pytest.approx(10, abs=0.01)


def test_a_blocking_calls_round_trip_is_a_step_of_its_own() -> None:
    blocking = timing(
        speech_received=0.1,
        transcribed=0.3,
        turn_ended=0.6,
        decided=0.61,
        tool_call_sent=0.611,
        tool_response_received=0.66,
        synthesis_started=0.661,
        synthesized=0.7,
        first_audio_sent=0.701,
    )
    part = breakdown(T0, T0 + 0.9, [blocking], EDGES)
    assert part.steps["tool"] == pytest.approx(50, abs=0.01)
    assert part.steps["tts"] == pytest.approx(40, abs=0.01)


def test_a_call_made_after_the_first_audio_is_not_part_of_the_latency() -> None:
    preamble = dict(SPOKEN, marks=dict(SPOKEN["marks"], tool_call_sent=T0 + 1.5))
    assert breakdown(T0, T0 + 0.9, [preamble], EDGES).steps["tool"] == pytest.approx(0, abs=0.01)


def test_a_chunk_the_bot_never_noted_leaves_only_its_own_steps_unmeasured() -> None:
    part = breakdown(T0, T0 + 0.9, [SPOKEN], {"mic_in": EDGES["mic_in"]})
    assert part.steps["bot_out"] is None and part.steps["webrtc_out"] is None
    assert part.steps["webrtc_in"] == pytest.approx(70, abs=0.01)


def test_without_the_frames_loudness_the_speech_tail_is_left_in_webrtc_in() -> None:
    quiet = {**EDGES, "mic_in": [row[:2] for row in EDGES["mic_in"]]}
    part = breakdown(T0, T0 + 0.9, [SPOKEN], quiet)
    assert part.steps["webrtc_in"] == pytest.approx(100, abs=0.01)
    assert part.steps["speech_tail"] == pytest.approx(0, abs=0.01)


def test_a_turn_the_emulator_has_no_timing_for_is_only_a_total() -> None:
    late = dict(SPOKEN, marks={k: v + 10 for k, v in SPOKEN["marks"].items()})
    part = breakdown(T0, T0 + 0.9, [late], EDGES)
    assert part.total_ms == pytest.approx(900, abs=0.01)
    assert all(v is None for v in part.steps.values())


def test_the_jitter_buffer_delay_is_averaged_over_the_samples_played_between_readings() -> None:
    before = {"jitterBufferDelay": 1.0, "jitterBufferEmittedCount": 48000}
    after = {"jitterBufferDelay": 4.0, "jitterBufferEmittedCount": 96000}
    assert jitter_between(before, after) == pytest.approx(3.0 / 48000 * 1000)
    assert jitter_between(before, before) is None
    assert jitter_between(None, after) is None


def test_a_summary_cell_is_the_median_and_range_of_what_was_measured() -> None:
    assert median_range([3.0, 1.0, None, 2.0]) == "2 (1–3)"
    assert median_range([None]) == "-"
    assert median_range([5.4]) == "5"
