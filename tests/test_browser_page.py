"""The page's own controls and states in headless Chromium: accessible, and worded plainly.

One page session on `python -m bots assistant` walks through the page's states: disconnected;
connected by keyboard alone (Tab to Connect, Enter) and asked a typed question; the bot
reconnecting to the model; the page's connection dropping; the server asking the page to move;
the server too busy to take the conversation; a reload. In each, axe-core (the page's npm dev
dependency, injected with Playwright's `add_script_tag`) checks the page, and the status line's
words are read as the page drew them (a MutationObserver records every change).

The server messages for the bot reconnecting and for moving are handed to the page's client as
if the bot had sent them, and the busy answer to `/start` is given by a route: what makes the
bot and the server send them is tested with real faults in `test_browser.py` and
`test_browser_moves.py`. Here it is the page's side: what it says, and that it recovers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser_harness import assistant_bot, axe_core, bot_servers, chromium, no_leftovers

from testkit.bot_server import BotServer
from testkit.browser.media import MicScript
from testkit.browser.page import PageSession, open_page
from testkit.browser.probe import Probe
from testkit.processes import HarnessError

__all__ = ["assistant_bot", "axe_core", "bot_servers", "chromium", "no_leftovers"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BUSY = "The assistant is busy with other conversations. Try again in a moment."
MOVING = "This server is restarting; moving your conversation to another one."
FOCUS_ORDER = {
    "disconnected": ["connect", "mute", "transcript", "tools"],
    "ready": ["disconnect", "mute", "transcript", "message", "send", "tools"],
}
"""Where Tab goes, from the top of the page, in each state (the assistant has no camera)."""

AXE_RUN = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return {
    passes: result.passes.length,
    violations: result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    })),
  };
}
"""

FOCUSED = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {id: el.id, outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
}
"""


@pytest.fixture(scope="module", autouse=True)
def _leftover_check(no_leftovers: None) -> Iterator[None]:
    """Set up before, so torn down after, every server and browser of this module."""
    yield


@dataclass
class Walk:
    """What the page showed and what axe found in each state of the walk."""

    axe: dict[str, dict[str, Any]] = field(default_factory=dict)
    focus: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lines: dict[str, list[str]] = field(default_factory=dict)
    """The status line's words while the page was in each situation (every visible change)."""
    states: dict[str, list[str]] = field(default_factory=dict)
    """`#state` in each situation, repeats removed."""
    conversation_ids: dict[str, str] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def run_axe(session: PageSession, axe: Path) -> dict[str, Any]:
    if not session.page.evaluate("() => typeof window.axe !== 'undefined'"):
        session.page.add_script_tag(path=str(axe))
    result: dict[str, Any] = session.page.evaluate(AXE_RUN)
    return result


def tab_through(session: PageSession) -> list[dict[str, Any]]:
    """Tab from the top of the page until the focus leaves it or comes round again."""
    page = session.page
    # A click on the heading puts the start of the Tab order there, above every control.
    page.click("header h1")
    seen: list[dict[str, Any]] = []
    for _ in range(15):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or any(f["id"] == focused["id"] for f in seen):
            break
        seen.append(focused)
    return seen


def server_message(session: PageSession, data: dict[str, Any]) -> None:
    """Hand the page's client an RTVI server message, as if the bot had sent it."""
    message = {"label": "rtvi-ai", "type": "server-message", "id": "test", "data": data}
    session.page.evaluate(f"() => window.__agent.client.handleMessage({json.dumps(message)})")


def shown_lines(probe: Probe, since: int) -> list[str]:
    """The status line's words at each visible change since entry `since`, repeats removed."""
    out: list[str] = []
    for _, visible, text in probe.banner[since:]:
        if visible and text and (not out or out[-1] != text):
            out.append(text)
    return out


def states_since(probe: Probe, since: int) -> list[str]:
    out: list[str] = []
    for _, state in probe.states[since:]:
        if not out or out[-1] != state:
            out.append(state)
    return out


def back_to_ready(session: PageSession, what: str, marks: tuple[int, int]) -> None:
    def back(probe: Probe) -> bool:
        after = states_since(probe, marks[1])
        return "reconnecting" in after and after[-1] == "ready"

    session.wait(f"{what}: the page shows 'reconnecting', then 'ready'", back, 60)


def marks(session: PageSession) -> tuple[int, int]:
    probe = session.refresh()
    return len(probe.banner), len(probe.states)


def record(walk: Walk, session: PageSession, name: str, since: tuple[int, int]) -> None:
    probe = session.refresh()
    walk.lines[name] = shown_lines(probe, since[0])
    walk.states[name] = states_since(probe, since[1])


@pytest.fixture(scope="module")
def walk(
    assistant_bot: BotServer, axe_core: Path, tmp_path_factory: pytest.TempPathFactory
) -> Walk:
    result = Walk()
    url = f"{assistant_bot.base_url}/client/"
    try:
        with open_page(url, MicScript.questions([]), tmp_path_factory.mktemp("page")) as s:
            page = s.page
            page.wait_for_selector("#state[data-state='disconnected']")
            result.axe["disconnected"] = run_axe(s, axe_core)
            result.focus["disconnected"] = tab_through(s)

            # Connect with the keyboard alone, then ask by typing.
            page.click("header h1")
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")
            s.wait_ready()
            page.wait_for_selector("#message:not([disabled])")
            page.focus("#message")
            page.keyboard.type("What is 6 times 7?")
            page.keyboard.press("Enter")
            s.wait("the answer in the page", lambda _p: "42" in page.inner_text("#transcript"), 40)
            result.conversation_ids["first"] = s.snapshot()["agent"]["conversationId"]
            result.axe["ready"] = run_axe(s, axe_core)
            result.focus["ready"] = tab_through(s)

            # The bot reconnecting to the model, then back.
            since = marks(s)
            server_message(
                s,
                {
                    "type": "service-reconnecting",
                    "service": "Gemini Live",
                    "attempt": 2,
                    "max_attempts": 6,
                },
            )
            page.wait_for_selector("#banner:not([hidden])")
            result.axe["model reconnecting"] = run_axe(s, axe_core)
            server_message(s, {"type": "service-reconnected", "service": "Gemini Live"})
            page.wait_for_selector("#banner", state="hidden")
            record(result, s, "model reconnecting", since)

            # The page's own connection drops: it reconnects, with backoff, to the same bot.
            since = marks(s)
            page.evaluate("() => window.__agent.client.disconnect()")
            back_to_ready(s, "after a drop", since)
            record(result, s, "dropped", since)

            # The server asks the page to move: it leaves and resumes the conversation.
            since = marks(s)
            server_message(s, {"type": "session-moving", "message": MOVING})
            back_to_ready(s, "after session-moving", since)
            record(result, s, "moving", since)
            result.conversation_ids["moved"] = s.snapshot()["agent"]["conversationId"]

            # The server is full: /start answers 503, as the bot server's session cap does.
            result.transcript = s.snapshot()["agent"]["transcript"]
            s.hang_up()
            since = marks(s)
            page.route(
                "**/start",
                lambda route: route.fulfill(
                    status=503,
                    headers={"Retry-After": "5"},
                    content_type="application/json",
                    body=json.dumps({"detail": BUSY}),
                ),
            )
            page.click("#connect")
            page.wait_for_selector("#state[data-state='busy']")
            page.wait_for_selector("#banner:not([hidden])")
            result.axe["busy"] = run_axe(s, axe_core)
            record(result, s, "busy", since)
            page.unroute("**/start")

            # The conversation id is kept for the tab: a reload keeps it, a new tab has its own.
            page.reload()
            page.wait_for_selector("#state[data-state='disconnected']")
            result.conversation_ids["reloaded"] = page.evaluate(
                "() => window.__agent.conversationId"
            )
            other = s.context.new_page()
            try:
                other.goto(url)
                other.wait_for_selector("#state[data-state='disconnected']")
                result.conversation_ids["new tab"] = other.evaluate(
                    "() => window.__agent.conversationId"
                )
            finally:
                other.close()
            result.blocked = list(s.blocked)
            result.page_errors = list(s.page_errors)
    except HarnessError as exc:
        raise HarnessError(
            f"{exc}\nbot log {assistant_bot.log}:\n{assistant_bot.tail(15)}"
        ) from None
    return result


# ---------------------------------------------------------------------------------- axe


@pytest.mark.parametrize("state", ["disconnected", "ready", "model reconnecting", "busy"])
def test_axe_finds_no_accessibility_violation_in_the_page(
    walk: Walk, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels, names, roles, contrast and the rest of axe-core's rules, with the state's own
    controls and lines on show (the text box, the status line, the conversation)."""
    found = walk.axe[state]
    with capsys.disabled():
        print(f"\naxe, {state}: {found['passes']} rules passed, {len(found['violations'])} failed")
    assert found["passes"] > 20, found
    assert found["violations"] == [], json.dumps(found["violations"], indent=1)


# ---------------------------------------------------------------------------------- keyboard


@pytest.mark.parametrize("state", ["disconnected", "ready"])
def test_the_keyboard_reaches_each_control_in_reading_order_with_a_visible_focus(
    walk: Walk, state: str
) -> None:
    focus = walk.focus[state]
    assert [f["id"] for f in focus] == FOCUS_ORDER[state], focus
    for focused in focus:
        assert focused["outline"] != "none" and focused["width"] >= 2, focused


def test_the_keyboard_alone_connects_and_sends_a_typed_question(walk: Walk) -> None:
    users = [t["text"] for t in walk.transcript if t["role"] == "user"]
    bots = " ".join(t["text"] for t in walk.transcript if t["role"] == "bot")
    assert "What is 6 times 7?" in users and re.search(r"\b42\b", bots), walk.transcript
    assert walk.blocked == [] and not walk.page_errors, (walk.blocked, walk.page_errors)


# ---------------------------------------------------------------------------------- status line


def test_the_status_line_says_in_words_that_the_bot_is_reconnecting_to_the_model(
    walk: Walk,
) -> None:
    assert walk.lines["model reconnecting"] == [
        "Reconnecting: The bot lost its connection to Gemini Live; trying again (attempt 2 of 6)…"
    ], walk.lines
    assert walk.states["model reconnecting"][-1] == "ready", walk.states


def test_the_status_line_says_in_words_that_the_page_is_reconnecting_after_a_drop(
    walk: Walk,
) -> None:
    lines = walk.lines["dropped"]
    assert lines and all(line.startswith("Reconnecting: The connection dropped") for line in lines)
    assert any(re.search(r"; trying again \(attempt 1 of \d+\)", line) for line in lines), lines
    # Never "disconnected" on the way: the page went straight on to reconnect.
    assert walk.states["dropped"] == ["reconnecting", "ready"], walk.states


def test_the_status_line_says_the_conversation_is_moving_and_the_page_keeps_it(walk: Walk) -> None:
    assert walk.lines["moving"] and set(walk.lines["moving"]) == {f"Moving: {MOVING}"}, walk.lines
    assert walk.states["moving"] == ["reconnecting", "ready"], walk.states
    assert walk.conversation_ids["moved"] == walk.conversation_ids["first"], walk.conversation_ids


def test_the_status_line_says_the_server_is_busy_and_it_is_no_error(walk: Walk) -> None:
    assert walk.lines["busy"] == [f"Busy: {BUSY}"], walk.lines
    assert walk.states["busy"] == ["connecting", "busy"], walk.states


def test_the_conversation_id_is_kept_for_the_tab(walk: Walk) -> None:
    ids = walk.conversation_ids
    assert ids["reloaded"] == ids["first"], ids
    assert ids["new tab"] != ids["first"], ids
