"""`POST /start` with a conversation id, and the session ids a replica hands out (issue 15).

The app is made as `python -m bots` makes it (`make_app`), with session tokens on, so there are
two users: a conversation id the page sends is checked against the store, another user's is
refused as if it did not exist, and a malformed one is refused before anything is looked up.
Every test runs on the embedded store and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.server.assemble import make_app
from bots.server.identity import mint
from bots.settings import Settings
from bots.storage import close_all, open_stores

pytestmark = pytest.mark.unit

SECRET = "s" * 32
BASE = "http://127.0.0.1:7860"
START = {"transport": "webrtc", "enableDefaultIceServers": False}


async def no_bot(_runner_args: Any) -> None:
    raise AssertionError("no session starts here")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bot_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "session_secret": SECRET,
        "replica_id": "bot-2",
    }
    if request.param == "postgres":
        values["database_url"] = request.getfixturevalue("database_url")
    yield Settings(_env_file=None, **values)  # type: ignore[call-arg]
    close_all()


@pytest.fixture
async def http(bot_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    served = make_app(bot_settings, no_bot, transport="webrtc", host="127.0.0.1")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served.app), base_url=BASE
    ) as client:
        yield client
    await served.sessions.aclose()


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, user, 10)}"}


async def start(http: httpx.AsyncClient, user: str, conversation: object) -> httpx.Response:
    return await http.post(
        "/start", json={**START, "body": {"conversation_id": conversation}}, headers=auth(user)
    )


async def test_a_replicas_session_ids_start_with_its_name(http: httpx.AsyncClient) -> None:
    response = await http.post("/start", json=START, headers=auth("ana"))
    assert response.status_code == 200, response.text
    assert re.fullmatch(r"bot-2\.[A-Za-z0-9_-]{22}", response.json()["sessionId"])


async def test_a_new_conversation_id_is_taken_and_a_known_one_of_the_same_user_too(
    http: httpx.AsyncClient, bot_settings: Settings
) -> None:
    fresh = "A" * 22
    assert (await start(http, "ana", fresh)).status_code == 200
    store = open_stores(bot_settings).conversations
    await asyncio.to_thread(store.claim, fresh, "ana", "bot-1")
    assert (await start(http, "ana", fresh)).status_code == 200


async def test_another_users_conversation_id_is_refused_as_if_it_did_not_exist(
    http: httpx.AsyncClient, bot_settings: Settings
) -> None:
    store = open_stores(bot_settings).conversations
    await asyncio.to_thread(store.claim, "B" * 22, "ana", "bot-1")
    refused = await start(http, "bob", "B" * 22)
    assert refused.status_code == 404
    assert refused.json() == {"detail": "No such conversation: start a new one."}
    kept = await asyncio.to_thread(store.get, "B" * 22)
    assert kept is not None and kept.user_id == "ana"


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(max_size=80).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", s)),
        st.integers(),
        st.lists(st.text(max_size=3), max_size=2),
        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    )
)
async def test_a_malformed_conversation_id_is_a_clear_400_and_nothing_is_stored(
    http: httpx.AsyncClient, bot_settings: Settings, value: object
) -> None:
    refused = await start(http, "ana", value)
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"].startswith("Invalid conversation id")
