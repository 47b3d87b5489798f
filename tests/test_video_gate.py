"""Camera frames reach Gemini only while the user speaks, at most once a second."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputImageRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import run_test

from processors.video_gate import SpeechGatedVideo
from testkit.clock import FakeClock
from testkit.frames import Advance, ClockAdvancer

pytestmark = pytest.mark.unit


def image() -> InputImageRawFrame:
    return InputImageRawFrame(image=b"\0" * 12, size=(2, 2), format="RGB")


async def test_frames_outside_speech_are_dropped() -> None:
    gate = SpeechGatedVideo(clock=FakeClock())
    down, _ = await run_test(gate, frames_to_send=[image(), image()], expected_down_frames=[])
    assert gate.dropped == 2 and gate.passed == 0
    assert down == []


async def test_one_frame_per_second_passes_while_the_user_speaks() -> None:
    clock = FakeClock()
    gate = SpeechGatedVideo(clock=clock, fps=1.0)
    # Frames are processed in order; the clock does not move, so only the first of a burst passes.
    frames: list[Frame] = [UserStartedSpeakingFrame(), image(), image(), image()]
    await run_test(
        gate,
        frames_to_send=frames,
        expected_down_frames=[UserStartedSpeakingFrame, InputImageRawFrame],
    )
    assert gate.passed == 1 and gate.dropped == 2


async def test_frames_pass_again_once_a_second_has_gone_by() -> None:
    # While speaking, the gate reads the clock once per image: these are the images' times.
    times = iter([100.0, 100.4, 100.8, 101.2, 101.6, 102.2])
    gate = SpeechGatedVideo(clock=lambda: next(times), fps=1.0)
    down, _ = await run_test(
        gate, frames_to_send=[UserStartedSpeakingFrame(), *(image() for _ in range(6))]
    )
    assert len([f for f in down if isinstance(f, InputImageRawFrame)]) == 3  # 100.0, 101.2, 102.2
    assert gate.dropped == 3


async def test_a_short_hangover_keeps_the_last_words_picture() -> None:
    clock = FakeClock()
    gate = SpeechGatedVideo(clock=clock, hangover_s=0.5)
    kept, late = image(), image()
    down, _ = await run_test(
        Pipeline([ClockAdvancer(clock), gate]),
        frames_to_send=[
            UserStartedSpeakingFrame(),
            UserStoppedSpeakingFrame(),
            Advance(0.3),
            kept,  # 0.3 s after the last words: within the hangover
            Advance(0.3),
            late,  # 0.6 s after: the gate is shut
        ],
    )
    images = [f for f in down if isinstance(f, InputImageRawFrame)]
    assert len(images) == 1 and images[0] is kept
    assert gate.passed == 1 and gate.dropped == 1


async def test_audio_and_other_frames_always_pass_through() -> None:
    gate = SpeechGatedVideo(clock=FakeClock())
    audio = InputAudioRawFrame(audio=b"\0\0" * 320, sample_rate=16000, num_channels=1)
    await run_test(
        gate,
        frames_to_send=[audio, UserStartedSpeakingFrame(), UserStoppedSpeakingFrame()],
        expected_down_frames=[
            InputAudioRawFrame,
            UserStartedSpeakingFrame,
            UserStoppedSpeakingFrame,
        ],
    )
    assert not gate.speaking


@pytest.mark.speech
async def test_the_gate_hears_speech_with_its_own_vad() -> None:
    from conftest import load_wav
    from pipecat.audio.vad.silero import SileroVADAnalyzer

    clock = FakeClock()
    gate = SpeechGatedVideo(vad=SileroVADAnalyzer(), clock=clock)
    pcm = load_wav("hello.wav")
    frames: list[Frame] = [image()]  # before speech: dropped
    chunk = 320 * 2
    for i in range(0, len(pcm) - chunk, chunk):
        frames.append(
            InputAudioRawFrame(audio=pcm[i : i + chunk], sample_rate=16000, num_channels=1)
        )
    frames.append(image())  # the fixture ends mid-speech or within the hangover: passes
    down, _ = await run_test(gate, frames_to_send=frames)
    images = [f for f in down if isinstance(f, InputImageRawFrame)]
    assert len(images) == 1
    assert gate.dropped == 1
