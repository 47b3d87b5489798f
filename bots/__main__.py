"""`python -m bots` (what `make run` starts): the emulator when there is no key, a bot, the page.

With no `GOOGLE_API_KEY` it starts the local emulator as a child process and points the bot at
it; with a key the same command talks to Gemini. Then it runs Pipecat's dev runner with our own
browser page at `/client`, which works with no internet.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from bots import lifecycle
from bots.emulator_process import EmulatorProcess, start_emulator
from bots.settings import Settings, SettingsError, load_settings

BOTS = ("assistant", "vision")
_bot: Callable[[Any], Awaitable[None]] | None = None


_sessions: set[asyncio.Future[None]] = set()


async def bot(runner_args: Any) -> None:
    """The runner finds this in `__main__` and calls it for each session.

    uvicorn waits for running sessions (background tasks of the offer request) before it exits,
    so a connected browser would keep Ctrl-C from stopping the server: each session runs as its
    own task, which SIGINT/SIGTERM cancel (Pipecat's runner then tears the pipeline down).
    """
    assert _bot is not None, "python -m bots sets the bot before starting the runner"
    _end_sessions_on_exit_signals()
    session = asyncio.ensure_future(_bot(runner_args))
    _sessions.add(session)
    try:
        await session
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not (session.cancelled() and current is not None and not current.cancelling()):
            raise  # this request itself was cancelled, not just the session
    finally:
        _sessions.discard(session)


_signals_seen = 0


def _on_stop_signal() -> None:
    """First signal: end sessions gracefully; second: cancel them and their tasks now."""
    global _signals_seen
    _signals_seen += 1
    if _signals_seen == 1:
        task = asyncio.ensure_future(lifecycle.end_all())
        task.add_done_callback(lambda _t: _cancel_sessions())
    else:
        _cancel_sessions()


def _cancel_sessions() -> None:
    for session in list(_sessions):
        session.cancel()


def _end_sessions_on_exit_signals() -> None:
    """Chain a session-ending step onto the server's SIGINT/SIGTERM handlers.

    uvicorn installs its handlers while it serves and restores ours (`_exit_cleanly`) after, so
    this is done from inside a session, once.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous) or getattr(previous, "ends_sessions", False):
            continue

        def handler(
            signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            loop.call_soon_threadsafe(_on_stop_signal)
            previous(signum, frame)

        handler.ends_sessions = True  # type: ignore[attr-defined]
        signal.signal(sig, handler)


def banner(settings: Settings, url: str, emulator: str | None) -> str:
    """The lines a user sees first: what the bot talks to, and where to open it."""
    if emulator and settings.uses_emulator:
        line = (
            f"Model: LOCAL GEMINI LIVE EMULATOR at {emulator} (not Gemini; no GOOGLE_API_KEY set). "
            "Set GOOGLE_API_KEY in .env to talk to Gemini."
        )
    elif emulator:
        line = (
            f"Model: LOCAL GEMINI LIVE EMULATOR at {emulator} (not Gemini; EMULATOR_URL is set). "
            "Unset EMULATOR_URL to talk to Gemini with your GOOGLE_API_KEY."
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
    """Leave through `main`'s `finally` (which stops the emulator) with exit code 0.

    uvicorn re-raises the signals it caught once its server has shut down, still inside its event
    loop: there the server is already on its way out, and raising would only print a traceback.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise SystemExit(0) from None


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
        from bots.transcripts_page import transcripts_router

        runner.app.include_router(transcripts_router(settings.transcripts))
        url = f"http://{args.host}:{args.port}/client/"
        if args.transport == "daily":
            from bots.daily.rooms import DailyRoomError
            from bots.daily.routes import install_daily_routes

            if {"-d", "--direct"} & set(rest):
                print("-d/--direct makes a public room; not with -t daily", file=sys.stderr)
                return 2
            try:
                # Before runner.main() adds its own /start and /daily (routes match in order).
                install_daily_routes(runner.app, settings, bot)
            except DailyRoomError as exc:
                print(exc, file=sys.stderr)
                return 2
            url = f"http://{args.host}:{args.port}/daily"
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
            *(["--no-dialin"] if args.transport == "daily" else []),
            *rest,
        ]
        runner.main()
        return 0
    finally:
        if emulator is not None:
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
