"""What counts as the user speaking, for code that watches microphone PCM without a VAD.

Gemini Live detects turns on the server, so the pipeline gets no local speech signal. Two places
still need a cheap one: the Gemini stage (do not switch connections mid-utterance) and the
transcript's latency (the end of the user's speech). One threshold serves both, so they agree on
when the user stopped.
"""

from __future__ import annotations

import numpy as np

SPEECH_RMS = 300.0
"""RMS of 16-bit samples above which a frame counts as speech: about -40 dBFS. Speech at a normal
level measures in the thousands; a quiet room, or a muted WebRTC track, in the tens or zero."""


def rms(pcm: bytes) -> float:
    """Root mean square of little-endian PCM16 samples; 0.0 for no samples."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def is_speech(pcm: bytes) -> bool:
    """Whether a frame of PCM16 is loud enough to be the user speaking."""
    return rms(pcm) > SPEECH_RMS
