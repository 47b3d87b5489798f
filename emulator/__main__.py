"""`gemini-live-emulator` / `python -m emulator`: serve the Live API locally until stopped."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from loguru import logger

DEFAULT_CERT_DIR = (
    Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
    / "gemini-live-agent"
    / "emulator-certs"
)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


SILENCE_MS_RANGE = (1, 60_000)
"""`--default-silence-ms`: what a setup's `silenceDurationMs` may be, less the 0 that means
"the default"."""


def _silence_ms(text: str) -> int:
    low, high = SILENCE_MS_RANGE
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of ms") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high} ms")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite, non-negative number")
    return value


_NUMERIC_OPTIONS: tuple[tuple[str, Callable[[str], float], float, str], ...] = (
    (
        "--pace",
        _seconds,
        1.0,
        "audio output speed vs real time; 0 sends each turn at once (default 1)",
    ),
    ("--lead-ms", _count, 200, "how far output audio runs ahead of real time"),
    ("--first-audio-ms", _count, 0, "added delay before each answer"),
    (
        "--default-silence-ms",
        _silence_ms,
        500,
        "silence that ends a user turn when the setup sets no silenceDurationMs (default 500, "
        "Gemini's); lower answers sooner than Gemini would",
    ),
    (
        "--connection-lifetime-s",
        _seconds,
        600.0,
        "send goAway, then close, after this long; 0: never",
    ),
    ("--goaway-lead-s", _seconds, 10.0, "goAway time_left (default 10)"),
    ("--handle-ttl-s", _seconds, 7200.0, "resumption handle lifetime"),
    ("--max-sessions", _count, 100, "connections open at once; one more is closed with 1013"),
    (
        "--max-turn-audio-s",
        _seconds,
        120.0,
        "audio one user turn may buffer; more closes the connection with 1009",
    ),
)
"""The numeric options: flag, type, default and help."""


LOAD_TRANSCRIPT = "Hello, can you hear me?"
"""What every spoken turn is heard as with `--load`: a question the brain answers without tools."""


def render_load_answer() -> None:
    """Synthesize the brain's answer to `LOAD_TRANSCRIPT` into the synthesizer's cache, so no
    turn under load runs Piper (an answer depends on neither the history nor the tools)."""
    from emulator import brain
    from emulator.session.speaker import speech_pieces
    from emulator.speech import Synthesizer, split_sentences

    answer = brain.respond(LOAD_TRANSCRIPT, [], history=[], system_instruction="", image=None)
    if isinstance(answer, brain.Say):
        for piece, _sentence in speech_pieces(split_sentences(answer.text)):
            Synthesizer.shared().synthesize_sync(piece)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gemini-live-emulator",
        description="A local server speaking the Gemini Live API (BidiGenerateContent) over TLS.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    p.add_argument(
        "--cert-dir", type=Path, default=DEFAULT_CERT_DIR, help="where the CA and certificate live"
    )
    p.add_argument(
        "--cert-host",
        action="append",
        default=[],
        help="extra host name or address for the certificate (repeatable), e.g. a compose service",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("EMULATOR_API_KEY") or None,
        help="accept only this API key, and ask the control API for it (default: "
        "$EMULATOR_API_KEY; unset, any non-empty key is accepted and the control API is open "
        "on loopback only)",
    )
    p.add_argument("--scenario", type=Path, help="a scenario file (YAML or JSON) scripting turns")
    p.add_argument(
        "--replay",
        type=Path,
        metavar="CASSETTE",
        help="answer every connection with this recorded session (RECORD_DIR's cassettes); a "
        "client that differs from the recording is closed with 1008 naming the difference",
    )
    for flag, kind, default, text in _NUMERIC_OPTIONS:
        p.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument(
        "--cancel-blocking-on-input",
        action="store_true",
        help="3.8 family: new input cancels an unanswered BLOCKING call (Vertex's guide)",
    )
    p.add_argument(
        "--polite-interrupt",
        action="store_true",
        help="3.8 family: an INTERRUPT result waits while the user speaks (Vertex's guide)",
    )
    p.add_argument(
        "--load",
        action="store_true",
        help="load testing: every spoken turn is heard as the same greeting (no Whisper) and "
        "answered with speech rendered once at start, so the emulator is not the bottleneck",
    )
    p.add_argument(
        "--no-warm", action="store_true", help="load Whisper, Piper and Silero on first use"
    )
    p.add_argument("--log-level", default=os.environ.get("EMULATOR_LOG_LEVEL", "INFO"))
    return p


async def serve(args: argparse.Namespace) -> int:
    from cassettes import CassetteError, read_cassette
    from emulator import speech
    from emulator.scenario import ScenarioError, load_scenario
    from emulator.server import Emulator, start

    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
        replay = read_cassette(args.replay) if args.replay else None
    except (ScenarioError, CassetteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    if args.load:
        await loop.run_in_executor(None, render_load_answer)
        await loop.run_in_executor(None, speech.silero.warm_up)
    elif not args.no_warm:
        await asyncio.gather(
            loop.run_in_executor(None, speech.Transcriber.shared().warm_up),
            loop.run_in_executor(None, speech.Synthesizer.shared().warm_up),
            loop.run_in_executor(None, speech.silero.warm_up),
        )
    emulator = Emulator(
        api_key=args.api_key,
        scenario=scenario,
        pace=args.pace,
        lead_s=args.lead_ms / 1000,
        first_audio_ms=args.first_audio_ms,
        connection_lifetime_s=args.connection_lifetime_s or None,
        goaway_lead_s=args.goaway_lead_s,
        handle_ttl_s=args.handle_ttl_s,
        cancel_blocking_on_input=args.cancel_blocking_on_input,
        polite_interrupt=args.polite_interrupt,
        max_sessions=args.max_sessions,
        max_turn_audio_s=args.max_turn_audio_s,
        default_silence_ms=args.default_silence_ms,
        heard_as=LOAD_TRANSCRIPT if args.load else None,
        replay=replay,
    )
    try:
        running = await start(
            emulator,
            host=args.host,
            port=args.port,
            cert_dir=args.cert_dir,
            cert_hosts=tuple(args.cert_host),
        )
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    # Handle signals before announcing readiness: whoever reads the ready line may stop us at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(running.ready_line, flush=True)
    logger.info(
        f"Gemini Live emulator on {running.base_url} (local emulator, not Gemini); "
        f"trust {running.certs.ca}" + (f"; replaying {args.replay}" if replay is not None else "")
    )
    await stop.wait()
    logger.info("stopping")
    await running.stop()
    return 0


def setup_logging(level: str) -> None:
    """The emulator's logs to stderr at `level`. Tracebacks name the failing line, never its
    local variables (which hold keys, tokens and audio)."""
    logger.remove()
    logger.add(sys.stderr, level=level.upper(), diagnose=False)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    sys.exit(asyncio.run(serve(args)))


if __name__ == "__main__":
    main()
