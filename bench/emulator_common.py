"""What every part of the emulator benchmark shares: the workload, the clock and the CPU meter.

The benchmark measures the emulator through the real google-genai SDK; the questions it asks and
what their answers must contain are fixed here, so every run measures the same work.
"""

from __future__ import annotations

import os
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.genai import types

REPO = Path(__file__).resolve().parents[1]
AUDIO_DIR = REPO / "tests" / "fixtures" / "audio"
MODEL = "gemini-3.1-flash-live-preview"
API_KEY = "bench-key"
INPUT_RATE = 16000
OUTPUT_RATE = 24000
CHUNK_MS = 100
TRAILING_SILENCE_S = 1.0
READY_TIMEOUT_S = 120.0
TURN_TIMEOUT_S = 60.0
SETUP_TARGET_MS = 100.0
GAP_MS = 100.0
"""An output underrun longer than this counts as an audible gap."""

TEXT_TURNS: tuple[tuple[str, str], ...] = (
    ("What is twelve times seven?", "84"),
    ("What is one hundred divided by four?", "25"),
    ("What is two to the power of ten?", "1024"),
)
"""Each user turn with a string its answer must contain."""

TOKYO_TIME = "21:30"


@dataclass(frozen=True)
class Clip:
    """A recorded user question and what a correct spoken answer contains."""

    name: str
    expect: str
    tool_result: dict[str, Any] | None = None


CLIPS: tuple[Clip, ...] = (
    Clip("hello.wav", "hear you"),
    Clip("what_time_tokyo.wav", TOKYO_TIME, {"city": "Tokyo", "time": TOKYO_TIME}),
)

TIME_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_time",
            description="Get the current local time in a city.",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        )
    ]
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces or parentheses; the fields after the last ")" start at
    # field 3 (state), so utime (field 14) and stime (field 15) are at indexes 11 and 12.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    """CPU used by the emulator and by this benchmark over one phase, in % of one core."""

    wall_s: float
    emulator_pct: float
    bench_pct: float


class CpuMeter:
    """Measures the emulator's and this process's CPU time between `start()` and `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._wall = 0.0
        self._emulator = 0.0
        self._bench = 0.0

    def start(self) -> None:
        self._wall = time.perf_counter()
        self._emulator = process_cpu_seconds(self.pid)
        self._bench = time.process_time()

    def stop(self) -> CpuUse:
        wall = time.perf_counter() - self._wall
        emulator = process_cpu_seconds(self.pid) - self._emulator
        bench = time.process_time() - self._bench
        return CpuUse(
            wall_s=round(wall, 3),
            emulator_pct=round(100 * emulator / wall, 1),
            bench_pct=round(100 * bench / wall, 1),
        )


def load_clip(name: str) -> bytes:
    """PCM16 mono 16 kHz frames of a fixture in tests/fixtures/audio."""
    path = AUDIO_DIR / name
    with wave.open(str(path), "rb") as wav:
        shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
        if shape != (INPUT_RATE, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM, got {shape}")
        return wav.readframes(wav.getnframes())


def quiet_tail_s(pcm: bytes, threshold_db: float = -40.0) -> float:
    """Seconds of audio after the last 32 ms window louder than `threshold_db` dBFS."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    window = 512
    count = len(samples) // window
    if count == 0:
        return 0.0
    rms = np.sqrt(np.mean(np.square(samples[: count * window].reshape(count, window)), axis=1))
    loud = np.nonzero(rms > 10 ** (threshold_db / 20))[0]
    last = int(loud[-1]) + 1 if loud.size else 0
    return (len(samples) - last * window) / INPUT_RATE
