"""Each turn's latency, split at the emulator's end of turn and the bot's first audio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.browser.conversation import Conversation, summarize_latencies


@dataclass(frozen=True)
class Breakdown:
    """Where one turn's latency went, split at the emulator and the bot (epoch clocks agree).

    Any part is None when its record is missing (no transcript, no matching speech segment).
    """

    to_end_of_turn_ms: float | None
    """End of speech in the page's microphone → the emulator's VAD ends the user's turn (it
    waits for 500 ms of silence, Gemini's default)."""
    to_bot_audio_ms: float | None
    """The emulator's end of turn → the answer's first audio in the bot: Whisper, the rules,
    Piper, the socket, the bot's pipeline (the transcript's `first_audio_at`)."""
    to_page_ms: float | None
    """The answer's first audio in the bot → first bot audio heard in the page."""
    transcript_latency_ms: float | None
    """The bot's own measure, as the transcript records it (`latency_ms`)."""


def breakdown(conv: Conversation, folder: Path | None) -> list[Breakdown | None]:
    """Each answered turn's latency split at the emulator and the bot."""
    segments = [
        seg for s in conv.emulator_sessions for seg in s.get("speech_segments", []) if seg["end"]
    ]
    bot_turns: list[dict[str, Any]] = []
    if folder is not None and conv.transcript_id is not None:
        from transcripts import load_session

        bot_turns = [
            e
            for e in load_session(folder, conv.transcript_id).events
            if e.get("type") == "bot_turn" and e.get("first_audio_at")
        ]
    out: list[Breakdown | None] = []
    for turn in conv.turns:
        if turn.answer is None:
            out.append(None)
            continue
        ended, heard = conv.probe.epoch(turn.spoke.end), conv.probe.epoch(turn.answer.start)
        seg = min(segments, key=lambda g: abs(g["end"] - ended), default=None)
        turn_end = seg["end"] if seg is not None and 0 < seg["end"] - ended < 3.0 else None
        match = min(bot_turns, key=lambda e: abs(heard - e["first_audio_at"]), default=None)
        if match is not None and abs(heard - match["first_audio_at"]) > 3.0:
            match = None
        first = match["first_audio_at"] if match is not None else None
        out.append(
            Breakdown(
                to_end_of_turn_ms=None if turn_end is None else (turn_end - ended) * 1000,
                to_bot_audio_ms=(
                    None if turn_end is None or first is None else (first - turn_end) * 1000
                ),
                to_page_ms=None if first is None else (heard - first) * 1000,
                transcript_latency_ms=None if match is None else match.get("latency_ms"),
            )
        )
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown_table(conv: Conversation, *, title: str, transcripts: Path | None = None) -> str:
    """The latency of each turn, then the median and the worst, as Markdown.

    Each turn is also split at the emulator's end of turn and at the bot's first audio (see
    `Breakdown`); with `transcripts`, the bot's transcript folder, for the bot's timestamps.
    """
    lines = [
        f"### {title}",
        "",
        "| turn | question | **end of speech → first bot audio, in the page (ms)** "
        "| page mic end → emulator's end of turn (ms) | → bot's first audio (ms) "
        "| → heard in the page (ms) | transcript latency_ms | bot audio (s) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    parts = breakdown(conv, transcripts)
    for i, (turn, part) in enumerate(zip(conv.turns, parts, strict=True), 1):
        latency = "no answer" if turn.latency_ms is None else f"**{turn.latency_ms:.0f}**"
        spoken = "-" if turn.answer is None else f"{turn.answer.loud_ms / 1000:.1f}"
        split = (
            "- | - | - | -"
            if part is None
            else " | ".join(
                _ms(v)
                for v in (
                    part.to_end_of_turn_ms,
                    part.to_bot_audio_ms,
                    part.to_page_ms,
                    part.transcript_latency_ms,
                )
            )
        )
        lines.append(f"| {i} | {turn.clip.name} | {latency} | {split} | {spoken} |")
    if conv.latencies_ms:
        median, worst = summarize_latencies(conv.latencies_ms)
        lines += [
            "",
            f"median **{median:.0f} ms**, worst **{worst:.0f} ms** "
            f"over {len(conv.latencies_ms)} turns (in the page)",
        ]
    return "\n".join(lines)
