"""How many spoken conversations one bot process holds in real time, ours beside stock Pipecat.

One emulator in load mode (`python -m emulator --load`: turns found by VAD alone, every answer
from speech rendered once, so the emulator is not what runs out) serves two bot processes made by
the same app as `python -m bots`: the assistant, and `bench.stock_bot` (stock Pipecat, none of our
code). For each N of the ramp, N real WebRTC sessions (aiortc, in `bench.load_client` worker
processes) talk to one bot, then the same N to the other, so both see the same machine at
nearly the same time. Per N and bot it prints the bot process's CPU (from /proc: total, and per
session over the seconds sessions were connected), RSS per session, turn latency p50 / p95, gaps
and late frames in the bot's audio, reconnects and errors, and the emulator's own CPU.

N_max is the largest N at which the bot's p95 turn latency stays within 1.5x of its N=1 and no
session hears a gap or an error. Then the assistant runs with `MAX_SESSIONS=N_max` and N_max + 5
users: the five over the cap are refused with 503 and Retry-After, and the rest keep real time.

    python -m bench.load                       # the ramp, the side-by-side table, the cap check
    python -m bench.load --steps 1,2,4 --step-secs 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.load_procs import BotProcess, Step, run_step
from bench.load_report import StepRow, markdown, n_max, row_of
from bots.emulator_process import start_emulator

WAV = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio" / "what_time_tokyo.wav"
)
DEFAULT_STEPS = "1,2,3,4,5,7,10,15,20,30,40"
WARMUP_SECS = 8.0


def ramp(
    bots: dict[str, BotProcess], emulator_pid: int, steps: list[int], secs: float
) -> list[StepRow]:
    """Each N for each bot in turn, until the assistant fails one (the stock bot runs it too)."""
    rows: list[StepRow] = []
    baseline: dict[str, float] = {}
    for bot in bots.values():
        # Not counted: a process's first session pays for imports and first-use set-up.
        run_step(Step(bot, 1, WARMUP_SECS, WAV), emulator_pid)
    for n in steps:
        failed = False
        for kind, bot in bots.items():
            step = run_step(Step(bot, n, secs, WAV), emulator_pid)
            row = row_of(kind, step, baseline.get(kind))
            if n == steps[0]:
                baseline[kind] = row.p95_ms
            rows.append(row)
            print(row.line(), file=sys.stderr, flush=True)
            failed |= kind == "assistant" and not row.holds
        if failed:
            break
    return rows


def cap_check(work: Path, emulator: tuple[str, Path, int], cap: int, secs: float) -> StepRow:
    """The assistant at `MAX_SESSIONS=cap` with cap + 5 users."""
    url, ca, pid = emulator
    with BotProcess.start("assistant", work / "cap", url, ca, max_sessions=cap) as bot:
        step = run_step(Step(bot, cap + 5, secs, WAV), pid)
    return row_of("assistant, capped", step, None, cap=cap)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument(
        "--steps", default=DEFAULT_STEPS, help=f"the ramp (default {DEFAULT_STEPS})"
    )
    parser.add_argument("--step-secs", type=float, default=30.0, help="talking time per step")
    parser.add_argument("--bots", default="assistant,stock", help="which bots, in order")
    parser.add_argument("--cap", type=int, help="MAX_SESSIONS for the cap check (default: N_max)")
    parser.add_argument("--no-cap-check", action="store_true")
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    args = parser.parse_args(argv)
    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    kinds = [k.strip() for k in args.bots.split(",") if k.strip()]
    if not steps or steps[0] < 1 or not set(kinds) <= {"assistant", "stock"}:
        parser.error("--steps takes positive counts; --bots takes assistant and/or stock")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        emu = start_emulator(
            work / "certs",
            extra_args=("--load", "--max-sessions", "1000", "--connection-lifetime-s", "0"),
        )
        try:
            url, ca, pid = emu.base_url, emu.ca, emu.process.pid
            with BotProcess.group(kinds, work, url, ca) as bots:
                rows = ramp(bots, pid, steps, args.step_secs)
            found = n_max(rows, "assistant")
            cap = args.cap or found
            capped = None
            if not args.no_cap_check and cap:
                capped = cap_check(work, (url, ca, pid), cap, args.step_secs)
                rows.append(capped)
        finally:
            emu.stop()
    cores = os.cpu_count() or 1
    found_by_bot = {kind: n_max(rows, kind) for kind in kinds}
    if args.json:
        summary = {"cores": cores, "n_max": found_by_bot, "rows": [asdict(r) for r in rows]}
        print(json.dumps(summary, indent=2))
    else:
        print(markdown(rows, found_by_bot, cores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
