"""Benchmark the Gemini Live emulator with the real google-genai SDK.

Run `python -m bench.emulator_bench` (or `make bench`). It starts the emulator as a user would, as a
child process (`python -m emulator --port 0 --cert-dir TMP`) in its own process group, reads its
`ready https://HOST:PORT ca=PATH` line, and measures three things through the unmodified SDK:

1. Session setup: sequential connects, each timed from `connect()` to the `setupComplete` the SDK
   waits for (TCP, TLS, WebSocket upgrade and the `setup` round trip).
2. Concurrent TEXT sessions: every session sends three text turns and reads each full answer; the
   turn latency runs from the user's text being sent to the first model text.
3. Concurrent AUDIO sessions in real time: every session streams a recorded question as 100 ms
   chunks paced at real time, then 1 s of silence, and receives the spoken answer (answering the
   `toolCall` that "What time is it in Tokyo?" brings). Per session it reports the turn latency
   (last chunk of the recording sent -> first model audio, and from the chunk holding the last
   loud audio, which is what a user waits), the real-time factor of the output, the worst
   underrun a player would hear, and how far the sender fell behind real time.

The emulator's CPU use during each phase is read from `/proc/PID/stat`. Results print as Markdown
tables on stdout; `--json PATH` writes them as JSON too. Logs go to stderr. The exit status is 1
when any session had an error (a failure, a timeout or a wrong answer).

The parts: `emulator_child` starts and stops the emulator, `emulator_load` measures setup and TEXT
sessions, `emulator_audio` the AUDIO sessions, `emulator_report` writes the tables and the JSON,
and `emulator_common` holds the workload and the CPU meter they share.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from google import genai
from loguru import logger

from bench.emulator_audio import measure_audio
from bench.emulator_child import emulator_process, read_log_tail
from bench.emulator_common import API_KEY, AUDIO_DIR, CpuMeter
from bench.emulator_load import measure_setup, measure_text
from bench.emulator_report import render, to_json, write_json
from emulator.client import http_options


async def run(args: argparse.Namespace) -> int:
    """Start the emulator, run the three measurements, print the report."""
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tmp:
        async with emulator_process(Path(tmp), args.emulator_log) as emulator:
            client = genai.Client(
                api_key=API_KEY, http_options=http_options(emulator.base_url, emulator.ca)
            )
            meter = CpuMeter(emulator.pid)
            logger.info(f"session setup: {args.setup_trials} sequential connects")
            setup = await measure_setup(client, args.setup_trials, meter)
            logger.info(f"text: {args.text_sessions} concurrent sessions")
            text = await measure_text(client, args.text_sessions, meter)
            logger.info(f"audio: {args.audio_sessions} concurrent real-time sessions")
            audio = await measure_audio(client, args.audio_sessions, args.audio_stagger_ms, meter)
            report = render(emulator, setup, text, audio)
            data = to_json(emulator, setup, text, audio)
            errors = setup.errors + text.errors + audio.errors
            if errors:
                logger.warning(
                    f"{len(errors)} errors; emulator log tail:\n" + read_log_tail(emulator.log_path)
                )
    print(report, flush=True)
    if args.json:
        write_json(args.json, data)
        logger.info(f"wrote {args.json}")
    return 1 if errors else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.emulator_bench",
        description="Benchmark the Gemini Live emulator with the real google-genai SDK.",
    )
    p.add_argument("--setup-trials", type=int, default=50, help="sequential connects (50)")
    p.add_argument("--text-sessions", type=int, default=50, help="concurrent TEXT sessions (50)")
    p.add_argument(
        "--audio-sessions", type=int, default=10, help="concurrent real-time AUDIO sessions (10)"
    )
    p.add_argument(
        "--audio-stagger-ms",
        type=int,
        default=0,
        help="start the audio sessions this far apart (default 0: all at once, the worst case)",
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    p.add_argument(
        "--emulator-log",
        type=Path,
        help="keep the emulator's stderr in this file (its level follows EMULATOR_LOG_LEVEL)",
    )
    p.add_argument("--log-level", default="INFO", help="log level on stderr (INFO)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    if not AUDIO_DIR.is_dir():
        logger.error(f"audio fixtures not found in {AUDIO_DIR}")
        sys.exit(2)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
