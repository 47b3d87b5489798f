"""What a test says out loud: Piper's voice, offline, as the 16 kHz microphone audio a bot hears."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from emulator.speech.audio import INPUT_RATE, OUTPUT_RATE, resample_pcm16


async def synthesize(text: str) -> bytes:
    """`text` spoken by the bundled Piper voice, as 16 kHz mono PCM16 (the emulator's own
    synthesizer, cached by sentence, so a phrase said twice sounds the same)."""
    from emulator.speech import Synthesizer, split_sentences

    synthesizer = Synthesizer.shared()
    pcm = b"".join([await synthesizer.synthesize(s) for s in split_sentences(text)])
    return resample_pcm16(pcm, OUTPUT_RATE, INPUT_RATE)


def read_wav(path: str | Path) -> bytes:
    """A WAV file's audio as 16 kHz mono PCM16 (other rates are resampled, stereo mixed down).

    Raises:
        ValueError: It is not 16-bit PCM.
    """
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV files are read")
        rate, channels = wav.getframerate(), wav.getnchannels()
        raw = wav.readframes(wav.getnframes())
    if channels > 1:
        mixed = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).mean(axis=1)
        raw = mixed.astype("<i2").tobytes()
    return raw if rate == INPUT_RATE else resample_pcm16(raw, rate, INPUT_RATE)
