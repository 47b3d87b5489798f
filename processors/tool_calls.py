"""Tool calls as the transcript and the browser see them.

Placed after the LLM, `ToolCallProcessor` passes every frame on and adds, for each call of a tool
the `ToolRegistry` owns:

- a `ToolCallEventFrame` when the call has finished, for the transcript observer;
- RTVI server messages ``{"type": "tool-activity", ...}`` when it starts and when it ends,
  carrying what Pipecat's own ``llm-function-call-*`` messages lack: the tool call id on
  start, how the call ended (ok, failed, invalid arguments, timed out, cancelled, refused),
  its duration, and the arguments of tools marked safe to show.

It also tells the registry when a new user turn starts, so the repeat counter is per turn.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InputTextRawFrame,
    InterruptionFrame,
    LLMContextUserTurnFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.frames import RTVISendTextFrame, RTVIServerMessageFrame
from pipecat.processors.frameworks.rtvi.observer import RTVIFunctionCallReportLevel

from processors.frames import ToolCallEvent, ToolCallEventFrame, ToolOutcome
from toolcalls.registry import ToolRegistry

__all__ = ["TOOL_ACTIVITY", "ToolCallProcessor", "report_levels"]

TOOL_ACTIVITY = "tool-activity"
"""The ``type`` of our RTVI server messages; the browser merges them by ``tool_call_id``."""

_NEW_USER_TURN = (LLMContextUserTurnFrame, RTVISendTextFrame, InputTextRawFrame, InterruptionFrame)
"""Downstream frames that mean the user has started a new turn (see `ToolCallProcessor`)."""


def report_levels(
    registry: ToolRegistry,
    default: RTVIFunctionCallReportLevel = RTVIFunctionCallReportLevel.NAME,
) -> dict[str, RTVIFunctionCallReportLevel]:
    """Pipecat's RTVI report levels for the registry's tools, for `RTVIObserverParams`.

    Pipecat's own ``llm-function-call-in-progress`` message is where the browser shows a
    call's arguments, so a tool marked ``show_arguments`` is reported at ARGUMENTS; every
    other tool at ``default`` (NAME: its name, never its arguments or result).
    """
    levels = {"*": default}
    for name in registry.names():
        spec = registry.spec(name)
        if spec is not None and spec.show_arguments:
            levels[name] = RTVIFunctionCallReportLevel.ARGUMENTS
    return levels


class ToolCallProcessor(FrameProcessor):
    """Announce the registry's tool calls downstream: events for the transcript, RTVI messages.

    A finished call is announced right after Pipecat's frame that settles it
    (`FunctionCallResultFrame` with a final result, or `FunctionCallCancelFrame`) passes
    through, so the announcement follows what the model was told. The registry reports from
    the tool's own task; those reports are only queued there, and a call whose settling frame
    never passes this processor (the processor is placed elsewhere, or the frame was
    dropped) is announced from this processor's own task after ``settle_grace_secs``.

    A new user turn starts the registry's repeat count afresh. Gemini's own `TranscriptionFrame`
    goes upstream from the service and never passes a processor placed after it, so the turn
    is seen here, as Pipecat's own evals observer sees it, by:

    - `LLMContextUserTurnFrame`: the user aggregator wrote what the user said to the context
      (in realtime mode it does so once the bot starts answering, so a little late);
    - `RTVISendTextFrame` / `InputTextRawFrame`: the user typed (RTVI ``send-text``, or text
      sent straight to the realtime service);
    - `InterruptionFrame`: the user spoke over the bot, which starts their turn earlier than
      the aggregator writes it.

    Args:
        registry: The session's tool registry; its listener is added here.
        settle_grace_secs: How long a finished call waits for its settling frame before it is
            announced anyway.
        **kwargs: Passed to `FrameProcessor`.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        settle_grace_secs: float = 1.0,
        non_blocking_tools: bool = False,
        every_call_non_blocking: bool = False,
        **kwargs: Any,
    ) -> None:
        """Watch `registry`'s calls.

        Args:
            registry: The session's tool registry.
            settle_grace_secs: How long a finished call waits for Pipecat's result frame.
            non_blocking_tools: Whether the model runs NON_BLOCKING tools (the 3.8 family);
                then a `cancel_on_interruption=False` tool's start says `"background": true`,
                so the page shows it running while the bot goes on talking.
            every_call_non_blocking: Whether the model runs every call NON_BLOCKING (it takes
                no BLOCKING declaration: gemini-3.8-live-extended-thinking); then every
                call's start says `"background": true`.
            **kwargs: Passed to `FrameProcessor`.
        """
        super().__init__(**kwargs)
        self._registry = registry
        self._non_blocking = non_blocking_tools
        self._all_background = every_call_non_blocking
        self._grace = settle_grace_secs
        self._finished: dict[str, ToolCallEvent] = {}
        # Calls announced as started: (name, arguments, wall-clock start, loop-clock start).
        self._started: dict[str, tuple[str, dict[str, Any], float, float]] = {}
        self._queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._announcer: asyncio.Task[None] | None = None
        registry.add_listener(self._on_tool_call)

    def _on_tool_call(self, event: ToolCallEvent) -> None:
        """Registry listener, run in the tool's task: only note the event, never push."""
        self._finished[event.call_id] = event
        self._queue.put_nowait((asyncio.get_running_loop().time() + self._grace, event.call_id))

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._announcer is None:
                self._announcer = self.create_task(self._announce_late(), "announce_late")
            return
        if isinstance(frame, EndFrame):
            await self._announce_all()
            await self._stop_announcer()
        elif isinstance(frame, CancelFrame):
            await self._stop_announcer()
        await self.push_frame(frame, direction)
        if direction != FrameDirection.DOWNSTREAM:
            return
        if isinstance(frame, FunctionCallInProgressFrame):
            await self._announce_start(frame)
        elif isinstance(frame, FunctionCallResultFrame):
            if frame.properties is None or frame.properties.is_final:
                await self._announce(frame.tool_call_id)
        elif isinstance(frame, FunctionCallCancelFrame):
            await self._announce(frame.tool_call_id, cancelled=True)
        elif isinstance(frame, _NEW_USER_TURN):
            self._registry.new_turn()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop_announcer()
        self._registry.remove_listener(self._on_tool_call)

    async def _announce_start(self, frame: FunctionCallInProgressFrame) -> None:
        spec = self._registry.spec(frame.function_name)
        if spec is None:
            return
        data: dict[str, Any] = {
            "type": TOOL_ACTIVITY,
            "tool_call_id": frame.tool_call_id,
            "name": frame.function_name,
            "status": "started",
        }
        if self._all_background or (self._non_blocking and not spec.cancel_on_interruption):
            data["background"] = True
        arguments = dict(frame.arguments or {})
        if spec.show_arguments:
            data["arguments"] = arguments
        loop_now = asyncio.get_running_loop().time()
        self._started[frame.tool_call_id] = (frame.function_name, arguments, time.time(), loop_now)
        await self.push_frame(RTVIServerMessageFrame(data=data))

    async def _announce(self, call_id: str, *, cancelled: bool = False) -> None:
        """Push the frames for a finished call, once.

        Pipecat can cancel a call (an interruption) after announcing it in progress but
        before the registry's wrapper runs; the registry then has nothing to report, so the
        call is announced from what its start said.
        """
        started = self._started.pop(call_id, None)
        event = self._finished.pop(call_id, None)
        if event is None and cancelled and started is not None:
            name, arguments, started_at, loop_started = started
            event = ToolCallEvent(
                name=name,
                call_id=call_id,
                arguments=arguments,
                outcome=ToolOutcome.CANCELLED_BY_INTERRUPTION,
                error="cancelled",
                started_at=started_at,
                duration_ms=(asyncio.get_running_loop().time() - loop_started) * 1000,
            )
        if event is None:
            return
        spec = self._registry.spec(event.name)
        data: dict[str, Any] = {
            "type": TOOL_ACTIVITY,
            "tool_call_id": event.call_id,
            "name": event.name,
            "status": str(event.outcome),
            "duration_ms": round(event.duration_ms, 1),
        }
        if spec is not None and spec.show_arguments:
            data["arguments"] = event.arguments
        await self.push_frame(ToolCallEventFrame(event=event))
        await self.push_frame(RTVIServerMessageFrame(data=data))

    async def _announce_all(self) -> None:
        for call_id in list(self._finished):
            await self._announce(call_id)

    async def _announce_late(self) -> None:
        """Announce calls whose settling frame did not arrive within the grace period."""
        loop = asyncio.get_running_loop()
        while True:
            deadline, call_id = await self._queue.get()
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if call_id in self._finished:
                logger.debug(f"{self}: announcing {call_id} without its settling frame")
                await self._announce(call_id)

    async def _stop_announcer(self) -> None:
        if self._announcer is not None:
            await self.cancel_task(self._announcer)
            self._announcer = None
