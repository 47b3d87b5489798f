"""What the page measures, polled from an init script: levels, RTVI arrivals, state changes.

The init script (`PROBE_JS`) polls `window.__agent.audioLevel()` (RMS of the bot's remote track
through a WebAudio analyser) and `micLevel()` (the fake microphone) every 20 ms with
`performance.now()` timestamps, timestamps each RTVI message type as it lands in
`__agent.events`, and records every change of `#state`, of the reconnecting banner and of the
tool-activity list (`#tools`: each row's name, shown status, `data-status`, `data-background`)
with a MutationObserver, so a state the page drew only briefly is seen too. Times are page
milliseconds; `Probe.epoch()` converts them to epoch seconds for comparison with the emulator's
records (same machine, same clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testkit.browser.media import SAMPLE_MS
from testkit.loudness import SILENCE_RMS

PROBE_JS = """
(() => {
  const probe = {samples: [], events: [], states: [], banner: [], agentStates: [], tools: [],
                 pcs: []};
  window.__probe = probe;
  try {  // keep each peer connection the page makes, for its receiver's statistics
    const Native = window.RTCPeerConnection;
    if (Native) {
      window.RTCPeerConnection = class extends Native {
        constructor(...args) { super(...args); probe.pcs.push(this); }
      };
    }
  } catch (e) { /* the page works without it; only the statistics are lost */ }
  let seenEvents = 0;
  let agentState = null;
  setInterval(() => {
    const a = window.__agent;
    if (!a) return;
    const now = performance.now();
    probe.samples.push([now, a.audioLevel(), a.micLevel()]);
    if (a.events.length < seenEvents) seenEvents = 0;
    for (; seenEvents < a.events.length; seenEvents++) {
      probe.events.push([now, a.events[seenEvents]]);
    }
    if (a.state !== agentState) { agentState = a.state; probe.agentStates.push([now, a.state]); }
  }, 20);
  const watch = () => {
    const state = document.getElementById("state");
    const banner = document.getElementById("banner");
    if (state) {
      const record = () =>
        probe.states.push([performance.now(), state.dataset.state || state.textContent]);
      record();
      new MutationObserver(record).observe(
        state, {attributes: true, attributeFilter: ["data-state"]});
    }
    if (banner) {
      const record = () =>
        probe.banner.push([performance.now(), !banner.hidden, banner.textContent]);
      record();
      new MutationObserver(record).observe(
        banner, {attributes: true, childList: true, characterData: true, subtree: true});
    }
    const tools = document.getElementById("tools");
    if (tools) {
      let last = "";
      const record = () => {
        const text = (li, part) => li.querySelector(part)?.textContent ?? "";
        const rows = Array.from(tools.querySelectorAll("li.tool")).map((li) => [
          text(li, ".name"), text(li, ".status"), li.dataset.status ?? "",
          li.dataset.background === "true"]);
        const key = JSON.stringify(rows);
        if (key !== last) { last = key; probe.tools.push([performance.now(), rows]); }
      };
      new MutationObserver(record).observe(
        tools, {attributes: true, childList: true, characterData: true, subtree: true});
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
  probe.take = (n) => ({
    samples: probe.samples.slice(n[0]), events: probe.events.slice(n[1]),
    states: probe.states.slice(n[2]), banner: probe.banner.slice(n[3]),
    agentStates: probe.agentStates.slice(n[4]), tools: probe.tools.slice(n[5]),
  });
})();
"""

AUDIO_STATS_JS = """
async () => {
  const pc = window.__probe && window.__probe.pcs[window.__probe.pcs.length - 1];
  if (!pc) return null;
  const out = {};
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      out.jitterBufferDelay = r.jitterBufferDelay;
      out.jitterBufferEmittedCount = r.jitterBufferEmittedCount;
      out.jitterBufferTargetDelay = r.jitterBufferTargetDelay;
      out.jitterBufferMinimumDelay = r.jitterBufferMinimumDelay;
    }
  });
  return out;
}
"""
"""The bot's audio as the page's receiver has it: the jitter buffer's cumulative delay (seconds,
summed over every sample it emitted) and count, which two readings turn into the average time a
sample of the bot's voice waited there between them."""

SNAPSHOT_JS = """
() => {
  const all = (sel) => Array.from(document.querySelectorAll(sel));
  const a = window.__agent;
  return {
    userTurns: all("#transcript .turn.user").map((e) => e.textContent),
    botTurns: all("#transcript .turn.bot").map((e) => ({
      text: e.textContent, interrupted: e.classList.contains("interrupted")})),
    tools: all("#tools .tool").map((e) => ({text: e.textContent, status: e.dataset.status || ""})),
    state: document.getElementById("state")?.textContent ?? "",
    agent: {state: a.state, transcript: a.transcript, tools: a.tools, errors: a.errors,
            events: a.events, conversationId: a.conversationId, reconnects: a.reconnects},
  };
}
"""


@dataclass(frozen=True)
class Run:
    """A stretch of sound measured in the page, in page milliseconds."""

    start: float
    end: float
    loud_ms: float

    @property
    def ms(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ToolRow:
    """One row of the page's tool-activity list (`#tools li.tool`) as it was drawn."""

    name: str
    shown: str
    """The status as the page words it: "running in the background", "done · 12 ms"."""
    status: str
    """`data-status`: started, running, done, error, cancelled."""
    background: bool
    """`data-background`: the call runs while the bot goes on (a NON_BLOCKING call)."""


@dataclass
class Probe:
    """What the page measured: levels, RTVI message arrivals, state changes."""

    time_origin_ms: float = 0.0
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    """(t, bot RMS, mic RMS) every ~20 ms."""
    events: list[tuple[float, str]] = field(default_factory=list)
    states: list[tuple[float, str]] = field(default_factory=list)
    """`#state`'s data-state at each change (MutationObserver)."""
    banner: list[tuple[float, bool, str]] = field(default_factory=list)
    agent_states: list[tuple[float, str]] = field(default_factory=list)
    tools: list[tuple[float, tuple[ToolRow, ...]]] = field(default_factory=list)
    """The whole tool-activity list at each change (MutationObserver)."""

    def epoch(self, t_ms: float) -> float:
        """A page time as epoch seconds."""
        return (self.time_origin_ms + t_ms) / 1000.0

    @property
    def now(self) -> float:
        return self.samples[-1][0] if self.samples else 0.0

    def runs(
        self, which: str, *, merge_ms: float, start: float = 0.0, end: float = float("inf")
    ) -> list[Run]:
        """Loud stretches of `which` ("bot" or "mic"), joined across gaps up to `merge_ms`."""
        col = 1 if which == "bot" else 2
        out: list[Run] = []
        cur: list[float] | None = None
        prev_t: float | None = None
        for row in self.samples:
            t = row[0]
            if t < start or t > end:
                prev_t = t
                continue
            step = 0.0 if prev_t is None else min(t - prev_t, 2 * SAMPLE_MS)
            prev_t = t
            if row[col] <= SILENCE_RMS:
                continue
            if cur is not None and t - cur[1] <= merge_ms:
                cur[1] = t
                cur[2] += step
            else:
                if cur is not None:
                    out.append(Run(cur[0], cur[1], cur[2]))
                cur = [t, t, step]
        if cur is not None:
            out.append(Run(cur[0], cur[1], cur[2]))
        return out

    def loud_ms(self, which: str, start: float, end: float) -> float:
        return sum(r.loud_ms for r in self.runs(which, merge_ms=0, start=start, end=end))

    def first_loud(self, which: str, after: float, before: float = float("inf")) -> float | None:
        col = 1 if which == "bot" else 2
        for row in self.samples:
            if after < row[0] < before and row[col] > SILENCE_RMS:
                return row[0]
        return None

    def event_times(self, type_: str, after: float = 0.0) -> list[float]:
        return [t for t, kind in self.events if kind == type_ and t >= after]

    def state_sequence(self) -> list[str]:
        """`#state` values in order, repeats removed."""
        out: list[str] = []
        for _, state in self.states:
            if not out or out[-1] != state:
                out.append(state)
        return out

    def tool_history(self, name: str) -> list[tuple[float, ToolRow]]:
        """Each state the first row for the tool `name` was drawn in, in order, repeats removed.

        Rows are only ever appended, so a row keeps its place; it may have been drawn before its
        name was known (a call announced without one), and those states are included.
        """
        index = next(
            (i for _, rows in self.tools for i, row in enumerate(rows) if row.name == name), None
        )
        out: list[tuple[float, ToolRow]] = []
        if index is None:
            return out
        for t, rows in self.tools:
            if len(rows) > index and (not out or out[-1][1] != rows[index]):
                out.append((t, rows[index]))
        return out
