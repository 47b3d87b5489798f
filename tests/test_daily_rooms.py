"""`-t daily`: private expiring rooms, a non-owner browser token, cleanup, errors, the routes.

Everything runs against `tests/daily_fake.py`, a local server speaking Daily's REST API, reached
through `DAILY_API_URL` exactly as Daily's would be. Joining a room needs Daily's own servers, so
the bot here is a stub that records the `DailyRunnerArguments` the runner would hand it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from daily_fake import FakeDaily, decode_token
from fastapi import FastAPI
from loguru import logger
from pipecat.runner.types import DailyRunnerArguments

from bots.daily.rooms import DailyRoomError, DailyRooms
from bots.daily.routes import DailySessions
from bots.server.assemble import make_app
from bots.server.identity import LOCAL_USER, mint
from bots.settings import Settings

SECRET = "daily-test-session-secret-0123456789"

KEY = "dk_live_TEST_SECRET_0123456789abcdef"
"""A recognisable API key: it must never show up in a message, a log line or a response."""

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(20)]


def daily_settings(fake: FakeDaily, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "daily_api_key": KEY,
        "daily_api_url": fake.base_url,
        "daily_room_url": None,
        "daily_room_expiry_minutes": 30,
        "daily_token_expiry_minutes": 20,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDaily]:
    async with FakeDaily(api_key=KEY) as server:
        yield server


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Everything loguru writes while the test runs, tracebacks with locals included."""
    lines: list[str] = []
    handler = logger.add(
        lambda message: lines.append(str(message)),
        level="TRACE",
        format="{level} | {name}:{function} | {message}",
        backtrace=True,
        diagnose=True,
    )
    yield lines
    logger.remove(handler)


class StubBot:
    """Stands in for the bot: records its runner arguments and runs until released."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[DailyRunnerArguments] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False
        self.fail = fail

    async def __call__(self, runner_args: DailyRunnerArguments) -> None:
        self.calls.append(runner_args)
        self.started.set()
        if self.fail:
            raise RuntimeError("the bot fell over")
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


# -- rooms and tokens ---------------------------------------------------------------------------


async def test_created_room_is_private_expires_in_the_configured_window_and_ejects(
    fake: FakeDaily,
) -> None:
    before = time.time()
    room = await DailyRooms(daily_settings(fake)).open()
    after = time.time()

    (create,) = fake.sent("POST", "/rooms")
    assert create.json["privacy"] == "private"
    assert create.json["name"] == room.room_name
    exp = create.json["properties"]["exp"]
    assert before + 30 * 60 - 1 <= exp <= after + 30 * 60 + 1
    assert create.json["properties"]["eject_at_room_exp"] is True
    assert fake.rooms[room.room_name]["privacy"] == "private"
    assert room.created is True
    assert room.room_url == f"{fake.domain}/{room.room_name}"
    assert room.browser_url == f"{room.room_url}?t={room.browser_token}"


async def test_browser_token_is_not_the_owners_and_both_expire_with_the_room(
    fake: FakeDaily,
) -> None:
    before = time.time()
    room = await DailyRooms(daily_settings(fake)).open()

    tokens = fake.sent("POST", "/meeting-tokens")
    assert len(tokens) == 2
    bot = decode_token(room.bot_token)
    browser = decode_token(room.browser_token)
    assert room.bot_token != room.browser_token
    assert browser["is_owner"] is False
    assert bot["is_owner"] is True
    room_exp = fake.rooms[room.room_name]["config"]["exp"]
    for claims in (bot, browser):
        assert claims["room_name"] == room.room_name
        assert claims["eject_at_token_exp"] is True
        assert before + 20 * 60 - 1 <= claims["exp"] <= before + 20 * 60 + 2
        assert claims["exp"] <= room_exp
    assert abs(room.expires_at.timestamp() - browser["exp"]) <= 1
    # Every call carried the key in the Authorization header, and only there.
    assert {r.authorization for r in fake.requests} == {f"Bearer {KEY}"}
    assert_no_secret(
        room.room_url, room.bot_token, room.browser_token, room.browser_url, repr(room)
    )
    assert room.bot_token not in repr(room) and room.browser_token not in repr(room)


async def test_tokens_never_outlive_the_room(fake: FakeDaily) -> None:
    room = await DailyRooms(
        daily_settings(fake, daily_room_expiry_minutes=5, daily_token_expiry_minutes=120)
    ).open()
    room_exp = fake.rooms[room.room_name]["config"]["exp"]
    for token in (room.bot_token, room.browser_token):
        assert decode_token(token)["exp"] <= room_exp
    assert room.expires_at.timestamp() <= room_exp


async def test_daily_room_url_reuses_the_room_and_only_mints_tokens(
    fake: FakeDaily, logs: list[str]
) -> None:
    existing = fake.add_room("team-standup", privacy="private", exp=int(time.time()) + 3600)
    rooms = DailyRooms(daily_settings(fake, daily_room_url=existing["url"] + "/"))
    room = await rooms.open()

    assert fake.sent("POST", "/rooms") == []
    assert [r.path for r in fake.sent("GET", "/rooms")] == ["/rooms/team-standup"]
    assert len(fake.sent("POST", "/meeting-tokens")) == 2
    assert room.created is False
    assert room.room_url == existing["url"]
    assert decode_token(room.browser_token)["is_owner"] is False
    assert decode_token(room.browser_token)["room_name"] == "team-standup"
    assert decode_token(room.bot_token)["is_owner"] is True

    assert await rooms.close(room) is False
    assert fake.sent("DELETE", "/rooms") == []
    assert "team-standup" in fake.rooms
    assert not any("public" in line for line in logs)


async def test_a_public_daily_room_url_is_used_with_a_warning(
    fake: FakeDaily, logs: list[str]
) -> None:
    existing = fake.add_room("open-house", privacy="public")
    room = await DailyRooms(daily_settings(fake, daily_room_url=existing["url"])).open()
    assert room.created is False
    assert any("WARNING" in line and "open-house is public" in line for line in logs)


async def test_a_missing_daily_room_url_room_is_a_clear_error(fake: FakeDaily) -> None:
    rooms = DailyRooms(daily_settings(fake, daily_room_url=f"{fake.domain}/no-such-room"))
    with pytest.raises(DailyRoomError, match=r"no such room \(404\).*no-such-room") as caught:
        await rooms.open()
    assert caught.value.status == 404
    assert fake.sent("POST", "/meeting-tokens") == []


@pytest.mark.parametrize("url", ["not a url", "https://x.daily.co/", "https://x.daily.co/a/b"])
async def test_a_malformed_daily_room_url_is_refused_up_front(fake: FakeDaily, url: str) -> None:
    with pytest.raises(DailyRoomError, match=r"DAILY_ROOM_URL .* is not a Daily room URL"):
        DailyRooms(daily_settings(fake, daily_room_url=url))


async def test_no_api_key_is_refused_up_front(fake: FakeDaily) -> None:
    with pytest.raises(DailyRoomError, match="DAILY_API_KEY is not set"):
        DailyRooms(daily_settings(fake, daily_api_key=None))


# -- cleanup ------------------------------------------------------------------------------------


async def test_the_room_is_deleted_when_the_session_ends(fake: FakeDaily) -> None:
    rooms = DailyRooms(daily_settings(fake))
    async with rooms.session() as room:
        assert room.room_name in fake.rooms
        assert fake.sent("DELETE", "/rooms") == []
    assert [r.path for r in fake.sent("DELETE", "/rooms")] == [f"/rooms/{room.room_name}"]
    assert room.room_name not in fake.rooms
    assert await rooms.close(room) is True  # idempotent: no second DELETE
    assert len(fake.sent("DELETE", "/rooms")) == 1


async def test_a_failed_delete_is_logged_not_raised(fake: FakeDaily, logs: list[str]) -> None:
    rooms = DailyRooms(daily_settings(fake))
    room = await rooms.open()
    fake.fail_next(503, path="/rooms/")
    assert await rooms.close(room) is False
    assert any(
        "WARNING" in line and "unavailable (503)" in line and "expires by itself" in line
        for line in logs
    )
    assert_no_secret(*logs)


async def test_a_token_failure_deletes_the_room_it_just_made(fake: FakeDaily) -> None:
    fake.fail_next(500, path="/meeting-tokens")
    with pytest.raises(DailyRoomError, match=r"unavailable \(500\)"):
        await DailyRooms(daily_settings(fake)).open()
    (create,) = fake.sent("POST", "/rooms")
    assert [r.path for r in fake.sent("DELETE", "/rooms")] == [f"/rooms/{create.json['name']}"]
    assert fake.rooms == {}


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "expected", "wait"),
    [
        (401, None, r"^DAILY_API_KEY was rejected by Daily \(401\) while creating room", None),
        (429, "7", r"rate limited .*\(429\).*retry after 7 s", 7.0),
        (429, None, r"rate limited .*\(429\).*retry in a few seconds", None),
        (500, None, r"^Daily's API is unavailable \(500\)", None),
        (503, None, r"^Daily's API is unavailable \(503\)", None),
    ],
)
async def test_api_errors_become_one_clear_error_without_the_key(
    fake: FakeDaily,
    logs: list[str],
    status: int,
    retry_after: str | None,
    expected: str,
    wait: float | None,
) -> None:
    fake.fail_next(status, retry_after=retry_after, info=f"echoed header: Bearer {KEY}")
    with pytest.raises(DailyRoomError, match=expected) as caught:
        await DailyRooms(daily_settings(fake)).open()
    assert caught.value.status == status
    assert caught.value.retry_after == wait
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert_no_secret(str(caught.value), repr(caught.value), *logs)
    assert fake.rooms == {}


async def test_a_wrong_key_is_named_but_never_shown(fake: FakeDaily, logs: list[str]) -> None:
    wrong = "dk_WRONG_KEY_fedcba9876543210"
    with pytest.raises(DailyRoomError, match=r"DAILY_API_KEY was rejected by Daily \(401\)") as e:
        await DailyRooms(daily_settings(fake, daily_api_key=wrong)).open()
    assert wrong not in str(e.value)
    assert not any(wrong in line for line in logs)


async def test_retry_after_as_an_http_date(fake: FakeDaily) -> None:
    fake.fail_next(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    with pytest.raises(DailyRoomError, match="retry after 0 s") as caught:
        await DailyRooms(daily_settings(fake)).open()
    assert caught.value.retry_after == 0.0


async def test_other_refusals_carry_dailys_reason_scrubbed_of_the_key(fake: FakeDaily) -> None:
    fake.fail_next(400, info=f"the header was Bearer {KEY}")
    with pytest.raises(DailyRoomError, match=r"refused creating room .*\(400\)") as caught:
        await DailyRooms(daily_settings(fake)).open()
    assert "[DAILY_API_KEY]" in str(caught.value)
    assert_no_secret(str(caught.value))


async def test_an_unreachable_api_is_a_clear_error(logs: list[str]) -> None:
    closed = FakeDaily(api_key=KEY)
    await closed.start()
    await closed.close()  # the port is now closed
    with pytest.raises(DailyRoomError, match=r"Could not reach Daily's API at http://127\.0\.0\.1"):
        await DailyRooms(daily_settings(closed)).open()
    assert_no_secret(*logs)


async def test_a_slow_api_times_out_with_a_clear_error(fake: FakeDaily) -> None:
    import socket

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = daily_settings(
            fake, daily_api_url=f"http://127.0.0.1:{port}/v1", daily_api_timeout_secs=0.3
        )
        with pytest.raises(DailyRoomError, match=r"did not answer within 0.3 s"):
            await DailyRooms(settings).open()


# -- the runner's routes ------------------------------------------------------------------------


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@pytest.fixture
def serve(fake: FakeDaily, tmp_path: Any) -> Any:
    """`serve(bot, **settings)`: the app `python -m bots -t daily` serves on 127.0.0.1."""

    def make(bot: StubBot, **overrides: Any) -> tuple[FastAPI, DailySessions]:
        settings = daily_settings(fake, data_dir=tmp_path, **overrides)
        served = make_app(settings, bot, transport="daily", host="127.0.0.1")
        assert served.daily is not None
        return served.app, served.daily

    return make


async def test_post_start_gives_the_browser_the_room_and_its_own_token_only(
    fake: FakeDaily, logs: list[str], capsys: pytest.CaptureFixture[str], serve: Any
) -> None:
    bot = StubBot()
    app, sessions = serve(bot)
    async with client(app) as http:
        response = await http.post(
            "/start",
            json={
                "transport": "daily",
                "body": {"user_id": "ann"},
                # A page must not be able to make the room public or itself the owner.
                "dailyRoomProperties": {"privacy": "public"},
                "dailyMeetingTokenProperties": {"is_owner": True},
            },
        )
    assert response.status_code == 200
    data = response.json()
    await asyncio.wait_for(bot.started.wait(), 5)
    (runner_args,) = bot.calls

    (create,) = fake.sent("POST", "/rooms")
    assert create.json["privacy"] == "private"
    assert set(data) == {"dailyRoom", "dailyToken", "sessionId"}
    assert data["dailyRoom"] == runner_args.room_url == f"{fake.domain}/{create.json['name']}"
    assert decode_token(data["dailyToken"])["is_owner"] is False
    assert decode_token(data["dailyToken"])["room_name"] == create.json["name"]
    # The bot has the owner's token; the browser never sees it, nor the API key.
    assert isinstance(runner_args, DailyRunnerArguments)
    assert runner_args.token is not None and runner_args.token != data["dailyToken"]
    assert decode_token(runner_args.token)["is_owner"] is True
    assert runner_args.token not in response.text
    assert_no_secret(response.text, str(response.headers))
    # Without SESSION_SECRET every session is the local user's: the body never chooses.
    assert runner_args.body == {"user_id": LOCAL_USER}
    assert runner_args.session_id == data["sessionId"]
    # The link to open is printed: the room with the browser's token.
    printed = capsys.readouterr().out
    assert f"Open {data['dailyRoom']}?t={data['dailyToken']} in a browser" in printed
    assert runner_args.token not in printed

    bot.release.set()
    await sessions.wait()
    assert [r.path for r in fake.sent("DELETE", "/rooms")] == [f"/rooms/{create.json['name']}"]
    assert_no_secret(*logs)
    assert not any(runner_args.token in line for line in logs)


async def test_get_daily_redirects_into_the_room_but_not_from_another_sites_page(
    fake: FakeDaily, serve: Any
) -> None:
    bot = StubBot()
    app, sessions = serve(bot)
    async with client(app) as http:
        # Another site's page sending the browser here would open a room on our keys.
        cross = await http.get("/daily", headers={"Sec-Fetch-Site": "cross-site"})
        sibling = await http.get("/daily", headers={"Sec-Fetch-Site": "same-site"})
        response = await http.get("/daily", headers={"Sec-Fetch-Site": "none"})  # typed
    assert cross.status_code == 403 and sibling.status_code == 403
    assert "address bar" in cross.json()["detail"]
    assert len(fake.sent("POST", "/rooms")) == 1
    assert response.status_code == 307
    await asyncio.wait_for(bot.started.wait(), 5)
    room_url, _, token = response.headers["location"].partition("?t=")
    assert room_url == bot.calls[0].room_url
    assert decode_token(token)["is_owner"] is False
    assert bot.calls[0].token != token
    assert_no_secret(response.text, str(response.headers))
    bot.release.set()
    await sessions.wait()
    assert len(fake.sent("DELETE", "/rooms")) == 1


async def test_api_errors_reach_the_page_as_clear_errors(fake: FakeDaily, serve: Any) -> None:
    bot = StubBot()
    app, sessions = serve(bot)
    async with client(app) as http:
        fake.fail_next(429, retry_after="5")
        limited = await http.post("/start", json={"transport": "daily"})
        fake.fail_next(401)
        rejected = await http.post("/start", json={"transport": "daily"})
        fake.fail_next(503)
        down = await http.get("/daily")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "5"
    assert "retry after 5 s" in limited.json()["detail"]
    assert rejected.status_code == 502
    assert rejected.json()["detail"].startswith("DAILY_API_KEY was rejected by Daily (401)")
    assert down.status_code == 503 and "unavailable (503)" in down.json()["detail"]
    for response in (limited, rejected, down):
        assert_no_secret(response.text)
    assert bot.calls == []
    assert len(sessions.book) == 0  # a start that got no room holds no place


async def test_a_bot_that_fails_still_gets_its_room_deleted(
    fake: FakeDaily, logs: list[str], serve: Any
) -> None:
    bot = StubBot(fail=True)
    app, sessions = serve(bot)
    async with client(app) as http:
        assert (await http.post("/start", json={})).status_code == 200
    await sessions.wait()
    assert len(fake.sent("DELETE", "/rooms")) == 1 and fake.rooms == {}
    assert any("ended with an error" in line and "the bot fell over" in line for line in logs)
    assert_no_secret(*logs)


async def test_server_shutdown_stops_sessions_and_deletes_their_rooms(
    fake: FakeDaily, serve: Any
) -> None:
    bot = StubBot()
    app, sessions = serve(bot)
    async with client(app) as http:
        assert (await http.post("/start", json={"transport": "daily"})).status_code == 200
    await asyncio.wait_for(bot.started.wait(), 5)
    assert len(fake.rooms) == 1
    await sessions.aclose()  # what the server does when it stops
    assert bot.cancelled
    assert fake.rooms == {} and len(fake.sent("DELETE", "/rooms")) == 1


# -- who may start a session, and how many ------------------------------------------------------


def rooms_made(fake: FakeDaily) -> int:
    return len(fake.sent("POST", "/rooms"))


async def finish(bot: StubBot, sessions: DailySessions) -> None:
    """Let the stub bot end, and wait for its session to give back its place and room."""
    bot.release.set()
    await sessions.wait()


async def test_with_a_secret_a_daily_start_needs_a_token_and_belongs_to_its_user(
    fake: FakeDaily, serve: Any
) -> None:
    bot = StubBot()
    app, sessions = serve(bot, session_secret=SECRET)
    auth = {"Authorization": f"Bearer {mint(SECRET, 'ann', 5)}"}
    async with client(app) as http:
        missing = await http.post("/start", json={"transport": "daily"})
        forged = await http.post(
            "/start", json={"transport": "daily"}, headers={"Authorization": "Bearer forged"}
        )
        navigated = await http.get("/daily")  # a link cannot carry the token
        started = await http.post(
            "/start", json={"transport": "daily", "body": {"user_id": "mallory"}}, headers=auth
        )
    assert missing.status_code == 401 and missing.json() == {
        "detail": "A session token is required."
    }
    assert forged.status_code == 401
    assert navigated.status_code == 401 and "POST /start" in navigated.json()["detail"]
    assert started.status_code == 200, started.text
    await asyncio.wait_for(bot.started.wait(), 5)
    (runner_args,) = bot.calls
    assert runner_args.body["user_id"] == "ann"
    assert rooms_made(fake) == 1  # the refused requests made no room
    await finish(bot, sessions)


async def test_daily_sessions_count_against_the_process_cap_until_they_end(
    fake: FakeDaily, serve: Any
) -> None:
    bot = StubBot()
    app, sessions = serve(bot, max_sessions=1)
    async with client(app) as http:
        first = await http.post("/start", json={"transport": "daily"})
        await asyncio.wait_for(bot.started.wait(), 5)
        full = await http.post("/start", json={"transport": "daily"})
        full_get = await http.get("/daily")
        ready = await http.get("/readyz")
        bot.release.set()
        await sessions.wait()
        again = await http.post("/start", json={"transport": "daily"})
    assert first.status_code == 200
    assert full.status_code == 503 and full.headers["retry-after"]
    assert "busy" in full.json()["detail"]
    assert full_get.status_code == 503
    assert ready.status_code == 503 and "full" in ready.text
    assert again.status_code == 200  # the ended session gave its place back
    assert rooms_made(fake) == 2
    await sessions.wait()


async def test_one_client_gets_429_past_its_own_cap(fake: FakeDaily, serve: Any) -> None:
    bot = StubBot()
    app, sessions = serve(bot, max_sessions=5, max_sessions_per_client=1)
    async with client(app) as http:
        first = await http.post("/start", json={"transport": "daily"})
        second = await http.post("/start", json={"transport": "daily"})
    assert first.status_code == 200
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
    assert rooms_made(fake) == 1
    await finish(bot, sessions)


async def test_a_stopping_server_starts_no_daily_session(fake: FakeDaily, tmp_path: Any) -> None:
    bot = StubBot()
    served = make_app(
        daily_settings(fake, data_dir=tmp_path), bot, transport="daily", host="127.0.0.1"
    )
    await served.drain()
    async with client(served.app) as http:
        refused = await http.post("/start", json={"transport": "daily"})
    assert refused.status_code == 503 and "restarting" in refused.json()["detail"]
    assert fake.sent("POST", "/rooms") == []
