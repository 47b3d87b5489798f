"""Transcripts are for the operator: behind ADMIN_TOKEN, or only on a loopback bind, and paged.

The routes are the ones `python -m bots` serves (`bots.__main__.transcript_routes` inside
`bots.server.app.build_app`), driven in process through httpx's ASGI transport.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bots.server.app import ServerConfig, build_app
from bots.server.assemble import transcript_routes
from bots.server.guard import allowed_hosts
from bots.server.operator import COOKIE
from bots.server.sessions import Limits
from bots.settings import Settings
from bots.storage import close_all
from stores.postgres import Database
from transcripts import TranscriptBackend, TranscriptStore
from transcripts.postgres import PostgresTranscriptStore

unit = pytest.mark.unit

ADMIN = "operator-token-long-enough-1234"
T0 = 1_700_000_000.0


async def no_bot(_runner_args: Any) -> None:
    raise AssertionError("no session is started in these tests")


def write_sessions(where: Path | TranscriptBackend, count: int) -> list[str]:
    store = TranscriptStore(where) if isinstance(where, Path) else where
    ids = []
    for n in range(count):
        session_id = f"20231114-{n:06d}-abc{n:03d}"
        writer = store.open_session(session_id, started_at=T0 + n)
        writer.write("user_turn", T0 + n, {"turn": 1, "text": f"question {n}"})
        writer.close(ts=T0 + n + 1, summary={"user_turns": 1, "bot_turns": 0})
        ids.append(session_id)
    return ids


def client_for(tmp_path: Path, host: str, **settings: Any) -> httpx.AsyncClient:
    bot_settings = Settings(data_dir=tmp_path, _env_file=None, **settings)  # type: ignore[call-arg]
    config = ServerConfig(
        transport="webrtc",
        allowed_hosts=allowed_hosts(host, ["bot.example"]),
        limits=Limits(max_sessions=1, max_per_client=1),
    )
    app, _ = build_app(config, no_bot, routers=transcript_routes(bot_settings, host))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:7860"
    )


@pytest.fixture(autouse=True)
def closed_stores() -> Iterator[None]:
    """The pages open the process's stores on their first request: each test closes them."""
    yield
    close_all()


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    write_sessions(tmp_path / "transcripts", 3)
    async with client_for(tmp_path, "0.0.0.0", admin_token=ADMIN) as http:
        yield http


@unit
async def test_without_the_operators_token_the_pages_ask_for_it(guarded: httpx.AsyncClient) -> None:
    page = await guarded.get("/transcripts", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "<form" in page.text and "question" not in page.text
    api = await guarded.get("/transcripts/20231114-000000-abc000")
    assert api.status_code == 401 and api.json() == {"detail": "The operator's token is required."}


@unit
async def test_the_bearer_token_opens_the_pages(guarded: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    listing = await guarded.get("/transcripts", headers=auth)
    assert listing.status_code == 200 and "20231114-000002-abc002" in listing.text
    one = await guarded.get("/transcripts/20231114-000001-abc001", headers=auth)
    assert one.status_code == 200 and "question 1" in one.text
    wrong = await guarded.get("/transcripts", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


@unit
async def test_the_login_form_sets_an_httponly_samesite_strict_cookie(
    guarded: httpx.AsyncClient,
) -> None:
    refused = await guarded.post("/transcripts/login", data={"token": "nope"})
    assert refused.status_code == 401 and COOKIE not in refused.headers.get("set-cookie", "")
    signed_in = await guarded.post("/transcripts/login", data={"token": ADMIN})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/transcripts"
    cookie = signed_in.headers["set-cookie"]
    assert re.search(r"(?i)httponly", cookie) and re.search(r"(?i)samesite=strict", cookie)
    assert ADMIN not in cookie, "the cookie holds a derived value, not the token"
    listing = await guarded.get("/transcripts")
    assert listing.status_code == 200 and "20231114-000000-abc000" in listing.text


@unit
async def test_another_sites_page_cannot_post_the_login_form(guarded: httpx.AsyncClient) -> None:
    response = await guarded.post(
        "/transcripts/login", data={"token": ADMIN}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


@unit
async def test_without_an_admin_token_a_network_bind_serves_no_transcripts(tmp_path: Path) -> None:
    write_sessions(tmp_path / "transcripts", 1)
    async with client_for(tmp_path, "0.0.0.0") as http:
        assert (await http.get("/transcripts")).status_code == 404
        assert (await http.get("/transcripts/20231114-000000-abc000")).status_code == 404


@unit
async def test_without_an_admin_token_a_loopback_bind_serves_them(tmp_path: Path) -> None:
    write_sessions(tmp_path / "transcripts", 1)
    async with client_for(tmp_path, "127.0.0.1") as http:
        assert (await http.get("/transcripts")).status_code == 200


@unit
async def test_the_list_is_paged_fifty_to_a_page_newest_first(tmp_path: Path) -> None:
    ids = write_sessions(tmp_path / "transcripts", 120)
    async with client_for(tmp_path, "127.0.0.1") as http:
        first = (await http.get("/transcripts")).text
        third = (await http.get("/transcripts?page=3")).text
        beyond = (await http.get("/transcripts?page=99")).text
    assert first.count("class=session-row") == 50 and ids[-1] in first and ids[69] not in first
    assert "page=2" in first and "page 1 of 3" in first
    assert third.count("class=session-row") == 20 and ids[0] in third and "page 3 of 3" in third
    assert beyond == third


@pytest.mark.postgres
async def test_with_database_url_the_operator_reads_the_databases_transcripts_by_the_same_rules(
    tmp_path: Path, database_url: str
) -> None:
    database = Database(database_url)
    database.open()
    try:
        write_sessions(PostgresTranscriptStore(database), 2)
    finally:
        database.close()
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with client_for(
        tmp_path, "0.0.0.0", admin_token=ADMIN, database_url=database_url
    ) as http:
        refused = await http.get("/transcripts/20231114-000001-abc001")
        listing = await http.get("/transcripts", headers=auth)
        one = await http.get("/transcripts/20231114-000001-abc001", headers=auth)
    async with client_for(tmp_path, "0.0.0.0", database_url=database_url) as http:
        unguarded = await http.get("/transcripts")
    assert refused.status_code == 401 and "question" not in refused.text
    assert listing.status_code == 200 and "20231114-000000-abc000" in listing.text
    assert one.status_code == 200 and "question 1" in one.text
    assert unguarded.status_code == 404
    assert not (tmp_path / "transcripts").exists(), "the folder is not the store any more"
