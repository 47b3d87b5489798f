"""Latency as a user hears it: end of speech in Chromium's fake microphone to the first bot audio.

Starts `python -m bots assistant` (with its emulator; no `GOOGLE_API_KEY`), sets the emulator's
latency control to 0, opens our page in headless Chromium with a fake microphone that asks
`--turns` questions (each followed by enough silence for its answer), and measures in the page:
the end of each question from the microphone's level, the first bot audio from the analyser on
the bot's remote track. Prints a Markdown table. Nothing leaves this machine; every request to
another host is blocked.

    python -m bench.browser_latency            # 5 turns
    python -m bench.browser_latency --turns 3

The harness is `testkit.browser`, shared with `tests/test_browser.py`. Needs Debian's chromium
at /usr/bin/chromium and the `playwright` package (never `playwright install`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from testkit.bot_server import EmulatorControl, bot_server
from testkit.browser.conversation import converse, latency_script
from testkit.browser.latency import markdown_table
from testkit.browser.page import CHROMIUM
from testkit.processes import HarnessError, leftovers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser_latency", description=__doc__)
    parser.add_argument("--turns", type=int, default=5, help="questions to ask (default 5)")
    parser.add_argument(
        "--first-audio-ms", type=int, default=0, help="the emulator's latency control (default 0)"
    )
    args = parser.parse_args(argv)
    if args.turns < 1:
        parser.error("--turns must be at least 1")
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="browser-latency-") as tmp:
        workdir = Path(tmp)
        try:
            with bot_server("assistant", workdir) as server:
                control = EmulatorControl(server)
                try:
                    control.set_first_audio_ms(args.first_audio_ms)
                finally:
                    control.close()
                conv = converse(server, latency_script(args.turns), workdir / "page")
                table = markdown_table(
                    conv,
                    title=(
                        "Browser latency: Chromium → SmallWebRTC → assistant bot → emulator "
                        f"(latency control {args.first_audio_ms} ms)"
                    ),
                    transcripts=server.transcripts,
                )
        except HarnessError as exc:
            print(f"browser latency run failed: {exc}", file=sys.stderr)
            return 1
    left = leftovers()
    print(table)
    print()
    print(
        f"blocked requests to other hosts: {len(conv.blocked)}; run took "
        f"{time.monotonic() - began:.0f} s"
    )
    if left:
        print(f"processes left behind: {[str(p) for p in left]}", file=sys.stderr)
        return 1
    return 0 if len(conv.latencies_ms) == args.turns else 1


if __name__ == "__main__":
    sys.exit(main())
