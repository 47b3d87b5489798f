"""Turn detection: the server-side VAD of one session, on Silero's speech confidence.

Gemini Live decides on its own when the user has finished a turn; clients are built around that
timing (when barge-in fires, how long the end-of-turn silence is), so the emulator reproduces it
with the same kind of model and the API's own timing fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np
from loguru import logger

from emulator.speech.audio import BYTES_PER_SAMPLE, INPUT_RATE
from emulator.speech.silero import WINDOW_SAMPLES, SileroModel

_WINDOW_SAMPLES = WINDOW_SAMPLES
_WINDOW_BYTES = _WINDOW_SAMPLES * BYTES_PER_SAMPLE
_WINDOW_MS = _WINDOW_SAMPLES * 1000 / INPUT_RATE

_START_THRESHOLDS: dict[str | None, float] = {
    None: 0.5,
    "START_SENSITIVITY_UNSPECIFIED": 0.5,
    "START_SENSITIVITY_HIGH": 0.3,
    "START_SENSITIVITY_LOW": 0.7,
}
"""Silero confidence a window needs to (begin to) count as the start of speech.

0.5 is Silero's own default. HIGH sensitivity starts turns on fainter or less clearly voiced
audio (more false starts from noise); LOW needs clearer speech (misses soft talkers)."""

_END_THRESHOLDS: dict[str | None, float] = {
    None: 0.35,
    "END_SENSITIVITY_UNSPECIFIED": 0.35,
    "END_SENSITIVITY_HIGH": 0.5,
    "END_SENSITIVITY_LOW": 0.2,
}
"""Confidence below which a window counts as silence once speech has started.

The default 0.35 is Silero's usual hysteresis (start threshold - 0.15). HIGH sensitivity ends
turns sooner, since trailing mumbles and breaths no longer keep the turn open; LOW keeps a turn
going through soft, trailing speech. It never exceeds the start threshold, so a window that
starts speech also continues it."""

_END_TAIL_MS = 200
"""Silence kept after the last speech window in an "ended" utterance: the word's end, and a
little quiet, without the whole ``silence_ms`` of nothing."""

_EARLY_TAIL_MS = 160
"""Quiet after the last speech window that Whisper is given, and waits for: enough to hear the
last word end (on every speech fixture the transcript is word for word the one with
``_END_TAIL_MS``, down to 96 ms; at 64 ms it is not), and longer than most pauses between words,
which would start a pass that more speech then makes useless. It is short so Whisper starts while
the VAD waits out the rest of ``silence_ms``, and the transcript is ready when the turn ends, as a
streaming recognizer's is."""

# Silero's recurrent state drifts during long non-speech and then under-reports the speech that
# follows. Pipecat's SileroVADAnalyzer resets it every ~2 s of audio, but only during clear
# non-speech (5 windows in a row below 0.1) so a reset never lands inside a word. Same policy.
_RESET_INTERVAL_WINDOWS = math.ceil(2.0 * INPUT_RATE / _WINDOW_SAMPLES)
_RESET_MAX_CONFIDENCE = 0.1
_RESET_LOW_WINDOWS = 5


@dataclass
class SpeechEvent:
    """A change in whether the user is talking.

    Attributes:
        kind: ``"started"`` when speech begins, ``"ended"`` when the turn is over.
        audio: For ``"ended"``, the whole utterance as 16 kHz PCM16, from ``prefix_padding_ms``
            before speech began up to a short tail after it stopped. Empty for ``"started"``.
        transcript_audio: For ``"ended"``, what to hand to the transcriber: the same utterance
            cut ``_EARLY_TAIL_MS`` after its last speech, exactly what
            :meth:`TurnDetector.paused_utterance` gave while the silence was waited out (all of
            ``audio`` when a flush ended the turn). Empty for ``"started"``.
    """

    kind: Literal["started", "ended"]
    audio: bytes = b""
    transcript_audio: bytes = b""


class _State(Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"


class TurnDetector:
    """Server-side voice activity detection for one emulator session.

    Gemini Live decides on its own when the user has finished a turn (automatic activity
    detection); the emulator does the same with Silero, scoring 32 ms windows of 16 kHz audio:

    * **started**: ``min_speech_ms`` of consecutive speech. The first window must reach the
      start threshold, later ones only the end threshold. Shorter blips (clicks, coughs) are
      ignored, and the event fires ``min_speech_ms`` after speech really began.
    * **ended**: ``silence_ms`` of windows below the end threshold after speech. The event
      carries the utterance from ``prefix_padding_ms`` before speech began to
      ``_END_TAIL_MS`` after the last speech window (Gemini's ``prefixPaddingMs`` keeps the
      first syllable, which Silero only recognizes a window or two late).

    The ``start_sensitivity``/``end_sensitivity`` enum names from Gemini's
    ``automaticActivityDetection`` set the thresholds (see ``_START_THRESHOLDS`` and
    ``_END_THRESHOLDS``): start HIGH/default/LOW = 0.3/0.5/0.7, end HIGH/default/LOW =
    0.5/0.35/0.2, the end threshold capped at the start threshold. Timing comes only from
    ``silence_ms``, ``prefix_padding_ms`` and ``min_speech_ms``, which map to the API fields of
    the same meaning. Durations are counted in whole windows (rounded up).

    Not thread-safe; one detector belongs to one session's audio stream.
    """

    def __init__(
        self,
        *,
        silence_ms: int = 500,
        prefix_padding_ms: int = 300,
        start_sensitivity: str | None = None,
        end_sensitivity: str | None = None,
        min_speech_ms: int = 150,
    ) -> None:
        """Create a detector (loads Silero on first use in the process, ~0.2 s).

        Args:
            silence_ms: Silence after speech that ends the turn (``silenceDurationMs``).
            prefix_padding_ms: Audio kept before speech start (``prefixPaddingMs``).
            start_sensitivity: ``"START_SENSITIVITY_HIGH"``/``"..._LOW"``/``"..._UNSPECIFIED"``
                or None for the default.
            end_sensitivity: ``"END_SENSITIVITY_HIGH"``/``"..._LOW"``/``"..._UNSPECIFIED"`` or
                None for the default.
            min_speech_ms: Speech needed before a turn counts as started.

        Raises:
            ValueError: For a negative duration or an unknown sensitivity name.
        """
        for name, value in (
            ("silence_ms", silence_ms),
            ("prefix_padding_ms", prefix_padding_ms),
            ("min_speech_ms", min_speech_ms),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if start_sensitivity not in _START_THRESHOLDS:
            raise ValueError(f"Unknown start sensitivity {start_sensitivity!r}")
        if end_sensitivity not in _END_THRESHOLDS:
            raise ValueError(f"Unknown end sensitivity {end_sensitivity!r}")

        self.start_threshold = _START_THRESHOLDS[start_sensitivity]
        self.end_threshold = min(_END_THRESHOLDS[end_sensitivity], self.start_threshold)
        self.silence_ms = silence_ms
        self.prefix_padding_ms = prefix_padding_ms
        self.min_speech_ms = min_speech_ms

        self._silence_windows = max(1, math.ceil(silence_ms / _WINDOW_MS))
        self._min_speech_windows = max(1, math.ceil(min_speech_ms / _WINDOW_MS))
        self._prefix_bytes = round(prefix_padding_ms * INPUT_RATE / 1000) * BYTES_PER_SAMPLE
        self._tail_bytes = round(_END_TAIL_MS * INPUT_RATE / 1000) * BYTES_PER_SAMPLE
        self._early_bytes = round(_EARLY_TAIL_MS * INPUT_RATE / 1000) * BYTES_PER_SAMPLE

        self._model = SileroModel()
        self.speech_windows = 0
        """Windows heard as speech since the detector was made: when it changes, the chunk just
        fed holds the latest speech (where a turn's timing starts)."""
        self._reset()

    def _reset(self) -> None:
        """Forget everything about the stream, as at the start of a session."""
        self._model.reset()
        self._state = _State.QUIET
        self._pending = bytearray()  # not yet scored: less than a window, maybe an odd byte
        self._prefix = bytearray()  # recent quiet audio, at most prefix_padding_ms
        self._candidate = bytearray()  # possible speech not yet long enough to count
        self._candidate_windows = 0
        self._utterance = bytearray()  # confirmed turn so far, prefix included
        self._last_speech_end = 0  # offset in _utterance just after the last speech window
        self._quiet_run = 0  # consecutive non-speech windows while speaking
        self._windows_since_reset = 0
        self._low_windows = 0

    @property
    def buffered_bytes(self) -> int:
        """The audio held now: the turn so far, a possible start, the quiet before it."""
        return len(self._utterance) + len(self._candidate) + len(self._prefix) + len(self._pending)

    @property
    def speaking(self) -> bool:
        """True between a "started" event and its "ended" event."""
        return self._state is _State.SPEAKING

    def feed(self, pcm16_16k: bytes) -> list[SpeechEvent]:
        """Score the next chunk of the stream.

        Args:
            pcm16_16k: Mono PCM16 at 16 kHz, any length (a split sample is completed by the
                next call).

        Returns:
            The events that this chunk completed, in order (usually none).
        """
        self._pending += pcm16_16k
        whole = len(self._pending) // _WINDOW_BYTES * _WINDOW_BYTES
        if whole == 0:
            return []
        block = bytes(self._pending[:whole])
        del self._pending[:whole]
        samples = np.frombuffer(block, dtype="<i2").astype(np.float32) / 32768.0
        events: list[SpeechEvent] = []
        for index in range(whole // _WINDOW_BYTES):
            start = index * _WINDOW_SAMPLES
            confidence = self._model.confidence(samples[start : start + _WINDOW_SAMPLES])
            window = block[index * _WINDOW_BYTES : (index + 1) * _WINDOW_BYTES]
            event = self._step(window, confidence)
            if event is not None:
                events.append(event)
            self._maybe_reset_model(confidence)
        return events

    def _step(self, window: bytes, confidence: float) -> SpeechEvent | None:
        """Advance the state machine by one scored window."""
        if self._state is _State.QUIET:
            if confidence >= self.start_threshold:
                self._state = _State.STARTING
                self._candidate = bytearray(window)
                self._candidate_windows = 1
                return self._maybe_start()
            self._push_prefix(window)
            return None

        if self._state is _State.STARTING:
            if confidence >= self.end_threshold:
                self._candidate += window
                self._candidate_windows += 1
                return self._maybe_start()
            # A blip, not a turn: it becomes part of the quiet audio before the next start.
            self._push_prefix(bytes(self._candidate) + window)
            self._candidate = bytearray()
            self._candidate_windows = 0
            self._state = _State.QUIET
            return None

        self._utterance += window
        if confidence >= self.end_threshold:
            self._quiet_run = 0
            self._last_speech_end = len(self._utterance)
            self.speech_windows += 1
            return None
        self._quiet_run += 1
        if self._quiet_run < self._silence_windows:
            return None
        end = min(len(self._utterance), self._last_speech_end + self._tail_bytes)
        audio = bytes(self._utterance[:end])
        heard = bytes(self._utterance[: self._last_speech_end + self._early_bytes])
        # The silence after the turn is the quiet before the next one, minus what was returned.
        self._prefix = bytearray()
        self._push_prefix(bytes(self._utterance[end:]))
        self._utterance = bytearray()
        self._state = _State.QUIET
        self._quiet_run = 0
        logger.debug(
            f"VAD: speech ended ({len(audio) / (BYTES_PER_SAMPLE * INPUT_RATE):.2f}s utterance)"
        )
        return SpeechEvent("ended", audio, heard)

    def _maybe_start(self) -> SpeechEvent | None:
        """Confirm the candidate as speech once it has lasted ``min_speech_ms``."""
        if self._candidate_windows < self._min_speech_windows:
            return None
        self._utterance = self._prefix + self._candidate
        self._last_speech_end = len(self._utterance)
        self.speech_windows += self._candidate_windows
        self._prefix = bytearray()
        self._candidate = bytearray()
        self._candidate_windows = 0
        self._quiet_run = 0
        self._state = _State.SPEAKING
        logger.debug("VAD: speech started")
        return SpeechEvent("started")

    def _push_prefix(self, audio: bytes) -> None:
        """Remember quiet audio, keeping only the last ``prefix_padding_ms`` of it."""
        self._prefix += audio
        excess = len(self._prefix) - self._prefix_bytes
        if excess > 0:
            del self._prefix[:excess]

    def _maybe_reset_model(self, confidence: float) -> None:
        """Clear Silero's recurrent state every ~2 s during clear non-speech."""
        self._windows_since_reset += 1
        self._low_windows = self._low_windows + 1 if confidence < _RESET_MAX_CONFIDENCE else 0
        if (
            self._state is _State.QUIET
            and self._windows_since_reset >= _RESET_INTERVAL_WINDOWS
            and self._low_windows >= _RESET_LOW_WINDOWS
        ):
            self._model.reset()
            self._windows_since_reset = 0

    def paused_utterance(self) -> bytes | None:
        """What the turn will be transcribed as if the speaker stays quiet, as soon as it exists.

        ``_EARLY_TAIL_MS`` after the last speech window, the "ended" event's ``transcript_audio``
        already exists, though the detector waits out the rest of ``silence_ms`` before it ends
        the turn; a caller can start transcribing then and use the result if the turn does end
        with exactly this audio. None when not speaking or too early.
        """
        if self._state is not _State.SPEAKING:
            return None
        end = self._last_speech_end + self._early_bytes
        if len(self._utterance) < end or self._quiet_run == 0:
            return None
        return bytes(self._utterance[:end])

    def flush(self) -> SpeechEvent | None:
        """End the stream now (the client sent ``audioStreamEnd``).

        Returns:
            An "ended" event with everything heard since speech began (prefix, and the unscored
            tail of the stream, included) if a turn had started; None otherwise, including
            when speech began but had not yet lasted ``min_speech_ms``. The detector is reset
            either way, ready for a new stream.
        """
        event: SpeechEvent | None = None
        if self._state is _State.SPEAKING:
            self._utterance += self._pending[: len(self._pending) // 2 * 2]
            event = SpeechEvent("ended", bytes(self._utterance), bytes(self._utterance))
            logger.debug(
                f"VAD: stream ended during speech"
                f" ({len(event.audio) / (BYTES_PER_SAMPLE * INPUT_RATE):.2f}s)"
            )
        self._reset()
        return event
