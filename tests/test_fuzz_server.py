"""Random requests against every route of a running `python -m bots`: never a 5xx, never a
traceback, and the bot still holds a conversation afterwards.

The bot runs as a user starts it (its own emulator, no key), with session tokens on so the
authenticated paths are reached too. Hypothesis draws methods, paths, headers, body sizes and
shapes: JSON of any shape and depth, SDP-like text, bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import AUDIO_DIR
from fuzz_strategies import deep, json_values, methods, paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.server.identity import mint
from testkit.bot_server import BotServer, start_bot, stopped_at_exit
from testkit.webrtc.client import WebRTCClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SECRET = "fuzzing-session-secret-0123456789"
PATHS = (
    "/",
    "/client/",
    "/client/app.js",
    "/start",
    "/sessions/{sid}/api/offer",
    "/sessions/nope/api/offer",
    "/transcripts",
    "/transcripts/{sid}",
    "/metrics",
    "/transcripts/../../etc/passwd",
    "/api/offer",
    "/docs",
    "/daily",
    "/healthz",
    "/readyz",
)

start_like = st.fixed_dictionaries(
    {},
    optional={
        "transport": st.sampled_from(["webrtc", "daily", "", "x" * 300]) | json_values,
        "enableDefaultIceServers": json_values,
        "body": json_values,
    },
)
sdp_lines = st.lists(
    st.sampled_from(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=rtpmap:111 opus/48000/2",
            "c=IN IP4 0.0.0.0",
            "a=mid:0",
            "garbage",
        ]
    )
    | st.text(max_size=30),
    max_size=12,
)
offer_like = st.fixed_dictionaries(
    {},
    optional={
        "sdp": sdp_lines.map("\r\n".join) | json_values,
        "type": st.sampled_from(["offer", "answer", ""]) | json_values,
        "pc_id": st.text(max_size=20) | json_values,
        "restart_pc": json_values,
        "candidates": st.lists(json_values, max_size=3),
    },
)
bodies = (
    st.none()
    | json_values.map(json.dumps)
    | start_like.map(json.dumps)
    | offer_like.map(json.dumps)
    | deep
    | st.binary(max_size=2000)
    | st.integers(min_value=60_000, max_value=120_000).map(lambda n: "x" * n)
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Origin": st.sampled_from(["https://evil.example", "null", "http://127.0.0.1"]),
        "Content-Type": st.sampled_from(
            [
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ]
        ),
        "Authorization": st.sampled_from(["Bearer", "Bearer x", "Basic Zm9vOmJhcg==", "{token}"]),
        "Accept": st.sampled_from(["text/html", "*/*", "application/json"]),
    },
)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotServer]:
    workdir = tmp_path_factory.mktemp("fuzz")
    with stopped_at_exit(
        start_bot(
            None, workdir, SESSION_SECRET=SECRET, MAX_SESSIONS="50", MAX_SESSIONS_PER_CLIENT="50"
        )
    ) as server:
        server.wait_until_serving()
        yield server


@pytest.fixture(scope="module")
def token() -> str:
    return mint(SECRET, "fuzzer", 60)


@pytest.fixture(scope="module")
def http(bot: BotServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bot.base_url, timeout=30, trust_env=False) as client:
        yield client


def session_id(http: httpx.Client, token: str) -> str:
    started = http.post("/start", json={}, headers={"Authorization": f"Bearer {token}"})
    assert started.status_code == 200, started.text
    return str(started.json()["sessionId"])


@given(
    method=methods,
    path=paths(PATHS, prefix="/", alphabet="/abc.%?=&#"),
    header_values=headers,
    body=bodies,
)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(
    http: httpx.Client, token: str, method: str, path: str, header_values: dict[str, str], body: Any
) -> None:
    sent = {k: (f"Bearer {token}" if v == "{token}" else v) for k, v in header_values.items()}
    if "{sid}" in path:
        path = path.format(sid=session_id(http, token))
    content = body.encode() if isinstance(body, str) else body
    response = http.request(method, path, headers=sent, content=content)
    assert response.status_code < 500, (
        method,
        path,
        sent,
        response.status_code,
        response.text[:300],
    )


raw_requests = st.builds(
    lambda method, path, length, extra, body: (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{length}{extra}\r\n".encode() + body
    ),
    st.sampled_from(["GET", "POST", "PATCH", "BREW", "G\x00T"]),
    st.sampled_from(["/start", "/sessions/x/api/offer", "/transcripts", "*", "//", "/%00"]),
    st.sampled_from(
        [
            "",
            "Content-Length: -1\r\n",
            "Content-Length: abc\r\n",
            "Content-Length: 99999999\r\n",
            "Content-Length: 5\r\n",
            "Transfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
        ]
    ),
    st.sampled_from(["", "Content-Type: application/json\r\n", "X: " + "y" * 9000 + "\r\n"]),
    st.binary(max_size=300) | st.just(b"ffffffff\r\n" + b"x" * 100),
)


@given(request=raw_requests)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_malformed_http_gets_a_4xx_or_a_closed_connection(bot: BotServer, request: bytes) -> None:
    with socket.create_connection(("127.0.0.1", bot.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    status = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert status is None or int(status.group(1)) < 500, (request[:200], answer[:300])


def test_after_the_fuzzing_the_log_has_no_traceback_and_the_bot_still_answers(
    bot: BotServer, token: str
) -> None:
    async def converse() -> str:
        async with WebRTCClient(
            bot.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            await client.connect()
            await client.say(AUDIO_DIR / "multiply.wav")
            message = await client.wait_for(
                lambda m: m.type == "bot-transcription" and re.search(r"\b84\b", m.text), 60
            )
            return message.text

    assert "84" in asyncio.run(converse())
    log = bot.output()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


def test_the_log_names_no_secret(bot: BotServer, token: str) -> None:
    assert SECRET not in bot.output() and token not in bot.output()
