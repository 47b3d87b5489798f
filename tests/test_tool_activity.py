"""The tool-activity message says when a call runs in the background (a NON_BLOCKING tool on a
model that has them), so the page can show it running while the bot goes on talking."""

from __future__ import annotations

from typing import Any

import pytest
from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.frames.frames import FunctionCallInProgressFrame
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test

from processors.tool_calls import ToolCallProcessor
from toolcalls.registry import ToolRegistry

pytestmark = pytest.mark.unit


async def look_up(params: FunctionCallParams) -> None:
    """Look something up."""
    await params.result_callback({"ok": True})


@tool_options(cancel_on_interruption=False)
async def save(params: FunctionCallParams) -> None:
    """Save something."""
    await params.result_callback({"saved": True})


async def started_message(
    name: str, *, non_blocking_tools: bool, every_call_non_blocking: bool = False
) -> dict[str, Any]:
    registry = ToolRegistry()
    registry.wrap(look_up)
    registry.wrap(save)
    start = FunctionCallInProgressFrame(function_name=name, tool_call_id="c1", arguments={})
    down, _ = await run_test(
        ToolCallProcessor(
            registry,
            non_blocking_tools=non_blocking_tools,
            every_call_non_blocking=every_call_non_blocking,
        ),
        frames_to_send=[start],
    )
    (message,) = [f.data for f in down if isinstance(f, RTVIServerMessageFrame)]
    return message


@pytest.mark.parametrize(
    ("name", "non_blocking_tools", "every_call", "background"),
    [
        ("save", True, False, True),
        ("look_up", True, False, False),
        ("save", False, False, False),  # gemini-3.1: the same tool runs as a blocking one
        # gemini-3.8-live-extended-thinking runs every call NON_BLOCKING.
        ("look_up", True, True, True),
    ],
)
async def test_a_call_is_a_background_one_only_when_the_model_runs_it_non_blocking(
    name: str, non_blocking_tools: bool, every_call: bool, background: bool
) -> None:
    message = await started_message(
        name, non_blocking_tools=non_blocking_tools, every_call_non_blocking=every_call
    )
    assert message["status"] == "started" and message["name"] == name
    assert message.get("background", False) is background
