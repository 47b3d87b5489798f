"""Latency as a user hears it, and where it goes: end of speech in Chromium → first bot audio.

Two bots take turns, each a process of its own served by the same app as `python -m bots`
(`bench.latency_bot`): the assistant, and stock Pipecat's `GeminiLiveLLMService`
(`bench.stock_bot`). Each conversation gets a fresh emulator (`python -m emulator`, real Whisper
and Piper, Gemini's VAD timing unless `--silence-ms` says otherwise), so neither bot hears
answers the other one's conversation left in Piper's cache. For each, headless Chromium opens
our page with a fake microphone that asks `--turns` questions (each followed by enough silence
for its answer); the page measures the end of each question from the microphone's level and the
first bot audio from the analyser on the bot's remote track. Nothing leaves this machine; every
request to another host is blocked.

Where the time goes, per turn (`bench.latency_breakdown`), comes from three records on the one
clock of this machine (epoch seconds): the page's, turned to epoch with `performance.timeOrigin`;
the bot's, from `observers.edge_times.EdgeTimes` (when each audio frame crossed its input and
output transports), written per session; and the emulator's per-turn marks (VAD end of turn,
Whisper, the brain, a tool's round trip, Piper, the first chunk on the socket), from
`GET /emulator/sessions`. Two chunks are found on both sides of the socket by a digest of their
PCM, so no clocks or counters are shared between the processes. The page's jitter buffer comes
from its receiver's statistics (`getStats`), read after each answer.

    python -m bench.browser_latency                 # 5 turns, assistant then stock Pipecat
    python -m bench.browser_latency --rounds 2      # twice each, alternating
    python -m bench.browser_latency --bots assistant --silence-ms 300

The harness is `testkit.browser`, shared with `tests/test_browser.py`. Needs Debian's chromium
at /usr/bin/chromium and the `playwright` package (never `playwright install`). Timings on a
shared machine are noisy: compare the two bots of one run, and run it more than once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.latency_breakdown import Breakdown, breakdown, jitter_between
from bench.latency_report import per_turn_table, side_by_side
from bots.emulator_process import EmulatorProcess, start_emulator
from testkit.bot_server import BotServer, launch, stopped_at_exit
from testkit.browser.conversation import Conversation, converse, latency_script
from testkit.browser.page import CHROMIUM, PageSession, Turn
from testkit.processes import REPO, HarnessError, free_port, leftovers
from testkit.waiting import wait_for

KINDS = ("assistant", "stock")
EDGES_TIMEOUT_S = 20.0


@dataclass
class BotRun:
    """One bot's conversation, its raw records, and each answered turn's breakdown."""

    kind: str
    conv: Conversation
    parts: list[Breakdown | None] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)

    def keep(self, path: Path) -> None:
        """Write the raw records (page times, the emulator's timings, the bot's edge times)."""
        path.write_text(json.dumps(self.records, indent=1), encoding="utf-8")


def read_edges(folder: Path, timeout: float = EDGES_TIMEOUT_S) -> dict[str, list[list[Any]]]:
    """The edge times the bot wrote when its one session ended."""

    def written() -> Path | None:
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return files[-1] if files else None

    try:
        path = wait_for(written, "the bot's edge times", timeout, poll=0.1)
    except AssertionError:
        return {}
    data: dict[str, list[list[Any]]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def run_bot(kind: str, emulator: EmulatorProcess, turns: int, workdir: Path) -> BotRun:
    """Start bot `kind` against the emulator, hold the scripted conversation, take it apart."""
    workdir.mkdir(parents=True, exist_ok=True)
    edges_dir = workdir / "edges"
    port = free_port()
    server: BotServer = launch(
        [sys.executable, "-m", "bench.latency_bot", kind, "--port", str(port)],
        workdir,
        port=port,
        name=kind,
        cwd=REPO,
        env={
            "EMULATOR_URL": emulator.base_url,
            "EMULATOR_CA": str(emulator.ca),
            "EDGE_TIMES_DIR": str(edges_dir),
        },
    )
    server.emulator = (emulator.base_url, emulator.ca)
    stats: list[dict[str, float] | None] = []
    with stopped_at_exit(server):
        server.wait_until_serving()

        def after_ready(session: PageSession) -> None:
            stats.append(session.audio_stats())

        def during(session: PageSession, _index: int, _turn: Turn) -> None:
            stats.append(session.audio_stats())

        conv = converse(
            server,
            latency_script(turns),
            workdir / "page",
            after_ready=after_ready,
            during=during,
            transcript_appear_timeout=3.0 if kind == "assistant" else 0.0,
        )
        edges = read_edges(edges_dir)
    timings = [t for s in conv.emulator_sessions for t in s.get("turn_timings", [])]
    run = BotRun(kind, conv)
    run.records = {
        "kind": kind,
        "turns": [
            {
                "clip": t.clip.name,
                "spoke_end": conv.probe.epoch(t.spoke.end),
                "heard": None if t.answer is None else conv.probe.epoch(t.answer.start),
            }
            for t in conv.turns
        ],
        "audio_stats": stats,
        "turn_timings": timings,
        "edges": edges,
    }
    for index, turn in enumerate(conv.turns):
        if turn.answer is None:
            run.parts.append(None)
            continue
        jitter = jitter_between(stats[index], stats[index + 1]) if len(stats) > index + 1 else None
        run.parts.append(
            breakdown(
                conv.probe.epoch(turn.spoke.end),
                conv.probe.epoch(turn.answer.start),
                timings,
                edges,
                jitter,
            )
        )
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser_latency", description=__doc__)
    parser.add_argument("--turns", type=int, default=5, help="questions per conversation (5)")
    parser.add_argument("--rounds", type=int, default=1, help="conversations per bot (1)")
    parser.add_argument("--bots", default="assistant,stock", help="which bots, in order")
    parser.add_argument(
        "--silence-ms",
        type=int,
        help="the emulator's end-of-turn silence (--default-silence-ms); unset: Gemini's 500",
    )
    parser.add_argument(
        "--first-audio-ms", type=int, default=0, help="the emulator's added delay (default 0)"
    )
    parser.add_argument("--keep", type=Path, help="write each conversation's raw records here")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.bots.split(",") if k.strip()]
    if args.turns < 1 or args.rounds < 1:
        parser.error("--turns and --rounds must be at least 1")
    if not kinds or not set(kinds) <= set(KINDS):
        parser.error("--bots takes assistant and/or stock")
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    emulator_args = ["--first-audio-ms", str(args.first_audio_ms)]
    if args.silence_ms is not None:
        emulator_args += ["--default-silence-ms", str(args.silence_ms)]
    began = time.monotonic()
    runs: list[BotRun] = []
    with tempfile.TemporaryDirectory(prefix="browser-latency-") as tmp:
        workdir = Path(tmp)
        for round_ in range(args.rounds):
            for kind in kinds:
                work = workdir / f"{kind}-{round_}"
                emulator = start_emulator(work / "certs", extra_args=tuple(emulator_args))
                try:
                    runs.append(run_bot(kind, emulator, args.turns, work))
                except HarnessError as exc:
                    print(f"browser latency run failed: {exc}", file=sys.stderr)
                    return 1
                finally:
                    emulator.stop()
                if args.keep is not None:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    runs[-1].keep(args.keep / f"{kind}-{round_ + 1}.json")
                print(f"{kind} round {round_ + 1} done", file=sys.stderr, flush=True)
    left = leftovers()
    silence = args.silence_ms if args.silence_ms is not None else 500
    for run in runs:
        print(per_turn_table(run.kind, run.conv, run.parts))
        print()
    print(side_by_side([(r.kind, r.conv, r.parts) for r in runs], silence_ms=silence))
    print()
    blocked = sum(len(r.conv.blocked) for r in runs)
    print(f"blocked requests to other hosts: {blocked}; run took {time.monotonic() - began:.0f} s")
    if left:
        print(f"processes left behind: {[str(p) for p in left]}", file=sys.stderr)
        return 1
    answered = all(len(r.conv.latencies_ms) == args.turns for r in runs)
    return 0 if answered else 1


if __name__ == "__main__":
    sys.exit(main())
