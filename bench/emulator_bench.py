"""Benchmark the Gemini Live emulator with the real google-genai SDK.

Run `python -m bench.emulator_bench` (or `make bench`). It starts the emulator as a user would, as a
child process (`python -m emulator --port 0 --cert-dir TMP`) in its own process group, reads its
`ready https://HOST:PORT ca=PATH` line, and measures three things through the unmodified SDK:

1. Session setup: sequential connects, each timed from `connect()` to the `setupComplete` the SDK
   waits for (TCP, TLS, WebSocket upgrade and the `setup` round trip).
2. Concurrent TEXT sessions: every session sends three text turns and reads each full answer; the
   turn latency runs from the user's text being sent to the first model text.
3. Concurrent AUDIO sessions in real time: every session streams a recorded question as 100 ms
   chunks paced at real time, then 1 s of silence, and receives the spoken answer (answering the
   `toolCall` that "What time is it in Tokyo?" brings). Per session it reports the turn latency
   (last chunk of the recording sent -> first model audio, and from the chunk holding the last
   loud audio, which is what a user waits), the real-time factor of the output, the worst
   underrun a player would hear, and how far the sender fell behind real time.

The emulator's CPU use during each phase is read from `/proc/PID/stat`. Results print as Markdown
tables on stdout; `--json PATH` writes them as JSON too. Logs go to stderr. The exit status is 1
when any session had an error (a failure, a timeout or a wrong answer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from google import genai
from google.genai import types
from google.genai.live import AsyncSession
from loguru import logger

from emulator.client import http_options

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


# ------------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _describe(exc: BaseException) -> str:
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


# ------------------------------------------------------------------------------- the emulator


@dataclass(frozen=True)
class EmulatorInfo:
    """A running emulator child process and where to reach it."""

    pid: int
    base_url: str
    ca: Path
    command: list[str]
    log_path: Path


def _read_log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


@contextlib.asynccontextmanager
async def emulator_process(
    workdir: Path, log_path: Path | None = None
) -> AsyncIterator[EmulatorInfo]:
    """Start `python -m emulator --port 0 --cert-dir DIR`, yield it once ready, then SIGTERM it."""
    command = [
        sys.executable,
        "-m",
        "emulator",
        "--port",
        "0",
        "--cert-dir",
        str(workdir / "certs"),
    ]
    log_path = log_path or workdir / "emulator.log"
    log_file = _open_log(log_path)
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=log_file,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                line = (await proc.stdout.readline()).decode().strip()
        except TimeoutError:
            raise RuntimeError(
                f"the emulator printed no ready line in {READY_TIMEOUT_S:.0f} s\n"
                + _read_log_tail(log_path)
            ) from None
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "ready" or not parts[2].startswith("ca="):
            raise RuntimeError(
                f"unexpected first line from the emulator: {line!r}\n" + _read_log_tail(log_path)
            )
        info = EmulatorInfo(
            pid=proc.pid,
            base_url=parts[1],
            ca=Path(parts[2].removeprefix("ca=")),
            command=command,
            log_path=log_path,
        )
        logger.info(
            f"emulator pid {proc.pid} ready at {info.base_url} after "
            f"{time.perf_counter() - started:.2f} s (model warm-up included)"
        )
        yield info
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                logger.warning(f"emulator pid {proc.pid} ignored SIGTERM; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()
        log_file.close()
        logger.info(f"emulator pid {proc.pid} exited with {proc.returncode}")


# ------------------------------------------------------------------------------- setup latency


@dataclass
class SetupResult:
    """Sequential connect -> setupComplete latencies."""

    trials: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: CpuUse | None = None

    def stats(self) -> dict[str, float | None]:
        return {
            "p50_ms": percentile(self.latencies_ms, 50),
            "p95_ms": percentile(self.latencies_ms, 95),
            "max_ms": max(self.latencies_ms) if self.latencies_ms else None,
        }


async def measure_setup(client: genai.Client, trials: int, meter: CpuMeter) -> SetupResult:
    """Open and close `trials` sessions one after another, timing connect -> setupComplete."""
    result = SetupResult(trials=trials)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    meter.start()
    for _ in range(trials):
        started = time.perf_counter()
        try:
            async with asyncio.timeout(TURN_TIMEOUT_S):
                async with client.aio.live.connect(model=MODEL, config=config) as session:
                    elapsed = time.perf_counter() - started
                    if session.setup_complete is None:
                        raise RuntimeError("the first server message was not setupComplete")
                    result.latencies_ms.append(round(1000 * elapsed, 2))
        except Exception as exc:
            result.errors.append(_describe(exc))
    result.cpu = meter.stop()
    return result


# ------------------------------------------------------------------------------- text sessions


@dataclass
class TextSessionResult:
    """One concurrent TEXT session: three turns and their latencies."""

    index: int
    connect_ms: float | None = None
    first_text_ms: list[float] = field(default_factory=list)
    turn_complete_ms: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _text_turn(session: AsyncSession, prompt: str, out: TextSessionResult) -> str:
    await session.send_realtime_input(text=prompt)
    sent = time.perf_counter()
    first: float | None = None
    texts: list[str] = []
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async for message in session.receive():
            content = message.server_content
            if content is None or content.model_turn is None:
                continue
            for part in content.model_turn.parts or []:
                if part.text:
                    if first is None:
                        first = time.perf_counter()
                    texts.append(part.text)
    done = time.perf_counter()
    if first is None:
        raise RuntimeError(f"no model text for {prompt!r}")
    out.first_text_ms.append(round(1000 * (first - sent), 2))
    out.turn_complete_ms.append(round(1000 * (done - sent), 2))
    return "".join(texts)


async def text_session(client: genai.Client, index: int) -> TextSessionResult:
    """Connect, send each of TEXT_TURNS, and check every answer."""
    out = TextSessionResult(index=index)
    config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    started = time.perf_counter()
    try:
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(TURN_TIMEOUT_S):
                session = await stack.enter_async_context(
                    client.aio.live.connect(model=MODEL, config=config)
                )
            out.connect_ms = round(1000 * (time.perf_counter() - started), 2)
            for prompt, expect in TEXT_TURNS:
                answer = await _text_turn(session, prompt, out)
                out.answers.append(answer)
                if expect not in answer:
                    out.errors.append(f"answer to {prompt!r} lacks {expect!r}: {answer!r}")
    except Exception as exc:
        out.errors.append(_describe(exc))
    return out


@dataclass
class TextResult:
    """All concurrent TEXT sessions."""

    sessions: int
    turns_per_session: int
    wall_s: float = 0.0
    cpu: CpuUse | None = None
    results: list[TextSessionResult] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f"session {r.index}: {e}" for r in self.results for e in r.errors]

    def stats(self) -> dict[str, float | int | None]:
        first = [v for r in self.results for v in r.first_text_ms]
        done = [v for r in self.results for v in r.turn_complete_ms]
        connects = [r.connect_ms for r in self.results if r.connect_ms is not None]
        return {
            "turns_completed": len(done),
            "first_text_p50_ms": percentile(first, 50),
            "first_text_p95_ms": percentile(first, 95),
            "first_text_max_ms": max(first) if first else None,
            "turn_complete_p50_ms": percentile(done, 50),
            "turn_complete_p95_ms": percentile(done, 95),
            "connect_p50_ms": percentile(connects, 50),
            "connect_max_ms": max(connects) if connects else None,
        }


async def measure_text(client: genai.Client, sessions: int, meter: CpuMeter) -> TextResult:
    """Run `sessions` TEXT sessions at once."""
    result = TextResult(sessions=sessions, turns_per_session=len(TEXT_TURNS))
    meter.start()
    started = time.perf_counter()
    result.results = list(await asyncio.gather(*(text_session(client, i) for i in range(sessions))))
    result.wall_s = round(time.perf_counter() - started, 3)
    result.cpu = meter.stop()
    return result


# ------------------------------------------------------------------------------- audio sessions


@dataclass
class AudioSessionResult:
    """One real-time AUDIO session: the user's question streamed, the spoken answer received."""

    index: int
    clip: str
    clip_s: float
    clip_quiet_tail_s: float
    connect_ms: float | None = None
    input_lag_max_ms: float | None = None
    input_lag_p95_ms: float | None = None
    tool_call_ms: float | None = None
    turn_latency_ms: float | None = None
    voice_end_latency_ms: float | None = None
    audio_out_s: float = 0.0
    receive_wall_s: float | None = None
    output_rtf: float | None = None
    underrun_max_ms: float = 0.0
    input_transcript: str = ""
    output_transcript: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass
class _Timeline:
    """What the receiver saw, on the benchmark's clock."""

    speech_sent: float | None = None
    voice_end_sent: float | None = None
    tool_call: float | None = None
    first_audio: float | None = None
    last_audio: float | None = None
    audio_bytes: int = 0
    underrun_s: float = 0.0
    input_text: list[str] = field(default_factory=list)
    output_text: list[str] = field(default_factory=list)


async def _receive_answer(session: AsyncSession, clip: Clip, seen: _Timeline) -> None:
    """Read server messages until the spoken answer's turnComplete, answering tool calls."""
    while True:
        async for message in session.receive():
            now = time.perf_counter()
            if message.tool_call is not None:
                seen.tool_call = seen.tool_call or now
                responses = [
                    types.FunctionResponse(
                        id=call.id,
                        name=call.name,
                        response=clip.tool_result or {"error": f"unexpected tool {call.name}"},
                    )
                    for call in message.tool_call.function_calls or []
                ]
                await session.send_tool_response(function_responses=responses)
            content = message.server_content
            if content is None:
                continue
            if content.input_transcription and content.input_transcription.text:
                seen.input_text.append(content.input_transcription.text)
            if content.output_transcription and content.output_transcription.text:
                seen.output_text.append(content.output_transcription.text)
            for part in (content.model_turn.parts or []) if content.model_turn else []:
                blob = part.inline_data
                if blob is None or not blob.data:
                    continue
                if seen.first_audio is None:
                    seen.first_audio = now
                # A player that starts at the first chunk plays this one at `due`; arriving
                # later than that is an audible gap.
                due = seen.first_audio + seen.audio_bytes / 2 / OUTPUT_RATE
                seen.underrun_s = max(seen.underrun_s, now - due)
                seen.audio_bytes += len(blob.data)
                seen.last_audio = now
            if content.turn_complete and seen.first_audio is not None:
                return


async def _send_audio(
    session: AsyncSession, pcm: bytes, voice_end_s: float, seen: _Timeline, lags: list[float]
) -> None:
    """Stream `pcm` and then silence in 100 ms chunks, each due at its real-time slot."""
    voice_end_chunk = max(0, math.ceil(round(voice_end_s * 1000 / CHUNK_MS, 6)) - 1)
    step = INPUT_RATE * 2 * CHUNK_MS // 1000
    speech = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    silence = [bytes(step)] * round(TRAILING_SILENCE_S * 1000 / CHUNK_MS)
    start = time.perf_counter()
    for k, chunk in enumerate(speech + silence):
        due = start + k * CHUNK_MS / 1000
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await session.send_realtime_input(
            audio=types.Blob(data=chunk, mime_type=f"audio/pcm;rate={INPUT_RATE}")
        )
        sent = time.perf_counter()
        lags.append(sent - due)
        if k == voice_end_chunk:
            seen.voice_end_sent = sent
        if k == len(speech) - 1:
            seen.speech_sent = sent


async def audio_session(
    client: genai.Client,
    index: int,
    clip: Clip,
    pcm: bytes,
    *,
    connected: asyncio.Event,
    go: asyncio.Event,
    delay_s: float = 0.0,
) -> AudioSessionResult:
    """Connect (then set `connected`), wait for `go` and `delay_s`, stream the clip in real time
    and receive the spoken answer."""
    out = AudioSessionResult(
        index=index,
        clip=clip.name,
        clip_s=round(len(pcm) / 2 / INPUT_RATE, 3),
        clip_quiet_tail_s=round(quiet_tail_s(pcm), 3),
    )
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        tools=[TIME_TOOL],
    )
    seen = _Timeline()
    lags: list[float] = []
    started = time.perf_counter()
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(TURN_TIMEOUT_S):
                    session = await stack.enter_async_context(
                        client.aio.live.connect(model=MODEL, config=config)
                    )
            finally:
                connected.set()
            out.connect_ms = round(1000 * (time.perf_counter() - started), 2)
            await go.wait()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            limit = out.clip_s + TRAILING_SILENCE_S + TURN_TIMEOUT_S
            async with asyncio.timeout(limit):
                receiver = asyncio.create_task(_receive_answer(session, clip, seen))
                try:
                    voice_end_s = out.clip_s - out.clip_quiet_tail_s
                    await _send_audio(session, pcm, voice_end_s, seen, lags)
                    await receiver
                finally:
                    receiver.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await receiver
    except Exception as exc:
        out.errors.append(_describe(exc))
    _fill_audio_result(out, clip, seen, lags)
    return out


def _fill_audio_result(
    out: AudioSessionResult, clip: Clip, seen: _Timeline, lags: list[float]
) -> None:
    if lags:
        out.input_lag_max_ms = round(1000 * max(lags), 2)
        p95 = percentile(lags, 95)
        out.input_lag_p95_ms = round(1000 * p95, 2) if p95 is not None else None
    out.input_transcript = "".join(seen.input_text)
    out.output_transcript = "".join(seen.output_text)
    out.audio_out_s = round(seen.audio_bytes / 2 / OUTPUT_RATE, 3)
    out.underrun_max_ms = round(1000 * max(0.0, seen.underrun_s), 2)
    if seen.speech_sent is not None and seen.first_audio is not None:
        out.turn_latency_ms = round(1000 * (seen.first_audio - seen.speech_sent), 2)
    if seen.voice_end_sent is not None and seen.first_audio is not None:
        out.voice_end_latency_ms = round(1000 * (seen.first_audio - seen.voice_end_sent), 2)
    if seen.speech_sent is not None and seen.tool_call is not None:
        out.tool_call_ms = round(1000 * (seen.tool_call - seen.speech_sent), 2)
    if seen.first_audio is not None and seen.last_audio is not None:
        wall = seen.last_audio - seen.first_audio
        out.receive_wall_s = round(wall, 3)
        # The wall time runs to the arrival of the last chunk; a player still has that chunk
        # to play, so the output kept up when audio_out_s >= wall (factor >= 1).
        out.output_rtf = round(out.audio_out_s / wall, 3) if wall > 0 else None
    if not out.errors:
        if seen.first_audio is None:
            out.errors.append("no model audio")
        elif clip.expect.lower() not in out.output_transcript.lower():
            out.errors.append(f"answer lacks {clip.expect!r}: {out.output_transcript!r}")
        if clip.tool_result is not None and seen.tool_call is None:
            out.errors.append("no toolCall for a question that needs the time tool")


@dataclass
class AudioResult:
    """All concurrent real-time AUDIO sessions."""

    sessions: int
    stagger_ms: int
    wall_s: float = 0.0
    cpu: CpuUse | None = None
    results: list[AudioSessionResult] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f"session {r.index}: {e}" for r in self.results for e in r.errors]

    def stats(self) -> dict[str, float | bool | None]:
        latencies = [r.turn_latency_ms for r in self.results if r.turn_latency_ms is not None]
        waits = [r.voice_end_latency_ms for r in self.results if r.voice_end_latency_ms is not None]
        rtfs = [r.output_rtf for r in self.results if r.output_rtf is not None]
        lags = [r.input_lag_max_ms for r in self.results if r.input_lag_max_ms is not None]
        underruns = [r.underrun_max_ms for r in self.results]
        return {
            "turn_latency_p50_ms": percentile(latencies, 50),
            "turn_latency_max_ms": max(latencies) if latencies else None,
            "from_speech_end_p50_ms": percentile(waits, 50),
            "from_speech_end_max_ms": max(waits) if waits else None,
            "output_rtf_min": min(rtfs) if rtfs else None,
            "underrun_max_ms": max(underruns) if underruns else None,
            "sessions_with_gaps": sum(1 for u in underruns if u > GAP_MS),
            "input_lag_max_ms": max(lags) if lags else None,
            "keeps_up": bool(rtfs) and len(rtfs) == len(self.results) and min(rtfs) >= 1.0,
        }


async def measure_audio(
    client: genai.Client, sessions: int, stagger_ms: int, meter: CpuMeter
) -> AudioResult:
    """Run `sessions` AUDIO sessions at once, alternating the clips in CLIPS."""
    result = AudioResult(sessions=sessions, stagger_ms=stagger_ms)
    pcms = {clip.name: load_clip(clip.name) for clip in CLIPS}
    go = asyncio.Event()

    connected = [asyncio.Event() for _ in range(sessions)]
    tasks = [
        asyncio.create_task(
            audio_session(
                client,
                i,
                CLIPS[i % len(CLIPS)],
                pcms[CLIPS[i % len(CLIPS)].name],
                connected=connected[i],
                go=go,
                delay_s=i * stagger_ms / 1000,
            )
        )
        for i in range(sessions)
    ]
    # Everyone connects first, so that the streams really run side by side.
    async with asyncio.timeout(TURN_TIMEOUT_S):
        await asyncio.gather(*(event.wait() for event in connected))
    meter.start()
    started = time.perf_counter()
    go.set()
    result.results = list(await asyncio.gather(*tasks))
    result.wall_s = round(time.perf_counter() - started, 3)
    result.cpu = meter.stop()
    return result


# ------------------------------------------------------------------------------- report


def render(
    emulator: EmulatorInfo,
    setup: SetupResult,
    text: TextResult,
    audio: AudioResult,
) -> str:
    """The results as Markdown."""
    lines: list[str] = []
    add = lines.append
    add("# Gemini Live emulator benchmark")
    add("")
    add(
        f"Machine: {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"google-genai {genai.__version__}. Emulator: `{' '.join(emulator.command[1:])}`, "
        f"pid {emulator.pid}. CPU % is of one core (the emulator and this benchmark share "
        "the machine)."
    )
    add("")
    s = setup.stats()
    add(f"## Session setup ({setup.trials} sequential connects -> setupComplete)")
    add("")
    add("| p50 ms | p95 ms | max ms | target p50 | errors | emulator CPU | bench CPU |")
    add("|---:|---:|---:|---:|---:|---:|---:|")
    verdict = (
        "met"
        if s["p50_ms"] is not None and s["p50_ms"] < SETUP_TARGET_MS
        else f"**missed** (< {SETUP_TARGET_MS:.0f} ms)"
    )
    add(
        f"| {_fmt(s['p50_ms'], 1)} | {_fmt(s['p95_ms'], 1)} | {_fmt(s['max_ms'], 1)} "
        f"| < {SETUP_TARGET_MS:.0f} ms: {verdict} | {len(setup.errors)} "
        f"| {_fmt(setup.cpu.emulator_pct if setup.cpu else None)} % "
        f"| {_fmt(setup.cpu.bench_pct if setup.cpu else None)} % |"
    )
    add("")
    t = text.stats()
    add(
        f"## {text.sessions} concurrent TEXT sessions x {text.turns_per_session} turns "
        "(text sent -> first model text)"
    )
    add("")
    add(
        "| turns done | wall s | first text p50 ms | p95 ms | max ms | turn complete p95 ms "
        "| connect p50 / max ms | errors | emulator CPU | bench CPU |"
    )
    add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    add(
        f"| {t['turns_completed']}/{text.sessions * text.turns_per_session} "
        f"| {text.wall_s:.2f} | {_fmt(t['first_text_p50_ms'], 1)} "
        f"| {_fmt(t['first_text_p95_ms'], 1)} | {_fmt(t['first_text_max_ms'], 1)} "
        f"| {_fmt(t['turn_complete_p95_ms'], 1)} "
        f"| {_fmt(t['connect_p50_ms'], 0)} / {_fmt(t['connect_max_ms'], 0)} "
        f"| {len(text.errors)} | {_fmt(text.cpu.emulator_pct if text.cpu else None)} % "
        f"| {_fmt(text.cpu.bench_pct if text.cpu else None)} % |"
    )
    add("")
    a = audio.stats()
    stagger = f", starts {audio.stagger_ms} ms apart" if audio.stagger_ms else ", started together"
    add(f"## {audio.sessions} concurrent AUDIO sessions in real time{stagger}")
    add("")
    add(
        "Turn latency: last chunk of the recording sent -> first model audio. The recording "
        "ends in a quiet tail (under -40 dBFS), which counts toward the VAD's 500 ms "
        "end-of-speech silence, so 'from speech end' (the chunk holding the last loud audio "
        "sent -> first model audio) is what a user waits. Output RTF: "
        "audio seconds received / seconds from first to last audio chunk (>= 1 keeps up). "
        "Underrun: worst lateness of a chunk for a player that starts at the first chunk. "
        "Input lag: how far the 100 ms sender fell behind its real-time schedule."
    )
    add("")
    add(
        "| # | clip (quiet tail s) | turn latency ms | from speech end ms | toolCall ms "
        "| audio out s | output RTF | underrun ms | input lag max / p95 ms | errors |"
    )
    add("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in audio.results:
        add(
            f"| {r.index} | {r.clip} ({r.clip_quiet_tail_s:.2f}) | {_fmt(r.turn_latency_ms)} "
            f"| {_fmt(r.voice_end_latency_ms)} | {_fmt(r.tool_call_ms)} "
            f"| {r.audio_out_s:.2f} | {_fmt(r.output_rtf, 2)} "
            f"| {r.underrun_max_ms:.0f} | {_fmt(r.input_lag_max_ms, 1)} / "
            f"{_fmt(r.input_lag_p95_ms, 1)} | {'; '.join(r.errors) or 0} |"
        )
    add("")
    add(
        "| turn latency p50 / max ms | from speech end p50 / max ms | min output RTF "
        f"| max underrun ms (sessions with gaps > {GAP_MS:.0f} ms) | max input lag ms "
        "| keeps up | errors | wall s | emulator CPU | bench CPU |"
    )
    add("|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    add(
        f"| {_fmt(a['turn_latency_p50_ms'])} / {_fmt(a['turn_latency_max_ms'])} "
        f"| {_fmt(a['from_speech_end_p50_ms'])} / {_fmt(a['from_speech_end_max_ms'])} "
        f"| {_fmt(a['output_rtf_min'], 2)} "
        f"| {_fmt(a['underrun_max_ms'])} ({a['sessions_with_gaps']}) "
        f"| {_fmt(a['input_lag_max_ms'], 1)} | {'yes' if a['keeps_up'] else '**no**'} "
        f"| {len(audio.errors)} | {audio.wall_s:.2f} "
        f"| {_fmt(audio.cpu.emulator_pct if audio.cpu else None)} % "
        f"| {_fmt(audio.cpu.bench_pct if audio.cpu else None)} % |"
    )
    errors = setup.errors + text.errors + audio.errors
    if errors:
        add("")
        add("## Errors")
        add("")
        for error in errors[:50]:
            add(f"- {error}")
        if len(errors) > 50:
            add(f"- ... and {len(errors) - 50} more")
    return "\n".join(lines)


def to_json(
    emulator: EmulatorInfo, setup: SetupResult, text: TextResult, audio: AudioResult
) -> dict[str, Any]:
    """The results as a JSON-ready dict."""
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "google_genai": genai.__version__,
        },
        "emulator": {"command": emulator.command[1:], "pid": emulator.pid},
        "setup": {**asdict(setup), **setup.stats()},
        "text": {**asdict(text), **text.stats(), "errors": text.errors},
        "audio": {**asdict(audio), **audio.stats(), "errors": audio.errors},
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    """Start the emulator, run the three measurements, print the report."""
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tmp:
        async with emulator_process(Path(tmp), args.emulator_log) as emulator:
            client = genai.Client(
                api_key=API_KEY, http_options=http_options(emulator.base_url, emulator.ca)
            )
            meter = CpuMeter(emulator.pid)
            logger.info(f"session setup: {args.setup_trials} sequential connects")
            setup = await measure_setup(client, args.setup_trials, meter)
            logger.info(f"text: {args.text_sessions} concurrent sessions")
            text = await measure_text(client, args.text_sessions, meter)
            logger.info(f"audio: {args.audio_sessions} concurrent real-time sessions")
            audio = await measure_audio(client, args.audio_sessions, args.audio_stagger_ms, meter)
            report = render(emulator, setup, text, audio)
            data = to_json(emulator, setup, text, audio)
            errors = setup.errors + text.errors + audio.errors
            if errors:
                logger.warning(
                    f"{len(errors)} errors; emulator log tail:\n"
                    + _read_log_tail(emulator.log_path)
                )
    print(report, flush=True)
    if args.json:
        _write_json(args.json, data)
        logger.info(f"wrote {args.json}")
    return 1 if errors else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.emulator_bench",
        description="Benchmark the Gemini Live emulator with the real google-genai SDK.",
    )
    p.add_argument("--setup-trials", type=int, default=50, help="sequential connects (50)")
    p.add_argument("--text-sessions", type=int, default=50, help="concurrent TEXT sessions (50)")
    p.add_argument(
        "--audio-sessions", type=int, default=10, help="concurrent real-time AUDIO sessions (10)"
    )
    p.add_argument(
        "--audio-stagger-ms",
        type=int,
        default=0,
        help="start the audio sessions this far apart (default 0: all at once, the worst case)",
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    p.add_argument(
        "--emulator-log",
        type=Path,
        help="keep the emulator's stderr in this file (its level follows EMULATOR_LOG_LEVEL)",
    )
    p.add_argument("--log-level", default="INFO", help="log level on stderr (INFO)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    if not AUDIO_DIR.is_dir():
        logger.error(f"audio fixtures not found in {AUDIO_DIR}")
        sys.exit(2)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
