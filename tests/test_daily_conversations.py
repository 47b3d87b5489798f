"""Daily at scale (issue 15, point 7): a conversation's room is kept with it in the store.

Two apps made as `python -m bots -t daily` makes them stand for two replicas; they share the
conversation store (the same data folder, or the same PostgreSQL database) and talk to the local
Daily REST stand-in. A `/start` naming a known conversation joins its room again with fresh
tokens, on whichever replica receives it; a stopping replica hands its rooms over to the fleet
through the load balancer and leaves the room in place for the bot that takes over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daily_fake import FakeDaily, decode_token
from pipecat.runner.types import DailyRunnerArguments

from bots.daily.routes import DailySessions
from bots.server.assemble import Served, make_app
from bots.server.identity import mint
from bots.settings import Settings
from bots.storage import close_all, open_stores

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(30)]

KEY = "dk_live_TEST_SECRET_0123456789abcdef"
SECRET = "s" * 32
CONVERSATION = "C0nversation-0123456789"


class StubBot:
    """Records its runner arguments and runs until released or cancelled."""

    def __init__(self) -> None:
        self.calls: list[DailyRunnerArguments] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, runner_args: DailyRunnerArguments) -> None:
        self.calls.append(runner_args)
        self.started.set()
        await self.release.wait()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDaily]:
    async with FakeDaily(api_key=KEY) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """What the replicas share: the data folder, and the database when there is one."""
    values: dict[str, Any] = {"data_dir": tmp_path}
    if request.param == "postgres":
        values["database_url"] = request.getfixturevalue("database_url")
    yield values
    close_all()


def replica(fake: FakeDaily, shared: dict[str, Any], name: str, bot: StubBot) -> Served:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        daily_api_key=KEY,
        daily_api_url=fake.base_url,
        session_secret=SECRET,
        replica_id=name,
        **shared,
    )
    return make_app(settings, bot, transport="daily", host="127.0.0.1")


def client(served: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served.app), base_url="http://127.0.0.1"
    )


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, user, 5)}"}


async def start(served: Served, user: str, conversation: str) -> httpx.Response:
    async with client(served) as http:
        return await http.post(
            "/start",
            json={"transport": "daily", "body": {"conversation_id": conversation}},
            headers=auth(user),
        )


def daily(served: Served) -> DailySessions:
    assert served.daily is not None
    return served.daily


async def test_a_known_conversation_joins_its_room_again_on_another_replica_with_fresh_tokens(
    fake: FakeDaily, shared: dict[str, Any]
) -> None:
    first_bot, second_bot = StubBot(), StubBot()
    first = replica(fake, shared, "bot-1", first_bot)
    second = replica(fake, shared, "bot-2", second_bot)
    made = await start(first, "ann", CONVERSATION)
    assert made.status_code == 200, made.text
    await asyncio.wait_for(first_bot.started.wait(), 5)
    room = made.json()["dailyRoom"]
    store = open_stores(Settings(_env_file=None, **shared)).conversations  # type: ignore[call-arg]
    kept = await asyncio.to_thread(store.get, CONVERSATION)
    assert kept is not None and kept.room_url == room and kept.user_id == "ann"

    again = await start(second, "ann", CONVERSATION)
    assert again.status_code == 200, again.text
    await asyncio.wait_for(second_bot.started.wait(), 5)
    assert again.json()["dailyRoom"] == room
    assert len(fake.sent("POST", "/rooms")) == 1, "a second room was made"
    (old,), (new,) = first_bot.calls, second_bot.calls
    assert new.room_url == old.room_url == room
    # Fresh tokens: minted again for the second bot and browser (the stand-in's tokens are
    # deterministic, so they are counted, not compared).
    assert len(fake.sent("POST", "/meeting-tokens")) == 4
    assert decode_token(str(new.token))["is_owner"] is True
    assert new.body["conversation_id"] == CONVERSATION and new.body["user_id"] == "ann"
    for bot, served in ((first_bot, first), (second_bot, second)):
        bot.release.set()
        await daily(served).wait()


async def test_another_users_conversation_gets_no_room(
    fake: FakeDaily, shared: dict[str, Any]
) -> None:
    bot = StubBot()
    served = replica(fake, shared, "bot-1", bot)
    assert (await start(served, "ann", CONVERSATION)).status_code == 200
    refused = await start(served, "bob", CONVERSATION)
    assert refused.status_code == 404
    assert refused.json() == {"detail": "No such conversation: start a new one."}
    assert len(fake.sent("POST", "/rooms")) == 1 and len(bot.calls) <= 1
    bot.release.set()
    await daily(served).wait()


async def test_a_conversation_whose_room_is_gone_gets_a_new_one(
    fake: FakeDaily, shared: dict[str, Any]
) -> None:
    bot = StubBot()
    served = replica(fake, shared, "bot-1", bot)
    first = await start(served, "ann", CONVERSATION)
    bot.release.set()
    await daily(served).wait()  # the session ended: its room is deleted
    assert fake.rooms == {}
    again = await start(served, "ann", CONVERSATION)
    assert again.status_code == 200, again.text
    assert again.json()["dailyRoom"] != first.json()["dailyRoom"]
    store = open_stores(Settings(_env_file=None, **shared)).conversations  # type: ignore[call-arg]
    kept = await asyncio.to_thread(store.get, CONVERSATION)
    assert kept is not None and kept.room_url == again.json()["dailyRoom"]
    await daily(served).wait()


async def test_a_stopping_replica_hands_its_rooms_to_the_fleet_and_leaves_them_in_place(
    fake: FakeDaily, shared: dict[str, Any]
) -> None:
    leaving_bot, taking_bot = StubBot(), StubBot()
    leaving = replica(fake, shared, "bot-1", leaving_bot)
    taking = replica(fake, shared, "bot-2", taking_bot)
    made = await start(leaving, "ann", CONVERSATION)
    await asyncio.wait_for(leaving_bot.started.wait(), 5)
    room_name = made.json()["dailyRoom"].rsplit("/", 1)[-1]

    # What SIGTERM does on the leaving replica, with the fleet's balancer being `taking`.
    leaving.sessions.draining = True
    async with client(taking) as fleet:
        taken = await daily(leaving).hand_over(fleet, lambda user: mint(SECRET, user, 5))
    assert taken == 1
    await asyncio.wait_for(taking_bot.started.wait(), 5)
    (handed,) = taking_bot.calls
    assert handed.room_url == made.json()["dailyRoom"]
    assert handed.body == {"conversation_id": CONVERSATION, "user_id": "ann"}
    # The leaving bot's session ends: the room stays for the bot that took over.
    leaving_bot.release.set()
    await daily(leaving).wait()
    assert room_name in fake.rooms and not fake.sent("DELETE", "/rooms")
    taking_bot.release.set()
    await daily(taking).wait()
    assert room_name not in fake.rooms, "the room is deleted when the conversation ends"


async def test_a_replica_takes_a_hand_over_addressed_to_the_fleets_balancer(
    fake: FakeDaily, tmp_path: Path
) -> None:
    bot = StubBot()
    served = replica(fake, {"data_dir": tmp_path, "fleet_url": "http://haproxy:8080"}, "b", bot)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served.app), base_url="http://haproxy:8080"
    ) as fleet:
        taken = await fleet.post(
            "/start",
            json={"transport": "daily", "body": {"conversation_id": CONVERSATION}},
            headers=auth("ann"),
        )
        elsewhere = await fleet.post(
            "/start", json={"transport": "daily"}, headers={**auth("ann"), "Host": "evil.example"}
        )
    assert taken.status_code == 200, taken.text
    assert elsewhere.status_code == 400, "only the balancer's own name is added"
    bot.release.set()
    await daily(served).wait()
    close_all()
