"""End to end: a real Prometheus server scrapes `python -m bots` through a spoken conversation, and
its HTTP API says what the bot counted.

The bot runs as a user starts it (`testkit.bot_server`, its own emulator) with `ADMIN_TOKEN` set,
so `/metrics` needs the bearer token: one scrape job sends it (`authorization: credentials`), a
second one does not and must be refused. Prometheus is Debian's `prometheus` package; when
`/usr/bin/prometheus` is missing the test installs it with apt-get under `CI=true` or as root (its
service is not started), and otherwise skips; under `CI=true` it never skips. Prometheus runs in
its own process group on a free 127.0.0.1 port, scraping every second, and is stopped by that
process group. Every wait is on a condition, with a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import AUDIO_DIR
from docker_harness import apt_install

from testkit.bot_server import BotServer, bot_server
from testkit.processes import HarnessError, free_port, proc_of, record, stop_group
from testkit.waiting import until_async, wait_for
from testkit.webrtc.client import WebRTCClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CI = os.environ.get("CI", "").strip().lower() == "true"
PROMETHEUS = Path("/usr/bin/prometheus")
ADMIN_TOKEN = "prometheus-test-operator-token-0123456789"
TURN_TIMEOUT = 45.0
CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
QUERY_WITHIN = 30.0
"""Scrapes are a second apart: a value the bot has counted is queryable within a few seconds."""


def _skip_or_fail(reason: str) -> None:
    if CI:
        pytest.fail(f"CI=true: the Prometheus test may not be skipped: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def prometheus_binary() -> Path:
    """Debian's Prometheus, installed with apt-get if need be."""
    if not PROMETHEUS.exists():
        if not (CI or os.geteuid() == 0):
            _skip_or_fail(
                f"{PROMETHEUS} is missing: install Debian's prometheus (apt-get install "
                "prometheus), or run as root or with CI=true to have the test install it"
            )
        if shutil.which("apt-get") is None:
            _skip_or_fail("apt-get is not available to install prometheus")
        try:
            apt_install(["prometheus"])
        except HarnessError as exc:
            _skip_or_fail(f"apt-get install prometheus failed: {exc}")
        if not PROMETHEUS.exists():
            _skip_or_fail(f"apt-get installed prometheus, but {PROMETHEUS} is still missing")
    return PROMETHEUS


def scrape_config(bot: BotServer) -> str:
    """Two jobs on the bot's `/metrics`, every second: with the operator's token, and without."""
    target = {"targets": [f"127.0.0.1:{bot.port}"]}
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "bot",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials": ADMIN_TOKEN},
                "static_configs": [target],
            },
            {"job_name": "bot-without-token", "static_configs": [target]},
        ],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


@contextlib.contextmanager
def prometheus(binary: Path, bot: BotServer, workdir: Path) -> Iterator[str]:
    """Prometheus scraping `bot`, in its own process group; its base URL. Always stopped."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(scrape_config(bot))
    config.chmod(0o600)  # it holds the token
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record([p for p in [proc_of(process.pid)] if p is not None])
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(trust_env=False, timeout=2) as http:

            def ready() -> bool:
                if process.poll() is not None:
                    raise HarnessError(f"prometheus exited:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    return http.get(f"{base}/-/ready").status_code == 200
                return False

            wait_for(ready, "Prometheus to be ready", 60, poll=0.2)
        yield base
    finally:
        stop_group(process)


async def query(http: httpx.AsyncClient, promql: str) -> float | None:
    """The value of an instant query that yields one series, or None while it yields none."""
    response = await http.get("/api/v1/query", params={"query": promql})
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert len(result) <= 1, f"{promql} gave {len(result)} series: {result}"
    return float(result[0]["value"][1]) if result else None


async def until_query(
    http: httpx.AsyncClient, promql: str, ok: Callable[[float], bool], what: str
) -> float:
    """Query until `promql` has a value that is `ok` (bounded); that value."""
    value: float | None = None

    async def settled() -> tuple[float] | None:
        """The value, boxed so that an `ok` 0 counts as found; None to query again."""
        nonlocal value
        value = await query(http, promql)
        return (value,) if value is not None and ok(value) else None

    try:
        # Polling every 0.2 s: a scrape is a second apart.
        (found,) = await until_async(settled, f"{promql} to be {what}", QUERY_WITHIN, poll=0.2)
    except AssertionError:
        raise AssertionError(f"{promql} was {value} after {QUERY_WITHIN:g} s, not {what}") from None
    return found


async def at_least(http: httpx.AsyncClient, promql: str, least: float) -> float:
    return await until_query(http, promql, lambda v: v >= least, f"≥ {least:g}")


async def equal(http: httpx.AsyncClient, promql: str, expected: float) -> float:
    return await until_query(http, promql, lambda v: v == expected, f"{expected:g}")


async def test_prometheus_scrapes_a_conversations_sessions_latency_tool_call_and_connection(
    prometheus_binary: Path, tmp_path: Path
) -> None:
    with (
        bot_server("assistant", tmp_path / "bot", ADMIN_TOKEN=ADMIN_TOKEN) as bot,
        prometheus(prometheus_binary, bot, tmp_path / "prometheus") as base,
    ):
        async with WebRTCClient(bot.base_url) as client:
            await client.connect()
            started = time.monotonic()
            ended = await client.say(AUDIO_DIR / "what_time_tokyo.wav")
            await client.wait_for_bot_audio(after=ended, timeout=TURN_TIMEOUT)
            await client.wait_for(
                lambda m: (
                    m.at >= started and m.type == "bot-transcription" and CLOCK.search(m.text)
                ),
                TURN_TIMEOUT,
            )
            async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=5) as http:
                # While the conversation is on, a scrape sees its session running.
                assert await at_least(http, "gemini_agent_sessions_active", 1) == 1
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=5) as http:
            await equal(http, 'up{job="bot"}', 1)  # the scrape with the token works
            await equal(http, 'up{job="bot-without-token"}', 0)  # without it: 401
            await at_least(http, "gemini_agent_sessions_started_total", 1)
            await at_least(http, "gemini_agent_turn_latency_seconds_count", 1)
            await at_least(http, 'sum(gemini_agent_tool_calls_total{name="get_current_time"})', 1)
            await at_least(
                http, 'gemini_agent_tool_calls_total{name="get_current_time",outcome="ok"}', 1
            )
            await at_least(http, "gemini_agent_gemini_connects_total", 1)
            await at_least(http, "gemini_agent_sessions_ended_total", 1)
            await equal(http, "gemini_agent_sessions_active", 0)
