"""The bot's HTTP server: only our routes, Host and Origin checks, tokens, limits, clear errors.

The app is the one `python -m bots` serves (`bots.server.app.build_app`), driven in process
through httpx's ASGI transport; the bot function is a stub that records the sessions it is given,
so these tests are about the server, not the pipeline (the run-command tests cover that).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from hypothesis import given, settings
from hypothesis import strategies as st
from pipecat.runner.types import RunnerArguments

from bots.server.app import ServerConfig, build_app
from bots.server.guard import allowed_hosts
from bots.server.identity import LOCAL_USER, TokenError, mint, verify
from bots.server.sessions import Limits, Refused, SessionBook
from bots.server.webrtc import WebRTCSessions
from testkit.clock import FakeClock

pytestmark = pytest.mark.emulator  # real aiortc peer connections (UDP sockets) in some tests

SECRET = "a-test-secret-that-is-long-enough"
BASE = "http://127.0.0.1:7860"


class StubBot:
    """Records each session's runner arguments and runs until cancelled."""

    def __init__(self) -> None:
        self.sessions: list[RunnerArguments] = []
        self.started = asyncio.Event()

    async def __call__(self, runner_args: RunnerArguments) -> None:
        self.sessions.append(runner_args)
        self.started.set()
        await asyncio.Event().wait()


def config(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "transport": "webrtc",
        "allowed_hosts": allowed_hosts("127.0.0.1"),
        "limits": Limits(max_sessions=4, max_per_client=2),
    }
    values.update(overrides)
    return ServerConfig(**values)


async def serve(cfg: ServerConfig) -> tuple[httpx.AsyncClient, WebRTCSessions, StubBot]:
    bot = StubBot()
    app, sessions = build_app(cfg, bot)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    return http, sessions, bot


@pytest.fixture
async def local() -> AsyncIterator[tuple[httpx.AsyncClient, WebRTCSessions, StubBot]]:
    http, sessions, bot = await serve(config())
    async with http:
        yield http, sessions, bot
    await sessions.aclose()


@pytest.fixture
async def secured() -> AsyncIterator[tuple[httpx.AsyncClient, WebRTCSessions, StubBot]]:
    http, sessions, bot = await serve(config(session_secret=SECRET))
    async with http:
        yield http, sessions, bot
    await sessions.aclose()


async def real_offer() -> str:
    """An SDP offer as a browser makes it: aiortc with an audio transceiver, candidates gathered."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("chat")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


# ------------------------------------------------------------------------------------ routes


# The complete route inventory, for every way the bot starts, is pinned in tests/test_routes.py.


@pytest.mark.parametrize(
    "path",
    [
        "/docs",
        "/openapi.json",
        "/redoc",
        "/daily",
        "/daily-dialin-webhook",
        "/ws",
        "/ws-client",
        "/files",
        "/sessions/x/files",
        "/api/offer",
        "/status",
    ],
)
async def test_the_runners_routes_we_do_not_use_are_not_found(local: Any, path: str) -> None:
    http, _, _ = local
    assert (await http.get(path)).status_code == 404
    assert (await http.post(path, json={})).status_code in (404, 405)


# ------------------------------------------------------------------------------------ guard


async def test_another_host_is_refused_so_dns_rebinding_cannot_reach_a_local_bot(
    local: Any,
) -> None:
    http, _, _ = local
    response = await http.get("/client/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert (await http.get("/client/", headers={"Host": "localhost:7860"})).status_code == 200


async def test_a_page_on_another_site_gets_no_answer_and_no_cors(local: Any) -> None:
    http, _, _ = local
    response = await http.post("/start", json={}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert "another site" in response.json()["detail"]
    same = await http.post("/start", json={}, headers={"Origin": BASE})
    assert same.status_code == 200


async def test_an_allowed_origin_gets_cors_for_itself_only() -> None:
    http, sessions, _ = await serve(config(allowed_origins=["https://app.example"]))
    async with http:
        ok = await http.post("/start", json={}, headers={"Origin": "https://app.example"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        other = await http.post("/start", json={}, headers={"Origin": "https://evil.example"})
        assert other.status_code == 403
    await sessions.aclose()


async def test_a_body_over_64_kib_is_refused_with_413_however_it_is_sent(local: Any) -> None:
    http, _, _ = local
    big = b'{"body": {"x": "' + b"x" * 70_000 + b'"}}'
    said = await http.post("/start", content=big, headers={"content-type": "application/json"})
    assert said.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    streamed = await http.post(
        "/start", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "64 KiB" in streamed.json()["detail"]


# ------------------------------------------------------------------------------------ tokens


def test_a_token_carries_its_user_until_it_expires() -> None:
    clock = FakeClock()
    token = mint(SECRET, "ana", 10, now=clock)
    assert verify(SECRET, token, now=clock).user == "ana"
    clock.advance(10 * 60)
    with pytest.raises(TokenError, match="expired"):
        verify(SECRET, token, now=clock)


@given(st.text(min_size=1, max_size=80))
@settings(max_examples=60)
def test_a_forged_or_altered_token_is_refused(garbage: str) -> None:
    token = mint(SECRET, "ana", 10)
    for candidate in (garbage, token + garbage, token[:-2] + garbage[:2]):
        if candidate == token:
            continue
        with pytest.raises(TokenError):
            verify(SECRET, candidate)
    with pytest.raises(TokenError):
        verify("another-secret-that-is-long-enough", token)


async def test_with_a_secret_start_needs_a_token_and_gets_401_without(secured: Any) -> None:
    http, _, _ = secured
    missing = await http.post("/start", json={})
    assert missing.status_code == 401 and missing.json() == {
        "detail": "A session token is required."
    }
    forged = await http.post("/start", json={}, headers={"Authorization": "Bearer nope"})
    assert forged.status_code == 401
    expired = mint(SECRET, "ana", 1, now=lambda: 0.0)
    old = await http.post("/start", json={}, headers={"Authorization": f"Bearer {expired}"})
    assert old.status_code == 401 and "expired" in old.json()["detail"]
    good = await http.post(
        "/start", json={}, headers={"Authorization": f"Bearer {mint(SECRET, 'ana', 5)}"}
    )
    assert good.status_code == 200 and good.json()["sessionId"]


async def test_the_session_belongs_to_the_tokens_user_never_the_bodys(secured: Any) -> None:
    http, _, bot = secured
    auth = {"Authorization": f"Bearer {mint(SECRET, 'ana', 5)}"}
    started = await http.post("/start", json={"body": {"user_id": "bob"}}, headers=auth)
    sid = started.json()["sessionId"]
    offer = await http.post(
        f"/sessions/{sid}/api/offer",
        json={"sdp": await real_offer(), "type": "offer"},
        headers=auth,
    )
    assert offer.status_code == 200, offer.text
    await asyncio.wait_for(bot.started.wait(), 10)
    assert bot.sessions[0].body["user_id"] == "ana"
    other = {"Authorization": f"Bearer {mint(SECRET, 'bob', 5)}"}
    stolen = await http.post(
        f"/sessions/{sid}/api/offer",
        json={"sdp": await real_offer(), "type": "offer"},
        headers=other,
    )
    assert stolen.status_code == 404


async def test_without_a_secret_every_session_is_the_local_users(local: Any) -> None:
    http, _, bot = local
    sid = (await http.post("/start", json={"body": {"user_id": "bob"}})).json()["sessionId"]
    offer = await http.post(
        f"/sessions/{sid}/api/offer", json={"sdp": await real_offer(), "type": "offer"}
    )
    assert offer.status_code == 200, offer.text
    await asyncio.wait_for(bot.started.wait(), 10)
    assert bot.sessions[0].body["user_id"] == LOCAL_USER


# ------------------------------------------------------------------------------------ offers


@pytest.mark.parametrize(
    "sdp",
    [
        pytest.param("v=0\r\ngarbage\r\n", id="a-version-then-garbage"),
        pytest.param("not sdp at all", id="not-sdp"),
        pytest.param("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", id="no-media"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_malformed_offer_is_a_400_and_starts_no_pipeline(local: Any, sdp: str) -> None:
    http, _, bot = local
    sid = (await http.post("/start", json={})).json()["sessionId"]
    response = await http.post(f"/sessions/{sid}/api/offer", json={"sdp": sdp, "type": "offer"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]
    assert not bot.sessions


async def test_a_session_whose_media_never_connects_is_ended_at_the_ice_timeout(
    log: list[str],
) -> None:
    """The offer is answered and the bot starts, but the caller never completes ICE (it closed
    its peer connection): the session is cancelled, which ends its pipeline and Gemini socket,
    and its place under the caps is given back."""
    http, sessions, bot = await serve(config(ice_timeout_secs=0.5))
    async with http:
        sid = (await http.post("/start", json={})).json()["sessionId"]
        offer = await http.post(
            f"/sessions/{sid}/api/offer", json={"sdp": await real_offer(), "type": "offer"}
        )
        assert offer.status_code == 200, offer.text
        await asyncio.wait_for(bot.started.wait(), 10)
        task = sessions.tasks[sid]
        await asyncio.wait([task], timeout=30)
    assert task.cancelled()
    assert sessions.book.get(sid) is None and len(sessions.book) == 0
    assert any(f"session {sid}: media did not connect within 0.5 s" in line for line in log)
    await sessions.aclose()


async def test_bad_json_and_wrong_shapes_are_400s_with_a_message(local: Any) -> None:
    http, _, _ = local
    for body in (b"{", b"[]", b'{"transport": 5}'):
        response = await http.post(
            "/start", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, (body, response.text)
        assert response.json()["detail"].startswith("Invalid request")


async def test_an_offer_for_an_unknown_session_is_a_404(local: Any) -> None:
    http, _, _ = local
    response = await http.post(
        "/sessions/nope/api/offer", json={"sdp": await real_offer(), "type": "offer"}
    )
    assert response.status_code == 404


async def test_another_transport_is_refused_with_400(local: Any) -> None:
    http, _, _ = local
    response = await http.post("/start", json={"transport": "daily"})
    assert response.status_code == 400 and "not allowed" in response.json()["detail"]


# ------------------------------------------------------------------------------------ limits


def test_the_process_cap_answers_503_and_the_client_cap_429_with_retry_after() -> None:
    clock = FakeClock()
    book = SessionBook(Limits(max_sessions=3, max_per_client=2), clock)
    book.reserve("a", "a", {})
    book.reserve("a", "a", {})
    with pytest.raises(Refused) as mine:
        book.reserve("a", "a", {})
    assert mine.value.status == 429 and mine.value.retry_after == 60
    book.reserve("b", "b", {})
    with pytest.raises(Refused) as full:
        book.reserve("c", "c", {})
    assert full.value.status == 503 and full.value.retry_after


def test_a_start_without_an_offer_expires_after_60_s_and_frees_its_place() -> None:
    clock = FakeClock()
    book = SessionBook(Limits(max_sessions=1, max_per_client=1, start_ttl_secs=60), clock)
    entry = book.reserve("a", "a", {})
    with pytest.raises(Refused):
        book.reserve("b", "b", {})
    clock.advance(59)
    assert book.get(entry.session_id) is not None
    clock.advance(2)
    assert book.get(entry.session_id) is None and len(book) == 0
    book.reserve("b", "b", {})


def test_a_running_session_does_not_expire() -> None:
    clock = FakeClock()
    book = SessionBook(Limits(max_sessions=1, max_per_client=1), clock)
    entry = book.reserve("a", "a", {})
    book.start(entry.session_id)
    clock.advance(3600)
    assert book.get(entry.session_id) is entry


@given(st.lists(st.sampled_from(["reserve", "start", "end", "wait"]), max_size=60))
def test_the_book_never_holds_more_than_the_cap(steps: list[str]) -> None:
    clock = FakeClock()
    book = SessionBook(Limits(max_sessions=3, max_per_client=2), clock)
    ids: list[str] = []
    for i, step in enumerate(steps):
        if step == "reserve":
            try:
                ids.append(book.reserve(f"c{i % 3}", "u", {}).session_id)
            except Refused as exc:
                assert exc.status in (429, 503)
        elif step == "start" and ids and book.get(ids[-1]) is not None:
            book.start(ids[-1])
        elif step == "end" and ids:
            book.end(ids.pop(0))
        elif step == "wait":
            clock.advance(30)
        assert len(book) <= 3


async def test_the_page_hears_busy_with_retry_after_when_the_server_is_full() -> None:
    http, sessions, _ = await serve(config(limits=Limits(max_sessions=1, max_per_client=1)))
    async with http:
        assert (await http.post("/start", json={})).status_code == 200
        full = await http.post("/start", json={})
        assert full.status_code in (429, 503)
        assert int(full.headers["retry-after"]) >= 1
        assert full.json()["detail"]
    await sessions.aclose()
