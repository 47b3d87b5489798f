"""The one way tests and benchmarks call a tool: as Pipecat's `LLMService` calls a direct function.

`DirectFunctionWrapper(fn).invoke(args=..., params=FunctionCallParams(...))`, with a
`result_callback` that records what the model would be sent. No LLM service or pipeline worker
is behind the params: a tool that reaches for them is not a plain direct function.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams


@dataclass
class Delivered:
    """One result the model would be sent."""

    result: Any
    properties: FunctionCallResultProperties | None


@dataclass
class Call:
    """One call made like Pipecat makes it: what was delivered, and the params it was given."""

    params: FunctionCallParams
    delivered: list[Delivered]


def make_call(name: str, arguments: dict[str, Any], call_id: str = "call-1") -> Call:
    """The params Pipecat would pass to the function, recording what it reports."""
    delivered: list[Delivered] = []

    async def result_callback(
        result: Any, *, properties: FunctionCallResultProperties | None = None
    ) -> None:
        delivered.append(Delivered(result, properties))

    params = FunctionCallParams(
        function_name=name,
        tool_call_id=call_id,
        arguments=arguments,
        llm=cast(Any, None),
        pipeline_worker=cast(Any, None),
        context=LLMContext(),
        result_callback=result_callback,
    )
    return Call(params, delivered)


async def call_like_pipecat(
    tool: Any, call_id: str = "call-1", **arguments: Any
) -> list[Delivered]:
    """Invoke a tool as `LLMService._run_function_call` does; return what was sent."""
    call = make_call(tool.__name__, arguments, call_id)
    await DirectFunctionWrapper(tool).invoke(args=arguments, params=call.params)
    return call.delivered


def start_call(tool: Any, call_id: str = "call-1", **arguments: Any) -> tuple[asyncio.Task, Call]:
    """Start a call in its own task (to cancel it, or to let it run while the test acts)."""
    call = make_call(tool.__name__, arguments, call_id)
    task = asyncio.create_task(
        DirectFunctionWrapper(tool).invoke(args=arguments, params=call.params)
    )
    return task, call


async def result_of(tool: Any, **arguments: Any) -> Any:
    """Invoke a tool as Pipecat does and return the one result it reported."""
    delivered = await call_like_pipecat(tool, **arguments)
    assert len(delivered) == 1, "a direct function must report exactly one result"
    return delivered[0].result
