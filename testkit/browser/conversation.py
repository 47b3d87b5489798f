"""A scripted spoken conversation through the page, measured turn by turn.

A conversation ends as a user's does, with a click on Disconnect, so the bot ends the session
(and its transcript) at once.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from testkit.bot_server import BotServer, EmulatorControl
from testkit.browser.media import MicScript
from testkit.browser.page import PageSession, Turn, open_page
from testkit.browser.probe import Probe
from testkit.processes import HarnessError
from testkit.waiting import wait_for


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
    rather than stalling a run on a bot that writes no transcript.
    """
    started = time.monotonic()

    def new() -> list[str]:
        return sorted(transcript_files(folder) - before)

    def ended() -> str | None:
        for session_id in new():
            text = (folder / f"{session_id}.jsonl").read_text(encoding="utf-8", errors="replace")
            if '"ended"' in text:
                return session_id
        return None

    try:  # polling the folder; the browser is closed by now
        wait_for(new, "a new transcript", min(appear_timeout, timeout), poll=0.1)
        return wait_for(ended, "its ended line", timeout - (time.monotonic() - started), poll=0.1)
    except AssertionError:
        appeared = new()
        return appeared[-1] if appeared else None


# ---------------------------------------------------------------------------------- latency

LATENCY_QUESTIONS = (
    ("what_time_tokyo.wav", 14.0),
    ("multiply.wav", 10.0),
    ("hello.wav", 11.0),
    ("remember_color.wav", 10.0),
    ("weather_paris.wav", 11.0),
)
"""Questions for the latency run, each with the silence after it: time for a slow answer."""


def latency_script(turns: int = 5) -> MicScript:
    """`turns` questions, each followed by enough silence for its answer."""
    return MicScript.questions(
        [LATENCY_QUESTIONS[i % len(LATENCY_QUESTIONS)] for i in range(turns)]
    )


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
    transcript_appear_timeout: float = 3.0,
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
            server.transcripts, before, transcript_timeout, appear_timeout=transcript_appear_timeout
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
