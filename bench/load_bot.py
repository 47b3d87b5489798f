"""`python -m bench.load_bot {assistant,stock} --port P`: one bot process for `bench.load`.

Served by the same app as `python -m bots` (`bots.server.assemble.make_app`: the page's SmallWebRTC
routes, the session book, the probes), so the two bots differ only in their pipelines. The model's
endpoint comes from the environment (`EMULATOR_URL`, `EMULATOR_CA`: the bench's load-mode emulator).
"""

from __future__ import annotations

import argparse
import sys

from bots.logs import setup_logging
from bots.server.assemble import make_app
from bots.settings import load_settings

KINDS = ("assistant", "stock")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_bot")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    setup_logging(settings.log_level)
    if args.kind == "assistant":
        from bots.assistant import bot
    else:
        from bench.stock_bot import bot
    served = make_app(settings, bot, transport="webrtc", host="127.0.0.1")
    served.serve("127.0.0.1", args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
