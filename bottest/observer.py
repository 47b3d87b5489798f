"""From a running pipeline to the conversation's events: one observer and the aggregators' events.

The observer sees every frame's first push off the pipeline's path (it never slows a frame);
the bot's turns come from the assistant aggregator's `on_assistant_turn_stopped`, which carries
the words that were played and whether the user cut them short, the same source the project's
transcript uses.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from pipecat.frames.frames import (
    ErrorFrame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    TranscriptionFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
)

from bottest.events import Conversation
from processors.frames import SessionEventFrame, ToolCallEventFrame


class ConversationObserver(BaseObserver):
    """Records what a test may expect into a `Conversation`."""

    def __init__(self, conversation: Conversation) -> None:
        super().__init__(observe_every_push=False)
        self.conversation = conversation
        self.replies = 0
        self.errors = 0
        self._seen: deque[tuple[str, str]] = deque(maxlen=256)

    # ------------------------------------------------------------------ hooks

    def attach(self, assistant: LLMAssistantAggregator) -> None:
        """Record the bot's turns as the assistant aggregator commits them."""
        assistant.add_event_handler("on_assistant_turn_stopped", self._on_bot_turn)

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, TranscriptionFrame):
            if self._once("heard", str(frame.id), frame):
                self._heard(frame.text)
        elif isinstance(frame, FunctionCallInProgressFrame):
            if self._once("call", frame.tool_call_id, frame):
                self.conversation.add(
                    "tool_call",
                    name=frame.function_name,
                    arguments=dict(frame.arguments or {}),
                    call_id=frame.tool_call_id,
                )
        elif isinstance(frame, FunctionCallResultFrame):
            if self._once("result", frame.tool_call_id, frame):
                self._result(frame.tool_call_id, frame.function_name, result=frame.result)
        elif isinstance(frame, FunctionCallCancelFrame):
            if self._once("cancel", frame.tool_call_id, frame):
                self._result(frame.tool_call_id, frame.function_name, outcome="cancelled")
        elif isinstance(frame, ToolCallEventFrame) and frame.event is not None:
            if self._once("outcome", frame.event.call_id, frame):
                record = frame.event
                self._result(
                    record.call_id,
                    record.name,
                    result=record.result if record.error is None else {"error": record.error},
                    outcome=str(record.outcome),
                )
        elif isinstance(frame, ErrorFrame):
            if self._once("error", str(frame.id), frame):
                self.errors += 1
                self.conversation.add("error", text=str(frame.error), name="fatal" * frame.fatal)
        elif isinstance(frame, SessionEventFrame):
            if self._once("session", str(frame.id), frame):
                self.conversation.add("session", name=str(frame.kind), text=frame.detail)

    # ------------------------------------------------------------------ the parts

    def _once(self, kind: str, key: str, frame: Any) -> bool:
        """True the first time a frame (or a frame about the same call) is seen."""
        if frame.broadcast_sibling_id is not None:
            key = f"{key}:{min(frame.id, frame.broadcast_sibling_id)}"
        if (kind, key) in self._seen:
            return False
        self._seen.append((kind, key))
        return True

    def _heard(self, text: str) -> None:
        events = self.conversation.events
        if events and events[-1].kind == "heard":
            events[-1].text = f"{events[-1].text} {text.strip()}".strip()
        else:
            self.conversation.add("heard", text=text.strip())

    def _result(self, call_id: str, name: str, **fields: Any) -> None:
        """A call's result and its outcome arrive as two frames: one event holds both."""
        event = next(
            (
                e
                for e in self.conversation.events
                if e.kind == "tool_result" and e.call_id == call_id
            ),
            None,
        )
        if event is None:
            event = self.conversation.add("tool_result", name=name, call_id=call_id)
        for key, value in fields.items():
            if value is not None and not (key == "result" and event.result is not None):
                setattr(event, key, value)

    async def _on_bot_turn(self, _aggregator: object, message: AssistantTurnStoppedMessage) -> None:
        text = " ".join((message.content or "").split())
        if text or message.interrupted:
            self.replies += 1
            self.conversation.add("reply", text=text, interrupted=message.interrupted)
