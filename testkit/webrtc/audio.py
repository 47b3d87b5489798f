"""The client side of WebRTC audio: a microphone track that plays queued speech in real time.

Speech is 16-bit mono PCM resampled to 48 kHz for Opus with FFmpeg's resampler (the one aiortc
itself uses), and silence in between, paced by the clock like a real microphone.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

OPUS_RATE = 48000
"""The rate the microphone track produces (Opus's native rate)."""
FRAME_SECONDS = 0.02
"""One microphone frame: 20 ms, Opus's usual packet."""


@dataclass(frozen=True)
class AudioChunk:
    """One decoded frame of the bot's audio."""

    at: float
    """`time.monotonic()` when it arrived."""
    seconds: float
    rms: float
    """Root mean square, full scale 1.0."""


def read_wav(path: Path) -> tuple[bytes, int]:
    """16-bit mono PCM and its sample rate from a WAV file."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: need 16-bit mono PCM, got {wav.getparams()}")
        return wav.readframes(wav.getnframes()), wav.getframerate()


def resample(pcm: bytes, rate: int, to_rate: int = OPUS_RATE) -> bytes:
    """Resample 16-bit mono PCM with FFmpeg's resampler (the one aiortc itself uses)."""
    if rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    out = [*resampler.resample(frame), *resampler.resample(None)]
    return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in out)


class SpeechTrack(MediaStreamTrack):
    """A microphone that says what is queued and is silent otherwise, in real time.

    Frames are 20 ms of 48 kHz mono s16. `queue()` returns a future that resolves with the
    `time.monotonic()` at which the last sample of that speech was handed to the encoder.
    """

    kind = "audio"

    def __init__(self, rate: int = OPUS_RATE) -> None:
        super().__init__()
        self._rate = rate
        self._samples = round(rate * FRAME_SECONDS)
        self._pending: deque[tuple[bytearray, asyncio.Future[float]]] = deque()
        self._start: float | None = None
        self._sent = 0

    def queue(self, pcm: bytes) -> asyncio.Future[float]:
        """Queue PCM at this track's rate after anything already queued."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if pcm:
            self._pending.append((bytearray(pcm), future))
        else:
            future.set_result(time.monotonic())
        return future

    def clear(self) -> None:
        """Drop queued speech (its futures are cancelled); the track goes silent."""
        while self._pending:
            _, future = self._pending.popleft()
            future.cancel()

    @property
    def speaking(self) -> bool:
        """Whether queued speech is still being sent."""
        return bool(self._pending)

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms frame, at real-time pace (aiortc's sender calls this in a loop)."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self._sent / self._rate
            if due > now:
                await asyncio.sleep(due - now)
        need = self._samples * 2
        out = bytearray()
        finished: list[asyncio.Future[float]] = []
        while len(out) < need and self._pending:
            buf, future = self._pending[0]
            take = min(need - len(out), len(buf))
            out += buf[:take]
            del buf[:take]
            if not buf:
                self._pending.popleft()
                finished.append(future)
        out += bytes(need - len(out))
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(bytes(out))
        frame.pts = self._sent
        frame.sample_rate = self._rate
        frame.time_base = fractions.Fraction(1, self._rate)
        self._sent += self._samples
        sent_at = time.monotonic()
        for future in finished:
            if not future.done():
                future.set_result(sent_at)
        return frame

    def stop(self) -> None:
        """End the track; queued speech is dropped."""
        self.clear()
        super().stop()


def frame_rms(frame: av.AudioFrame) -> float:
    """RMS of a decoded s16 frame (any layout), full scale 1.0."""
    samples = frame.to_ndarray().astype(np.float64)
    if samples.size == 0:
        return 0.0
    return math.sqrt(float(np.mean(samples * samples))) / 32768.0
