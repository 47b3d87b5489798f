"""What the parts of one connection share once its setup is done, and the turns they hand on.

The parts (inbound messages, media, turns, tool calls, the speaker, controls) each keep their own
state; what more than one of them reads or counts lives in `Context`, so each part's constructor
says exactly what it depends on.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from emulator.actions import Action
from emulator.brain import ImageInfo
from emulator.config import SessionConfig
from emulator.models import LiveModel
from emulator.registry import Registry, SessionOptions
from emulator.session.channel import Channel
from emulator.session.timing import TurnTiming
from emulator.state import Conversation, ToolCallRecord, Turn

EVENT_LIMIT = 256
"""Turns waiting for the model; more make the receiving wait, as a full socket buffer would."""

TIMINGS_KEPT = 200
"""Turn timings a connection remembers for its summary."""


@dataclass(frozen=True)
class AudioTurn:
    """The user finished speaking: the utterance, and its transcript if one was started early."""

    audio: bytes
    early: asyncio.Future[str] | None = None
    timing: TurnTiming | None = None


@dataclass(frozen=True)
class TextTurn:
    """The user typed a turn (`realtimeInput.text`)."""

    text: str
    timing: TurnTiming | None = None


@dataclass(frozen=True)
class Infer:
    """Answer the last user turn of the history (after `clientContent` with `turnComplete`)."""

    content: bool = False  # asked for by the content itself (new input), not by a blank nudge


@dataclass(frozen=True)
class ToolResponses:
    """The client answered tool calls: each call with the response that answers it."""

    accepted: list[tuple[ToolCallRecord, dict[str, Any]]]


@dataclass(frozen=True)
class CallsCancelled:
    """The model gave up on its blocking calls: what the user said meanwhile is answered now."""


@dataclass(frozen=True)
class Script:
    """Scenario actions to run, in order."""

    steps: tuple[Action, ...]


Event = AudioTurn | TextTurn | Infer | ToolResponses | CallsCancelled | Script
"""What the turns loop handles, one at a time, in the order things happened."""


@dataclass
class Context:
    """One set-up connection: what it is, what it serves, and the counters its parts share.

    Attributes:
        id: The connection's id (`sess-...`).
        channel: Its socket.
        registry: The server's shared state.
        options: How the server wants it to behave.
        config: What its setup asked for.
        model: The model it talks to.
        conv: The conversation it serves.
        frames: Client messages received, by kind.
        handles: The resumption handles issued on it, oldest first.
        spoken: The model turns it said, kept even if a resume drops them from the history.
        events: Turns waiting for the model.
        first_audio_ms: Delay before each answer (the control API may change it).
        client_index: Client messages received after `setup`.
        prompt_tokens: The estimated prompt tokens so far, for `usageMetadata`.
        image: The last video frame, as the brain sees it.
        user_quiet: Set while the user is not speaking (by the VAD, or between
            `activityStart` and `activityEnd`).
        timings: Where the time of each user turn's answer went, oldest first.
        timing: The latest user turn's, which the parts stamp as the answer goes on.
    """

    id: str
    channel: Channel
    registry: Registry
    options: SessionOptions
    config: SessionConfig
    model: LiveModel
    conv: Conversation
    frames: Counter[str]
    handles: deque[str]
    spoken: deque[Turn]
    events: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(EVENT_LIMIT))
    first_audio_ms: int = 0
    client_index: int = 0
    prompt_tokens: int = 0
    image: ImageInfo | None = None
    user_quiet: asyncio.Event = field(default_factory=asyncio.Event)
    timings: deque[TurnTiming] = field(default_factory=lambda: deque(maxlen=TIMINGS_KEPT))
    timing: TurnTiming | None = None

    def __post_init__(self) -> None:
        self.user_quiet.set()

    def answering(self, timing: TurnTiming | None) -> None:
        """The model takes up a new user turn: its answer's steps are stamped on `timing`."""
        if timing is not None:
            self.timings.append(timing)
            self.timing = timing
