"""Pipecat's own `GeminiLiveLLMService` and the emulator agree on gemini-3.8-live's tools.

Pipecat 1.14 tags each declaration for 3.8 itself (`_tag_tool_behaviors`): a tool registered
normally is declared BLOCKING, one registered with `cancel_on_interruption=False` NON_BLOCKING, and
it answers the latter with `scheduling: WHEN_IDLE`. The emulator must run each as declared: the
first holds the model until its result, the second lets the turn end at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from emulator_helpers import wait_session
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import InputTextRawFrame, LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService, GeminiModalities
from pipecat.services.llm_service import FunctionCallParams
from pipecat.workers.runner import WorkerRunner

from emulator.client import http_options
from emulator.server import Running

pytestmark = [pytest.mark.emulator, pytest.mark.speech]  # 3.8 answers aloud: Piper runs

TIME = FunctionSchema(
    name="get_time",
    description="Get the current time in a city.",
    properties={"city": {"type": "string", "description": "The city"}},
    required=["city"],
)
NOTE = FunctionSchema(
    name="save_note",
    description="Remember a note for the user.",
    properties={"note": {"type": "string"}},
    required=["note"],
)


async def get_time(params: FunctionCallParams) -> None:
    await params.result_callback({"time": "22:15", "timezone": "Asia/Tokyo"})


async def save_note(params: FunctionCallParams) -> None:
    await params.result_callback({"saved": params.arguments["note"]})


def history_has(text: str) -> Any:
    return lambda s: s["open"] and any(text in t["text"] for t in s["history"])


async def test_pipecat_tags_a_sync_tool_blocking_and_an_async_one_non_blocking_and_both_run(
    emulator: Running,
) -> None:
    llm = GeminiLiveLLMService(
        api_key="k",
        http_options=http_options(emulator.base_url, emulator.certs.ca),
        settings=GeminiLiveLLMService.Settings(
            model="models/gemini-3.8-live", modalities=GeminiModalities.AUDIO
        ),
        tools=ToolsSchema(standard_tools=[TIME, NOTE]),
    )
    # Registered before the service connects, so its declarations are tagged from them.
    llm.register_function("get_time", get_time)
    llm.register_function("save_note", save_note, cancel_on_interruption=False)
    aggregators = LLMContextAggregatorPair(LLMContext())
    pipeline = Pipeline([aggregators.user(), llm, aggregators.assistant()])
    worker = PipelineWorker(
        pipeline, params=PipelineParams(), enable_rtvi=False, idle_timeout_secs=None
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        await worker.queue_frame(LLMRunFrame())
        opened = await wait_session(emulator, lambda s: s["open"] and s["config"] is not None)
        await worker.queue_frame(InputTextRawFrame(text="What time is it in Tokyo?"))
        await wait_session(emulator, history_has("22:15"))
        await worker.queue_frame(
            InputTextRawFrame(text="Please remember that the milk is in the fridge.")
        )
        summary = await wait_session(emulator, history_has("the milk is in the fridge"))
        summary = await wait_session(
            emulator,
            lambda s: (
                s["id"] == summary["id"]
                and len(s["tool_calls"]) == 2
                and all(c["status"] == "answered" for c in s["tool_calls"])
                and any("milk" in t["text"] for t in s["spoken"][2:])
            ),
        )
    finally:
        await worker.cancel()
        await asyncio.wait_for(task, 10)
    assert opened["model"] == "models/gemini-3.8-live"
    assert opened["config"]["tools"] == [
        {"name": "get_time", "behavior": "BLOCKING", "declared": "BLOCKING"},
        {"name": "save_note", "behavior": "NON_BLOCKING", "declared": "NON_BLOCKING"},
    ]
    time_call, note_call = summary["tool_calls"]
    assert (time_call["name"], time_call["blocking"]) == ("get_time", True)
    assert (note_call["name"], note_call["blocking"]) == ("save_note", False)
    assert [r["scheduling"] for r in note_call["responses"]] == ["WHEN_IDLE"]
    assert [r["will_continue"] for r in note_call["responses"]] == [False]
    spoken = [t["text"] for t in summary["spoken"]]
    # BLOCKING: no words before the call, then its result. NON_BLOCKING: a preamble ends the
    # turn while the call runs, then the result is spoken when it lands.
    assert "22:15" in spoken[0]
    assert spoken[1] and "milk" not in spoken[1], spoken
    assert "milk" in spoken[2] and "scheduling" not in spoken[2].lower(), spoken
