"""Tool-call cancellation and scheduling, for a Pipecat service that runs Gemini's calls.

- **Gemini cancels** (`toolCallCancellation`): the named running calls are cancelled through
  Pipecat, which pushes `FunctionCallCancelFrame`; the `on_tool_calls_cancelled_by_model`
  event runs first, in the same step, so a tool-call registry can record that the model asked
  for it. Such a call is never answered: Gemini refuses answers to calls it dropped.
- **The server interrupts** (`interrupted`): running calls registered with
  `cancel_on_interruption=True` are cancelled. Pipecat broadcasts the interruption away from the
  service, so its own handler never sees it.
- **A call cancelled on our side** (an interruption, Pipecat's deadline) is still answered with
  `{"error": ...}`: Gemini holds the turn until every BLOCKING call has an answer.
- **INTERRUPT scheduling**: Pipecat sends a NON_BLOCKING result as WHEN_IDLE (or SILENT for
  `run_llm=False`), over whatever `scheduling` the response carries. A response the tool
  registry marked `"scheduling": "INTERRUPT"` is sent with INTERRUPT instead (both as the
  `FunctionResponse` field and inside the response), so Gemini speaks about it at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.genai.types import FunctionResponse, FunctionResponseScheduling
from loguru import logger
from pipecat.frames.frames import FunctionCallCancelFrame
from pipecat.services.llm_service import FunctionCallRunnerItem

from bots.gemini_live.calls import CallBook
from toolcalls.spec import tool_options_of

if TYPE_CHECKING:
    from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService

CANCELLED_ANSWER = "The function call was cancelled."
MODEL_CANCELLED_EVENT = "on_tool_calls_cancelled_by_model"


@dataclass(frozen=True)
class CancelOutcome:
    """What to do with a `FunctionCallCancelFrame` the service is about to push.

    Attributes:
        push: False for a second cancel of the same call.
        answer: The error to answer the model with (it still waits for the call), or None.
    """

    push: bool = True
    answer: str | None = None


def tool_timeouts(tools: Any) -> dict[str, float | None]:
    """Each direct function's own Pipecat deadline (`@tool_options(timeout_secs=...)`)."""
    if not isinstance(tools, list | tuple):
        return {}
    return {
        tool.__name__: tool_options_of(tool).timeout_secs
        for tool in tools
        if callable(tool) and hasattr(tool, "__name__")
    }


class ToolCallControl:
    """Cancels and answers the calls of one Gemini Live service.

    Args:
        service: The service whose calls Pipecat runs.
        calls: The stage's record of the calls.
        timeouts: Each tool's own deadline, for the answer to a call Pipecat timed out.
        default_timeout_secs: The service's `function_call_timeout_secs`.
    """

    def __init__(
        self,
        service: GeminiLiveLLMService,
        calls: CallBook,
        *,
        timeouts: Mapping[str, float | None],
        default_timeout_secs: float | None,
    ) -> None:
        self._service = service
        self._calls = calls
        self._timeouts = dict(timeouts)
        self._default_timeout = default_timeout_secs

    async def send_result(
        self,
        tool_call_id: str,
        tool_name: str,
        result: dict[str, Any],
        *,
        is_final: bool,
        spoken: bool,
        send_plain: Callable[..., Awaitable[None]],
        send_response: Callable[..., Awaitable[None]],
        input_sent: Callable[[], None],
    ) -> None:
        """Send a tool result: once per call, never to a call Gemini cancelled, INTERRUPT
        scheduling where the response asks for it (else Pipecat's own send, `send_plain`)."""
        if not self._calls.may_answer(tool_call_id, is_final=is_final):
            logger.debug(f"{self._service}: no answer to {tool_name} [{tool_call_id}]; none due")
            return
        response = self.interrupt_response(
            tool_call_id, tool_name, result, is_final=is_final, spoken=spoken
        )
        if response is None:
            await send_plain(tool_call_id, tool_name, result, is_final=is_final, spoken=spoken)
        else:
            try:
                await send_response(function_responses=response)
            except Exception as exc:
                await self._service.push_error(f"Send error: {exc}", exception=exc)
        if is_final and not self._calls.non_blocking(tool_call_id):
            input_sent()

    async def cancelled_by_model(self, call_ids: list[str]) -> None:
        """The model gave up on these calls: stop them, and send no answer for them."""
        ids = [i for i in call_ids if i]
        if not ids:
            return
        logger.info(f"{self._service}: Gemini cancelled tool call(s) {', '.join(ids)}")
        self._calls.cancelled_by_model(ids)
        await self._service._call_event_handler(MODEL_CANCELLED_EVENT, ids)
        wanted = set(ids)
        await self._cancel(
            lambda item: item.tool_call_id in wanted,
            reason="cancelled by Gemini (toolCallCancellation)",
        )

    async def interrupted(self) -> None:
        """A server `interrupted` cancels what `cancel_on_interruption=True` says it should."""
        running = self._calls.running_names(cancel_on_interruption=True)
        if not running:
            return
        logger.info(f"{self._service}: the user interrupted; cancelling {', '.join(running)}")
        await self._cancel(
            lambda item: item.registry_item.cancel_on_interruption,
            reason="interrupted (server interrupted)",
        )

    async def _cancel(self, predicate: Callable[[FunctionCallRunnerItem], bool], reason: str):
        await self._service._cancel_function_call_tasks(predicate, reason=reason)

    def cancel_frame(self, frame: FunctionCallCancelFrame, *, downstream: bool) -> CancelOutcome:
        """Note a cancel frame on its way out: whether to pass it on, and what to answer."""
        if not self._calls.first_cancel(frame.tool_call_id, downstream=downstream):
            # Two cancellers (an interruption from upstream and one from the server, say) can
            # both pick a call before either has removed it; it is settled once.
            return CancelOutcome(push=False)
        if not downstream:
            return CancelOutcome()
        self._calls.finished(frame.tool_call_id)
        if not self._calls.needs_answer_after_cancel(frame.tool_call_id):
            return CancelOutcome()
        # Of Pipecat's own cancellations only its deadline asks for inference.
        timeout = self._timeouts.get(frame.function_name) or self._default_timeout
        if frame.run_llm and timeout is not None:
            error = f"The function timed out after {timeout:g} seconds and was cancelled."
            return CancelOutcome(answer=error)
        return CancelOutcome(answer=CANCELLED_ANSWER)

    def interrupt_response(
        self,
        call_id: str,
        name: str,
        message: dict[str, Any],
        *,
        is_final: bool,
        spoken: bool,
    ) -> FunctionResponse | None:
        """The INTERRUPT response for a result that asks for it, or None to let Pipecat send it."""
        wanted = (
            spoken
            and message.get("scheduling") == "INTERRUPT"
            and self._service.accepts_intermediate_function_call_results
            and self._calls.non_blocking(call_id)
        )
        if not wanted:
            return None
        logger.debug(f"{self._service}: sending {name} [{call_id}] with INTERRUPT scheduling")
        return FunctionResponse(
            name=name,
            id=call_id,
            response=message,
            scheduling=FunctionResponseScheduling.INTERRUPT,
            will_continue=not is_final,
        )
