"""What a metrics scrape needs from a session's frames: finished tool calls, gaps in the voice.

`BotMetricsObserver` reports, through its two callbacks (`bots.metrics` counts them):

- each finished tool call, from the `ToolCallEventFrame` the tool-call processor announces it
  with, so the count is the transcript's and the browser's (a call Pipecat cancelled before the
  registry ran it included);
- each gap in the bot's voice: while the bot is speaking, an output audio frame that the output
  transport sends more than `min_gap_secs` after the audio before it ran out. The audio before
  it runs out at the later of its own arrival and the previous run-out, plus its duration, so a
  transport that is handed audio in bursts (ahead of playback) shows no gap while its buffer
  lasts, and one that paces its writes (SmallWebRTC) shows exactly the silence between frames.
  An interruption, or the bot stopping, ends the run: the silence after it is not a gap.

It runs for every output frame (50 a second per session), so it keeps two floats and does a
few comparisons; it never changes the frame flow.
"""

from __future__ import annotations

from collections.abc import Callable

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport

from processors.frames import ToolCallEvent, ToolCallEventFrame

MIN_GAP_SECS = 0.06
"""Silence in the bot's voice longer than this, mid-answer, is counted: about where it is heard."""


class BotMetricsObserver(BaseObserver):
    """Reports finished tool calls and gaps in the bot's voice.

    Args:
        on_tool_call: Called with each finished call.
        on_output_gap: Called with the length, in seconds, of each gap in the bot's voice.
        min_gap_secs: Shorter silences are not gaps.
    """

    def __init__(
        self,
        *,
        on_tool_call: Callable[[ToolCallEvent], None],
        on_output_gap: Callable[[float], None],
        min_gap_secs: float = MIN_GAP_SECS,
    ) -> None:
        super().__init__(observe_every_push=False)
        self._on_tool_call = on_tool_call
        self._on_output_gap = on_output_gap
        self._min_gap_secs = min_gap_secs
        self._speaking = False
        self._runs_out: float | None = None  # pipeline-clock seconds the audio sent lasts until

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, OutputAudioRawFrame):
            if isinstance(data.source, BaseOutputTransport):
                self._sent(frame, data.timestamp / 1e9)
        elif data.direction != FrameDirection.DOWNSTREAM:
            return
        elif isinstance(frame, ToolCallEventFrame):
            if frame.event is not None:
                self._on_tool_call(frame.event)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame | InterruptionFrame):
            self._speaking = isinstance(frame, InterruptionFrame) and self._speaking
            self._runs_out = None

    def _sent(self, frame: OutputAudioRawFrame, at: float) -> None:
        """The output transport sent `frame` at `at` (pipeline clock, seconds)."""
        if not self._speaking:
            self._runs_out = None
            return
        runs_out = self._runs_out
        if runs_out is not None and at - runs_out > self._min_gap_secs:
            self._on_output_gap(at - runs_out)
        rate = frame.sample_rate * frame.num_channels * 2  # 16-bit samples
        seconds = len(frame.audio) / rate if rate else 0.0
        self._runs_out = (at if runs_out is None or at > runs_out else runs_out) + seconds
