"""Silero VAD through onnxruntime: one ONNX session per process, one recurrent state per stream.

The model file is the ``silero_vad.onnx`` that the ``pipecat-ai`` wheel ships (a declared
dependency of this project). It is found among that distribution's installed files, so the
emulator uses the very model Pipecat's ``SileroVADAnalyzer`` uses without importing Pipecat, and
the repository carries no copy of the 2.3 MB file. Scoring follows Pipecat's ``SileroOnnxModel``
at 16 kHz exactly: 512-sample windows, each preceded by the last 64 samples of the one before,
the recurrent state carried from window to window, single-threaded CPU inference.
"""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from emulator.speech.audio import INPUT_RATE

WINDOW_SAMPLES = 512
"""Silero's window at 16 kHz (32 ms); the model accepts nothing else."""

_CONTEXT_SAMPLES = 64
"""Samples of the previous window that the model sees in front of each window at 16 kHz."""

_DISTRIBUTION = "pipecat-ai"
_MODEL_FILE = "pipecat/audio/vad/data/silero_vad.onnx"

_session: Any = None
_session_lock = threading.Lock()


def model_path() -> Path:
    """Where the installed ``pipecat-ai`` distribution keeps ``silero_vad.onnx``.

    Raises:
        FileNotFoundError: The distribution is not installed or no longer ships the file there.
    """
    try:
        files = importlib.metadata.distribution(_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.as_posix() == _MODEL_FILE:
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"Silero VAD model not found: {_DISTRIBUTION} should install {_MODEL_FILE}"
    )


def _shared_session() -> Any:
    """The process's ONNX session: building one costs ~30 ms and a few MB, too much per stream.

    ``InferenceSession.run`` is thread-safe, and the per-stream state lives outside it.
    """
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.inter_op_num_threads = 1
                options.intra_op_num_threads = 1
                providers = (
                    ["CPUExecutionProvider"]
                    if "CPUExecutionProvider" in onnxruntime.get_available_providers()
                    else None
                )
                path = model_path()
                _session = onnxruntime.InferenceSession(
                    str(path), providers=providers, sess_options=options
                )
                logger.debug(f"Loaded Silero VAD from {path}")
    return _session


def warm_up() -> None:
    """Load the ONNX session now, so the first session's audio does not wait for it."""
    _shared_session()


class SileroModel:
    """Speech confidence of successive 32 ms windows of one 16 kHz stream."""

    def __init__(self) -> None:
        self._session = _shared_session()
        self._sample_rate = np.array(INPUT_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far: zero recurrent state and context."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT_SAMPLES), dtype=np.float32)

    def confidence(self, window: np.ndarray) -> float:
        """Score the next window.

        Args:
            window: ``WINDOW_SAMPLES`` float32 samples in [-1, 1].

        Returns:
            The probability that the window is speech, 0 to 1.
        """
        samples = np.concatenate((self._context, window.reshape(1, -1)), axis=1)
        output, self._state = self._session.run(
            None, {"input": samples, "state": self._state, "sr": self._sample_rate}
        )
        self._context = samples[:, -_CONTEXT_SAMPLES:]
        return float(np.asarray(output).reshape(-1)[0])
