"""What the tool-call and transcript processors cost a pipeline moving real-time audio.

Run `python -m bench.processors_bench` (about 60 s; `--seconds` sets the length of each run).
One synthetic pipeline runs in three variants, in alternating rounds:

    baseline:      input → FakeGemini → output
    pass-through:  input → no-op → FakeGemini → no-op (queued) → no-op → output
    processors:    input → transcript.user() → FakeGemini → ToolCallProcessor
                       → transcript.assistant() → output

The pass-through variant puts do-nothing processors where ours go (direct mode where ours are,
queued where `ToolCallProcessor` is): it is the floor, what any three processors cost in Pipecat.

- The input pushes a 20 ms 16 kHz `InputAudioRawFrame` every 20 ms on absolute deadlines, as a
  transport does, and at each turn's end of speech the `LLMContextUserTurnFrame` the user
  aggregator would broadcast.
- `FakeGemini` swallows the input audio (Gemini sends it to its socket) and plays one scripted
  turn every `--turn-seconds`: two upstream `TranscriptionFrame` chunks, one tool call (through
  the `ToolRegistry` wrapper with the processors, the bare function otherwise; announced with
  `FunctionCallInProgressFrame` / `FunctionCallResultFrame`), then an answer of 20 ms
  `TTSAudioRawFrame`s at real time with an `LLMTextFrame` + `TTSTextFrame` every 100 ms,
  bracketed by TTS and LLM response start/stop frames. Every fourth answer is cut off by an
  interruption broadcast both ways.
- The output consumes everything and reports the bot speaking upstream, as a transport does.

Measured:
- processor time per turn: time inside the processors' `process_frame`, less the `push_frame`s
  it makes (the next processor's work), summed over everything in a turn (audio included);
- added latency: how long the first bot audio of each turn takes from `FakeGemini` to the
  output, and each input audio frame from the input to `FakeGemini`, against the baseline;
- process CPU time per second of audio, and how late the input audio was pushed.

Without `processors.tool_calls` (not yet written) the transcript logger is measured alone and
`FakeGemini` pushes the `ToolCallEventFrame` itself. Results print as Markdown on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
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
from pipecat.services.llm_service import FunctionCallParams, FunctionCallResultProperties
from pipecat.workers.runner import WorkerRunner

from processors.frames import ToolCallEvent, ToolCallEventFrame, ToolOutcome
from processors.transcript_logger import TranscriptLogger
from processors.transcript_store import TranscriptStore, load_session

try:
    from processors.tool_calls import ToolCallProcessor
    from toolcalls.registry import ToolRegistry
except ImportError:  # written by another change; bench the transcript logger alone until then
    ToolCallProcessor = None  # type: ignore[assignment,misc]
    ToolRegistry = None  # type: ignore[assignment,misc]

TICK_S = 0.020
INPUT_RATE = 16000
OUTPUT_RATE = 24000
TARGET_TURN_MS = 1.0
TARGET_CPU_POINTS = 2.0
VARIANTS = ("baseline", "pass-through", "processors")


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
    """What one run measured."""

    turn: int = 0
    turn_ns: dict[int, int] = field(default_factory=dict)
    recording_ns: dict[int, int] = field(default_factory=dict)
    by_processor_ns: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    input_late_ms: list[float] = field(default_factory=list)
    sent_at: dict[int, float] = field(default_factory=dict)
    first_audio_ids: set[int] = field(default_factory=set)
    input_delay_ms: list[float] = field(default_factory=list)
    first_audio_delay_ms: list[float] = field(default_factory=list)

    def add(self, ns: int, processor: str) -> None:
        self.turn_ns[self.turn] = self.turn_ns.get(self.turn, 0) + ns
        self.by_processor_ns[processor] = self.by_processor_ns.get(processor, 0) + ns
        self.frames += 1

    def sent(self, frame: Frame, *, first_audio: bool = False) -> None:
        """Note when a frame left its producer, to time its way to its consumer."""
        self.sent_at[frame.id] = time.perf_counter()
        if first_audio:
            self.first_audio_ids.add(frame.id)

    def received(self, frame: Frame, into: list[float]) -> None:
        sent = self.sent_at.pop(frame.id, None)
        if sent is not None:
            into.append((time.perf_counter() - sent) * 1000.0)


def instrument_recording(transcript: TranscriptLogger, meter: Meter) -> None:
    """Time the transcript logger's own work (what it records), apart from being a processor."""
    for half in (transcript.user(), transcript.assistant()):
        handle = half._record

        def timed(frame: Frame, direction: FrameDirection, handle: Any = handle) -> None:
            # Synchronous and microseconds long: the cheap wall clock is precise enough.
            start = time.perf_counter_ns()
            handle(frame, direction)
            ns = time.perf_counter_ns() - start
            meter.recording_ns[meter.turn] = meter.recording_ns.get(meter.turn, 0) + ns

        half._record = timed  # type: ignore[method-assign]


def instrument(processor: FrameProcessor, meter: Meter) -> None:
    """Time `process_frame`, less the time spent in the `push_frame`s it makes.

    CPU time of the event loop's thread, not wall time, so other processes on the machine do
    not count (a VAD's worker thread does not count either: its cost shows in the process CPU).
    """
    process = processor.process_frame
    push = processor.push_frame
    pushed = [0]
    name = type(processor).__name__

    async def timed_process(frame: Frame, direction: FrameDirection) -> None:
        start, pushed_before = time.thread_time_ns(), pushed[0]
        await process(frame, direction)
        meter.add(time.thread_time_ns() - start - (pushed[0] - pushed_before), name)

    async def timed_push(
        frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        start = time.thread_time_ns()
        await push(frame, direction)
        pushed[0] += time.thread_time_ns() - start

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
        audio = InputAudioRawFrame(audio=self._chunk, sample_rate=INPUT_RATE, num_channels=1)
        self._meter.sent(audio)
        await self.push_frame(audio)
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
            self._meter.received(frame, self._meter.input_delay_ms)
            return  # sent to the model's socket
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(paced(self._seconds, self._step), "fake_gemini")

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
            audio = TTSAudioRawFrame(audio=self._audio, sample_rate=OUTPUT_RATE, num_channels=1)
            self._meter.sent(audio, first_audio=tick == 60)
            await self.push_frame(audio)
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
        results: list[Any] = []

        async def result_callback(
            result: Any, *, properties: FunctionCallResultProperties | None = None
        ) -> None:
            results.append(result)

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
                result=results[0] if results else None,
            )
        )
        if self._push_tool_events:
            event = ToolCallEvent("get_time", call_id, arguments, ToolOutcome.OK, results[0])
            await self.push_frame(ToolCallEventFrame(event=event))


class AudioOutput(FrameProcessor):
    """Consumes the output; reports the bot speaking upstream, as the output transport does."""

    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self._meter = meter
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.UPSTREAM or isinstance(frame, StartFrame | EndFrame):
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, TTSAudioRawFrame):
            if frame.id in self._meter.first_audio_ids:
                self._meter.received(frame, self._meter.first_audio_delay_ms)
            if not self._speaking:
                self._speaking = True
                await self.push_frame(BotStartedSpeakingFrame(), FrameDirection.UPSTREAM)
        elif isinstance(frame, TTSStoppedFrame | InterruptionFrame) and self._speaking:
            self._speaking = False
            await self.push_frame(BotStoppedSpeakingFrame(), FrameDirection.UPSTREAM)


class PassThrough(FrameProcessor):
    """A processor that does nothing: what the framework costs per processor."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


@dataclass
class RunResult:
    """One run of one variant."""

    variant: str
    audio_s: float
    cpu_s: float
    meter: Meter
    bot_turns_recorded: int = 0

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.audio_s


async def run_variant(
    variant: str, *, seconds: float, turn_s: float, folder: Path, vad: bool
) -> RunResult:
    meter = Meter()
    done = asyncio.Event()
    turn_ticks = round(turn_s / TICK_S)
    have_tool_processor = ToolCallProcessor is not None and ToolRegistry is not None
    tool: Callable[..., Awaitable[None]] = get_time
    before: list[FrameProcessor] = []
    after: list[FrameProcessor] = []
    transcript: TranscriptLogger | None = None
    if variant == "pass-through":
        before = [PassThrough(enable_direct_mode=True)]
        after = [PassThrough(), PassThrough(enable_direct_mode=True)]
        if not have_tool_processor:
            after = after[1:]
    elif variant == "processors":
        analyzer = None
        if vad:
            from pipecat.audio.vad.silero import SileroVADAnalyzer

            analyzer = SileroVADAnalyzer()
        transcript = TranscriptLogger(TranscriptStore(folder), vad=analyzer)
        before = [transcript.user()]
        if have_tool_processor:
            registry = ToolRegistry()
            tool = registry.wrap(get_time)
            after.append(ToolCallProcessor(registry))
        after.append(transcript.assistant())
    for processor in [*before, *after]:
        instrument(processor, meter)
    if transcript is not None:
        instrument_recording(transcript, meter)
    fake = FakeGemini(seconds, turn_ticks, meter, tool, push_tool_events=not have_tool_processor)
    stages = [AudioInput(seconds, turn_ticks, meter, done), *before, fake, *after]
    worker = PipelineWorker(
        Pipeline([*stages, AudioOutput(meter)]),
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
    result = RunResult(variant, audio_s, cpu_s, meter)
    if transcript is not None:
        result.bot_turns_recorded = len(load_session(folder, transcript.session_id).bot_turns)
    return result


# ------------------------------------------------------------------------------------------------
# Report


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def report(results: list[RunResult], *, seconds: float, turn_s: float, vad: bool) -> str:
    by = {v: [r for r in results if r.variant == v] for v in VARIANTS}
    whole_turns = int(seconds / turn_s) - 1  # the last turn also pays for the session's end

    def turn_ms(v: str) -> list[float]:
        return [
            ns / 1e6
            for r in by[v]
            for turn, ns in r.meter.turn_ns.items()
            if 1 <= turn <= whole_turns
        ]

    recording_ms = [
        ns / 1e6
        for r in by["processors"]
        for turn, ns in r.meter.recording_ns.items()
        if 1 <= turn <= whole_turns
    ]

    def pooled(v: str, name: str) -> list[float]:
        return [x for r in by[v] for x in getattr(r.meter, name)]

    def cpu(v: str) -> float:
        return statistics.mean(r.cpu_share for r in by[v]) * 100.0

    def per_frame_us(v: str) -> float:
        ns = sum(sum(r.meter.turn_ns.values()) for r in by[v])
        return ns / 1e3 / max(1, sum(r.meter.frames for r in by[v]))

    def split(v: str) -> str:
        totals: dict[str, float] = {}
        for r in by[v]:
            turns = max(1, len(r.meter.turn_ns) - 1)  # turn 0 is the start-up
            for name, ns in r.meter.by_processor_ns.items():
                totals[name] = totals.get(name, 0.0) + ns / 1e6 / turns / len(by[v])
        return ", ".join(f"{name} {ms:.2f} ms" for name, ms in totals.items())

    def cell(v: str, fn: Callable[[str], str]) -> str:
        return fn(v) if by[v] else "–"

    base_first = percentile(pooled("baseline", "first_audio_delay_ms"), 50)
    base_in = percentile(pooled("baseline", "input_delay_ms"), 50)
    ours_turn = percentile(turn_ms("processors"), 50)
    added_first = percentile(pooled("processors", "first_audio_delay_ms"), 50) - base_first
    added_in = percentile(pooled("processors", "input_delay_ms"), 50) - base_in
    added_cpu = cpu("processors") - cpu("baseline")
    ok = {True: "✅", False: "❌"}
    measured = "transcript logger (user + assistant halves)"
    if ToolCallProcessor is not None:
        measured = "ToolCallProcessor + " + measured
    rows = [
        (
            "processor time per turn, p50 (all frames of the turn)",
            "–",
            cell("pass-through", lambda v: f"{percentile(turn_ms(v), 50):.2f} ms"),
            f"{ours_turn:.2f} ms",
            f"< {TARGET_TURN_MS:g} ms {ok[ours_turn < TARGET_TURN_MS]}",
        ),
        (
            "processor time per turn, p95 / max",
            "–",
            cell(
                "pass-through",
                lambda v: f"{percentile(turn_ms(v), 95):.2f} / {max(turn_ms(v)):.2f} ms",
            ),
            f"{percentile(turn_ms('processors'), 95):.2f} / {max(turn_ms('processors')):.2f} ms",
            "",
        ),
        (
            "… of which the transcript logger's own recording work, p50",
            "–",
            "–",
            f"{percentile(recording_ms, 50):.3f} ms",
            "",
        ),
        (
            "… per processor, mean per turn",
            "–",
            cell("pass-through", lambda v: split(v)),
            split("processors"),
            "",
        ),
        (
            "processor time per frame per processor-visit",
            "–",
            cell("pass-through", lambda v: f"{per_frame_us(v):.1f} µs"),
            f"{per_frame_us('processors'):.1f} µs",
            "",
        ),
        (
            "first bot audio of a turn, LLM → output, p50",
            f"{base_first:.3f} ms",
            cell(
                "pass-through",
                lambda v: f"{percentile(pooled(v, 'first_audio_delay_ms'), 50):.3f} ms",
            ),
            f"{base_first + added_first:.3f} ms",
            f"added {added_first:+.3f} ms {ok[added_first < TARGET_TURN_MS]}",
        ),
        (
            "input audio, transport → LLM, p50",
            f"{base_in:.3f} ms",
            cell("pass-through", lambda v: f"{percentile(pooled(v, 'input_delay_ms'), 50):.3f} ms"),
            f"{base_in + added_in:.3f} ms",
            f"added {added_in:+.3f} ms",
        ),
        (
            "process CPU per audio second",
            f"{cpu('baseline'):.2f} %",
            cell("pass-through", lambda v: f"{cpu(v):.2f} %"),
            f"{cpu('processors'):.2f} % (×{cpu('processors') / cpu('baseline'):.2f})",
            f"added {added_cpu:+.2f} points {ok[added_cpu < TARGET_CPU_POINTS]}",
        ),
        (
            "input audio pushed late, p50 / p99",
            f"{percentile(pooled('baseline', 'input_late_ms'), 50):.2f} / "
            f"{percentile(pooled('baseline', 'input_late_ms'), 99):.2f} ms",
            cell(
                "pass-through",
                lambda v: (
                    f"{percentile(pooled(v, 'input_late_ms'), 50):.2f} / "
                    f"{percentile(pooled(v, 'input_late_ms'), 99):.2f} ms"
                ),
            ),
            f"{percentile(pooled('processors', 'input_late_ms'), 50):.2f} / "
            f"{percentile(pooled('processors', 'input_late_ms'), 99):.2f} ms",
            "",
        ),
        (
            "bot turns in the transcripts",
            "–",
            "–",
            str(sum(r.bot_turns_recorded for r in by["processors"])),
            "",
        ),
    ]
    lines = [
        "# Processor overhead",
        "",
        f"Measured: {measured}{' with a Silero VAD' if vad else ''}. "
        f"{len(by['baseline'])} round(s) of {seconds:g} s per variant, one turn every "
        f"{turn_s:g} s ({len(turn_ms('processors'))} whole turns measured); Python "
        f"{platform.python_version()} on {platform.machine()}.",
        "",
        "| metric | baseline | pass-through ×3 | processors | target |",
        "|---|---|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if vad:
        lines += [
            "",
            "With a VAD the user half awaits the VAD's worker thread, so its time per turn also "
            "counts whatever else the event loop ran meanwhile: read the CPU row.",
        ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> str:
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for variant in VARIANTS:
                logger.info(f"round {round_ + 1}: {variant}")
                results.append(
                    await run_variant(
                        variant,
                        seconds=args.seconds,
                        turn_s=args.turn_seconds,
                        folder=Path(folder),
                        vad=args.vad,
                    )
                )
    return report(results, seconds=args.seconds, turn_s=args.turn_seconds, vad=args.vad)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processors_bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three variants")
    parser.add_argument("--turn-seconds", type=float, default=2.0, help="one turn every N s")
    parser.add_argument("--vad", action="store_true", help="give the logger a Silero VAD")
    args = parser.parse_args(argv)
    if args.turn_seconds < 1.6:
        parser.error("--turn-seconds must be at least 1.6 (the scripted turn needs it)")
    if args.seconds < 2 * args.turn_seconds:
        parser.error("--seconds must hold at least two turns")
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    print(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
