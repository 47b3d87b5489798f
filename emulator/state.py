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


@dataclass
class Conversation:
    """The state a resumption handle restores: history and tool calls."""

    id: str = field(default_factory=lambda: f"conv-{uuid.uuid4().hex[:12]}")
    history: list[Turn] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    scenario_uses: dict[int, int] = field(default_factory=dict)

    def add(self, role: str, text: str, source: str = "", interrupted: bool = False) -> Turn:
        turn = Turn(role, text, source, interrupted)
        self.history.append(turn)
        return turn

    def pairs(self) -> list[tuple[str, str]]:
        return [(t.role, t.text) for t in self.history]
