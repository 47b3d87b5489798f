"""Expectations walked in order over a conversation's events, with failures that show it.

`turn.expect.tool_call("calculate", {"expression": "6 * 7"})` looks at the next tool call after
the last event an expectation matched: it must be that call, or the test fails with the
conversation so far, the event it looked at marked, and a diff of what differed. Events of other
kinds in between are passed over, so a reply expectation does not care whether the model's
hearing of the question came first; events of the same kind are not: to expect a second call,
expect the first.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bottest.events import BOT_KINDS, LABELS, Conversation, Event, Kind, compact


class ExpectationFailed(AssertionError):
    """An expectation did not hold; the message shows the conversation so far."""


Matcher = Callable[[Event], list[str]]
"""Returns what differs between the event and the expectation; empty when it matches."""


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str).splitlines()


def _diff(expected: Any, got: Any) -> list[str]:
    """`- expected` / `+ got` lines, as pytest shows a difference between two values."""
    lines = difflib.ndiff(_pretty(expected), _pretty(got))
    return [f"  {line}" for line in lines if not line.startswith("?")]


def _matches_value(expected: Any, got: Any) -> bool:
    if isinstance(expected, re.Pattern):
        return isinstance(got, str) and expected.search(got) is not None
    if callable(expected) and not isinstance(expected, type):
        return bool(expected(got))
    if isinstance(expected, Mapping) and isinstance(got, Mapping):
        return all(k in got and _matches_value(v, got[k]) for k, v in expected.items())
    return bool(expected == got)


def _mapping_differs(expected: Mapping[str, Any] | None, got: Any, *, partial: bool) -> bool:
    if expected is None:
        return False
    if not isinstance(got, Mapping):
        return True
    if partial:
        return not _matches_value(expected, got)
    if set(expected) != set(got):
        return True
    return not all(_matches_value(v, got[k]) for k, v in expected.items())


def _text_differs(got: str, contains: str | None, matches: str | re.Pattern[str] | None) -> str:
    if contains is not None and contains.casefold() not in got.casefold():
        return f"does not contain {contains!r}"
    if matches is not None:
        pattern = matches if isinstance(matches, re.Pattern) else re.compile(matches, re.I)
        if pattern.search(got) is None:
            return f"does not match /{pattern.pattern}/"
    return ""


class Expect:
    """A cursor over some of a conversation's events (a turn's, or the whole session's)."""

    def __init__(self, conversation: Conversation, start: int = 0, end: int | None = None) -> None:
        self._conversation = conversation
        self._start = start
        self._end = end
        self._position = start  # events before this index (0-based) are behind the cursor

    # ------------------------------------------------------------------ the window

    def _events(self) -> list[Event]:
        events = self._conversation.events
        return events[self._position : self._end if self._end is not None else len(events)]

    def fail(self, message: str, *, mark: int | None = None, detail: Sequence[str] = ()) -> None:
        """Raise `ExpectationFailed` with the message, the detail and the conversation."""
        __tracebackhide__ = True
        parts = [message, *detail, "", "the conversation so far (> where it looked):"]
        parts.append(self._conversation.render(mark=mark, start=self._start))
        raise ExpectationFailed("\n".join(parts))

    def _next(self, kind: Kind, what: str, differs: Callable[[Event], list[str]]) -> Event:
        __tracebackhide__ = True
        for event in self._events():
            if event.kind != kind:
                continue
            problems = differs(event)
            if problems:
                self.fail(
                    f"expected {what}, but the next {LABELS[kind]} (event {event.index}) differs:",
                    mark=event.index,
                    detail=problems,
                )
            self._position = event.index  # 1-based index: the cursor now sits after it
            return event
        after = f"after event {self._position}" if self._position else "in this turn"
        self.fail(f"expected {what}, but there is no {LABELS[kind]} {after}")
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ expectations

    def tool_call(
        self,
        name: str | None = None,
        arguments: Mapping[str, Any] | None = None,
        *,
        partial: bool = False,
    ) -> Event:
        """The next tool call: its name, and its arguments exactly (or, with `partial`, those
        given). A value may be a compiled regular expression or a predicate."""
        __tracebackhide__ = True
        what = f"a tool call {name or ''}({compact(arguments) if arguments is not None else '…'})"

        def differs(event: Event) -> list[str]:
            if name is not None and event.name != name:
                return [f"  name: expected {name!r}, got {event.name!r}"]
            if _mapping_differs(arguments, event.arguments, partial=partial):
                return ["  arguments (- expected, + got):", *_diff(arguments, event.arguments)]
            return []

        return self._next("tool_call", what, differs)

    def tool_result(
        self,
        name: str | None = None,
        result: Any = None,
        *,
        partial: bool = False,
        outcome: str | None = "ok",
    ) -> Event:
        """The next tool result: its tool, its outcome (`ok` by default; `failed`,
        `timed_out`, `cancelled_by_interruption`, ... or None for any), and its value, exactly
        or (with `partial`) the keys given."""
        __tracebackhide__ = True
        what = f"a result of {name or 'a tool'}" + (f" ({outcome})" if outcome else "")

        def differs(event: Event) -> list[str]:
            if name is not None and event.name != name:
                return [f"  tool: expected {name!r}, got {event.name!r}"]
            if outcome is not None and (event.outcome or "ok") != outcome:
                return [f"  outcome: expected {outcome!r}, got {event.outcome or 'ok'!r}"]
            if result is None:
                return []
            if isinstance(result, Mapping):
                if _mapping_differs(result, event.result, partial=partial):
                    return ["  result (- expected, + got):", *_diff(result, event.result)]
                return []
            if not _matches_value(result, event.result):
                return ["  result (- expected, + got):", *_diff(result, event.result)]
            return []

        return self._next("tool_result", what, differs)

    def reply(
        self,
        contains: str | None = None,
        *,
        matches: str | re.Pattern[str] | None = None,
        interrupted: bool | None = False,
    ) -> Event:
        """The bot's next turn: words that contain `contains` (ignoring case) or match
        `matches`; not cut short, unless `interrupted` says otherwise (None: either)."""
        __tracebackhide__ = True
        what = "a reply" + (f" containing {contains!r}" if contains else "")
        what += f" matching /{getattr(matches, 'pattern', matches)}/" if matches else ""

        def differs(event: Event) -> list[str]:
            problem = _text_differs(event.text, contains, matches)
            if problem:
                return [f"  the reply {event.text!r} {problem}"]
            if interrupted is not None and event.interrupted != interrupted:
                state = "was cut short" if event.interrupted else "was not interrupted"
                return [f"  the reply {state}"]
            return []

        return self._next("reply", what, differs)

    def said(
        self, contains: str | None = None, *, matches: str | re.Pattern[str] | None = None
    ) -> list[Event]:
        """Everything the bot said from here on, its turns joined: for an answer that may come
        in one turn or two (a model that says "let me check" before a tool's result)."""
        __tracebackhide__ = True
        replies = [e for e in self._events() if e.kind == "reply"]
        joined = " ".join(e.text for e in replies)
        problem = _text_differs(joined, contains, matches)
        if not replies or problem:
            what = "the bot to say" + (f" {contains!r}" if contains else " something")
            detail = [f"  it said {joined!r}, which {problem}"] if replies else []
            self.fail(f"expected {what} from here on, but it did not", detail=detail)
        self._position = replies[-1].index
        return replies

    def interrupted(self, contains: str | None = None) -> Event:
        """The bot's next turn was cut short by the user."""
        __tracebackhide__ = True
        return self.reply(contains, interrupted=True)

    def heard(
        self, contains: str | None = None, *, matches: str | re.Pattern[str] | None = None
    ) -> Event:
        """The model's next transcription of the user's speech."""
        __tracebackhide__ = True
        what = "the model to hear" + (f" {contains!r}" if contains else " something")

        def differs(event: Event) -> list[str]:
            problem = _text_differs(event.text, contains, matches)
            return [f"  it heard {event.text!r}, which {problem}"] if problem else []

        return self._next("heard", what, differs)

    def error(self, contains: str | None = None) -> Event:
        """The next error the bot reported."""
        __tracebackhide__ = True

        def differs(event: Event) -> list[str]:
            problem = _text_differs(event.text, contains, None)
            return [f"  the error {event.text!r} {problem}"] if problem else []

        return self._next(
            "error", "an error" + (f" about {contains!r}" if contains else ""), differs
        )

    def connection(self, kind: str) -> Event:
        """The next connection change (`reconnecting`, `reconnected`, `resumed`, `failed`)."""
        __tracebackhide__ = True

        def differs(event: Event) -> list[str]:
            return [] if event.name == kind else [f"  expected {kind!r}, got {event.name!r}"]

        return self._next("session", f"the connection to be {kind}", differs)

    def no_more_events(self) -> None:
        """Nothing the bot or its tools did is left after the last expectation."""
        __tracebackhide__ = True
        left = [e for e in self._events() if e.kind in BOT_KINDS]
        if left:
            self.fail(
                f"expected no more events, but {len(left)} more happened, from event "
                f"{left[0].index}:",
                mark=left[0].index,
            )
