"""A small registry that wraps the bot's tool functions and owns each call's life cycle.

Pipecat runs a direct function, gives it a deadline, and keeps an exception's text out of the
model's context. What a user of a voice bot also needs, and Pipecat does not do, lives here:

- arguments are checked with `jsonschema` against the very schema Pipecat derives from the
  function, before the function runs;
- every call is answered exactly once: Gemini Live holds a turn until each BLOCKING call is
  answered, so a failure, a timeout or a cancellation asked of the registry still answers it
  (a cancellation Pipecat makes itself, on an interruption, is settled by Pipecat and only
  recorded here);
- a result that is not JSON, or too large, is replaced by a short error;
- the same call repeated in a loop within one user turn is refused;
- every call is recorded as a `ToolCallEvent` for the transcript and the browser.

The wrapper keeps the function's name, signature, docstring and `@tool_options` attributes
(`functools.wraps`), so Pipecat declares the same tool and still treats a
`cancel_on_interruption=False` tool as NON_BLOCKING.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from google.genai.types import FunctionResponse, FunctionResponseScheduling
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import DirectFunction, DirectFunctionWrapper
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.services.llm_service import FunctionCallParams

from processors.frames import ToolCallEvent, ToolOutcome

__all__ = [
    "CANCELLED_RESULT",
    "DEFAULT_MAX_REPEATS",
    "DEFAULT_MAX_RESULT_BYTES",
    "RunningCall",
    "Scheduling",
    "ToolCallListener",
    "ToolRegistry",
    "ToolSchedulingGeminiLiveLLMService",
    "ToolSpec",
]

Scheduling = Literal["INTERRUPT", "WHEN_IDLE", "SILENT"]
"""How Gemini Live treats a NON_BLOCKING tool's result: cut in, wait until idle, or just take it."""

ToolCallListener = Callable[[ToolCallEvent], None]
"""Called synchronously, from the tool's own task, once per finished call."""

DEFAULT_MAX_RESULT_BYTES = 16 * 1024
"""Largest result, as UTF-8 JSON, handed to the model; more only fills its context window."""

DEFAULT_MAX_REPEATS = 3
"""Identical calls (same name and arguments) allowed per user turn before the next is refused."""

BACKSTOP_GRACE_SECS = 2.0
"""Pipecat's own per-tool deadline is set this much later than ours, so ours fires first and
answers the model; Pipecat's only catches a tool that ignores its cancellation."""

MAX_DETAIL_CHARS = 300
"""Longest validation message quoted to the model (it may quote a long argument back)."""

CANCELLED_RESULT: dict[str, str] = {"error": "cancelled"}
"""What the model is told about a call cancelled through `ToolRegistry.cancel`."""

_SCHEDULINGS: tuple[str, ...] = ("INTERRUPT", "WHEN_IDLE", "SILENT")


@dataclass(frozen=True)
class ToolSpec:
    """One wrapped tool and the options the registry and the processor act on.

    Attributes:
        name: The tool's name as the model sees it (the function's ``__name__``).
        function: The original direct function.
        timeout_secs: The registry's deadline for one call; None means no deadline.
        show_arguments: Whether the arguments may be shown in the browser.
        scheduling: For a NON_BLOCKING tool, how Gemini should treat its results; None leaves
            Pipecat's choice (WHEN_IDLE, or SILENT for a result sent with ``run_llm=False``).
        cancel_on_interruption: Pipecat's option; False makes the tool NON_BLOCKING.
        schema: The JSON schema of the arguments, as Pipecat declares them, closed to
            additional properties.
        validator: ``schema``, compiled once for every call.
    """

    name: str
    function: DirectFunction
    timeout_secs: float | None
    show_arguments: bool
    scheduling: Scheduling | None
    cancel_on_interruption: bool
    schema: dict[str, Any]
    validator: Draft202012Validator = field(repr=False, compare=False)


@dataclass(frozen=True)
class RunningCall:
    """A call whose function is running now (see `ToolRegistry.running`)."""

    call_id: str
    name: str
    cancel_on_interruption: bool
    started_at: float


@dataclass
class _Call:
    """The registry's bookkeeping for one call in flight."""

    spec: ToolSpec
    params: FunctionCallParams
    arguments: dict[str, Any]
    started_at: float
    started: float
    scope: asyncio.Timeout | None = None
    cancel_outcome: ToolOutcome | None = None
    settled: bool = False

    @property
    def call_id(self) -> str:
        return self.params.tool_call_id


class ToolRegistry:
    """Wraps direct functions so that each call is validated, bounded, answered and recorded.

    One registry per session: the repeat counter is per user turn and the listeners are the
    session's processors.

    Args:
        timeout_secs: Default deadline for one call (the bot passes its ``tool_timeout_secs``);
            None means no deadline. A tool's ``@tool_options(timeout_secs=...)`` or
            ``wrap(..., timeout_secs=...)`` overrides it.
        max_result_bytes: Largest result, as UTF-8 JSON, passed on to the model.
        max_repeats: Identical calls allowed in one user turn; the next one is refused.
        clock: Monotonic clock for durations (tests may pass a fake one).
    """

    def __init__(
        self,
        *,
        timeout_secs: float | None = 10.0,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        max_repeats: int = DEFAULT_MAX_REPEATS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if timeout_secs is not None and timeout_secs <= 0:
            raise ValueError("timeout_secs must be positive (or None for no deadline)")
        if max_result_bytes <= 0:
            raise ValueError("max_result_bytes must be positive")
        if max_repeats < 1:
            raise ValueError("max_repeats must be at least 1")
        self._timeout_secs = timeout_secs
        self._max_result_bytes = max_result_bytes
        self._max_repeats = max_repeats
        self._clock = clock
        self._specs: dict[str, ToolSpec] = {}
        self._listeners: list[ToolCallListener] = []
        self._repeats: Counter[tuple[str, str]] = Counter()
        self._running: dict[str, _Call] = {}

    # ------------------------------------------------------------------ configuration

    def wrap(
        self,
        function: DirectFunction,
        *,
        timeout_secs: float | None = None,
        show_arguments: bool = False,
        scheduling: Scheduling | None = None,
    ) -> DirectFunction:
        """Return a direct function that runs ``function`` under the registry's rules.

        Pipecat sees the same tool: ``functools.wraps`` keeps the name, docstring, signature
        (through ``__wrapped__``) and ``@tool_options`` attributes. Only Pipecat's own deadline
        is moved past the registry's, so the registry answers the model first.

        The function reports through ``params.result_callback`` (or returns its result)
        before it returns; a call that returns without a result is answered with an error,
        since Gemini would otherwise wait for it.

        Args:
            function: An async direct function whose first parameter is ``params``.
            timeout_secs: This tool's deadline; None falls back to ``@tool_options`` and then
                to the registry's default.
            show_arguments: Whether the browser may see the arguments of its calls.
            scheduling: For a NON_BLOCKING tool (``cancel_on_interruption=False``): INTERRUPT,
                WHEN_IDLE or SILENT. INTERRUPT needs `ToolSchedulingGeminiLiveLLMService`.

        Returns:
            The wrapped function, to list in the service's or the context's ``tools``.

        Raises:
            ValueError: A bad option, a name already wrapped, or ``scheduling`` on a blocking
                tool (Gemini only schedules NON_BLOCKING results).
        """
        wrapper = DirectFunctionWrapper(function)  # validates and derives Pipecat's schema
        if wrapper.name in self._specs:
            raise ValueError(f"A tool named {wrapper.name} is already registered")
        if scheduling is not None and scheduling not in _SCHEDULINGS:
            raise ValueError(f"scheduling must be one of {', '.join(_SCHEDULINGS)}")
        cancel_on_interruption = getattr(function, "_pipecat_cancel_on_interruption", True)
        if scheduling is not None and cancel_on_interruption:
            raise ValueError(
                f"{wrapper.name}: scheduling applies to NON_BLOCKING tools only; "
                "decorate it with @tool_options(cancel_on_interruption=False)"
            )
        timeout = (
            timeout_secs
            if timeout_secs is not None
            else getattr(function, "_pipecat_timeout_secs", None) or self._timeout_secs
        )
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout_secs must be positive")
        schema: dict[str, Any] = {
            "type": "object",
            "properties": wrapper.properties,
            "required": wrapper.required,
            "additionalProperties": False,
        }
        Draft202012Validator.check_schema(schema)
        spec = ToolSpec(
            name=wrapper.name,
            function=function,
            timeout_secs=timeout,
            show_arguments=show_arguments,
            scheduling=scheduling,
            cancel_on_interruption=bool(cancel_on_interruption),
            schema=schema,
            validator=Draft202012Validator(schema),
        )
        self._specs[spec.name] = spec

        @functools.wraps(function)
        async def run_tool(params: FunctionCallParams, **arguments: Any) -> None:
            await self._run(spec, params, arguments)

        if timeout is not None:
            # Pipecat reads this as the tool's own deadline, which beats the service default.
            run_tool._pipecat_timeout_secs = timeout + BACKSTOP_GRACE_SECS  # type: ignore[attr-defined]
        return run_tool

    def wrap_all(self, functions: Iterable[DirectFunction], **options: Any) -> list[DirectFunction]:
        """Wrap several tools with the same options (see `wrap`), keeping their order."""
        return [self.wrap(function, **options) for function in functions]

    def names(self) -> list[str]:
        """The names of the wrapped tools, in the order they were wrapped."""
        return list(self._specs)

    def spec(self, name: str) -> ToolSpec | None:
        """The options of the tool called ``name``, or None when the registry does not own it."""
        return self._specs.get(name)

    def add_listener(self, listener: ToolCallListener) -> None:
        """Call ``listener(event)`` for every finished call (synchronously; keep it quick)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ToolCallListener) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ control

    def new_turn(self) -> None:
        """Start a new user turn: identical calls are counted afresh."""
        self._repeats.clear()

    def running(self) -> list[RunningCall]:
        """The calls whose functions are running now, oldest first."""
        return [
            RunningCall(
                call_id=call.call_id,
                name=call.spec.name,
                cancel_on_interruption=call.spec.cancel_on_interruption,
                started_at=call.started_at,
            )
            for call in self._running.values()
        ]

    def cancel(self, call_id: str, *, by_model: bool = True) -> bool:
        """Stop a running call; it still answers the model once, with `CANCELLED_RESULT`.

        For Gemini's ``toolCallCancellation`` (``by_model=True``), or for the bot's own
        decision to drop a call when the user interrupts (``by_model=False``). Pipecat
        did not start this cancellation, so nothing in Pipecat settles the call: the
        registry answers it (without asking for a spoken reply) so Gemini is never left
        waiting on a BLOCKING call and Pipecat's context records how it ended.

        A service that also cancels the call through Pipecat (``_cancel_function_call_tasks``)
        calls this first, in the same step: the call then ends by Pipecat's cancellation,
        which settles it (`FunctionCallCancelFrame`), and the registry only records that the
        model asked for it.

        Args:
            call_id: The ``tool_call_id`` of the call.
            by_model: Whether the model asked for it (recorded as CANCELLED_BY_MODEL) or the
                user's interruption (CANCELLED_BY_INTERRUPTION).

        Returns:
            Whether a running call was found and told to stop; the result is delivered
            from the call's own task as soon as its function has unwound.
        """
        call = self._running.get(call_id)
        if call is None or call.scope is None or call.settled or call.cancel_outcome is not None:
            return False
        call.cancel_outcome = (
            ToolOutcome.CANCELLED_BY_MODEL if by_model else ToolOutcome.CANCELLED_BY_INTERRUPTION
        )
        # Expire the call's deadline now: asyncio.timeout cancels the function and turns the
        # cancellation back into an ordinary exit, so the wrapper can still answer the model.
        call.scope.reschedule(asyncio.get_running_loop().time())
        return True

    # ------------------------------------------------------------------ one call

    async def _run(
        self, spec: ToolSpec, params: FunctionCallParams, arguments: dict[str, Any]
    ) -> None:
        call = _Call(
            spec=spec,
            params=params,
            arguments=dict(arguments),
            started_at=time.time(),
            started=self._clock(),
        )
        refusal = self._refusal(spec, arguments)
        if refusal is not None:
            await self._settle(call, ToolOutcome.REFUSED_REPEAT, error=refusal)
            return
        problem = self._invalid(spec, arguments)
        if problem is not None:
            await self._settle(call, ToolOutcome.INVALID_ARGUMENTS, error=problem)
            return

        async def result_callback(
            result: Any, *, properties: FunctionCallResultProperties | None = None
        ) -> None:
            await self._on_result(call, result, properties)

        guarded = dataclasses.replace(params, result_callback=result_callback)
        self._running[call.call_id] = call
        scope = asyncio.timeout(spec.timeout_secs)
        call.scope = scope
        returned: Any = None
        try:
            async with scope:
                returned = await spec.function(guarded, **arguments)
        except asyncio.CancelledError:
            # Pipecat cancelled the call (an interruption, its backstop deadline, or the
            # pipeline ending) and settles it itself: record it, deliver nothing, re-raise.
            outcome = (
                call.cancel_outcome
                or (ToolOutcome.TIMED_OUT if scope.expired() else None)
                or ToolOutcome.CANCELLED_BY_INTERRUPTION
            )
            if not call.settled:
                call.settled = True
                self._record(call, outcome, error="cancelled")
            raise
        except Exception as exc:
            if scope.expired():
                await self._settle_stopped(call)
            else:
                logger.opt(exception=exc).error(
                    f"Tool {spec.name} [{call.call_id}] raised {type(exc).__name__}"
                )
                await self._settle(call, ToolOutcome.FAILED, error=f"The tool {spec.name} failed.")
            return
        finally:
            self._running.pop(call.call_id, None)
        if scope.expired():
            await self._settle_stopped(call)
        elif not call.settled:
            if returned is not None:
                # A direct function's return value is ignored by Pipecat; it is the result.
                await self._on_result(call, returned, None)
            else:
                logger.warning(f"Tool {spec.name} [{call.call_id}] returned without a result")
                await self._settle(
                    call, ToolOutcome.FAILED, error=f"The tool {spec.name} returned no result."
                )

    def _refusal(self, spec: ToolSpec, arguments: Mapping[str, Any]) -> str | None:
        """Count this call in the turn; a message for the model when it is one repeat too many."""
        key = (spec.name, json.dumps(arguments, sort_keys=True, default=repr))
        self._repeats[key] += 1
        count = self._repeats[key]
        if count <= self._max_repeats:
            return None
        logger.warning(f"Refusing call #{count} of {spec.name} with the same arguments this turn")
        return (
            f"Refusing to repeat {spec.name} with the same arguments: it was already called "
            f"{count - 1} times this turn. Use the results you have, or ask the user."
        )

    def _invalid(self, spec: ToolSpec, arguments: Mapping[str, Any]) -> str | None:
        """A message for the model when the arguments do not fit the declared schema."""
        error = best_match(spec.validator.iter_errors(dict(arguments)))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path)
        detail = f"{where}: {error.message}" if where else error.message
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[: MAX_DETAIL_CHARS - 3] + "..."
        return f"Invalid arguments for {spec.name}: {detail}"

    async def _on_result(
        self, call: _Call, result: Any, properties: FunctionCallResultProperties | None
    ) -> None:
        """What the function reported: checked, then passed on (final results settle the call)."""
        is_final = properties.is_final if properties else True
        name = call.spec.name
        if call.settled or (call.scope is not None and call.scope.expired()):
            logger.warning(f"Tool {name} [{call.call_id}] reported after it ended; dropped")
            return
        problem = self._unsendable(name, result)
        if not is_final:
            if problem is not None:
                logger.warning(f"Dropping an intermediate result of {name}: {problem}")
                return
            await self._deliver(call, result, properties)
            return
        if problem is not None:
            logger.warning(f"Tool {name} [{call.call_id}]: {problem}")
            await self._settle(call, ToolOutcome.FAILED, error=problem)
            return
        await self._settle(call, ToolOutcome.OK, result=result, properties=properties)

    def _unsendable(self, name: str, result: Any) -> str | None:
        """Why ``result`` cannot go to the model (not JSON, or too large), or None."""
        try:
            encoded = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return f"The tool {name} returned a result that is not JSON."
        size = len(encoded.encode("utf-8"))
        if size > self._max_result_bytes:
            return (
                f"The tool {name} returned a result that is too large "
                f"({size} bytes; the limit is {self._max_result_bytes})."
            )
        return None

    async def _settle_stopped(self, call: _Call) -> None:
        """Answer a call stopped by its deadline or by `cancel` (unless it already answered)."""
        if call.settled:
            return
        if call.cancel_outcome is not None:
            await self._settle(
                call,
                call.cancel_outcome,
                error=CANCELLED_RESULT["error"],
                properties=FunctionCallResultProperties(run_llm=False),
            )
            return
        assert call.spec.timeout_secs is not None  # a scope only expires with a deadline
        logger.warning(f"Tool {call.spec.name} [{call.call_id}] timed out")
        await self._settle(
            call,
            ToolOutcome.TIMED_OUT,
            error=f"The tool {call.spec.name} timed out after {call.spec.timeout_secs:g} s.",
        )

    async def _settle(
        self,
        call: _Call,
        outcome: ToolOutcome,
        *,
        result: Any = None,
        error: str | None = None,
        properties: FunctionCallResultProperties | None = None,
    ) -> None:
        """Record the call's end, then give the model its one final result.

        The event is recorded first so a processor downstream holds it by the time Pipecat's
        `FunctionCallResultFrame` for the call passes by.
        """
        if call.settled:
            return
        call.settled = True
        self._record(call, outcome, result=result, error=error)
        await self._deliver(call, result if error is None else {"error": error}, properties)

    def _record(
        self, call: _Call, outcome: ToolOutcome, *, result: Any = None, error: str | None = None
    ) -> None:
        event = ToolCallEvent(
            name=call.spec.name,
            call_id=call.call_id,
            arguments=call.arguments,
            outcome=outcome,
            result=result,
            error=error,
            started_at=call.started_at,
            duration_ms=(self._clock() - call.started) * 1000,
        )
        logger.debug(
            f"Tool {event.name} [{event.call_id}] {event.outcome} in {event.duration_ms:.0f} ms"
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:
                logger.opt(exception=exc).error(f"A tool-call listener failed on {event.name}")

    async def _deliver(
        self, call: _Call, payload: Any, properties: FunctionCallResultProperties | None
    ) -> None:
        """Send one result through Pipecat, with the tool's scheduling applied.

        Pipecat maps ``run_llm=False`` to SILENT and anything else to WHEN_IDLE, so the
        scheduling becomes ``run_llm`` wherever the function left it unset. INTERRUPT,
        which Pipecat cannot express, is also marked inside the response:
        `ToolSchedulingGeminiLiveLLMService` reads the mark and sends the response with
        ``scheduling=INTERRUPT``. Gemini's guides document ``scheduling`` inside the
        response too, so the mark is harmless where nothing reads it.
        """
        scheduling = call.spec.scheduling
        if scheduling is not None and (properties is None or properties.run_llm is None):
            run_llm = scheduling != "SILENT"
            properties = (
                FunctionCallResultProperties(run_llm=run_llm)
                if properties is None
                else dataclasses.replace(properties, run_llm=run_llm)
            )
        if scheduling == "INTERRUPT" and (properties is None or properties.run_llm is not False):
            payload = (
                {**payload, "scheduling": "INTERRUPT"}
                if isinstance(payload, dict)
                else {"value": payload, "scheduling": "INTERRUPT"}
            )
        await call.params.result_callback(payload, properties=properties)


class ToolSchedulingGeminiLiveLLMService(GeminiLiveLLMService):
    """Gemini Live whose NON_BLOCKING tools are declared, and scheduled, as they ask.

    Two gaps in Pipecat 1.14, both closed here with the smallest override:

    - The service connects in ``setup()``, before ``start()`` registers the handlers of the
      tools given to its constructor, so those tools are declared without ``behavior:
      NON_BLOCKING`` and Gemini runs them as blocking calls. The handlers are registered
      before connecting.
    - A NON_BLOCKING result goes out with ``scheduling`` WHEN_IDLE (or SILENT for
      ``run_llm=False``), written over any ``scheduling`` the response carries. Gemini also
      knows INTERRUPT: speak about the result at once, cutting off what the model is saying.
      A response that asks for it is sent with INTERRUPT, both as the `FunctionResponse`
      field and inside the response as Pipecat does; everything else goes through Pipecat.
    """

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Register the constructor's tools, then connect (which declares them)."""
        self._sync_registered_tool_handlers(None)
        await super().setup(setup)

    async def _tool_result(
        self,
        tool_call_id: str,
        tool_name: str,
        tool_result_message: dict[str, Any],
        *,
        is_final: bool = True,
        spoken: bool = True,
    ) -> None:
        """Send a tool response, with INTERRUPT scheduling when the response asks for it."""
        wants_interrupt = (
            spoken
            and tool_result_message.get("scheduling") == "INTERRUPT"
            and self._supports_non_blocking_tools
            and self._function_is_async(tool_name)
        )
        if not wants_interrupt:
            await super()._tool_result(
                tool_call_id, tool_name, tool_result_message, is_final=is_final, spoken=spoken
            )
            return
        session = cast(Any, self._session)
        if self._disconnecting or not session:
            return
        logger.debug(f"Sending tool result with INTERRUPT scheduling for {tool_call_id}")
        response = FunctionResponse(
            name=tool_name,
            id=tool_call_id,
            response=tool_result_message,
            scheduling=FunctionResponseScheduling.INTERRUPT,
            will_continue=not is_final,
        )
        try:
            await session.send_tool_response(function_responses=response)
        except Exception as exc:
            await self._handle_send_error(exc)
