"""What happened in a conversation, in order: the record every expectation walks.

The kit turns Pipecat's frames and the context aggregators' turn events into a short list of
events a developer recognises (you typed, the model heard, a tool was called, the bot said),
numbered in the order they happened, and renders that list the way a failure shows it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal[
    "typed", "spoke", "heard", "tool_call", "tool_result", "reply", "error", "session", "injected"
]

BOT_KINDS: frozenset[Kind] = frozenset({"tool_call", "tool_result", "reply", "error"})
"""What `no_more_events` counts: what the bot and its tools did (not the user's own steps, the
model's hearing of them, or connection changes)."""

LABELS: dict[Kind, str] = {
    "typed": "user typed",
    "spoke": "user spoke",
    "heard": "model heard",
    "tool_call": "tool call",
    "tool_result": "tool result",
    "reply": "bot said",
    "error": "error",
    "session": "connection",
    "injected": "test made",
}

MAX_EVENTS = 5000
"""Events kept per conversation: a test is a few turns; a runaway loop must not fill memory."""


def compact(value: Any, limit: int = 160) -> str:
    """JSON on one line, cut to `limit` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Event:
    """One thing that happened.

    Attributes:
        index: Its place in the conversation, from 1.
        kind: What it was.
        text: The words (typed, spoken, heard, said) or the error's message.
        name: A tool's name, or a connection event's kind (`reconnected`, ...).
        arguments: A tool call's arguments.
        result: A tool result's value.
        outcome: How a tool call ended (`ok`, `failed`, `timed_out`, ...).
        call_id: The tool call's id, which ties a result to its call.
        interrupted: A reply cut short by the user.
        at: `time.monotonic()` when it was recorded.
        speech: For spoken words, when the first and the last loud frame went in.
    """

    index: int
    kind: Kind
    text: str = ""
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    outcome: str = ""
    call_id: str = ""
    interrupted: bool = False
    at: float = field(default_factory=time.monotonic)
    speech: tuple[float, float] | None = None

    def describe(self) -> str:
        """One line: what the event was, without its number."""
        if self.kind == "tool_call":
            return f"{self.name}({compact(self.arguments)})"
        if self.kind == "tool_result":
            outcome = self.outcome or "ok"
            shown = compact(self.result) if self.result is not None else ""
            return f"{self.name} → {outcome} {shown}".rstrip()
        if self.kind == "reply":
            return f"{self.text!r}" + ("  [interrupted]" if self.interrupted else "")
        if self.kind == "injected":
            return f"the model {self.name}" + (
                f" {compact(self.arguments)}" if self.arguments else ""
            )
        if self.kind == "session":
            return f"{self.name}" + (f": {self.text}" if self.text else "")
        return repr(self.text) if self.kind in ("typed", "spoke", "heard") else self.text


@dataclass
class Conversation:
    """The events of one bot's session, in order."""

    events: list[Event] = field(default_factory=list)
    dropped: int = 0

    def add(self, kind: Kind, **fields: Any) -> Event:
        if len(self.events) >= MAX_EVENTS:
            self.dropped += 1
            return Event(0, kind, **fields)
        event = Event(len(self.events) + 1, kind, **fields)
        self.events.append(event)
        return event

    def since(self, start: int) -> list[Event]:
        """The events after the first `start` ones."""
        return self.events[start:]

    def render(self, *, mark: int | None = None, start: int = 0, width: int = 12) -> str:
        """The conversation as numbered lines; `mark` (an event index) gets a `>` in the margin,
        and events before `start` are shown dimmed with `·` (they belong to earlier steps)."""
        if not self.events:
            return "    (nothing happened yet)"
        lines = []
        for event in self.events:
            margin = ">" if event.index == mark else ("·" if event.index <= start else " ")
            label = LABELS[event.kind]
            lines.append(f"  {margin} {event.index:>3}  {label:<{width}} {event.describe()}")
        if self.dropped:
            lines.append(f"    ({self.dropped} later events not kept)")
        return "\n".join(lines)
