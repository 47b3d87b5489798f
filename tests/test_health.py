"""`/healthz` and `/readyz` (issue 14, point 5): live while the process answers; ready only while a
new session would be taken: not when full, not while draining, not when Gemini cannot be reached.

The model's endpoint is a real TCP listener on 127.0.0.1 (and a closed port for "unreachable").
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from test_server import config, serve

from bots.server.health import PROBE_CACHE_SECS, Reachability
from bots.server.sessions import Limits
from testkit.clock import FakeClock
from testkit.waiting import until

pytestmark = pytest.mark.unit


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    """A listening TCP endpoint standing in for Gemini (the probe only connects)."""
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"https://127.0.0.1:{port}"


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"https://127.0.0.1:{port}"


async def test_a_fresh_server_is_live_and_ready(endpoint: str) -> None:
    http, _, _ = await serve(config(gemini_url=endpoint))
    async with http:
        live = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert (live.status_code, live.json()) == (200, {"ok": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


async def test_a_full_server_is_live_but_not_ready(endpoint: str) -> None:
    http, _, _ = await serve(
        config(gemini_url=endpoint, limits=Limits(max_sessions=1, max_per_client=1))
    )
    async with http:
        assert (await http.post("/start", json={})).status_code == 200
        ready = await http.get("/readyz")
        live = await http.get("/healthz")
    assert ready.status_code == 503 and ready.headers["retry-after"]
    assert ready.json() == {"ready": False, "reason": "full: every session slot is taken"}
    assert live.status_code == 200


async def test_a_draining_server_is_not_ready(endpoint: str) -> None:
    http, sessions, _ = await serve(config(gemini_url=endpoint))
    sessions.draining = True
    async with http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"].startswith("draining")


async def test_a_server_that_cannot_reach_gemini_is_not_ready_and_says_where() -> None:
    url = closed_port()
    http, _, _ = await serve(config(gemini_url=url))
    async with http:
        ready = await http.get("/readyz")
        live = await http.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["reason"] == f"Gemini cannot be reached at {url}"
    assert live.status_code == 200


async def test_the_probes_answer_a_balancer_that_calls_by_address(endpoint: str) -> None:
    http, _, _ = await serve(config(gemini_url=endpoint))
    async with http:
        probe = await http.get("/readyz", headers={"host": "10.1.2.3:7860"})
        other = await http.get("/client/", headers={"host": "10.1.2.3:7860"})
    assert probe.status_code == 200
    assert other.status_code == 400, "every other route keeps the Host check"


async def test_reachability_is_probed_at_most_once_per_interval() -> None:
    clock = FakeClock()
    accepted = 0

    async def count(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        probe = Reachability(url, clock=clock)
        assert all([await probe.reachable() for _ in range(5)])
        clock.advance(PROBE_CACHE_SECS)
        assert await probe.reachable()
        await until(lambda: accepted == 2, "the second probe's connection")
    assert accepted == 2
