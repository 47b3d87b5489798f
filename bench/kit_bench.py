"""How long a test written with the kit takes: typed and spoken conversations, timed whole.

Run `python -m bench.kit_bench`. It starts the emulator once, as the kit's `live_emulator`
fixture does (a child process on a free port), warms it with one conversation (Piper and, for
the spoken rows, Whisper load once per test run), then times each workload `--runs` times from
starting the bot to the end of its block, exactly what a test's body costs:

- text, 3 turns: three typed questions, each waited to the end of its answer (tool call,
  result, spoken reply), with expectations on each;
- spoken, 1 turn / 3 turns: questions said with Piper's voice and sent as 16 kHz microphone
  audio faster than real time, heard by the emulator's VAD and Whisper;
- the baseline beside them, in the same run: the same three typed turns straight through the
  google-genai SDK to the same emulator (no Pipecat, no bot), the floor a kit test stands on.

Prints a Markdown table (median, min, max seconds). Times are measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loguru import logger

from bottest import LiveEmulator, run_bot, start_live_emulator

TYPED = ("What is 6 times 7?", "What time is it in Tokyo?", "What is 12 plus 30?")
SPOKEN = ("What is twelve times seven?", "What time is it in Tokyo?", "What is nine plus ten?")


async def typed(emulator: LiveEmulator, folder: Path) -> None:
    async with run_bot(emulator, folder) as bot:
        for question in TYPED:
            turn = await bot.type(question)
            turn.expect.tool_call()
            turn.expect.reply()


def spoken(count: int) -> Callable[[LiveEmulator, Path], Awaitable[None]]:
    async def run(emulator: LiveEmulator, folder: Path) -> None:
        async with run_bot(emulator, folder) as bot:
            for question in SPOKEN[:count]:
                turn = await bot.say(question)
                turn.expect.tool_call()
                turn.expect.reply()

    return run


async def sdk_typed(emulator: LiveEmulator, folder: Path) -> None:
    """The floor under the kit: the same questions straight through google-genai, no Pipecat,
    each tool call answered at once, each answer read to its turnComplete."""
    from google import genai
    from google.genai import types

    from emulator.client import http_options

    client = genai.Client(
        api_key="bench", http_options=http_options(emulator.base_url, emulator.ca)
    )
    tools: list[Any] = [
        types.Tool(function_declarations=[_declaration(*CALC), _declaration(*CLOCK)])
    ]
    config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO], tools=tools)
    async with client.aio.live.connect(model="gemini-3.8-live", config=config) as session:
        for question in TYPED:
            await session.send_realtime_input(text=question)
            async for message in session.receive():
                if message.tool_call and message.tool_call.function_calls:
                    responses = [
                        types.FunctionResponse(id=c.id, name=c.name, response={"result": "ok"})
                        for c in message.tool_call.function_calls
                    ]
                    await session.send_tool_response(function_responses=responses)
                if message.server_content and message.server_content.turn_complete:
                    break


def _declaration(name: str, description: str, parameter: str) -> Any:
    from google.genai import types

    schema = types.Schema(
        type=types.Type.OBJECT, properties={parameter: types.Schema(type=types.Type.STRING)}
    )
    return types.FunctionDeclaration(name=name, description=description, parameters=schema)


CALC = ("calculate", "Evaluate an arithmetic expression with a calculator.", "expression")
CLOCK = ("get_current_time", "Get the current time in a place.", "place")


WORKLOADS: dict[str, Callable[[LiveEmulator, Path], Awaitable[None]]] = {
    "kit: text, 3 turns": typed,
    "kit: spoken, 1 turn": spoken(1),
    "kit: spoken, 3 turns": spoken(3),
    "baseline: the SDK alone, text, 3 turns": sdk_typed,
}


async def measure(runs: int, only: list[str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        root = Path(tmp)
        emulator = start_live_emulator(root / "certs")
        try:
            await spoken(1)(emulator, root / "warm")  # Piper and Whisper load once per run
            for name, workload in WORKLOADS.items():
                if only and not any(o in name for o in only):
                    continue
                for n in range(runs):
                    folder = root / f"{len(times)}-{n}"
                    started = time.perf_counter()
                    await workload(emulator, folder)
                    times.setdefault(name, []).append(time.perf_counter() - started)
        finally:
            emulator.stop()
    return times


def table(times: dict[str, list[float]]) -> str:
    lines = ["| workload | runs | median s | min s | max s |", "|---|---|---|---|---|"]
    for name, values in times.items():
        lines.append(
            f"| {name} | {len(values)} | {statistics.median(values):.2f} | "
            f"{min(values):.2f} | {max(values):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kit_bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each workload")
    parser.add_argument("--only", action="append", default=[], help="workloads whose name has this")
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    print(table(asyncio.run(measure(args.runs, args.only))))


if __name__ == "__main__":
    main()
