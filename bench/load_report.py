"""`bench.load`'s numbers: one row per bot and N, N_max, and the Markdown table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.emulator_common import percentile
from bench.load_procs import StepResult

LATENCY_SLACK = 1.5
"""A step holds while its p95 turn latency is within this factor of N=1's."""


@dataclass
class StepRow:
    bot: str
    n: int
    connected: int
    refused: int
    retry_after: bool
    """Every refusal carried Retry-After."""
    turns: int
    p50_ms: float
    p95_ms: float
    cpu_pct: float
    """The bot process, % of one core, over the step."""
    cpu_per_session_pct: float
    """Bot CPU seconds per second of connected session, in % of one core."""
    rss_per_session_mb: float
    clients_cpu_pct: float
    """The load generator's workers, % of one core: they share the machine with the bot."""
    cpu_s: float
    session_s: float
    gaps_per_min: float
    """Gaps over 60 ms in the bot's audio as the clients received it."""
    bot_gaps: int
    """Gaps the bot's own output transport counted (its `/metrics`; the stock bot feeds none)."""
    loop_stalls: int
    """Times the bot's event loop was blocked over 50 ms."""
    late_per_min: float
    reconnects: int
    errors: int
    emulator_cpu_pct: float
    holds: bool
    cap: int | None = None
    first_error: str = ""

    def line(self) -> str:
        return (
            f"{self.bot:>17} N={self.n:<3} connected {self.connected} refused {self.refused}"
            f" p50 {self.p50_ms:.0f} ms p95 {self.p95_ms:.0f} ms cpu {self.cpu_pct:.0f}%"
            f" ({self.cpu_per_session_pct:.1f}%/session) gaps/min {self.gaps_per_min:.2f}"
            f" errors {self.errors} {'holds' if self.holds else 'FAILS'} {self.first_error[:80]}"
        )


def _ms(values: list[float], q: float) -> float:
    value = percentile(values, q)
    return float("inf") if value is None else round(1000 * value, 1)


def row_of(
    bot: str, step: StepResult, baseline_p95: float | None, cap: int | None = None
) -> StepRow:
    """Sum one step up; `baseline_p95` is the same bot's N=1 (None: this is N=1)."""
    sessions = step.sessions
    connected = [s for s in sessions if s["connected"]]
    refused = [s for s in sessions if s["refused"]]
    latencies = [x for s in connected for x in s["latencies"]]
    audio_min = sum(s["audio_s"] for s in connected) / 60 or 1.0
    session_s = sum(s["connected_s"] for s in connected) or 1.0
    errors = [e for s in sessions for e in s["errors"]] + step.worker_failures
    p95 = _ms(latencies, 95)
    gaps = sum(s["gaps"] for s in connected)
    within = baseline_p95 is None or p95 <= LATENCY_SLACK * baseline_p95
    return StepRow(
        bot=bot,
        n=len(sessions),
        connected=len(connected),
        refused=len(refused),
        retry_after=all(s["retry_after"] for s in refused),
        turns=len(latencies),
        p50_ms=_ms(latencies, 50),
        p95_ms=p95,
        cpu_pct=round(100 * step.bot_cpu_s / step.wall_s, 1),
        cpu_per_session_pct=round(100 * step.bot_cpu_s / session_s, 2),
        clients_cpu_pct=round(100 * step.clients_cpu_s / step.wall_s, 1),
        cpu_s=round(step.bot_cpu_s, 2),
        session_s=round(session_s, 2),
        rss_per_session_mb=round(
            max(0.0, step.peak_rss_mb - step.idle_rss_mb) / max(1, len(connected)), 1
        ),
        gaps_per_min=round(gaps / audio_min, 2),
        bot_gaps=int(step.bot_gaps),
        loop_stalls=int(step.loop_stalls),
        late_per_min=round(sum(s["late"] for s in connected) / audio_min, 2),
        reconnects=sum(s["reconnects"] for s in connected),
        errors=len(errors),
        emulator_cpu_pct=round(100 * step.emulator_cpu_s / step.wall_s, 1),
        holds=within and gaps == 0 and not errors and bool(latencies),
        cap=cap,
        first_error=errors[0] if errors else "",
    )


def n_max(rows: list[StepRow], bot: str) -> int:
    """The largest N the bot held, with every smaller N of its ramp held too."""
    best = 0
    for row in sorted((r for r in rows if r.bot == bot), key=lambda r: r.n):
        if not row.holds:
            break
        best = row.n
    return best


COLUMNS: tuple[tuple[str, Callable[[StepRow], str]], ...] = (
    ("bot", lambda r: r.bot),
    ("N", lambda r: str(r.n)),
    ("connected", lambda r: str(r.connected)),
    ("refused", lambda r: f"{r.refused}{' (Retry-After)' if r.refused and r.retry_after else ''}"),
    ("turns", lambda r: str(r.turns)),
    ("p50 ms", lambda r: f"{r.p50_ms:.0f}"),
    ("p95 ms", lambda r: f"{r.p95_ms:.0f}"),
    ("bot CPU %", lambda r: f"{r.cpu_pct:.1f}"),
    ("CPU %/session", lambda r: f"{r.cpu_per_session_pct:.2f}"),
    ("RSS MB/session", lambda r: f"{r.rss_per_session_mb:.1f}"),
    ("clients CPU %", lambda r: f"{r.clients_cpu_pct:.1f}"),
    ("gaps/min", lambda r: f"{r.gaps_per_min:.2f}"),
    ("late/min", lambda r: f"{r.late_per_min:.2f}"),
    ("bot gaps", lambda r: str(r.bot_gaps)),
    ("loop stalls", lambda r: str(r.loop_stalls)),
    ("reconnects", lambda r: str(r.reconnects)),
    ("errors", lambda r: str(r.errors)),
    ("emulator CPU %", lambda r: f"{r.emulator_cpu_pct:.1f}"),
    ("holds", lambda r: "yes" if r.holds else "no"),
)


def markdown(rows: list[StepRow], found: dict[str, int], cores: int) -> str:
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|---|" + "--:|" * (len(COLUMNS) - 2) + "---|",
        *("| " + " | ".join(cell(r) for _, cell in COLUMNS) + " |" for r in rows),
        "",
    ]
    for bot, n in found.items():
        lines.append(f"N_max ({bot}): {n} on {cores} cores")
    ours = _per_session(rows, "assistant")
    stock = _per_session(rows, "stock")
    if ours and stock:
        lines.append(
            f"CPU per session over the steps both ran, assistant / stock: {ours:.2f} % / "
            f"{stock:.2f} % of a core = x{ours / stock:.2f}; sessions per core by CPU: "
            f"{100 / ours:.1f} / {100 / stock:.1f}"
        )
    return "\n".join(lines)


def _per_session(rows: list[StepRow], bot: str) -> float | None:
    """Bot CPU seconds per connected session-second, in % of a core, over every N both bots ran
    (so one noisy step does not decide the ratio)."""
    ns = {r.n for r in rows if r.bot == "assistant"} & {r.n for r in rows if r.bot == "stock"}
    picked = [r for r in rows if r.bot == bot and r.n in ns]
    session_s = sum(r.session_s for r in picked)
    return 100 * sum(r.cpu_s for r in picked) / session_s if session_s else None
