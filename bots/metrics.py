"""The bot's Prometheus metrics, on one registry of our own, served at `GET /metrics`.

The registry is ours rather than `prometheus_client`'s global default so that `/metrics` serves
exactly what this module lists (plus the process's CPU, memory and file descriptors), whatever
a library registers on the default one, and a test reads the values from one known place.

One process serves every session, so the values are process-wide: no per-session label, and
each label takes a fixed set of values (refusal and failure reasons listed here, tool names
declared by the tool registries, every other name counted as `"other"`), so scraping cost
stays bounded however long the process runs.

Where each is fed: the sessions by `bots.server.webrtc` and `bots.daily.routes` (refusals by
`bots.server.sessions`), the turn latency by `observers.transcript.TranscriptObserver`, tool
calls and output audio gaps by `observers.bot_metrics.BotMetricsObserver`, the Gemini
connection by `bots.gemini_live.supervisor`, the event loop by `bots.server.loop_watch`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from processors.frames import ToolCallEvent, ToolOutcome

PREFIX = "gemini_agent_"
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

REFUSAL_REASONS = ("full", "per_client", "draining")
"""Why `/start` refused a session: the process cap, the client's cap, a server stopping."""
FAILURE_REASONS = ("timeout", "refused", "handle_refused", "connect_failed", "lost")
"""How a Gemini connection failed (`bots.gemini_live.errors.failure_reason`)."""
OTHER_TOOL = "other"

SESSIONS_ACTIVE = Gauge(
    f"{PREFIX}sessions_active", "Sessions whose bot is running now.", registry=REGISTRY
)
SESSIONS_STARTED = Counter(
    f"{PREFIX}sessions_started_total", "Sessions whose bot started.", registry=REGISTRY
)
SESSIONS_ENDED = Counter(
    f"{PREFIX}sessions_ended_total", "Sessions whose bot ended, in any way.", registry=REGISTRY
)
SESSIONS_REFUSED = Counter(
    f"{PREFIX}sessions_refused_total",
    "Session starts refused, by reason (full, per_client, draining).",
    ["reason"],
    registry=REGISTRY,
)
TURN_LATENCY = Histogram(
    f"{PREFIX}turn_latency_seconds",
    "End of the user's speech to the answer's first audio.",
    buckets=(0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
    registry=REGISTRY,
)
GEMINI_CONNECTS = Counter(
    f"{PREFIX}gemini_connects_total",
    "Gemini Live connections opened (setupComplete), the first of a session and every later one.",
    registry=REGISTRY,
)
GEMINI_RECONNECTS = Counter(
    f"{PREFIX}gemini_reconnects_total",
    "Gemini Live connections opened again after a lost or failed one (not a goAway switch).",
    registry=REGISTRY,
)
GEMINI_GOAWAYS = Counter(
    f"{PREFIX}gemini_goaways_total", "goAway messages received from Gemini Live.", registry=REGISTRY
)
GEMINI_FAILURES = Counter(
    f"{PREFIX}gemini_failures_total",
    "Gemini Live connections lost or failed, by reason.",
    ["reason"],
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    f"{PREFIX}tool_calls_total",
    "Finished tool calls, by tool and outcome.",
    ["name", "outcome"],
    registry=REGISTRY,
)
OUTPUT_AUDIO_GAPS = Counter(
    f"{PREFIX}output_audio_gaps_total",
    "Gaps of more than 60 ms in the bot's voice while it speaks, as the output transport sent it.",
    registry=REGISTRY,
)
LOOP_LAG = Histogram(
    f"{PREFIX}event_loop_lag_seconds",
    "How late the event loop ran its heartbeat, beyond the heartbeat's own interval.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
LOOP_STALLS = Counter(
    f"{PREFIX}event_loop_stalls_total",
    "Times the event loop was blocked for longer than the stall threshold (50 ms).",
    registry=REGISTRY,
)

for _reason in REFUSAL_REASONS:
    SESSIONS_REFUSED.labels(_reason)
for _reason in FAILURE_REASONS:
    GEMINI_FAILURES.labels(_reason)

_tool_names: set[str] = set()


@contextlib.contextmanager
def session_running() -> Iterator[None]:
    """Count a session for as long as its bot runs (started, active, then ended)."""
    SESSIONS_STARTED.inc()
    SESSIONS_ACTIVE.inc()
    try:
        yield
    finally:
        SESSIONS_ACTIVE.dec()
        SESSIONS_ENDED.inc()


def refused(reason: str) -> None:
    """A session start was refused for one of `REFUSAL_REASONS`."""
    SESSIONS_REFUSED.labels(reason if reason in REFUSAL_REASONS else "other").inc()


def declare_tools(names: Iterable[str]) -> None:
    """Tool names that get their own series (a registry's declared tools); others are "other"."""
    for name in names:
        if name not in _tool_names:
            _tool_names.add(name)
            for outcome in ToolOutcome:
                TOOL_CALLS.labels(name, str(outcome))


def tool_call(event: ToolCallEvent) -> None:
    """A tool call finished (`observers.bot_metrics.BotMetricsObserver`'s callback)."""
    name = event.name if event.name in _tool_names else OTHER_TOOL
    TOOL_CALLS.labels(name, str(event.outcome)).inc()


def output_gap(_seconds: float) -> None:
    """A gap in the bot's voice (`observers.bot_metrics.BotMetricsObserver`'s callback)."""
    OUTPUT_AUDIO_GAPS.inc()


def gemini_failed(reason: str) -> None:
    """A Gemini Live connection was lost or failed for one of `FAILURE_REASONS`."""
    GEMINI_FAILURES.labels(reason if reason in FAILURE_REASONS else "other").inc()
