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

The wrapper keeps the function's name, signature, docstring and `@tool_options` options
(`functools.wraps`, then `tool_options` again with the registry's later deadline), so Pipecat
declares the same tool and still treats a `cancel_on_interruption=False` tool as NON_BLOCKING.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import (
    DirectFunction,
    DirectFunctionWrapper,
    tool_options,
)
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.services.llm_service import FunctionCallParams

from processors.frames import ToolCallEvent, ToolOutcome
from toolcalls.checks import (
    RepeatCounter,
    arguments_schema,
    invalid_arguments,
    unsendable_result,
)
from toolcalls.spec import (
    BACKSTOP_GRACE_SECS,
    CANCELLED_RESULT,
    DEFAULT_MAX_REPEATS,
    DEFAULT_MAX_RESULT_BYTES,
    SCHEDULINGS,
    RunningCall,
    Scheduling,
    ToolCallListener,
    ToolSpec,
    tool_options_of,
)

__all__ = ["ToolRegistry"]


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
        self._clock = clock
        self._specs: dict[str, ToolSpec] = {}
        self._listeners: list[ToolCallListener] = []
        self._repeats = RepeatCounter(max_repeats)
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
                WHEN_IDLE or SILENT. INTERRUPT needs the Gemini Live stage of `bots.gemini_live`.

        Returns:
            The wrapped function, to list in the service's or the context's ``tools``.

        Raises:
            ValueError: A bad option, a name already wrapped, or ``scheduling`` on a blocking
                tool (Gemini only schedules NON_BLOCKING results).
        """
        wrapper = DirectFunctionWrapper(function)  # validates and derives Pipecat's schema
        if wrapper.name in self._specs:
            raise ValueError(f"A tool named {wrapper.name} is already registered")
        if scheduling is not None and scheduling not in SCHEDULINGS:
            raise ValueError(f"scheduling must be one of {', '.join(SCHEDULINGS)}")
        declared = tool_options_of(function)
        cancel_on_interruption = declared.cancel_on_interruption
        if scheduling is not None and cancel_on_interruption:
            raise ValueError(
                f"{wrapper.name}: scheduling applies to NON_BLOCKING tools only; "
                "decorate it with @tool_options(cancel_on_interruption=False)"
            )
        timeout = (
            timeout_secs
            if timeout_secs is not None
            else declared.timeout_secs or self._timeout_secs
        )
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout_secs must be positive")
        schema = arguments_schema(wrapper)
        spec = ToolSpec(
            name=wrapper.name,
            function=function,
            timeout_secs=timeout,
            show_arguments=show_arguments,
            scheduling=scheduling,
            cancel_on_interruption=cancel_on_interruption,
            schema=schema,
            validator=Draft202012Validator(schema),
        )
        self._specs[spec.name] = spec

        @functools.wraps(function)
        async def run_tool(params: FunctionCallParams, **arguments: Any) -> None:
            await self._run(spec, params, arguments)

        if timeout is not None:
            # Pipecat reads this as the tool's own deadline, which beats the service default.
            tool_options(
                run_tool,
                cancel_on_interruption=cancel_on_interruption,
                timeout_secs=timeout + BACKSTOP_GRACE_SECS,
                cancellable_by_llm=declared.cancellable_by_llm,
            )
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

    @property
    def listeners(self) -> tuple[ToolCallListener, ...]:
        """The listeners called for every finished call, in the order they were added."""
        return tuple(self._listeners)

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

        A service that also cancels the call through Pipecat (the Gemini Live stage does)
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
        refusal = self._repeats.refusal(spec.name, arguments)
        if refusal is not None:
            await self._settle(call, ToolOutcome.REFUSED_REPEAT, error=refusal)
            return
        problem = invalid_arguments(spec, arguments)
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

    async def _on_result(
        self, call: _Call, result: Any, properties: FunctionCallResultProperties | None
    ) -> None:
        """What the function reported: checked, then passed on (final results settle the call)."""
        is_final = properties.is_final if properties else True
        name = call.spec.name
        if call.settled or (call.scope is not None and call.scope.expired()):
            logger.warning(f"Tool {name} [{call.call_id}] reported after it ended; dropped")
            return
        problem = unsendable_result(name, result, self._max_result_bytes)
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
        the Gemini Live stage (`bots.gemini_live.tool_calls`) reads the mark and sends the
        response with ``scheduling=INTERRUPT``. Gemini's guides document ``scheduling`` inside the
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
