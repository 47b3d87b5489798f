"""What the tool-call and transcript processors cost a pipeline moving real-time audio.

Run `python -m bench.processors_bench` (about 50 s; `--seconds` sets the length of each run).
The same synthetic pipeline runs with and without the processors, in alternating rounds:

    baseline:  input audio → FakeGemini → output
    measured:  input audio → transcript.user() → FakeGemini → ToolCallProcessor
                   → transcript.assistant() → output

- The input pushes a 20 ms 16 kHz `InputAudioRawFrame` every 20 ms, paced by the clock, as a
  transport does, and tells the context a user turn was written at each turn's end of speech.
- `FakeGemini` swallows the input audio (Gemini sends it to the socket) and plays one scripted
  turn every `--turn-seconds`: two upstream `TranscriptionFrame` chunks, one tool call (the
  registry-wrapped tool with the processors, the bare function without, both announced with
  `FunctionCallInProgressFrame` / `FunctionCallResultFrame`), then an answer of 20 ms
  `TTSAudioRawFrame`s at real time with an `LLMTextFrame` + `TTSTextFrame` chunk every 100 ms,
  bracketed by TTS and LLM response start/stop frames. Every fourth answer is cut off by an
  interruption broadcast both ways.
- The output consumes everything and reports the bot speaking upstream, as a transport does.

Measured: the time spent inside the processors' `process_frame` (their own time, without the
frames they push on to the next processor) summed per turn; the process CPU time per second of
audio for each variant; and how late the input audio was pushed (event-loop health).
Without `processors.tool_calls` (not yet written) the transcript logger is measured alone and
`FakeGemini` pushes the `ToolCallEventFrame` itself. Results print as Markdown on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextUserTurnFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams
from pipecat.workers.runner import WorkerRunner

from processors.frames import ToolCallEvent, ToolCallEventFrame, ToolOutcome
from processors.transcript_logger import TranscriptLogger
from processors.transcript_store import TranscriptStore, load_session

try:
    from processors.tool_calls import ToolCallProcessor
    from processors.tool_registry import ToolRegistry
except ImportError:  # written by another change; bench the transcript logger alone until then
    ToolCallProcessor = None  # type: ignore[assignment,misc]
    ToolRegistry = None  # type: ignore[assignment,misc]

TICK_S = 0.020
INPUT_RATE = 16000
OUTPUT_RATE = 24000
TARGET_TURN_MS = 1.0
TARGET_CPU = 0.02


async def get_time(params: FunctionCallParams, zone: str) -> None:
    """Get the time in a time zone.

    Args:
        zone: An IANA time zone name.
    """
    await params.result_callback({"zone": zone, "time": "09:00"})


# ------------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Meter:
    """Processor time per turn, and the input's lateness."""

    turn: int = 0
    turn_ns: dict[int, int] = field(default_factory=dict)
    frames: int = 0
    input_late_ms: list[float] = field(default_factory=list)

    def add(self, ns: int) -> None:
        self.turn_ns[self.turn] = self.turn_ns.get(self.turn, 0) + ns
        self.frames += 1


def instrument(processor: FrameProcessor, meter: Meter) -> None:
    """Time `process_frame`, less the time spent in the `push_frame`s it makes."""
    process = processor.process_frame
    push = processor.push_frame
    pushed = [0]

    async def timed_process(frame: Frame, direction: FrameDirection) -> None:
        start, pushed_before = time.perf_counter_ns(), pushed[0]
        await process(frame, direction)
        meter.add(time.perf_counter_ns() - start - (pushed[0] - pushed_before))

    async def timed_push(
        frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        start = time.perf_counter_ns()
        await push(frame, direction)
        pushed[0] += time.perf_counter_ns() - start

    processor.process_frame = timed_process  # type: ignore[method-assign]
    processor.push_frame = timed_push  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------------
# The synthetic pipeline


async def paced(seconds: float, step: Callable[[int], Awaitable[None]]) -> list[float]:
    """Call `step(n)` every 20 ms for `seconds`, on absolute deadlines; return lateness in ms."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    late: list[float] = []
    for n in range(round(seconds / TICK_S)):
        deadline = start + n * TICK_S
        delay = deadline - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(max(0.0, loop.time() - deadline) * 1000.0)
        await step(n)
    return late


class AudioInput(FrameProcessor):
    """Real-time microphone audio, and the context's user turn at each end of speech."""

    def __init__(self, seconds: float, turn_ticks: int, meter: Meter, done: asyncio.Event) -> None:
        super().__init__()
        self._seconds = seconds
        self._turn_ticks = turn_ticks
        self._meter = meter
        self._done = done
        self._chunk = bytes(int(INPUT_RATE * TICK_S) * 2)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._run(), "audio_input")

    async def _step(self, n: int) -> None:
        await self.push_frame(
            InputAudioRawFrame(audio=self._chunk, sample_rate=INPUT_RATE, num_channels=1)
        )
        if n % self._turn_ticks == 45:  # the user aggregator writes the turn to the context
            await self.push_frame(LLMContextUserTurnFrame(text="What time is it?", timestamp=""))

    async def _run(self) -> None:
        self._meter.input_late_ms = await paced(self._seconds, self._step)
        self._done.set()


class FakeGemini(FrameProcessor):
    """Swallows input audio; plays one scripted turn every `turn_ticks` ticks of 20 ms."""

    def __init__(
        self,
        seconds: float,
        turn_ticks: int,
        meter: Meter,
        tool: Callable[..., Awaitable[None]],
        *,
        push_tool_events: bool,
    ) -> None:
        super().__init__()
        self._seconds = seconds
        self._turn_ticks = turn_ticks
        self._meter = meter
        self._tool = tool
        self._push_tool_events = push_tool_events
        self._audio = bytes(int(OUTPUT_RATE * TICK_S) * 2)
        self._answering = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            return  # sent to the model's socket
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._run(), "fake_gemini")

    async def _run(self) -> None:
        await paced(self._seconds, self._step)

    async def _step(self, n: int) -> None:
        turn, tick = divmod(n, self._turn_ticks)
        answer_end = self._turn_ticks - 10
        if tick == 0:
            self._meter.turn = turn + 1
        elif tick == 30:
            await self._user_says("What time is it")
        elif tick == 45:
            await self._user_says("in Tokyo?")
        elif tick == 50:
            await self._call_tool(turn)
        elif tick == 60:
            self._answering = True
            await self.push_frame(TTSStartedFrame())
            await self.push_frame(LLMFullResponseStartFrame())
        if self._answering and 60 <= tick < answer_end:
            await self.push_frame(
                TTSAudioRawFrame(audio=self._audio, sample_rate=OUTPUT_RATE, num_channels=1)
            )
            if tick % 5 == 0:
                for text_frame in (LLMTextFrame(" It is nine"), TTSTextFrame(" o'clock.", "")):
                    text_frame.includes_inter_frame_spaces = True
                    await self.push_frame(text_frame)
            if turn % 4 == 3 and tick == (60 + answer_end) // 2:
                self._answering = False
                await self.broadcast_interruption()
                await self.push_frame(TTSStoppedFrame())
        elif self._answering and tick == answer_end:
            self._answering = False
            await self.push_frame(TTSStoppedFrame())
            await self.push_frame(LLMFullResponseEndFrame())

    async def _user_says(self, text: str) -> None:
        await self.push_frame(
            TranscriptionFrame(text=text, user_id="", timestamp=""), FrameDirection.UPSTREAM
        )

    async def _call_tool(self, turn: int) -> None:
        call_id, arguments = f"call-{turn}", {"zone": "Asia/Tokyo"}
        result: list[Any] = []

        async def result_callback(value: Any, **_: Any) -> None:
            result.append(value)

        params = FunctionCallParams(
            function_name="get_time",
            tool_call_id=call_id,
            arguments=arguments,
            llm=cast(Any, None),
            pipeline_worker=cast(Any, None),
            context=LLMContext(),
            result_callback=result_callback,
        )
        await self.push_frame(FunctionCallInProgressFrame("get_time", call_id, arguments))
        await self._tool(params, **arguments)
        await self.push_frame(
            FunctionCallResultFrame(
                function_name="get_time",
                tool_call_id=call_id,
                arguments=arguments,
                result=result[0] if result else None,
            )
        )
        if self._push_tool_events:
            event = ToolCallEvent("get_time", call_id, arguments, ToolOutcome.OK, result[0])
            await self.push_frame(ToolCallEventFrame(event=event))


class AudioOutput(FrameProcessor):
    """Consumes the output; reports the bot speaking upstream, as the output transport does."""

    def __init__(self) -> None:
        super().__init__()
        self._speaking = False
        self.frames = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.UPSTREAM or isinstance(frame, StartFrame | EndFrame):
            await self.push_frame(frame, direction)
            return
        self.frames += 1
        if isinstance(frame, TTSAudioRawFrame) and not self._speaking:
            self._speaking = True
            await self.push_frame(BotStartedSpeakingFrame(), FrameDirection.UPSTREAM)
        elif isinstance(frame, TTSStoppedFrame | InterruptionFrame) and self._speaking:
            self._speaking = False
            await self.push_frame(BotStoppedSpeakingFrame(), FrameDirection.UPSTREAM)


@dataclass
class RunResult:
    """One run of one variant."""

    variant: str
    audio_s: float
    cpu_s: float
    meter: Meter
    turns_recorded: int = 0

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.audio_s


async def run_variant(
    *, with_processors: bool, seconds: float, turn_s: float, folder: Path, vad: bool
) -> RunResult:
    meter = Meter()
    done = asyncio.Event()
    turn_ticks = round(turn_s / TICK_S)
    processors: list[FrameProcessor] = []
    tool: Callable[..., Awaitable[None]] = get_time
    transcript: TranscriptLogger | None = None
    have_tool_processor = ToolCallProcessor is not None and ToolRegistry is not None
    if with_processors:
        analyzer = None
        if vad:
            from pipecat.audio.vad.silero import SileroVADAnalyzer

            analyzer = SileroVADAnalyzer()
        transcript = TranscriptLogger(TranscriptStore(folder), vad=analyzer)
        if have_tool_processor:
            registry = ToolRegistry()
            tool = registry.wrap(get_time)
            processors.append(ToolCallProcessor(registry))
        processors.append(transcript.assistant())
    fake = FakeGemini(
        seconds,
        turn_ticks,
        meter,
        tool,
        push_tool_events=not have_tool_processor,
    )
    stages: list[FrameProcessor] = [AudioInput(seconds, turn_ticks, meter, done)]
    if transcript is not None:
        stages.append(transcript.user())
    stages += [fake, *processors, AudioOutput()]
    if transcript is not None:
        for processor in [transcript.user(), *processors]:
            instrument(processor, meter)
    worker = PipelineWorker(
        Pipeline(stages),
        params=PipelineParams(audio_in_sample_rate=INPUT_RATE, audio_out_sample_rate=OUTPUT_RATE),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    running = asyncio.create_task(runner.run())
    await done.wait()
    audio_s = time.perf_counter() - wall_start
    cpu_s = time.process_time() - cpu_start
    await worker.queue_frame(EndFrame())
    await running
    result = RunResult("with" if with_processors else "baseline", audio_s, cpu_s, meter)
    if transcript is not None:
        result.turns_recorded = len(load_session(folder, transcript.session_id).bot_turns)
    return result


# ------------------------------------------------------------------------------------------------
# Report


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(results: list[RunResult], *, seconds: float, turn_s: float, vad: bool) -> str:
    base = [r for r in results if r.variant == "baseline"]
    measured = [r for r in results if r.variant == "with"]
    base_cpu = statistics.mean(r.cpu_share for r in base)
    with_cpu = statistics.mean(r.cpu_share for r in measured)
    turn_ms = [
        ns / 1e6
        for r in measured
        for turn, ns in sorted(r.meter.turn_ns.items())
        if 1 <= turn <= seconds / turn_s - 1  # whole turns only
    ]
    processor_cpu = statistics.mean(
        sum(r.meter.turn_ns.values()) / 1e9 / r.audio_s for r in measured
    )
    frames_per_s = statistics.mean(r.meter.frames / r.audio_s for r in measured)

    def late(rs: list[RunResult], q: float) -> float:
        return percentile([x for r in rs for x in r.meter.input_late_ms], q)

    names = "transcript logger (both halves)"
    if ToolCallProcessor is not None:
        names = "ToolCallProcessor + " + names
    p50 = percentile(turn_ms, 50)
    added_cpu = with_cpu - base_cpu
    lines = [
        "# Processor overhead",
        "",
        f"Measured: {names}{' with a Silero VAD' if vad else ''}. "
        f"{len(base)} + {len(measured)} runs of {seconds:g} s alternating, "
        f"one turn every {turn_s:g} s ({len(turn_ms)} whole turns measured), "
        f"Python {sys.version.split()[0]}.",
        "",
        "| metric | baseline | with processors | ratio / difference | target |",
        "|---|---|---|---|---|",
        f"| processor time per turn, p50 | – | {p50:.3f} ms | – | < {TARGET_TURN_MS:g} ms "
        f"{'✅' if p50 < TARGET_TURN_MS else '❌'} |",
        f"| processor time per turn, p95 / max | – | {percentile(turn_ms, 95):.3f} / "
        f"{max(turn_ms, default=float('nan')):.3f} ms | – | – |",
        f"| processor time per audio second | – | {processor_cpu * 100:.3f} % | – | – |",
        f"| frames through the processors per second | – | {frames_per_s:.0f} | – | – |",
        f"| process CPU per audio second | {base_cpu * 100:.2f} % | {with_cpu * 100:.2f} % | "
        f"×{with_cpu / base_cpu:.2f}, {added_cpu * 100:+.2f} points | "
        f"< +{TARGET_CPU * 100:g} points {'✅' if added_cpu < TARGET_CPU else '❌'} |",
        f"| input audio lateness p50 / p99 | {late(base, 50):.2f} / {late(base, 99):.2f} ms | "
        f"{late(measured, 50):.2f} / {late(measured, 99):.2f} ms | – | – |",
        f"| bot turns in the transcript | – | {sum(r.turns_recorded for r in measured)} | – | – |",
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> str:
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for with_processors in (False, True):
                logger.info(
                    f"round {round_ + 1}: {'with' if with_processors else 'without'} processors"
                )
                results.append(
                    await run_variant(
                        with_processors=with_processors,
                        seconds=args.seconds,
                        turn_s=args.turn_seconds,
                        folder=Path(folder),
                        vad=args.vad,
                    )
                )
    return report(results, seconds=args.seconds, turn_s=args.turn_seconds, vad=args.vad)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processors_bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/with pairs to run")
    parser.add_argument("--turn-seconds", type=float, default=2.0, help="one turn every N s")
    parser.add_argument("--vad", action="store_true", help="give the logger a Silero VAD")
    args = parser.parse_args(argv)
    if args.turn_seconds < 1.6:
        parser.error("--turn-seconds must be at least 1.6 (the scripted turn needs it)")
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    print(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
