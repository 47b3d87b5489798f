"""The microphone watchdog: `audioStreamEnd` when the user's audio stops, as Google advises.

Gemini caches the audio it has been sent and only flushes it into a turn when its VAD hears the
end of speech; a microphone that stops sending (or sends only the zeros of a muted WebRTC
track) leaves that tail unanswered. The watchdog sends `audioStreamEnd` once per pause, after
`quiet_secs` with no audible frame or at once when the user is muted, and re-arms on the next
audible frame. Digital silence after it is held back, since any audio re-opens the stream.

It also says whether the user is speaking, for the goAway switch (only a TEXT-modality bot runs
a VAD locally, so the one loudness threshold of `observers.loudness` decides for every bot).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np
from loguru import logger

from observers.loudness import is_speech

DIGITAL_SILENCE_PEAK = 2
"""Frames whose peak is at most this are digital silence: a muted WebRTC track sends zeros."""
USER_SPEECH_HOLD_SECS = 1.0
"""The user counts as speaking for this long after the last loud frame, so a switch does not
land in the middle of an utterance (the server's VAD state is not carried over)."""

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class MicWatchdog:
    """Watches microphone PCM and ends Gemini's audio stream when it goes quiet.

    Args:
        quiet_secs: Silence (no frames, or digital silence) after which the stream is ended.
        end_stream: Sends `audioStreamEnd`; called once per pause, with the reason.
        spawn: Starts the timer task (the service's own task manager).
        clock: Monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        quiet_secs: float,
        *,
        end_stream: Callable[[str], Awaitable[None]],
        spawn: Spawn,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._quiet_secs = quiet_secs
        self._end_stream = end_stream
        self._spawn = spawn
        self._clock = clock
        self._armed = False  # audio went out since the last audioStreamEnd
        self._ended = False
        self._quiet_since = 0.0
        self._last_loud_at = float("-inf")
        self._timer: asyncio.Task[None] | None = None

    @property
    def stream_ended(self) -> bool:
        """Whether `audioStreamEnd` went out and no audible frame came since."""
        return self._ended

    def user_speaking(self) -> bool:
        """Whether a frame loud enough to be speech arrived in the last second."""
        return self._clock() - self._last_loud_at < USER_SPEECH_HOLD_SECS

    def observe(self, pcm: bytes) -> bool:
        """Track one microphone frame; True when it must be held back (not sent).

        Args:
            pcm: Little-endian 16-bit mono PCM.
        """
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
        if samples.size == 0:
            return False
        now = self._clock()
        if int(np.max(np.abs(samples.astype(np.int32)))) > DIGITAL_SILENCE_PEAK:
            self._quiet_since = now
            if is_speech(pcm):
                self._last_loud_at = now
            if self._ended:
                logger.debug("microphone audio again; the audio stream re-opens")
                self._ended = False
        elif self._ended:
            return True
        if not self._armed:
            self._armed = True
            self._quiet_since = now
        if self._timer is None or self._timer.done():
            self._timer = self._spawn(self._watch(), "quiet_mic")
        return False

    async def end_stream(self, why: str) -> None:
        """End the stream now (the user was muted), unless it is ended already."""
        await self._end(why, from_timer=False)

    async def stop(self) -> None:
        """Stop the timer for good (the session is ending)."""
        self._armed = False
        timer, self._timer = self._timer, None
        if timer is not None and not timer.done():
            timer.cancel()

    async def _watch(self) -> None:
        while self._armed and not self._ended:
            delay = self._quiet_since + self._quiet_secs - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            await self._end(f"no microphone audio for {self._quiet_secs:g}s", from_timer=True)
            return

    async def _end(self, why: str, *, from_timer: bool) -> None:
        if not self._armed or self._ended:
            return
        self._armed = False
        self._ended = True
        if not from_timer and self._timer is not None and not self._timer.done():
            self._timer.cancel()
        logger.debug(f"sending audioStreamEnd ({why})")
        await self._end_stream(why)
