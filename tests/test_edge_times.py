"""The benchmark's observer of the bot's edges: which pushes it notes, and what it writes.

`observers.edge_times.EdgeTimes` names each audio frame by the digest the emulator gives the same
bytes, so the two records line up; it notes microphone audio leaving the input transport and
reaching the model's service, the model's audio leaving the service and reaching the output
transport, and the output transport starting to speak, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    TextFrame,
    TTSAudioRawFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from emulator.session.timing import audio_digest as emulator_digest
from observers.edge_times import EDGES, EdgeTimes, audio_digest

pytestmark = pytest.mark.unit


class FakeLLM(LLMService):
    """Stands in for the model's service: only its type matters here."""


MIC = InputAudioRawFrame(audio=b"\x01\x02" * 320, sample_rate=16000, num_channels=1)
VOICE = TTSAudioRawFrame(audio=b"\x03\x04" * 2400, sample_rate=24000, num_channels=1)


@pytest.fixture
def parts() -> dict[str, FrameProcessor]:
    return {
        "input": BaseInputTransport(TransportParams()),
        "middle": FrameProcessor(),
        "llm": FakeLLM(),
        "output": BaseOutputTransport(TransportParams()),
    }


async def push(edges: EdgeTimes, frame: Frame, source: FrameProcessor, to: FrameProcessor) -> None:
    await edges.on_push_frame(FramePushed(source, to, frame, FrameDirection.DOWNSTREAM, 0))


def test_a_chunk_has_the_same_name_in_the_bot_and_in_the_emulator() -> None:
    pcm = bytes(range(256)) * 10
    assert audio_digest(pcm) == emulator_digest(pcm)
    assert audio_digest(pcm) != audio_digest(pcm[:-2])


async def test_audio_is_noted_at_each_edge_it_crosses_and_nowhere_else(
    parts: dict[str, FrameProcessor], tmp_path: Path
) -> None:
    edges = EdgeTimes(tmp_path / "edges.json")
    await push(edges, MIC, parts["input"], parts["middle"])
    await push(edges, MIC, parts["middle"], parts["llm"])
    await push(edges, MIC, parts["middle"], parts["middle"])  # not an edge
    await push(edges, VOICE, parts["llm"], parts["middle"])
    await push(edges, VOICE, parts["middle"], parts["output"])
    await push(edges, TextFrame("hello"), parts["llm"], parts["output"])
    await push(edges, BotStartedSpeakingFrame(), parts["output"], parts["middle"])
    got = edges.as_json()
    assert set(got) == set(EDGES)
    mic, voice = audio_digest(MIC.audio), audio_digest(VOICE.audio)
    assert [row[0] for row in got["mic_in"]] == [mic]
    assert [row[0] for row in got["mic_to_llm"]] == [mic]
    assert [row[0] for row in got["llm_out"]] == [voice]
    assert [row[0] for row in got["out_in"]] == [voice]
    assert [row[0] for row in got["bot_started"]] == [None]
    # The microphone's frames carry their loudness: 0x0201 is 513 of 32768.
    assert got["mic_in"][0][2] == pytest.approx(513 / 32768, abs=1e-4)
    assert all(len(row) == 2 for edge in EDGES[1:] for row in got[edge])
    # One clock: each edge after the one before it.
    times = [got[e][0][1] for e in ("mic_in", "mic_to_llm", "llm_out", "out_in", "bot_started")]
    assert times == sorted(times)


async def test_the_times_are_written_as_json_when_the_pipeline_is_cleaned_up(
    parts: dict[str, FrameProcessor], tmp_path: Path
) -> None:
    path = tmp_path / "sub" / "edges.json"
    edges = EdgeTimes(path)
    await push(edges, MIC, parts["input"], parts["middle"])
    assert not path.exists()
    await edges.cleanup()
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(edges.as_json()))
    assert written["mic_in"][0][0] == audio_digest(MIC.audio)


async def test_only_the_newest_frames_are_kept(
    parts: dict[str, FrameProcessor], tmp_path: Path
) -> None:
    edges = EdgeTimes(tmp_path / "edges.json", frames_kept=2)
    chunks = [bytes([i]) * 640 for i in range(3)]
    for pcm in chunks:
        frame = InputAudioRawFrame(audio=pcm, sample_rate=16000, num_channels=1)
        await push(edges, frame, parts["input"], parts["middle"])
    assert [row[0] for row in edges.as_json()["mic_in"]] == [audio_digest(c) for c in chunks[1:]]
