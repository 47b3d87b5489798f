"""The Markdown tables of `bench.browser_latency`: each turn's steps, then the bots side by side."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.latency_breakdown import STEPS, Breakdown, median_range
from testkit.browser.conversation import Conversation

HEADINGS = {
    "webrtc_in": "WebRTC in",
    "speech_tail": "speech tail (VAD vs level)",
    "bot_in": "bot in",
    "vad_wait": "VAD wait",
    "transcription": "Whisper wait",
    "brain": "brain",
    "tool": "tool round trip",
    "tts": "TTS first piece",
    "send": "first chunk sent",
    "bot_out": "bot out",
    "webrtc_out": "WebRTC out + page",
}
"""Column names for the steps of `bench.latency_breakdown.STEPS`."""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def per_turn_table(kind: str, conv: Conversation, parts: Sequence[Breakdown | None]) -> str:
    """Each turn of one conversation: its latency in the page and its steps, in milliseconds."""
    head = ["turn", "question", "**total**", *(HEADINGS[s] for s in STEPS)]
    head += ["Whisper ran", "jitter buffer", "lead-in quiet"]
    lines = [
        f"#### {kind}: each turn (ms; the steps add up to the total)",
        "",
        "| " + " | ".join(head) + " |",
        "|---:|---|" + "---:|" * (len(head) - 2),
    ]
    for i, (turn, part) in enumerate(zip(conv.turns, parts, strict=True), 1):
        if part is None:
            cells = ["no answer", *["-"] * (len(head) - 3)]
        else:
            early = "" if part.early is None else (" (early)" if part.early else " (after)")
            cells = [
                f"**{part.total_ms:.0f}**",
                *(_ms(part.steps[s]) for s in STEPS),
                _ms(part.whisper_ms) + early,
                _ms(part.jitter_ms),
                _ms(part.lead_in_ms),
            ]
        lines.append(f"| {i} | {turn.clip.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def side_by_side(
    runs: Sequence[tuple[str, Conversation, Sequence[Breakdown | None]]], *, silence_ms: int
) -> str:
    """Median (range) of every step for each bot, over all its answered turns in this run."""
    kinds = list(dict.fromkeys(kind for kind, _, _ in runs))
    by_kind: dict[str, list[Breakdown]] = {k: [] for k in kinds}
    for kind, _conv, parts in runs:
        by_kind[kind] += [p for p in parts if p is not None]
    lines = [
        f"### Where the time goes: end of speech → first bot audio in Chromium "
        f"(emulator, end-of-turn silence {silence_ms} ms)",
        "",
        "| step (ms, median (range)) | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]

    def row(name: str, values: dict[str, list[float | None]]) -> None:
        lines.append(f"| {name} | " + " | ".join(median_range(values[k]) for k in kinds) + " |")

    row("**end of speech → first bot audio**", {k: [p.total_ms for p in by_kind[k]] for k in kinds})
    for step in STEPS:
        row(HEADINGS[step], {k: [p.steps[step] for p in by_kind[k]] for k in kinds})
    extras = (
        ("(bot in: its pipeline alone)", "in_pipeline_ms"),
        ("(bot out: its pipeline alone)", "out_pipeline_ms"),
        ("(WebRTC out: the output transport, to speaking)", "out_transport_ms"),
        ("(Whisper's own run)", "whisper_ms"),
        ("(page jitter buffer, in WebRTC out)", "jitter_ms"),
        ("(quiet lead-in of the first chunk)", "lead_in_ms"),
    )
    for name, attr in extras:
        row(name, {k: [getattr(p, attr) for p in by_kind[k]] for k in kinds})
    counts = " | ".join(str(len(by_kind[k])) for k in kinds)
    lines.append(f"| turns | {counts} |")
    totals = {k: [p.total_ms for p in by_kind[k]] for k in kinds}
    summary = "; ".join(
        f"{k}: median **{statistics.median(v):.0f} ms** over {len(v)} turns"
        for k, v in totals.items()
        if v
    )
    lines += ["", summary]
    return "\n".join(lines)
