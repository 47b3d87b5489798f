"""What the page measures, polled from an init script: levels, RTVI arrivals, state changes.

The init script (`PROBE_JS`) polls `window.__agent.audioLevel()` (RMS of the bot's remote track
through a WebAudio analyser) and `micLevel()` (the fake microphone) every 20 ms with
`performance.now()` timestamps, timestamps each RTVI message type as it lands in
`__agent.events`, and records every change of `#state` and of the reconnecting banner with a
MutationObserver. Times are page milliseconds; `Probe.epoch()` converts them to epoch seconds
for comparison with the emulator's records (same machine, same clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testkit.browser.media import SAMPLE_MS, SILENCE_RMS

PROBE_JS = """
(() => {
  const probe = {samples: [], events: [], states: [], banner: [], agentStates: []};
  window.__probe = probe;
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
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
  probe.take = (n) => ({
    samples: probe.samples.slice(n[0]), events: probe.events.slice(n[1]),
    states: probe.states.slice(n[2]), banner: probe.banner.slice(n[3]),
    agentStates: probe.agentStates.slice(n[4]),
  });
})();
"""

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
            events: a.events},
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
