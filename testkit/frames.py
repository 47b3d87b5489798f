"""Frames and processors that tests and benchmarks put into pipelines.

`run_test` sends frames in order; putting `Advance(seconds)` between two of them, with
`ClockAdvancer` at the head of the pipeline, says "this much time passes here" without sleeping.
`said` makes the model's words as Pipecat's Gemini Live service pushes them, so a transcript test
and a benchmark play the same frames the real service would.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import DataFrame, Frame, LLMTextFrame, TTSTextFrame
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


class PassThrough(FrameProcessor):
    """Pushes every frame on: a stage for an observer to watch, or the framework's own cost."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Push the frame on, in its own direction."""
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


def said(text: str, *, audio_mode: bool = True) -> list[Frame]:
    """One chunk of the bot's words as Gemini Live pushes it (TEXT mode: `audio_mode=False`).

    In AUDIO mode the written words stay out of the context (the spoken ones go in), and both
    carry their own spacing, as the service's transcription chunks do.
    """
    llm = LLMTextFrame(text)
    llm.includes_inter_frame_spaces = True
    if not audio_mode:
        return [llm]
    llm.append_to_context = False
    spoken = TTSTextFrame(text, text_type="sentence")
    spoken.includes_inter_frame_spaces = True
    return [llm, spoken]
