"""When audio crosses the bot's edges: a benchmark's view of the time the bot itself adds.

A voice bot adds time twice: between its transport handing it the user's audio and that audio
leaving on the model's socket, and between the model's audio arriving and the output transport
taking it. Neither is visible from outside, so this observer notes, for each audio frame, when it
crossed each edge of the pipeline, named by a digest of its PCM (BLAKE2b-64 of the bytes, hex:
the one the emulator gives each chunk it receives or sends, `emulator.session.timing`). The same
chunk's times on both sides of the socket then line up with no shared state, on the one clock
of the machine (epoch seconds).

It only watches (as every observer does): nothing in the frame flow changes. The times are kept
in memory, bounded, and written as one JSON file when the pipeline is cleaned up. It is meant for
benchmarks (`bench.latency_bot`), not for production sessions.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import BotStartedSpeakingFrame, InputAudioRawFrame, TTSAudioRawFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.services.llm_service import LLMService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport

from observers.loudness import rms

FRAMES_KEPT = 6000
"""Frames remembered per edge: two minutes of 20 ms microphone frames."""

EDGES = ("mic_in", "mic_to_llm", "llm_out", "out_in", "bot_started")
"""What is recorded:

- `mic_in`: a microphone frame left the input transport, with its loudness (RMS, full scale 1.0),
  so the end of the user's speech can be found among the frames the bot received;
- `mic_to_llm`: it reached the model's service (after the user-side processors);
- `llm_out`: the model's service pushed an audio frame it had just read off its socket;
- `out_in`: that frame reached the output transport;
- `bot_started`: the output transport began writing the bot's voice (`BotStartedSpeakingFrame`).
"""


def audio_digest(pcm: bytes) -> str:
    """The name a chunk of PCM has on both sides of the model's socket."""
    return hashlib.blake2b(pcm, digest_size=8).hexdigest()


def epoch_of(data: FramePushed) -> float:
    """When the frame was pushed, in epoch seconds.

    Observers may run a little after the push; the push's own pipeline-clock time is moved onto
    the epoch clock by how long ago it was.
    """
    now = time.time()
    try:
        ago_ns = data.source.get_clock().get_time() - data.timestamp
    except Exception:  # no clock yet: the push is now
        return now
    return now - max(0, ago_ns) / 1e9


class EdgeTimes(BaseObserver):
    """Records when audio frames cross the pipeline's edges (see `EDGES`) and writes them out.

    Args:
        path: Where the JSON is written at cleanup: `{edge: [[digest, epoch], ...]}` (for
            `mic_in`, `[digest, epoch, rms]`; for `bot_started`, `[null, epoch]`).
        frames_kept: Frames remembered per edge; the oldest go first.
    """

    def __init__(self, path: Path, *, frames_kept: int = FRAMES_KEPT) -> None:
        super().__init__()
        self.path = path
        self.times: dict[str, deque[tuple[str | None, float, float | None]]] = {
            edge: deque(maxlen=frames_kept) for edge in EDGES
        }

    async def on_push_frame(self, data: FramePushed) -> None:
        """Note the frames that cross an edge; everything else passes unseen."""
        frame = data.frame
        if isinstance(frame, InputAudioRawFrame):
            if isinstance(data.source, BaseInputTransport):
                self._note("mic_in", frame.audio, data, level=rms(frame.audio) / 32768.0)
            elif isinstance(data.destination, LLMService):
                self._note("mic_to_llm", frame.audio, data)
        elif isinstance(frame, TTSAudioRawFrame):
            if isinstance(data.source, LLMService):
                self._note("llm_out", frame.audio, data)
            if isinstance(data.destination, BaseOutputTransport):
                self._note("out_in", frame.audio, data)
        elif isinstance(frame, BotStartedSpeakingFrame):
            if isinstance(data.source, BaseOutputTransport) and data.first_push:
                self.times["bot_started"].append((None, epoch_of(data), None))

    def _note(
        self, edge: str, pcm: bytes, data: FramePushed, *, level: float | None = None
    ) -> None:
        self.times[edge].append((audio_digest(pcm), epoch_of(data), level))

    def as_json(self) -> dict[str, list[list[str | float | None]]]:
        """The times recorded so far, by edge."""
        return {
            edge: [
                [d, round(t, 4)] if level is None else [d, round(t, 4), round(level, 5)]
                for d, t, level in kept
            ]
            for edge, kept in self.times.items()
        }

    async def cleanup(self) -> None:
        """Write the times (the session is over)."""
        await super().cleanup()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".part")
            tmp.write_text(json.dumps(self.as_json()), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            logger.warning(f"edge times not written to {self.path}: {exc}")
