"""Random requests against the `-t daily` server: never a 5xx, never a traceback, and a session
still starts afterwards.

The app is the one `python -m bots -t daily` serves (`make_app`), with session tokens and the
operator's token on, in front of the local Daily REST stand-in (`tests/daily_fake.py`); the bot
is a stub that ends at once, since joining a room needs Daily's own servers. App and stand-in run
on an event loop of their own, so each Hypothesis example is one plain request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from daily_fake import FakeDaily
from fuzz_strategies import Drawn, requests, with_tokens
from hypothesis import HealthCheck, given, settings
from loguru import logger
from pipecat.runner.types import RunnerArguments

from bots.daily.routes import DailySessions
from bots.server.assemble import make_app
from bots.server.identity import mint
from bots.settings import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

KEY = "dk_fuzz_SECRET_0123456789abcdef"
SECRET = "daily-fuzz-session-secret-0123456789"
ADMIN = "daily-fuzz-operator-token-0123456789"
PATHS = (
    "/start",
    "/daily",
    "/transcripts",
    "/transcripts/login",
    "/metrics",
    "/readyz",
    "/sessions/x/api/offer",
    "/client/",
)
T = TypeVar("T")


async def stub_bot(_runner_args: RunnerArguments) -> None:
    """Ends at once: its room is deleted and its place given back."""


class Served:
    """The Daily app and the stand-in on a loop in a thread of their own."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = self.run(FakeDaily(api_key=KEY).start())
        values: dict[str, Any] = {
            "daily_api_key": KEY,
            "daily_api_url": self.fake.base_url,
            "data_dir": data_dir,
            "session_secret": SECRET,
            "admin_token": ADMIN,
            "max_sessions": 1000,
            "max_sessions_per_client": 1000,
        }
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        served = make_app(settings, stub_bot, transport="daily", host="127.0.0.1")
        assert served.daily is not None
        self.daily: DailySessions = served.daily
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served.app), base_url="http://127.0.0.1"
        )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.run(self.daily.wait())
        self.run(self.http.aclose())
        self.run(self.fake.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("daily-fuzz"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def module_log() -> Iterator[list[str]]:
    """Everything logged while the module runs (the conftest fixture is per test)."""
    lines: list[str] = []
    handler = logger.add(lambda m: lines.append(str(m)), level="DEBUG", backtrace=True)
    yield lines
    logger.remove(handler)


@given(request=requests(PATHS, alphabet="/abcdily.%?=&"))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_to_the_daily_server_gets_a_server_error(
    served: Served, module_log: list[str], request: Drawn
) -> None:
    sent = with_tokens(request.headers, session=mint(SECRET, "fuzzer", 60), admin=ADMIN)
    response = served.run(
        served.http.request(request.method, request.path, headers=sent, content=request.content)
    )
    # Offline, /readyz truthfully says Gemini cannot be reached: a 503 that is an answer.
    unready = response.status_code == 503 and "Gemini cannot be reached" in response.text
    assert response.status_code < 500 or unready, (request, response.status_code, response.text)


def test_after_the_fuzzing_a_session_starts_and_nothing_was_logged_as_a_traceback(
    served: Served, module_log: list[str]
) -> None:
    token = mint(SECRET, "ann", 5)
    started = served.run(
        served.http.post(
            "/start", json={"transport": "daily"}, headers={"Authorization": f"Bearer {token}"}
        )
    )
    assert started.status_code == 200, started.text
    served.run(served.daily.wait())
    assert served.fake.rooms == {}  # every room the fuzzing opened was deleted again
    text = "\n".join(module_log)
    assert "Traceback" not in text
    assert KEY not in text and SECRET not in text and ADMIN not in text
