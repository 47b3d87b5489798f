"""Where the time of one answer goes inside the emulator: a mark per step, in epoch seconds.

Latency is what a voice client is judged on, and most of it is spent here offline (the VAD's
wait, Whisper, the brain, a tool's round trip, Piper). Each user turn gets a `TurnTiming` that
the parts stamp as the turn goes through them; `GET /emulator/sessions` lists them, so a
benchmark can set them beside what the client and the page measured on the same machine's clock.

Audio is named by a digest of its PCM as it went over the wire (`audio_digest`): the client
computes the same digest of the frame it sent or received, which ties one chunk's times on both
sides together without any shared state.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Mark = Literal[
    "speech_received",
    "turn_ended",
    "transcribe_started",
    "transcribed",
    "decided",
    "tool_call_sent",
    "tool_response_received",
    "synthesis_started",
    "synthesized",
    "first_audio_sent",
]
"""The steps of one answer, in the order they normally happen:

- `speech_received`: the chunk holding the last window the VAD heard as speech arrived;
- `turn_ended`: the VAD ended the turn (or `activityEnd`, `audioStreamEnd`, typed text came);
- `transcribe_started` / `transcribed`: Whisper on the utterance (possibly before the turn ended);
- `decided`: the brain (or a scenario rule) chose what to do;
- `tool_call_sent` / `tool_response_received`: the first call's round trip through the client;
- `synthesis_started` / `synthesized`: Piper on the first piece of speech;
- `first_audio_sent`: the first audio chunk of the answer was handed to the socket."""

DIGEST_BYTES = 8


def audio_digest(pcm: bytes) -> str:
    """The name of one chunk of audio on both sides of the wire: BLAKE2b-64 of its bytes, hex."""
    return hashlib.blake2b(pcm, digest_size=DIGEST_BYTES).hexdigest()


@dataclass
class TurnTiming:
    """The marks of one user turn's answer; each step is stamped the first time it happens.

    Attributes:
        source: `audio` (a spoken turn) or `text` (typed).
        marks: Epoch seconds by step (`Mark`).
        speech_digest: The digest of the chunk of `speech_received`.
        first_audio_digest: The digest of the chunk of `first_audio_sent`.
        early_transcript: Whether Whisper had started before the turn ended.
        lead_in_ms: Quiet at the start of the first audio (Piper begins with a breath of it).
    """

    source: str
    marks: dict[str, float] = field(default_factory=dict)
    speech_digest: str | None = None
    first_audio_digest: str | None = None
    early_transcript: bool | None = None
    lead_in_ms: float | None = None

    def mark(self, step: Mark, at: float | None = None) -> None:
        """Stamp `step` now (or `at`, epoch seconds) unless it was stamped already."""
        if step not in self.marks:
            self.marks[step] = time.time() if at is None else at

    def has(self, step: Mark) -> bool:
        return step in self.marks

    def to_json(self) -> dict[str, Any]:
        """What `GET /emulator/sessions` lists for the turn."""
        return {
            "source": self.source,
            "marks": {k: round(v, 4) for k, v in self.marks.items()},
            "speech_digest": self.speech_digest,
            "first_audio_digest": self.first_audio_digest,
            "early_transcript": self.early_transcript,
            "lead_in_ms": self.lead_in_ms,
        }
