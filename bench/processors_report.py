"""The processors bench's table: the four variants side by side, from the same run."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench.processors_pipeline import Meter

VARIANTS = ("baseline", "pass-through", "transcript", "processors")
OBSERVER_STAGE = "TranscriptObserver callbacks"
HANDLERS_STAGE = "transcript event handlers"
PASS_THROUGH = "PassThrough"
TARGET_TURN_MS = 1.0
TARGET_CPU_POINTS = 2.0
TARGET_RATIO = 2.0
"""The transcript's cost per frame, at most this many times one pass-through processor's."""


@dataclass
class RunResult:
    """One run of one variant."""

    variant: str
    audio_s: float
    cpu_s: float
    loop_cpu_s: float
    meter: Meter
    bot_turns_recorded: int = 0

    @property
    def cpu_share(self) -> float:
        return self.cpu_s / self.audio_s


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Figures:
    """The numbers the table shows, pooled over the rounds of each variant."""

    def __init__(self, results: list[RunResult], *, seconds: float, turn_s: float) -> None:
        self.by = {v: [r for r in results if r.variant == v] for v in VARIANTS}
        self.whole_turns = int(seconds / turn_s) - 1  # the last turn also pays for the end

    def turn_ms(self, v: str) -> list[float]:
        return [
            ns / 1e6
            for r in self.by[v]
            for turn, ns in r.meter.turn_ns.items()
            if 1 <= turn <= self.whole_turns
        ]

    def pooled(self, v: str, name: str) -> list[float]:
        return [x for r in self.by[v] for x in getattr(r.meter, name)]

    def cpu(self, v: str) -> float:
        return statistics.mean(r.cpu_share for r in self.by[v]) * 100.0

    def split(self, v: str) -> str:
        totals: dict[str, float] = {}
        for r in self.by[v]:
            turns = max(1, len(r.meter.turn_ns) - 1)  # turn 0 is the start-up
            for name, ns in r.meter.by_stage_ns.items():
                totals[name] = totals.get(name, 0.0) + ns / 1e6 / turns / len(self.by[v])
        return ", ".join(f"{name} {ms:.2f} ms" for name, ms in totals.items())

    def _sum(self, v: str, stages: tuple[str, ...], of: str) -> int:
        return sum(getattr(r.meter, of).get(s, 0) for r in self.by[v] for s in stages)

    def frames(self, v: str) -> int:
        """Frames the measured stage saw: visits of the no-op, or frames pushed (transcript)."""
        stage = PASS_THROUGH if v == "pass-through" else OBSERVER_STAGE
        return self._sum(v, (stage,), "visits")

    def own_us_per_frame(self, v: str) -> float:
        """The stage's own work per frame (see `frames`)."""
        stages = (PASS_THROUGH,) if v == "pass-through" else (OBSERVER_STAGE, HANDLERS_STAGE)
        return self._sum(v, stages, "by_stage_ns") / 1e3 / max(1, self.frames(v))

    def loop_us_per_frame(self, v: str) -> float:
        """Event-loop CPU time added to the baseline's, per frame (see `frames`)."""

        def per_s(variant: str) -> float:
            return statistics.mean(r.loop_cpu_s / r.audio_s for r in self.by[variant])

        frames_per_s = self.frames(v) / sum(r.audio_s for r in self.by[v])
        return (per_s(v) - per_s("baseline")) / max(frames_per_s, 1e-9) * 1e6


def report(results: list[RunResult], *, seconds: float, turn_s: float) -> str:
    f = Figures(results, seconds=seconds, turn_s=turn_s)
    ok = {True: "✅", False: "❌"}
    base_first = percentile(f.pooled("baseline", "first_audio_delay_ms"), 50)
    base_in = percentile(f.pooled("baseline", "input_delay_ms"), 50)
    ours_turn = percentile(f.turn_ms("processors"), 50)
    own = f.own_us_per_frame("transcript") / f.own_us_per_frame("pass-through")
    loop = f.loop_us_per_frame("transcript") / f.loop_us_per_frame("pass-through")
    added_first = percentile(f.pooled("processors", "first_audio_delay_ms"), 50) - base_first
    added_cpu = f.cpu("processors") - f.cpu("baseline")
    added_in = percentile(f.pooled("processors", "input_delay_ms"), 50) - base_in

    def each(fn: Callable[[str], str], variants: tuple[str, ...] = VARIANTS) -> list[str]:
        return [fn(v) if v in variants else "–" for v in VARIANTS]

    def late(v: str) -> str:
        values = f.pooled(v, "input_late_ms")
        return f"{percentile(values, 50):.2f} / {percentile(values, 99):.2f} ms"

    measured = VARIANTS[1:]
    rows = [
        (
            "time in the measured stages per turn, p50 (all frames of the turn)",
            *each(lambda v: f"{percentile(f.turn_ms(v), 50):.2f} ms", measured),
            f"processors < {TARGET_TURN_MS:g} ms {ok[ours_turn < TARGET_TURN_MS]}",
        ),
        (
            "… p95 / max",
            *each(
                lambda v: f"{percentile(f.turn_ms(v), 95):.2f} / {max(f.turn_ms(v)):.2f} ms",
                measured,
            ),
            "",
        ),
        ("… per stage, mean per turn", *each(f.split, measured), ""),
        (
            "own work per frame: the no-op's `process_frame` per visit; the transcript's "
            "observer callbacks + event handlers per frame pushed",
            *each(lambda v: f"{f.own_us_per_frame(v):.1f} µs", ("pass-through", "transcript")),
            f"transcript ×{own:.2f} ≤ ×{TARGET_RATIO:g} {ok[own <= TARGET_RATIO]}",
        ),
        (
            "event-loop CPU added to the baseline per frame (same frames as above; Pipecat's "
            "observer dispatch included)",
            *each(lambda v: f"{f.loop_us_per_frame(v):.1f} µs", ("pass-through", "transcript")),
            f"transcript ×{loop:.2f} ≤ ×{TARGET_RATIO:g} {ok[loop <= TARGET_RATIO]}",
        ),
        (
            "first bot audio of a turn, LLM → output, p50",
            *each(lambda v: f"{percentile(f.pooled(v, 'first_audio_delay_ms'), 50):.3f} ms"),
            f"processors added {added_first:+.3f} ms {ok[added_first < TARGET_TURN_MS]}",
        ),
        (
            "input audio, transport → LLM, p50",
            *each(lambda v: f"{percentile(f.pooled(v, 'input_delay_ms'), 50):.3f} ms"),
            f"processors added {added_in:+.3f} ms",
        ),
        (
            "process CPU per audio second (the writer thread included)",
            *each(lambda v: f"{f.cpu(v):.2f} %"),
            f"processors added {added_cpu:+.2f} points {ok[added_cpu < TARGET_CPU_POINTS]}",
        ),
        ("input audio pushed late, p50 / p99", *each(late), ""),
        (
            "bot turns in the transcripts",
            *each(
                lambda v: str(sum(r.bot_turns_recorded for r in f.by[v])),
                ("transcript", "processors"),
            ),
            "",
        ),
    ]
    rounds = len(f.by["baseline"])
    return "\n".join(
        [
            "# Processor and transcript overhead",
            "",
            f"{rounds} round(s) of {seconds:g} s per variant, one turn every {turn_s:g} s "
            f"({len(f.turn_ms('processors'))} whole turns measured per variant); Python "
            f"{platform.python_version()} on {platform.machine()}. Baseline: input → user "
            "aggregator → FakeGemini → output → assistant aggregator; pass-through adds one no-op "
            "processor after FakeGemini; transcript adds the transcript observer (no stage); "
            "processors adds ToolCallProcessor and the transcript.",
            "",
            "| metric | baseline | pass-through | transcript | processors | target |",
            "|---|---|---|---|---|---|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    )
