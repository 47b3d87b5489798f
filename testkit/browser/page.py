"""Our page in headless Chromium with a fake microphone, and every wait on what it shows.

Chromium is launched through Playwright (never `playwright install`: Debian's /usr/bin/chromium)
with a fresh profile; every request to another host is aborted and recorded. With the sync
Playwright API, route handlers only run while Python is inside a Playwright call, so every wait
while a page is open polls with `page.wait_for_timeout`. The microphone is a script of speech and
silence (`MicScript`): Chromium's fake capture starts playing the file when the page opens the
microphone (at connect) and, with `%noloop`, plays it once. Each clip's position in the page's
timeline is found from the first clip's measured onset, so the end of each question is known to
about one analyser window (~21 ms).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from testkit.browser.media import Clip, MicScript
from testkit.browser.probe import AUDIO_STATS_JS, PROBE_JS, SNAPSHOT_JS, Probe, Run, ToolRow
from testkit.processes import HarnessError, Proc, descendants, kill_leftovers, record

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

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
        counts = [
            len(p.samples),
            len(p.events),
            len(p.states),
            len(p.banner),
            len(p.agent_states),
            len(p.tools),
        ]
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
        p.tools.extend(
            (float(t), tuple(ToolRow(str(n), str(x), str(s), bool(b)) for n, x, s, b in rows))
            for t, rows in fresh["tools"]
        )
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

    def audio_stats(self) -> dict[str, float] | None:
        """The receiver's statistics of the bot's audio now (`AUDIO_STATS_JS`), if there are any."""
        result: dict[str, float] | None = self.page.evaluate(AUDIO_STATS_JS)
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
        record(list(ours.values()))

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
