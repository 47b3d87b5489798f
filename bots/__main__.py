"""`python -m bots` (what `make run` starts): the emulator when there is no key, a bot, the page.

With no `GOOGLE_API_KEY` it starts the local emulator as a child process and points the bot at
it; with a key the same command talks to Gemini. Then it runs Pipecat's dev runner with our own
browser page at `/client`, which works with no internet.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bots.emulator_process import EmulatorProcess, start_emulator
from bots.settings import Settings, SettingsError, load_settings

BOTS = ("assistant", "vision")
_bot: Callable[[Any], Awaitable[None]] | None = None


async def bot(runner_args: Any) -> None:
    """The runner finds this in `__main__` and calls it for each session."""
    assert _bot is not None, "python -m bots sets the bot before starting the runner"
    await _bot(runner_args)


def banner(settings: Settings, url: str, emulator: str | None) -> str:
    """The lines a user sees first: what the bot talks to, and where to open it."""
    if emulator:
        line = (
            f"Model: LOCAL GEMINI LIVE EMULATOR at {emulator} (not Gemini; no GOOGLE_API_KEY set). "
            "Set GOOGLE_API_KEY in .env to talk to Gemini."
        )
    else:
        line = f"Model: Gemini Live ({settings.gemini_model}) with your GOOGLE_API_KEY."
    rule = "=" * 78
    return f"{rule}\n{line}\nOpen {url} in a browser.\n{rule}"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m bots", add_help=True)
    parser.add_argument("bot", nargs="?", default="assistant", choices=BOTS)
    parser.add_argument("-t", "--transport", default="webrtc", choices=("webrtc", "daily"))
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=7860)
    return parser.parse_known_args(argv)


def _exit_cleanly(signum: int, _frame: object) -> None:
    # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown; leave through `finally`.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    global _bot
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    emulator: EmulatorProcess | None = None
    try:
        if settings.uses_emulator and not settings.emulator_url:
            emulator = start_emulator(settings.data_dir / "emulator-certs")
            os.environ["EMULATOR_URL"] = emulator.base_url
            os.environ["EMULATOR_CA"] = str(emulator.ca)
        _bot = importlib.import_module(f"bots.{args.bot}").bot

        from pipecat.runner import run as runner
        from starlette.staticfiles import StaticFiles

        from bots.web import DIST_DIR

        # Mounted before the runner adds its own /client, so ours wins (routes match in order).
        runner.app.mount("/client", StaticFiles(directory=DIST_DIR, html=True), name="client")
        url = f"http://{args.host}:{args.port}/client/"
        shown = emulator.base_url if emulator else settings.emulator_url
        print(banner(settings, url, shown), flush=True)
        sys.argv = [
            sys.argv[0],
            "-t",
            args.transport,
            "--host",
            args.host,
            "--port",
            str(args.port),
            *rest,
        ]
        runner.main()
        return 0
    finally:
        if emulator is not None:
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
