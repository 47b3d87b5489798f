"""`python -m bots.assistant` and `python -m bots.vision`: Pipecat's way of starting a bot,
served the way `python -m bots` serves it.

Pipecat's examples start a bot with `python -m <bot module> -t webrtc`, which hands the module to
Pipecat's dev runner. That runner starts no emulator, so with no `GOOGLE_API_KEY` the bot would
dial Google with no key, and its "Open:" line leads to Pipecat's prebuilt page, which loads
Daily's call bundle from a CDN and so does not work offline. Here the runner's flags that mean
the same thing for us (`-t webrtc|daily`, `--host`, `--port`) are handed to `bots.__main__`
(the emulator when there is no key, our page, the banner); any other flag or transport is
refused in one line that names `make run`, before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

TRANSPORTS = ("webrtc", "daily")
"""The runner's transports `python -m bots` serves; Pipecat's default (all of them) is webrtc."""


class Unsupported(ValueError):
    """A runner flag or transport that `python -m bots` does not serve: the one line to print."""


def make_run(bot: str) -> str:
    """The `make run` command that starts `bot`."""
    return "make run" if bot == "assistant" else f"make run ARGS={bot}"


def parser_for(bot: str) -> argparse.ArgumentParser:
    """The runner flags we take, under the names and defaults Pipecat's runner gives them."""
    parser = argparse.ArgumentParser(
        prog=f"python -m bots.{bot}",
        description=(
            f"Start the {bot} bot as `python -m bots {bot}` (`{make_run(bot)}`) does: the local "
            "emulator when GOOGLE_API_KEY is unset, and our page. Of Pipecat's runner flags, "
            "these are understood; any other is refused."
        ),
    )
    # Not `choices`: argparse would answer a wrong one with a usage block, not the one line.
    parser.add_argument(
        "-t", "--transport", default="webrtc", help="webrtc (default, our page) or daily"
    )
    parser.add_argument("--host", default="localhost", help="address to listen on")
    parser.add_argument("--port", type=int, default=7860)
    return parser


def translate(bot: str, argv: Sequence[str]) -> list[str]:
    """The `python -m bots` arguments for a Pipecat runner command line.

    Raises:
        Unsupported: a transport other than `TRANSPORTS`, or a flag we do not take.
    """
    args, rest = parser_for(bot).parse_known_args(list(argv))
    if args.transport not in TRANSPORTS:
        raise Unsupported(
            f"python -m bots.{bot} serves -t webrtc (our page, the default) or -t daily, "
            f"not -t {args.transport}: start the bot with `{make_run(bot)}`"
        )
    if rest:
        raise Unsupported(
            f"python -m bots.{bot} takes only -t, --host and --port of Pipecat's runner flags, "
            f"not {' '.join(rest)}: start the bot with `{make_run(bot)}`"
        )
    return [bot, "-t", args.transport, "--host", args.host, "--port", str(args.port)]


def main(bot: str, argv: Sequence[str] | None = None) -> int:
    """Run `python -m bots` for `bot` with the translated flags; 2 and one line if refused."""
    try:
        translated = translate(bot, sys.argv[1:] if argv is None else argv)
    except Unsupported as exc:
        print(exc, file=sys.stderr)
        return 2
    from bots.__main__ import main as run_bots

    return run_bots(translated)
