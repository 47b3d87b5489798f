"""`python -m bench.latency_bot {assistant,stock} --port P`: a bot for `bench.browser_latency`.

The assistant (`bots.assistant`) or stock Pipecat (`bench.stock_bot`), served by the same app as
`python -m bots` (`bots.server.assemble.make_app`: our page, its SmallWebRTC routes), with one
observer more: `observers.edge_times.EdgeTimes`, which writes when each audio frame crossed the
pipeline's edges to `EDGE_TIMES_DIR/<session>.json` when the session ends. The model's endpoint
comes from the environment (`EMULATOR_URL`, `EMULATOR_CA`: the benchmark's emulator), so both
bots talk to the same one.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

from pipecat.runner.types import RunnerArguments

from bots.logs import setup_logging
from bots.server.assemble import make_app
from bots.server.webrtc import BotFunction
from bots.settings import load_settings
from observers.edge_times import EdgeTimes

KINDS = ("assistant", "stock")
EDGE_TIMES_DIR = "EDGE_TIMES_DIR"


def timed_bot(kind: str, folder: Path) -> BotFunction:
    """The bot `kind`, each of its sessions watched by an `EdgeTimes` writing into `folder`."""

    async def bot(runner_args: RunnerArguments) -> None:
        edges = EdgeTimes(folder / f"{uuid.uuid4().hex}.json")
        if kind == "assistant":
            from bots.assistant import run

            await run(runner_args, observers=[edges])
        else:
            from bench.stock_bot import bot as stock

            await stock(runner_args, observers=[edges])

    return bot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_bot")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    folder = os.environ.get(EDGE_TIMES_DIR)
    if not folder:
        parser.error(f"{EDGE_TIMES_DIR} must name the folder for the edge times")
    settings = load_settings()
    setup_logging(settings.log_level)
    served = make_app(
        settings, timed_bot(args.kind, Path(folder)), transport="webrtc", host="127.0.0.1"
    )
    served.serve("127.0.0.1", args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
