"""Camera and screen frames go to Gemini only while the user speaks, about once a second.

Google advises this for gemini-3.1 (its default turn coverage includes all video, which is billed):
frames between the user's turns cost tokens and add nothing the model needs. The gate runs its own
Silero VAD on the audio passing by, so it works with Gemini's server-side turn detection, which
gives the pipeline no speaking signal of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADState
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputImageRawFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class SpeechGatedVideo(FrameProcessor):
    """Pass image frames while the user speaks (plus a short hangover), at most `fps` per second.

    Args:
        vad: The voice activity detector run on input audio; None relies only on
            `UserStartedSpeakingFrame`/`UserStoppedSpeakingFrame` from elsewhere in the pipeline.
        fps: Most frames per second let through (Google suggests about 1).
        hangover_s: How long after speech stops frames still pass, so the last words keep their
            picture.
        clock: Monotonic time source (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        vad: VADAnalyzer | None = None,
        fps: float = 1.0,
        hangover_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if fps <= 0:
            raise ValueError("fps must be positive")
        self._vad = vad
        self._interval = 1.0 / fps
        self._hangover = hangover_s
        self._clock = clock
        self._speaking = False
        self._stopped_at: float | None = None
        self._last_sent: float | None = None
        self.passed = 0
        self.dropped = 0

    @property
    def speaking(self) -> bool:
        """Whether the user is speaking now, as far as the gate knows."""
        return self._speaking

    def _set_speaking(self, speaking: bool) -> None:
        if self._speaking and not speaking:
            self._stopped_at = self._clock()
        self._speaking = speaking

    def _open(self) -> bool:
        if self._speaking:
            return True
        return self._stopped_at is not None and self._clock() - self._stopped_at <= self._hangover

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame) and self._vad is not None:
            self._vad.set_sample_rate(frame.audio_in_sample_rate)
        elif isinstance(frame, InputAudioRawFrame) and self._vad is not None:
            state = await self._vad.analyze_audio(frame.audio)
            if state in (VADState.SPEAKING, VADState.STARTING):
                self._set_speaking(True)
            elif state == VADState.QUIET:
                self._set_speaking(False)
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._set_speaking(True)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._set_speaking(False)
        elif isinstance(frame, InputImageRawFrame) and direction == FrameDirection.DOWNSTREAM:
            now = self._clock()
            if self._open() and (
                self._last_sent is None or now - self._last_sent >= self._interval
            ):
                self._last_sent = now
                self.passed += 1
            else:
                self.dropped += 1
                return
        await self.push_frame(frame, direction)
