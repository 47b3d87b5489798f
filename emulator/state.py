"""What the emulator remembers: a conversation that outlives the sockets it is spoken over.

A Live API *session* can span several WebSocket connections through resumption handles, so the
conversation (history, tool calls) lives apart from any one connection, and each connection points
at the conversation it serves. Plain data: no connection, brain or speech here.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Turn:
    """One turn of the history: what the model saw or said."""

    role: str
    text: str
    source: str = ""
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "text": self.text}
        if self.source:
            out["source"] = self.source
        if self.interrupted:
            out["interrupted"] = True
        return out


@dataclass
class ToolCallRecord:
    """A function call the model made and what became of it."""

    id: str
    name: str
    args: dict[str, Any]
    blocking: bool
    status: str = "pending"  # pending | answered | cancelled
    reported: bool = False  # the model has spoken this call's result
    responses: list[dict[str, Any]] = field(default_factory=list)
    issued_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "args": self.args,
            "blocking": self.blocking,
            "status": self.status,
            "responses": self.responses,
        }


MAX_TURNS = 1000
"""Turns kept per conversation, like a context window: past it the oldest are forgotten."""
MAX_TOOL_CALLS = 500
"""Settled tool calls kept per conversation; unanswered ones are always kept."""
MAX_RESPONSES = 50
"""Responses kept per call (intermediate results can be many); the latest are kept."""


@dataclass
class Conversation:
    """The state a resumption handle restores: history and tool calls.

    Both are bounded (`MAX_TURNS`, `MAX_TOOL_CALLS`); `dropped` counts the turns forgotten from
    the front, so a handle's turn count (`turn_mark`) still points at the same turn afterwards.
    """

    id: str = field(default_factory=lambda: f"conv-{uuid.uuid4().hex[:12]}")
    history: list[Turn] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    scenario_uses: dict[int, int] = field(default_factory=dict)
    dropped: int = 0

    def add(self, role: str, text: str, source: str = "", interrupted: bool = False) -> Turn:
        turn = Turn(role, text, source, interrupted)
        self.history.append(turn)
        excess = len(self.history) - MAX_TURNS
        if excess > 0:
            del self.history[:excess]
            self.dropped += excess
        return turn

    @property
    def turn_mark(self) -> int:
        """How many turns the conversation has had, forgotten ones included."""
        return self.dropped + len(self.history)

    def rewind(self, mark: int) -> None:
        """Forget the turns after `mark` (a `turn_mark` taken earlier)."""
        del self.history[max(0, mark - self.dropped) :]

    def add_calls(self, calls: list[ToolCallRecord]) -> None:
        """Record new calls, forgetting the oldest settled ones past `MAX_TOOL_CALLS`."""
        self.tool_calls.extend(calls)
        excess = len(self.tool_calls) - MAX_TOOL_CALLS
        if excess > 0:
            settled = [c for c in self.tool_calls if c.status != "pending"][:excess]
            forget = {id(c) for c in settled}
            self.tool_calls = [c for c in self.tool_calls if id(c) not in forget]

    def pairs(self) -> list[tuple[str, str]]:
        return [(t.role, t.text) for t in self.history]
