"""`python -m bots` (what `make run` starts): the emulator when there is no key, a bot, the page.

With no `GOOGLE_API_KEY` it starts the local emulator as a child process and points the bot at
it; with a key the same command talks to Gemini. Then it serves our own browser page at
`/client` (which works with no internet) and the session routes of one transport
(`bots.server`). `python -m bots token --user NAME` mints a session token.
`python -m bots.assistant` and `python -m bots.vision`, Pipecat's way of starting a bot, come
here too, with the runner's flags translated (`bots.pipecat_runner`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from bots.emulator_process import EmulatorProcess, start_emulator
from bots.logs import setup_logging
from bots.settings import Settings, SettingsError, load_settings

BOTS = ("assistant", "vision")


def banner(settings: Settings, url: str, emulator: str | None, *, open_access: bool) -> str:
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
    lines = [line]
    if open_access:
        lines.append(
            "WARNING: ALLOW_OPEN_ACCESS=true: anyone who can reach this address can start "
            "sessions on your key. Set SESSION_SECRET instead."
        )
    lines.append(f"Open {url} in a browser.")
    rule = "=" * 78
    return "\n".join([rule, *lines, rule])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bots", description=__doc__)
    parser.add_argument("bot", nargs="?", default="assistant", choices=BOTS)
    parser.add_argument("-t", "--transport", default="webrtc", choices=("webrtc", "daily"))
    parser.add_argument("--host", default="localhost", help="address to listen on")
    parser.add_argument("--port", type=int, default=7860)
    return parser.parse_args(argv)


def token_command(argv: list[str]) -> int:
    """`python -m bots token --user NAME [--minutes N]`: print a session token."""
    from bots.server.identity import mint

    parser = argparse.ArgumentParser(prog="python -m bots token", description=token_command.__doc__)
    parser.add_argument("--user", required=True, help="whose notes and transcripts these are")
    parser.add_argument("--minutes", type=float, default=60.0, help="lifetime (default 60)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.session_secret is None:
        print("SESSION_SECRET is not set: set it (in .env) to mint tokens", file=sys.stderr)
        return 2
    try:
        print(mint(settings.session_secret.get_secret_value(), args.user, args.minutes))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def open_to_anyone(settings: Settings, host: str) -> bool:
    """Whether other machines can reach the server and no session token is asked of them.

    In a container the server listens on all interfaces, but what decides who can reach it is
    the address its port is published on (`EXPOSED_HOST`).
    """
    from bots.server.guard import is_loopback

    return not is_loopback(settings.exposed_host or host) and settings.session_secret is None


def refuse_open_bind(settings: Settings, host: str) -> str | None:
    """Why the server must not start on `host`, or None: a network bind needs session tokens."""
    if not open_to_anyone(settings, host) or settings.allow_open_access:
        return None
    where = f"EXPOSED_HOST {settings.exposed_host}" if settings.exposed_host else f"--host {host}"
    return (
        f"{where} is reachable from other machines: set SESSION_SECRET (and give users "
        "tokens from `python -m bots token --user NAME`), or ALLOW_OPEN_ACCESS=true to serve "
        "without them"
    )


def _exit_cleanly(signum: int, _frame: object) -> None:
    """A stop signal before the server runs (or after it stopped): leave through `finally`."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["token"]:
        return token_command(argv[1:])
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    args = parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if (refusal := refuse_open_bind(settings, args.host)) is not None:
        print(refusal, file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    if settings.enable_tracing:
        from bots.tracing import configure_tracing

        configure_tracing(settings)
    emulator: EmulatorProcess | None = None
    try:
        if settings.uses_emulator and not settings.emulator_url:
            emulator = start_emulator(settings.data_dir / "emulator-certs")
            os.environ["EMULATOR_URL"] = emulator.base_url
            os.environ["EMULATOR_CA"] = str(emulator.ca)
        return serve(settings, args, emulator)
    finally:
        if emulator is not None:
            emulator.stop()


def serve(settings: Settings, args: argparse.Namespace, emulator: EmulatorProcess | None) -> int:
    """Build the app for the chosen bot and transport, print the banner, serve until stopped."""
    from bots.daily.rooms import DailyRoomError
    from bots.server.assemble import make_app

    bot = importlib.import_module(f"bots.{args.bot}").bot
    try:
        served = make_app(
            settings,
            bot,
            transport=args.transport,
            host=args.host,
            gemini_url=emulator.base_url if emulator else None,
        )
    except DailyRoomError as exc:
        print(exc, file=sys.stderr)
        return 2
    page = "daily" if args.transport == "daily" else "client/"
    url = f"http://{args.host}:{args.port}/{page}"
    shown = emulator.base_url if emulator else settings.emulator_url
    open_access = open_to_anyone(settings, args.host)
    print(banner(settings, url, shown, open_access=open_access), flush=True)
    served.serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
