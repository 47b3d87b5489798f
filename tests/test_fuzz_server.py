"""Random requests against every route of a running `python -m bots`: never a 5xx, never a
traceback, and the bot still holds a conversation afterwards.

The bot runs as a user starts it (its own emulator, no key), with session tokens on so the
authenticated paths are reached too. Hypothesis draws methods, paths, headers, body sizes and
shapes: JSON of any shape and depth, SDP-like text, bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from conftest import AUDIO_DIR
from fuzz_strategies import Drawn, requests, with_tokens
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.server.identity import mint
from testkit.bot_server import BotServer, start_bot, stopped_at_exit
from testkit.webrtc.client import WebRTCClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SECRET = "fuzzing-session-secret-0123456789"
ADMIN = "fuzzing-operator-token-0123456789"
PATHS = (
    "/",
    "/client/",
    "/client/app.js",
    "/start",
    "/sessions/{sid}/api/offer",
    "/sessions/nope/api/offer",
    "/transcripts",
    "/transcripts/{sid}",
    "/transcripts/login",
    "/metrics",
    "/transcripts/../../etc/passwd",
    "/api/offer",
    "/docs",
    "/daily",
    "/healthz",
    "/readyz",
)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotServer]:
    workdir = tmp_path_factory.mktemp("fuzz")
    with stopped_at_exit(
        start_bot(
            None,
            workdir,
            SESSION_SECRET=SECRET,
            ADMIN_TOKEN=ADMIN,  # the sign-in route and /metrics behind a bearer are reached too
            MAX_SESSIONS="50",
            MAX_SESSIONS_PER_CLIENT="50",
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


@given(request=requests(PATHS, alphabet="/abc.%?=&#"))
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(http: httpx.Client, token: str, request: Drawn) -> None:
    sent = with_tokens(request.headers, session=token, admin=ADMIN)
    path = request.path
    if "{sid}" in path:
        path = path.format(sid=session_id(http, token))
    response = http.request(request.method, path, headers=sent, content=request.content)
    assert response.status_code < 500, (request, response.status_code, response.text[:300])


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
    log = bot.output()
    assert SECRET not in log and token not in log and ADMIN not in log
