"""How the assistant declares its tools on each model, as the emulator receives the setup.

Every tool states its behaviour on the 3.8 family, so what it does never depends on a model's
default: on `gemini-3.8-live` (NON_BLOCKING unless declared otherwise) the tools whose answer the
reply needs are declared BLOCKING and `remember_note` NON_BLOCKING; the extended-thinking model
accepts only NON_BLOCKING declarations, so every tool is declared NON_BLOCKING; gemini-3.1 runs
every call blocking, whatever is declared. What is checked is the declaration on the wire (the
emulator's `declared`, `""` when unset), not the model's default.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import wait_session
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner
from resilience_harness import run_bot

from bots.assistant import assistant_llm
from bots.settings import Settings
from emulator.server import Running
from testkit.waiting import until

pytestmark = pytest.mark.emulator

NEEDED_BY_THE_REPLY = ("get_current_time", "calculate", "recall_notes", "forget_notes")
CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")


async def setup_sent(emulator: Running, tmp_path: Path, model: str) -> dict[str, Any]:
    """The emulator's summary of the setup the assistant's stage sends on `model`."""
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
    return session


async def declared(emulator: Running, tmp_path: Path, model: str) -> dict[str, str]:
    """The `behavior` each tool's declaration carries (`""`: none) on `model`."""
    session = await setup_sent(emulator, tmp_path, model)
    return {tool["name"]: tool["declared"] for tool in session["config"]["tools"]}


async def test_on_3_8_the_tools_the_reply_needs_block_and_saving_a_note_does_not(
    emulator: Running, tmp_path: Path
) -> None:
    behaviors = await declared(emulator, tmp_path, "gemini-3.8-live")
    # Untagged, these would run NON_BLOCKING on 3.8: BLOCKING here is the explicit declaration.
    assert behaviors == {
        **dict.fromkeys(NEEDED_BY_THE_REPLY, "BLOCKING"),
        "remember_note": "NON_BLOCKING",
    }


async def test_on_the_extended_thinking_model_every_tool_is_declared_non_blocking(
    emulator: Running, tmp_path: Path
) -> None:
    behaviors = await declared(emulator, tmp_path, "gemini-3.8-live-extended-thinking")
    # NON_BLOCKING is also this model's default: `declared` shows it is stated, not assumed.
    assert behaviors == dict.fromkeys([*NEEDED_BY_THE_REPLY, "remember_note"], "NON_BLOCKING")


async def test_on_3_1_every_tool_blocks(emulator: Running, tmp_path: Path) -> None:
    session = await setup_sent(emulator, tmp_path, "gemini-3.1-flash-live-preview")
    # 3.1 is synchronous only and ignores `behavior`: Pipecat declares none, and every call
    # runs as the model's default, BLOCKING (remember_note too, see `adapt_tools`).
    tools = session["config"]["tools"]
    assert [(t["behavior"], t["declared"]) for t in tools] == [("BLOCKING", "")] * 5


@pytest.mark.speech
async def test_on_the_extended_thinking_model_the_time_its_tool_found_reaches_the_answer(
    emulator: Running, tmp_path: Path
) -> None:
    """The model runs the time tool NON_BLOCKING, and so does the bot, as the declaration says:
    the model does not wait for it, and the result, scheduled WHEN_IDLE, is what it then says."""
    async with run_bot(emulator, tmp_path, gemini_model="gemini-3.8-live-extended-thinking") as bot:
        await bot.ask("What time is it in Tokyo?")

        def answered() -> list[dict[str, Any]] | None:
            calls = [c for c in (bot.live() or {}).get("tool_calls", []) if c["responses"]]
            spoken = [t["text"] for t in bot.history() if t["role"] == "model"]
            return calls if calls and any(CLOCK.search(t) for t in spoken) else None

        (call,) = await until(answered, "the time, spoken after its tool answered")
    assert (call["name"], call["blocking"], call["status"]) == (
        "get_current_time",
        False,
        "answered",
    )
    # The bot itself scheduled the result, as Pipecat does for a NON_BLOCKING call only.
    assert [r["response"].get("scheduling") for r in call["responses"]] == ["WHEN_IDLE"]
