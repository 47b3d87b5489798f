"""Frames and records our processors exchange: tool-call outcomes and session events.

The tool-call processor announces each finished call as a `ToolCallEventFrame`, and the Gemini
Live stage announces connection changes as a `SessionEventFrame`, so the transcript observer can
record both without knowing where they came from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipecat.frames.frames import SystemFrame


class ToolOutcome(StrEnum):
    """How a tool call ended."""

    OK = "ok"
    FAILED = "failed"
    INVALID_ARGUMENTS = "invalid_arguments"
    TIMED_OUT = "timed_out"
    CANCELLED_BY_INTERRUPTION = "cancelled_by_interruption"
    CANCELLED_BY_MODEL = "cancelled_by_model"
    REFUSED_REPEAT = "refused_repeat"


@dataclass
class ToolCallEvent:
    """One tool call and its outcome, as the transcript and the browser see it."""

    name: str
    call_id: str
    arguments: dict[str, Any]
    outcome: ToolOutcome
    result: Any = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "call_id": self.call_id,
            "arguments": self.arguments,
            "outcome": str(self.outcome),
            "result": self.result,
            "error": self.error,
            "started_at": self.started_at,
            "duration_ms": round(self.duration_ms, 1),
        }


class SessionEvent(StrEnum):
    """What happened to the model connection."""

    CONNECTED = "connected"
    RESUMED = "resumed"
    RECONNECTING = "reconnecting"
    RECONNECTED = "reconnected"
    FAILED = "failed"
    ENDED = "ended"


@dataclass
class ToolCallEventFrame(SystemFrame):
    """A tool call finished (in any way); carries its record downstream."""

    event: ToolCallEvent | None = None


@dataclass
class SessionEventFrame(SystemFrame):
    """The model connection changed state (connected, resumed, reconnecting, failed, ended)."""

    kind: SessionEvent = SessionEvent.CONNECTED
    detail: str = ""
