"""One turn's latency cut into consecutive steps, from three records on one clock.

The page measures the end of the user's speech in its microphone and the first bot audio it
plays; the bot's `observers.edge_times.EdgeTimes` when each audio frame crossed its edges; the
emulator (`emulator.session.timing`) when each step of its answer happened. All three use the
machine's epoch clock. Two chunks tie them together, by the digest of their PCM: the chunk in which
the emulator last heard speech (found again where the bot's input transport handed it on), and
the answer's first chunk (found again where the bot's output transport took it).

The steps follow one another, so they add up to the latency the page measured:

- `webrtc_in`: end of speech in the page's microphone → the bot's input transport hands on its
  last loud frame (Chromium's capture and Opus, the network, aiortc's jitter buffer, decoding);
- `speech_tail` → it hands on the chunk in which the emulator's VAD last heard speech (Silero
  hears trailing sound below the loudness threshold, or stops hearing speech a little before
  it: the two detectors' difference, either way);
- `bot_in` → the emulator receives that chunk (the bot's pipeline and its socket);
- `vad_wait` → the emulator's VAD ends the turn (`silenceDurationMs` of quiet);
- `transcription` → Whisper's transcript is ready (0 when it was ready before);
- `brain` → the brain has decided;
- `tool` → the client's answer to a BLOCKING call came back (0 without one);
- `tts` → Piper has the first piece of speech;
- `send` → its first chunk is on the socket;
- `bot_out` → the bot's output transport takes that chunk (the bot's socket and pipeline);
- `webrtc_out` → the page hears the answer begin (WebRTC, the page's jitter buffer, the
  analyser's window, and any quiet at the start of the chunk).

`jitter_ms` is the page receiver's average jitter-buffer delay over the turn, part of `webrtc_out`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from testkit.loudness import SILENCE_RMS

STEPS = (
    "webrtc_in",
    "speech_tail",
    "bot_in",
    "vad_wait",
    "transcription",
    "brain",
    "tool",
    "tts",
    "send",
    "bot_out",
    "webrtc_out",
)
MATCH_WINDOW_S = 3.0
"""How far apart the records of one turn may be."""
LOUD_RMS = SILENCE_RMS
"""Loudness (full scale 1.0) above which a microphone frame the bot received is speech: the
page's own threshold for its microphone."""


@dataclass(frozen=True)
class Breakdown:
    """Where one turn's latency went: each step in milliseconds (None when a record is missing).

    Attributes:
        total_ms: End of speech → first bot audio, in the page.
        steps: The steps of `STEPS` that could be measured.
        whisper_ms: How long Whisper ran on the utterance (wherever that fell).
        early: Whether Whisper had started before the turn ended.
        lead_in_ms: Quiet at the start of the first chunk (heard as part of `webrtc_out`).
        jitter_ms: The page's average jitter-buffer delay over the turn.
        in_pipeline_ms: The part of `bot_in` spent in the bot's pipeline (its input transport to
            the model's service); the rest is the service's send, the socket, and the emulator.
        out_pipeline_ms: The part of `bot_out` spent in the bot's pipeline (the model's service
            pushing the frame to the output transport taking it).
        out_transport_ms: The start of `webrtc_out` spent in the output transport, from taking
            the chunk to starting to speak (`BotStartedSpeakingFrame`).
    """

    total_ms: float
    steps: dict[str, float | None]
    whisper_ms: float | None = None
    early: bool | None = None
    lead_in_ms: float | None = None
    jitter_ms: float | None = None
    in_pipeline_ms: float | None = None
    out_pipeline_ms: float | None = None
    out_transport_ms: float | None = None


def _gap_ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (b - a) * 1000


def _latest_before(
    times: Sequence[Sequence[Any]], digest: str | None, before: float
) -> float | None:
    """The last time `digest` crossed an edge before `before` (within the match window)."""
    found = [
        row[1]
        for row in times
        if row[0] == digest and before - MATCH_WINDOW_S < row[1] <= before + 0.05
    ]
    return max(found) if found else None


def _first_after(times: Sequence[Sequence[Any]], digest: str | None, after: float) -> float | None:
    found = [
        row[1]
        for row in times
        if row[0] == digest and after - 0.05 <= row[1] < after + MATCH_WINDOW_S
    ]
    return min(found) if found else None


def _last_loud(times: Sequence[Sequence[Any]], after: float, until: float | None) -> float | None:
    """When the bot's input transport handed on the last loud microphone frame of the turn: after
    the page heard the speech end, up to a second past the chunk the VAD heard last."""
    if until is None:
        return None
    loud = [
        row[1]
        for row in times
        if len(row) > 2 and row[2] > LOUD_RMS and after - 0.5 < row[1] <= until + 1.0
    ]
    return max(loud) if loud else None


def _timing_for(
    timings: Sequence[dict[str, Any]], spoke_end: float, heard: float
) -> dict[str, Any] | None:
    """The emulator's timing of the turn that ended after `spoke_end` and was heard at `heard`."""
    fits = [
        t
        for t in timings
        if 0 < t["marks"].get("turn_ended", 0) - spoke_end < MATCH_WINDOW_S
        and t["marks"].get("first_audio_sent", heard + 1) <= heard
    ]
    return min(fits, key=lambda t: t["marks"]["turn_ended"]) if fits else None


def breakdown(
    spoke_end: float,
    heard: float,
    timings: Sequence[dict[str, Any]],
    edges: dict[str, list[list[Any]]],
    jitter_ms: float | None = None,
) -> Breakdown:
    """Cut one turn (page epoch times `spoke_end` → `heard`) into `STEPS`."""
    total = (heard - spoke_end) * 1000
    timing = _timing_for(timings, spoke_end, heard)
    if timing is None:
        return Breakdown(total, dict.fromkeys(STEPS), jitter_ms=jitter_ms)
    marks: dict[str, float] = timing["marks"]
    received = marks.get("speech_received")
    mic_in = (
        _latest_before(edges.get("mic_in", []), timing["speech_digest"], received)
        if received is not None
        else None
    )
    loud_in = _last_loud(edges.get("mic_in", []), spoke_end, mic_in)
    sent = marks.get("first_audio_sent")
    out_in = (
        _first_after(edges.get("out_in", []), timing["first_audio_digest"], sent)
        if sent is not None
        else None
    )
    ended = marks["turn_ended"]
    transcribed = max(ended, marks.get("transcribed", ended))
    decided = marks.get("decided")
    tool = (
        marks.get("tool_response_received")
        if sent is not None
        and marks.get("tool_call_sent", sent) < sent
        and marks.get("tool_response_received", sent) < sent
        else None
    )
    synthesized = marks.get("synthesized")
    points = [
        ("webrtc_in", spoke_end, loud_in if loud_in is not None else mic_in),
        ("speech_tail", loud_in if loud_in is not None else mic_in, mic_in),
        ("bot_in", mic_in, received),
        ("vad_wait", received, ended),
        ("transcription", ended, transcribed),
        ("brain", transcribed, decided),
        ("tool", decided, tool if tool is not None else decided),
        ("tts", tool if tool is not None else decided, synthesized),
        ("send", synthesized, sent),
        ("bot_out", sent, out_in),
        ("webrtc_out", out_in, heard),
    ]
    steps = {name: _gap_ms(a, b) for name, a, b in points}
    to_llm = (
        _first_after(edges.get("mic_to_llm", []), timing["speech_digest"], mic_in)
        if mic_in is not None
        else None
    )
    llm_out = (
        _latest_before(edges.get("llm_out", []), timing["first_audio_digest"], out_in)
        if out_in is not None
        else None
    )
    whisper = (
        (marks["transcribed"] - marks["transcribe_started"]) * 1000
        if "transcribed" in marks and "transcribe_started" in marks
        else None
    )
    return Breakdown(
        total,
        steps,
        whisper_ms=whisper,
        early=timing.get("early_transcript"),
        lead_in_ms=timing.get("lead_in_ms"),
        jitter_ms=jitter_ms,
        in_pipeline_ms=_gap_ms(mic_in, to_llm),
        out_pipeline_ms=_gap_ms(llm_out, out_in),
        out_transport_ms=_gap_ms(out_in, _first_after(edges.get("bot_started", []), None, out_in))
        if out_in is not None
        else None,
    )


def jitter_between(before: dict[str, float] | None, after: dict[str, float] | None) -> float | None:
    """The average jitter-buffer delay (ms) of the samples the page played between two readings."""
    if not before or not after:
        return None
    try:
        count = after["jitterBufferEmittedCount"] - before["jitterBufferEmittedCount"]
        delay = after["jitterBufferDelay"] - before["jitterBufferDelay"]
    except (KeyError, TypeError):
        return None
    return delay / count * 1000 if count > 0 else None


def median_range(values: Sequence[float | None]) -> str:
    """`median (min–max)` of the values that were measured, or `-`."""
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    if len(got) == 1:
        return f"{got[0]:.0f}"
    return f"{statistics.median(got):.0f} ({min(got):.0f}–{max(got):.0f})"
