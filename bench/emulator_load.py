"""Session setup and concurrent TEXT sessions: how fast the emulator answers, without speech.

Setup is timed from `connect()` to the `setupComplete` the SDK waits for (TCP, TLS, the WebSocket
upgrade and the `setup` round trip); a TEXT turn from the user's text being sent to the first model
text, so Whisper and Piper are out of the measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from google import genai
from google.genai import types
from google.genai.live import AsyncSession

from bench.emulator_common import (
    MODEL,
    TEXT_TURNS,
    TURN_TIMEOUT_S,
    CpuMeter,
    CpuUse,
    describe,
    percentile,
)


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
            result.errors.append(describe(exc))
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
        out.errors.append(describe(exc))
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
