"""The emulator's load mode (`--load`): turns found by VAD alone, answered with speech made once.

`bench/load.py` runs it so that a bench of the bot measures the bot, not Whisper and Piper.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_wav
from emulator_helpers import (
    SILENCE_1S,
    audio_config,
    input_transcript,
    live,
    output_transcript,
    send_audio,
)

from emulator import brain
from emulator.__main__ import LOAD_TRANSCRIPT, build_parser, render_load_answer
from emulator.server import Emulator, running
from emulator.speech import Synthesizer, split_sentences

pytestmark = [pytest.mark.emulator, pytest.mark.speech]

GREETING = "Hello! Yes, I can hear you clearly. How can I help you today?"
"""The brain's answer to a greeting, written out here so the test does not take it from the code."""


async def test_in_load_mode_any_spoken_turn_is_heard_as_the_greeting_and_answered_as_one(
    cert_dir: Path,
) -> None:
    emulator = Emulator(pace=0, connection_lifetime_s=None, heard_as=LOAD_TRANSCRIPT)
    async with running(emulator, cert_dir=cert_dir) as r, live(r, audio_config()) as (session, box):
        # A multiplication, which the emulator would otherwise hear and send to a calculator.
        await send_audio(session, load_wav("multiply.wav") + SILENCE_1S)
        messages = await box.turn()
    assert input_transcript(messages).strip() == LOAD_TRANSCRIPT
    assert output_transcript(messages).strip() == GREETING
    assert not any(m.tool_call for m in messages)


def test_the_load_answer_is_rendered_into_the_synthesizer_cache_before_any_turn() -> None:
    render_load_answer()
    answer = brain.respond(LOAD_TRANSCRIPT, [], history=[], system_instruction="", image=None)
    assert isinstance(answer, brain.Say) and answer.text == GREETING
    synthesizer = Synthesizer.shared()
    assert all(synthesizer.cached(sentence) for sentence in split_sentences(GREETING))


def test_the_load_flag_is_off_unless_asked_for() -> None:
    assert build_parser().parse_args([]).load is False
    assert build_parser().parse_args(["--load"]).load is True
