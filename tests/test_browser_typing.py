"""Typing to the bot in a real browser: the page's text box, in headless Chromium, offline.

One page session on `python -m bots assistant` (gemini-3.8-live, the default) with a silent
microphone: "What is 6 times 7?" typed and sent with Enter; then "Tell me a long story about a
dragon." sent with the Send button and, while the story is being told, "What is 12 times 7?"
typed over it. A second session asks the first question on gemini-3.1-flash-live-preview.
Everything is measured in the page (`testkit.browser`): the conversation it draws, the bot's
audio through a WebAudio analyser, the RTVI messages as they land; what the model received is
read from the emulator's control API.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser_harness import assistant_3_1_bot, assistant_bot, bot_servers, chromium, no_leftovers

from testkit.bot_server import BotServer, EmulatorControl
from testkit.browser.media import MicScript
from testkit.browser.page import PageSession, open_page
from testkit.browser.probe import Probe
from testkit.processes import HarnessError

__all__ = ["assistant_3_1_bot", "assistant_bot", "bot_servers", "chromium", "no_leftovers"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

QUESTION = "What is 6 times 7?"
STORY = "Tell me a long story about a dragon."
OVER_THE_STORY = "What is 12 times 7?"
STORY_BEFORE_TYPING_MS = 2500.0
"""How much of the story plays in the page before the user types over it."""
STOPPED_WITHIN_MS = 1500.0
"""The story's audio stops this soon after the text is sent (a sentence lasts about 3 s)."""


@pytest.fixture(scope="module", autouse=True)
def _leftover_check(no_leftovers: None) -> Iterator[None]:
    """Set up before, so torn down after, every server and browser of this module."""
    yield


@dataclass
class Typed:
    """A page session in which the user typed, as the page drew and measured it."""

    probe: Probe
    snapshot: dict[str, Any]
    sent_at: dict[str, float]
    """Page time at which each text was sent (the page's `send-text` mark)."""
    after_send: dict[str, Any] = field(default_factory=dict)
    """The text box right after the first send: its value and whether it kept the focus."""
    emulator_sessions: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def type_and_send(session: PageSession, text: str, *, button: bool = False) -> float:
    """Type `text` into the text box as a user does and send it (Enter, or the Send button);
    the page time at which the page sent it."""
    page = session.page
    page.click("#message")
    page.keyboard.type(text)
    marks = len(session.refresh().event_times("send-text"))
    if button:
        page.click("#send")
    else:
        page.keyboard.press("Enter")
    probe = session.wait(
        f"the page sends {text!r}", lambda p: len(p.event_times("send-text")) > marks, 10
    )
    return probe.event_times("send-text")[marks]


def spoken_to_the_end(probe: Probe, since: float) -> bool:
    """The bot began speaking after `since`, and the page was last told it stopped."""
    kinds = ("bot-started-speaking", "bot-stopped-speaking")
    told = [kind for t, kind in probe.events if t >= since and kind in kinds]
    return kinds[0] in told and told[-1] == kinds[1]


def answered(session: PageSession, pattern: str, since: float, timeout: float = 40.0) -> None:
    """Wait until the page shows the bot saying `pattern` and its answer has been spoken."""

    def said(probe: Probe) -> bool:
        turns = session.snapshot()["agent"]["transcript"]
        text = " ".join(t["text"] for t in turns if t["role"] == "bot")
        return bool(re.search(pattern, text)) and spoken_to_the_end(probe, since)

    session.wait(f"the page showing and playing the bot saying {pattern!r}", said, timeout)


def converse_by_typing(
    server: BotServer, workdir: Path, script: list[tuple[str, str, bool]]
) -> Typed:
    """Open the page, wait for 'ready', and for each (text, answer pattern, over the bot) type
    the text and wait for the answer; texts sent over the bot are sent once the bot has been
    heard in the page for `STORY_BEFORE_TYPING_MS`."""
    control = EmulatorControl(server)
    started_at = time.time()
    sent: dict[str, float] = {}
    after: dict[str, Any] = {}
    try:
        with open_page(
            f"{server.base_url}/client/?autoconnect=1", MicScript.questions([]), workdir
        ) as s:
            s.wait_ready()
            s.page.wait_for_selector("#message:not([disabled])", timeout=10_000)
            for index, (text, answer, over_the_bot) in enumerate(script):
                if over_the_bot:
                    since = sent[script[index - 1][0]]
                    s.wait(
                        "the story playing in the page",
                        lambda p, t=since: p.loud_ms("bot", t, p.now) > STORY_BEFORE_TYPING_MS,
                        40,
                    )
                sent[text] = type_and_send(s, text, button=index % 2 == 1)
                if not after:
                    after.update(
                        s.page.evaluate(
                            "() => ({value: document.getElementById('message').value,"
                            " focused: document.activeElement?.id ?? null})"
                        )
                    )
                if answer:
                    answered(s, answer, sent[text])
            typed = Typed(s.probe, s.snapshot(), sent, after, blocked=list(s.blocked))
            typed.page_errors = list(s.page_errors)
            s.hang_up()
        with contextlib.suppress(Exception):
            typed.emulator_sessions = control.sessions(since=started_at - 1)
        return typed
    except HarnessError as exc:
        raise HarnessError(f"{exc}\nbot log {server.log}:\n{server.tail(15)}") from None
    finally:
        control.close()


@pytest.fixture(scope="module")
def typed_on_3_8(assistant_bot: BotServer, tmp_path_factory: pytest.TempPathFactory) -> Typed:
    """The question with Enter, the story with the button, a question typed over the story."""
    script = [(QUESTION, r"\b42\b", False), (STORY, "", False), (OVER_THE_STORY, r"\b84\b", True)]
    return converse_by_typing(assistant_bot, tmp_path_factory.mktemp("typed-3-8"), script)


@pytest.fixture(scope="module")
def typed_on_3_1(assistant_3_1_bot: BotServer, tmp_path_factory: pytest.TempPathFactory) -> Typed:
    """The question on gemini-3.1-flash-live-preview."""
    script = [(QUESTION, r"\b42\b", False)]
    return converse_by_typing(assistant_3_1_bot, tmp_path_factory.mktemp("typed-3-1"), script)


# ---------------------------------------------------------------------------------- helpers


def turns(typed: Typed) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = typed.snapshot["agent"]["transcript"]
    return found


def model_user_turns(typed: Typed) -> list[dict[str, Any]]:
    return [t for s in typed.emulator_sessions for t in s.get("history", []) if t["role"] == "user"]


def answer_audio_ms(typed: Typed, text: str) -> float:
    """How long the bot's audio was above silence in the page from when `text` was sent to
    when the next text was."""
    sent = typed.sent_at[text]
    until = min((t for t in typed.sent_at.values() if t > sent), default=float("inf"))
    return typed.probe.loud_ms("bot", sent, until)


def assert_answered_aloud(typed: Typed, text: str, answer: str) -> None:
    assert typed.blocked == [] and not typed.page_errors, (typed.blocked, typed.page_errors)
    shown = turns(typed)
    users = [t["text"] for t in shown if t["role"] == "user"]
    assert users.count(text) == 1, f"the typed line is not shown once: {users}"
    asked = next(i for i, t in enumerate(shown) if t["role"] == "user" and t["text"] == text)
    said = " ".join(t["text"] for t in shown[asked + 1 :] if t["role"] == "bot")
    assert re.search(answer, said), f"no answer {answer!r} after {text!r}: {shown}"
    assert answer_audio_ms(typed, text) > 500, "no bot audio played in the page after the send"
    heard = [t for t in model_user_turns(typed) if t["text"] == text]
    assert heard and heard[0].get("source") == "text", model_user_turns(typed)
    assert not typed.snapshot["agent"]["errors"], typed.snapshot["agent"]["errors"]


# ---------------------------------------------------------------------------------- tests


def test_a_question_typed_in_the_page_is_shown_as_the_users_line_and_answered_aloud(
    typed_on_3_8: Typed,
) -> None:
    """Typed and sent with Enter: the page draws it as a user line (once, although Pipecat
    echoes it back), the model gets it as typed text, and the answer is drawn and played."""
    assert_answered_aloud(typed_on_3_8, QUESTION, r"\b42\b")
    assert typed_on_3_8.after_send == {"value": "", "focused": "message"}, typed_on_3_8.after_send


def test_on_3_1_a_question_typed_in_the_page_is_answered_aloud(typed_on_3_1: Typed) -> None:
    assert_answered_aloud(typed_on_3_1, QUESTION, r"\b42\b")


def test_typing_while_the_bot_speaks_stops_its_voice_and_marks_its_turn_interrupted(
    typed_on_3_8: Typed, capsys: pytest.CaptureFixture[str]
) -> None:
    """The story plays in the page; a question typed over it stops the story's audio soon
    after it is sent (measured from the page's send to the last loud sample of the story,
    printed), the story's line is marked interrupted, and the question is answered aloud."""
    typed = typed_on_3_8
    probe = typed.probe
    sent = typed.sent_at[OVER_THE_STORY]
    assert probe.loud_ms("bot", sent - 1000, sent) > 300, "the story was not playing at the send"
    # The answer begins with the bot speaking again once the tool call it needs is done.
    called = probe.event_times("llm-function-call-stopped", after=sent)
    assert called, f"no tool call answered after the send: {probe.events[-30:]}"
    answer = probe.event_times("bot-started-speaking", after=called[0])
    assert answer, f"the answer was never spoken: {probe.events[-30:]}"
    story = [t for t, b, _ in probe.samples if sent <= t < answer[0] - 100 and b > 0.01]
    stopped_ms = (story[-1] - sent) if story else 0.0
    told = probe.event_times("bot-interrupted", after=sent)
    with capsys.disabled():
        print(
            f"\ntyping over the story: its audio in the page stopped {stopped_ms:.0f} ms after "
            f"the send; bot-interrupted reached the page at "
            f"{(told[0] - sent) if told else float('nan'):+.0f} ms; the answer began at "
            f"+{answer[0] - sent:.0f} ms"
        )
    assert told, "the page was not told the bot was interrupted"
    assert stopped_ms < STOPPED_WITHIN_MS, f"the story went on for {stopped_ms:.0f} ms"

    shown = turns(typed)
    asked = next(i for i, t in enumerate(shown) if t["text"] == OVER_THE_STORY)
    before = shown[asked - 1]
    assert before["role"] == "bot" and before["interrupted"], shown
    assert "dragon" in before["text"].lower(), before
    assert not any(t["interrupted"] for t in shown[asked + 1 :]), shown
    drawn = [b for b in typed.snapshot["botTurns"] if b["interrupted"]]
    assert len(drawn) == 1 and "dragon" in drawn[0]["text"].lower(), typed.snapshot["botTurns"]
    assert_answered_aloud(typed, OVER_THE_STORY, r"\b84\b")
    stories = [
        t
        for s in typed.emulator_sessions
        for t in s.get("history", [])
        if t["role"] == "model" and "dragon" in t["text"].lower()
    ]
    assert stories and stories[0].get("interrupted") is True, stories
