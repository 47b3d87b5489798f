"""PCM16 at the emulator's two rates: 16 kHz from clients, 24 kHz as Gemini Live sends it.

Clients may send any rate in chunks of any size, even splitting a sample across two messages, so
resampling keeps its filter state and the odd byte between chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INPUT_RATE = 16000
"""Sample rate the emulator works in for input audio (what Gemini Live expects from clients)."""

OUTPUT_RATE = 24000
"""Sample rate of the audio Gemini Live sends back."""

BYTES_PER_SAMPLE = 2


def _pcm16_array(pcm: bytes) -> np.ndarray:
    """View PCM16 little-endian bytes as int16 samples, refusing a half sample.

    A trailing odd byte means the caller split a sample in two; silently dropping it would shift
    every later sample by one byte and turn the audio into noise, so it is an error here.
    """
    if len(pcm) % BYTES_PER_SAMPLE:
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
        usable = len(data) - len(data) % BYTES_PER_SAMPLE
        self._remainder = data[usable:]
        if last:
            self._remainder = b""
        if self._stream is None:
            return data[:usable]
        samples = np.frombuffer(data[:usable], dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        return np.asarray(out, dtype="<i2").tobytes()


AUDIBLE_RMS = 0.01
"""RMS (full scale 1.0) from which output audio counts as sound, about -40 dBFS: the level at
which a listener (or a page's analyser) hears an answer begin."""

_LEAD_WINDOW = OUTPUT_RATE // 100  # 10 ms at 24 kHz


def _quiet_windows(pcm: bytes) -> tuple[int, int]:
    """How many whole 10 ms windows of 24 kHz `pcm` come before the first audible one, of how
    many there are."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
    windows = len(samples) // _LEAD_WINDOW
    if windows == 0:
        return 0, 0
    frames = samples[: windows * _LEAD_WINDOW].reshape(windows, _LEAD_WINDOW) / 32768.0
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > AUDIBLE_RMS)
    return (int(loud[0]) if len(loud) else windows), windows


def lead_in_ms(pcm: bytes) -> float:
    """Milliseconds of quiet at the start of 24 kHz PCM16, in 10 ms windows (all of it when
    nothing in it is audible)."""
    return _quiet_windows(pcm)[0] * 10.0


def trim_lead_in(pcm: bytes, keep_ms: int = 10) -> bytes:
    """24 kHz PCM16 without its quiet start, but for the last `keep_ms` of it (rounded to 10 ms).

    Piper begins every rendering with a breath of quiet (0-80 ms); at the start of an answer that
    is time a listener waits for nothing. Audio with nothing audible in it is returned whole.
    """
    quiet, windows = _quiet_windows(pcm)
    drop = quiet - max(0, keep_ms) // 10
    if drop <= 0 or quiet >= windows:
        return pcm
    return pcm[drop * _LEAD_WINDOW * BYTES_PER_SAMPLE :]
