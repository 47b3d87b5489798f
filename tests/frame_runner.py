"""Pipecat's `run_test`, with waits on what came out instead of sleeps between the frames sent.

`pipecat.tests.utils.run_test` sends frames with `SleepFrame`s between them, which is a guess
at how long the pipeline takes. `run_frames` takes `WaitFor(predicate, what)` items instead: it
waits (bounded) until ``predicate(frames_received_downstream_so_far)`` holds, then goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import EndFrame, Frame, StartFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import QueuedFrameProcessor
from pipecat.workers.runner import WorkerRunner

from testkit.waiting import until


@dataclass(frozen=True)
class WaitFor:
    """Wait, before sending the next frame, until ``predicate(down_so_far)`` is truthy."""

    predicate: Callable[[list[Frame]], Any]
    what: str
    within: float = 10.0


class _Recording(asyncio.Queue[Frame]):
    """A queue that also keeps everything put into it, in order, for predicates to read."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    async def put(self, item: Frame) -> None:
        self.frames.append(item)
        await super().put(item)


async def run_frames(
    processor: FrameProcessor,
    *,
    frames_to_send: Sequence[Frame | WaitFor],
    expected_down_frames: Sequence[type] | None = None,
    frames_to_send_direction: FrameDirection = FrameDirection.DOWNSTREAM,
    start_timeout: float = 10.0,
) -> tuple[list[Frame], list[Frame]]:
    """Run ``processor`` between a source and a sink; return what came out (down, up).

    As `run_test`: StartFrames are not reported, an EndFrame follows the frames sent and is not
    reported either, and ``expected_down_frames`` (types) is asserted when given.
    """
    down, up = _Recording(), _Recording()
    source = QueuedFrameProcessor(queue=up, queue_direction=FrameDirection.UPSTREAM)
    sink = QueuedFrameProcessor(queue=down, queue_direction=FrameDirection.DOWNSTREAM)
    worker = PipelineWorker(
        Pipeline([source, processor, sink]), cancel_on_idle_timeout=False, enable_rtvi=False
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker: PipelineWorker, _frame: StartFrame) -> None:
        started.set()

    async def push_frames() -> None:
        await asyncio.wait_for(started.wait(), timeout=start_timeout)
        for item in frames_to_send:
            if isinstance(item, WaitFor):
                await until(lambda i=item: i.predicate(down.frames), item.what, within=item.within)
            else:
                await worker.queue_frame(item, frames_to_send_direction)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), push_frames())
    received = [f for f in down.frames if not isinstance(f, EndFrame)]
    if expected_down_frames is not None:
        names = [type(f).__name__ for f in received]
        assert len(received) == len(expected_down_frames), names
        assert all(isinstance(f, t) for f, t in zip(received, expected_down_frames, strict=True)), (
            names
        )
    return received, list(up.frames)
