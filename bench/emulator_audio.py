"""Concurrent AUDIO sessions in real time: a recorded question streamed, the spoken answer heard.

Per session: the turn latency (last chunk of the recording sent -> first model audio, and from the
chunk holding the last loud audio, which is what a user waits), the real-time factor of the output,
the worst underrun a player would hear, and how far the sender fell behind real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field

from google import genai
from google.genai import types
from google.genai.live import AsyncSession

from bench.emulator_common import (
    CHUNK_MS,
    CLIPS,
    GAP_MS,
    INPUT_RATE,
    MODEL,
    OUTPUT_RATE,
    TIME_TOOL,
    TRAILING_SILENCE_S,
    TURN_TIMEOUT_S,
    Clip,
    CpuMeter,
    CpuUse,
    describe,
    load_clip,
    percentile,
    quiet_tail_s,
)


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


async def _answer_tools(
    session: AsyncSession, clip: Clip, tool_call: types.LiveServerToolCall
) -> None:
    responses = [
        types.FunctionResponse(
            id=call.id,
            name=call.name,
            response=clip.tool_result or {"error": f"unexpected tool {call.name}"},
        )
        for call in tool_call.function_calls or []
    ]
    await session.send_tool_response(function_responses=responses)


def _heard_audio(content: types.LiveServerContent, now: float, seen: _Timeline) -> None:
    for part in (content.model_turn.parts or []) if content.model_turn else []:
        blob = part.inline_data
        if blob is None or not blob.data:
            continue
        if seen.first_audio is None:
            seen.first_audio = now
        # A player that starts at the first chunk plays this one at `due`; arriving later than
        # that is an audible gap.
        due = seen.first_audio + seen.audio_bytes / 2 / OUTPUT_RATE
        seen.underrun_s = max(seen.underrun_s, now - due)
        seen.audio_bytes += len(blob.data)
        seen.last_audio = now


async def _receive_answer(session: AsyncSession, clip: Clip, seen: _Timeline) -> None:
    """Read server messages until the spoken answer's turnComplete, answering tool calls."""
    while True:
        async for message in session.receive():
            now = time.perf_counter()
            if message.tool_call is not None:
                seen.tool_call = seen.tool_call or now
                await _answer_tools(session, clip, message.tool_call)
            content = message.server_content
            if content is None:
                continue
            if content.input_transcription and content.input_transcription.text:
                seen.input_text.append(content.input_transcription.text)
            if content.output_transcription and content.output_transcription.text:
                seen.output_text.append(content.output_transcription.text)
            _heard_audio(content, now, seen)
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
        out.errors.append(describe(exc))
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
