"""The processes of `bench.load`: bot servers in their own process groups, and client workers.

CPU comes from /proc (user + system time of the bot process and its threads), RSS from
/proc/PID/status, sampled while the step runs; everything started is ended by process group.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.emulator_common import process_cpu_seconds
from testkit.bot_server import BotServer, clean_env, launch, stopped_at_exit
from testkit.processes import REPO, free_port, stop_group

SESSIONS_PER_WORKER = 6
"""Client sessions one worker process holds (aiortc's Opus costs the clients as much as the bot)."""
START_TIMEOUT_S = 60.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


SCRAPED = {
    "gemini_agent_output_audio_gaps": "bot_gaps",
    "gemini_agent_event_loop_stalls": "loop_stalls",
}
"""What the bench reads from the bot's own `/metrics` (Prometheus names without `_total`)."""


def scrape(base_url: str) -> dict[str, float]:
    """The bot's own counts of gaps in the voice it sent and of event-loop stalls."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    found = dict.fromkeys(SCRAPED.values(), 0.0)
    for family in text_string_to_metric_families(text):
        if family.name in SCRAPED:
            found[SCRAPED[family.name]] = sum(s.value for s in family.samples)
    return found


@dataclass
class BotProcess:
    """`python -m bench.load_bot KIND` on a free port, against the bench's emulator: a
    `testkit.bot_server.BotServer`, with the process's RSS before any session."""

    kind: str
    server: BotServer
    idle_rss_mb: float = 0.0

    @property
    def pid(self) -> int:
        return self.server.process.pid

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, kind: str, work: Path, emulator_url: str, ca: Path, *, max_sessions: int = 1000
    ) -> Iterator[BotProcess]:
        (work / kind).mkdir(parents=True, exist_ok=True)
        port = free_port()
        server = launch(
            [sys.executable, "-m", "bench.load_bot", kind, "--port", str(port)],
            work / kind,
            port=port,
            name=kind,
            cwd=REPO,
            env={
                "EMULATOR_URL": emulator_url,
                "EMULATOR_CA": str(ca),
                "MAX_SESSIONS": str(max_sessions),
                "MAX_SESSIONS_PER_CLIENT": "1000",
                "LOG_LEVEL": "WARNING",
            },
        )
        with stopped_at_exit(server):
            server.wait_until_serving(START_TIMEOUT_S)
            yield cls(kind, server, rss_mb(server.process.pid))

    @classmethod
    @contextlib.contextmanager
    def group(
        cls, kinds: list[str], work: Path, emulator_url: str, ca: Path
    ) -> Iterator[dict[str, BotProcess]]:
        with contextlib.ExitStack() as stack:
            yield {k: stack.enter_context(cls.start(k, work, emulator_url, ca)) for k in kinds}


@dataclass(frozen=True)
class Step:
    bot: BotProcess
    sessions: int
    secs: float
    wav: Path


@dataclass
class StepResult:
    """One step's raw measurements: per-session results and the processes' resources."""

    sessions: list[dict[str, Any]]
    wall_s: float
    bot_cpu_s: float
    emulator_cpu_s: float
    peak_rss_mb: float
    idle_rss_mb: float
    bot_gaps: float = 0.0
    """Gaps the bot's output transport made (its `/metrics`), beside those the clients heard."""
    loop_stalls: float = 0.0
    clients_cpu_s: float = 0.0
    """CPU of the load generator's worker processes: the clients' share of the same cores."""
    worker_failures: list[str] = field(default_factory=list)


def run_step(step: Step, emulator_pid: int) -> StepResult:
    """N sessions against one bot, in workers of `SESSIONS_PER_WORKER`; waits for them all."""
    counts = [SESSIONS_PER_WORKER] * (step.sessions // SESSIONS_PER_WORKER)
    if step.sessions % SESSIONS_PER_WORKER:
        counts.append(step.sessions % SESSIONS_PER_WORKER)
    before = scrape(step.bot.base_url)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    bot_cpu, emu_cpu = process_cpu_seconds(step.bot.pid), process_cpu_seconds(emulator_pid)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.load_client",
                "--base",
                step.bot.base_url,
                "--wav",
                str(step.wav),
                "--sessions",
                str(count),
                "--secs",
                str(step.secs),
                "--seed",
                str(index),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
            start_new_session=True,
        )
        for index, count in enumerate(counts)
    ]
    peak = 0.0
    try:
        while any(w.poll() is None for w in workers):
            peak = max(peak, rss_mb(step.bot.pid))
            time.sleep(0.5)
            if time.monotonic() - started > step.secs + 120:
                break
    finally:
        for worker in workers:
            stop_group(worker, timeout=5)
    wall = time.monotonic() - started
    sessions: list[dict[str, Any]] = []
    failures = []
    for worker in workers:
        out = worker.stdout.read().decode() if worker.stdout else ""
        try:
            sessions += json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            failures.append(f"worker exited {worker.returncode} with no result")
    after = scrape(step.bot.base_url)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    clients_cpu = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
    return StepResult(
        clients_cpu_s=clients_cpu,
        bot_gaps=after["bot_gaps"] - before["bot_gaps"],
        loop_stalls=after["loop_stalls"] - before["loop_stalls"],
        sessions=sessions,
        wall_s=wall,
        bot_cpu_s=process_cpu_seconds(step.bot.pid) - bot_cpu,
        emulator_cpu_s=process_cpu_seconds(emulator_pid) - emu_cpu,
        peak_rss_mb=peak,
        idle_rss_mb=step.bot.idle_rss_mb,
        worker_failures=failures,
    )
