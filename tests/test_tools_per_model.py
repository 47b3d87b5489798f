"""How the assistant declares its tools on each model, as the emulator receives the setup.

Every tool states its behaviour, so what it does never depends on a model's default: on
`gemini-3.8-live` (NON_BLOCKING unless declared otherwise) the tools whose answer the reply needs
are declared BLOCKING and `remember_note` NON_BLOCKING; the extended-thinking model accepts only
NON_BLOCKING declarations; gemini-3.1 runs every call blocking.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from emulator_helpers import wait_session
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner

from bots.assistant import assistant_llm
from bots.settings import Settings
from emulator.server import Running

pytestmark = pytest.mark.emulator

NEEDED_BY_THE_REPLY = ("get_current_time", "calculate", "recall_notes", "forget_notes")


async def declared(emulator: Running, tmp_path: Path, model: str) -> dict[str, str]:
    """The behaviour of each tool in the setup the assistant's stage sends on `model`."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        gemini_model=model,
        emulator_url=emulator.base_url,
        emulator_ca=emulator.certs.ca,
    )
    llm, _ = assistant_llm(settings, user_id="ana")
    worker = PipelineWorker(Pipeline([llm]), enable_rtvi=False, idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        session = await wait_session(
            emulator, lambda s: s["config"] is not None and s["model"].endswith(model)
        )
    finally:
        await worker.cancel()
        await asyncio.wait_for(task, 10)
    assert session["close_code"] in (None, 1000), session["close_reason"]
    return {tool["name"]: tool["behavior"] for tool in session["config"]["tools"]}


async def test_on_3_8_the_tools_the_reply_needs_block_and_saving_a_note_does_not(
    emulator: Running, tmp_path: Path
) -> None:
    behaviors = await declared(emulator, tmp_path, "gemini-3.8-live")
    # Untagged, these would run NON_BLOCKING on 3.8: BLOCKING here is the explicit declaration.
    assert {name: behaviors[name] for name in NEEDED_BY_THE_REPLY} == dict.fromkeys(
        NEEDED_BY_THE_REPLY, "BLOCKING"
    )
    assert behaviors["remember_note"] == "NON_BLOCKING"


async def test_on_the_extended_thinking_model_every_tool_is_non_blocking(
    emulator: Running, tmp_path: Path
) -> None:
    behaviors = await declared(emulator, tmp_path, "gemini-3.8-live-extended-thinking")
    assert set(behaviors.values()) == {"NON_BLOCKING"} and len(behaviors) == 5


async def test_on_3_1_every_tool_blocks(emulator: Running, tmp_path: Path) -> None:
    behaviors = await declared(emulator, tmp_path, "gemini-3.1-flash-live-preview")
    assert set(behaviors.values()) == {"BLOCKING"} and len(behaviors) == 5
