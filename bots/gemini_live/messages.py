"""What the stage reads off each server message, around Pipecat's own handling of it.

Pipecat's service dispatches `serverContent`, `toolCall` and `sessionResumptionUpdate`, and
ignores `goAway` and `toolCallCancellation`. The stage needs all of them: goAway starts the
switch, a cancellation stops the calls, and every message says something about the turn (has
the model started answering, is a reply due, does the latest handle cover the conversation).
The words and audio of an answer the pipeline cut off (`TurnState.cut_off`) are dropped here,
until the model's own `interrupted` or `turnComplete`; its tool calls still go through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.genai.types import LiveServerContent, LiveServerMessage

from bots.gemini_live.calls import CallBook
from bots.gemini_live.handles import ResumptionHandles
from bots.gemini_live.supervisor import Supervisor
from bots.gemini_live.tool_calls import ToolCallControl
from bots.gemini_live.turns import TurnState

if TYPE_CHECKING:
    from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService


@dataclass(frozen=True, kw_only=True, eq=False)
class ServerMessages:
    """Handles each message from the server for one stage.

    Attributes:
        service: The Pipecat service that dispatches the message.
        supervisor: Takes goAway, and hears of completed turns.
        handles: Takes new handles, and hears when the conversation moves on.
        turns: Hears when replies start and input was transcribed.
        calls: Records the calls the model asks for.
        tools: Cancels calls, for the model or for an interruption.
        input_sent: Notes that user input went out (a transcribed turn).
    """

    service: GeminiLiveLLMService
    supervisor: Supervisor
    handles: ResumptionHandles
    turns: TurnState
    calls: CallBook
    tools: ToolCallControl
    input_sent: Callable[[], None]

    async def handle(self, message: LiveServerMessage) -> None:
        """Note what Pipecat ignores, let it handle the message, then note what followed."""
        content = message.server_content
        if message.go_away is not None:
            self.supervisor.go_away(message.go_away.time_left)
        if message.tool_call_cancellation is not None:
            await self.tools.cancelled_by_model(list(message.tool_call_cancellation.ids or []))
        says = content is not None and bool(content.model_turn or content.output_transcription)
        if says:
            self.handles.outdated()
            self.turns.reply_started()
        if message.tool_call is not None:
            self.handles.outdated()
            self.calls.issued(f.id or "" for f in message.tool_call.function_calls or [])
        if says and self.turns.cut_off:
            self.turns.output_dropped()
            message = without_output(message)
        elif says:
            self.turns.model_says()
        await self.service._handle_server_message(message)
        update = message.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self.handles.received(update.new_handle)
        if content is not None:
            await self._after_content(content)

    async def _after_content(self, content: LiveServerContent) -> None:
        if content.input_transcription:
            self.input_sent()
        if content.turn_complete or content.interrupted:
            self.turns.model_turn_ended()
        if content.turn_complete:
            self.supervisor.turn_completed()
            self.turns.reply_started()
        if content.interrupted:
            self.turns.model_interrupted()
            self.turns.reply_started()
            # Pipecat broadcasts the interruption away from the service, so its own cleanup
            # (the bot is no longer responding) never runs, and the interrupted answer gets no
            # turnComplete: a deferred EndFrame and the goAway switch would wait for it.
            await self.service._handle_interruption()
            self.turns.bot_stopped()
            await self.tools.interrupted()


def without_output(message: LiveServerMessage) -> LiveServerMessage:
    """The message without what the model says (its words, audio and their transcription)."""
    content = message.server_content
    if content is None:
        return message
    quiet = content.model_copy(update={"model_turn": None, "output_transcription": None})
    return message.model_copy(update={"server_content": quiet})
