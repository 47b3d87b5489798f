"""What the tool-call processor and the transcript cost a pipeline moving real-time audio.

Run `python -m bench.processors_bench` (about 90 s; `--seconds` sets the length of each run).
One synthetic pipeline (`bench.processors_pipeline`) runs in four variants, in alternating
rounds, all with Pipecat's context aggregator pair:

    baseline:      input → user agg → FakeGemini → output → assistant agg
    pass-through:  input → user agg → FakeGemini → no-op → output → assistant agg
    transcript:    baseline + the transcript observer, its aggregator-event handlers and the
                   recorder (whose file writes run on its own thread)
    processors:    input → user agg → FakeGemini → ToolCallProcessor → output → assistant agg,
                   + the transcript

The no-op sits where `ToolCallProcessor` goes: it is the floor, what any processor costs in
Pipecat. The transcript is no processor, so it has no "visit": what it adds per frame is compared
with what one pass-through processor adds per frame that passes it, two ways:

- its own work: the observer's callbacks and its event handlers (the recorder's work included),
  per frame pushed in the pipeline, against the no-op's time inside `process_frame` per visit;
- everything it adds to the event loop's thread: that thread's CPU time per frame over the run,
  less the baseline's, which includes Pipecat's dispatch of every frame to an observer's queue,
  against the same for the pass-through variant per frame that passes the no-op.

Also measured: processor time per turn (inside `process_frame`, less the `push_frame`s it makes),
how long the first bot audio of each turn takes from `FakeGemini` to the output and each input
audio frame from the input to `FakeGemini`, process CPU per second of audio (the writer thread
included), and how late the input audio was pushed. Results print as Markdown on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.workers.runner import WorkerRunner

from bench.processors_pipeline import (
    INPUT_RATE,
    OUTPUT_RATE,
    TICK_S,
    AudioInput,
    AudioOutput,
    FakeGemini,
    Meter,
    get_time,
    instrument,
    instrument_calls,
)
from bench.processors_report import HANDLERS_STAGE, OBSERVER_STAGE, VARIANTS, RunResult, report
from observers.transcript import TranscriptObserver
from processors.tool_calls import ToolCallProcessor
from testkit.frames import PassThrough
from toolcalls.registry import ToolRegistry
from transcripts import TranscriptRecorder, TranscriptStore, load_session

HANDLERS = ["_on_user_turn", "_on_bot_turn_started", "_on_bot_turn_stopped"]


def transcript_observer(folder: Path, meter: Meter) -> TranscriptObserver:
    """The transcript as a bot builds it, its callbacks and handlers timed as one stage."""
    observer = TranscriptObserver(TranscriptRecorder(TranscriptStore(folder)))
    instrument_calls(observer, ["on_push_frame"], meter, OBSERVER_STAGE)
    instrument_calls(observer, HANDLERS, meter, HANDLERS_STAGE)
    return observer


async def run_variant(variant: str, *, seconds: float, turn_s: float, folder: Path) -> RunResult:
    meter = Meter()
    done = asyncio.Event()
    turn_ticks = round(turn_s / TICK_S)
    tool: Callable[..., Awaitable[None]] = get_time
    after: list[FrameProcessor] = []
    observer = None
    if variant == "pass-through":
        after = [PassThrough()]
    if variant in ("transcript", "processors"):
        observer = transcript_observer(folder, meter)
    if variant == "processors":
        registry = ToolRegistry()
        tool = registry.wrap(get_time)
        after = [ToolCallProcessor(registry)]
    for processor in after:
        instrument(processor, meter)
    pair = LLMContextAggregatorPair(LLMContext(), realtime_service_mode=True)
    fake = FakeGemini(seconds, turn_ticks, meter, tool, push_tool_events=variant == "transcript")
    stages = [AudioInput(seconds, turn_ticks, meter, done), pair.user(), fake, *after]
    worker = PipelineWorker(
        Pipeline([*stages, AudioOutput(meter), pair.assistant()]),
        params=PipelineParams(audio_in_sample_rate=INPUT_RATE, audio_out_sample_rate=OUTPUT_RATE),
        observers=[observer] if observer else [],
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    if observer is not None:
        observer.attach(pair)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    cpu_start, loop_start, wall_start = time.process_time(), time.thread_time(), time.perf_counter()
    running = asyncio.create_task(runner.run())
    await done.wait()
    audio_s = time.perf_counter() - wall_start
    loop_cpu_s = time.thread_time() - loop_start
    cpu_s = time.process_time() - cpu_start
    await worker.queue_frame(EndFrame())
    await running
    result = RunResult(variant, audio_s, cpu_s, loop_cpu_s, meter)
    if observer is not None:
        session_id = observer.recorder.session_id
        result.bot_turns_recorded = len(load_session(folder, session_id).bot_turns)
    return result


async def main_async(args: argparse.Namespace) -> str:
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for variant in VARIANTS:
                logger.info(f"round {round_ + 1}: {variant}")
                results.append(
                    await run_variant(
                        variant, seconds=args.seconds, turn_s=args.turn_seconds, folder=Path(folder)
                    )
                )
    return report(results, seconds=args.seconds, turn_s=args.turn_seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processors_bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the four variants")
    parser.add_argument("--turn-seconds", type=float, default=2.0, help="one turn every N s")
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
