"""Frames and a processor that let a pipeline test move a fake clock between frames.

`run_test` sends frames in order; putting `Advance(seconds)` between two of them, with
`ClockAdvancer` at the head of the pipeline, says "this much time passes here" without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import DataFrame, Frame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from testkit.clock import FakeClock


@dataclass
class Advance(DataFrame):
    """Sent downstream to a `ClockAdvancer`, which moves its clock on by `seconds`."""

    seconds: float = 0.0


class ClockAdvancer(FrameProcessor):
    """Consumes `Advance` frames, moving `clock` on; passes every other frame unchanged.

    Direct mode keeps frames in exactly the order sent, so a processor after it reads the clock
    as each frame arrives.
    """

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(enable_direct_mode=True)
        self._clock = clock

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Move the clock on an `Advance`; push anything else on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, Advance):
            self._clock.advance(frame.seconds)
        else:
            await self.push_frame(frame, direction)
