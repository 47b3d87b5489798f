"""Every route the bot server answers, pinned: a route that Pipecat or a change adds shows here.

The apps are made exactly as `python -m bots` makes them (`bots.server.assemble.make_app`), for
each way it can be started: local, local with the operator's token, on the network with session
tokens (with and without the operator's token), and with Daily rooms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from bots.server.assemble import make_app
from bots.settings import Settings

pytestmark = pytest.mark.unit

PAGE = {("GET", "/"), ("GET", "/client"), ("GET", "/healthz"), ("GET", "/readyz")}
WEBRTC = {
    ("POST", "/start"),
    ("POST", "/sessions/{session_id}/api/offer"),
    ("PATCH", "/sessions/{session_id}/api/offer"),
}
DAILY = {("POST", "/start"), ("GET", "/daily")}
TRANSCRIPTS = {("GET", "/transcripts"), ("GET", "/transcripts/{session_id}")}
LOGIN = {("POST", "/transcripts/login")}
METRICS = {("GET", "/metrics")}


async def no_bot(_runner_args: Any) -> None:
    raise AssertionError("no session starts here")


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route, with included routers flattened (FastAPI keeps them lazy)."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        inner = getattr(route, "effective_candidates", None)
        for each in inner() if inner is not None else [route]:
            methods = getattr(each, "methods", None) or {"GET"}  # a mount serves GET
            found |= {(m, str(getattr(each, "path", ""))) for m in methods if m != "HEAD"}
    return found


def served(tmp_path: Path, transport: str, host: str, **settings: Any) -> set[tuple[str, str]]:
    values = {"data_dir": tmp_path, **settings}
    bot_settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    return routes(make_app(bot_settings, no_bot, transport=transport, host=host).app)  # type: ignore[arg-type]


def test_a_local_bot_serves_the_page_the_session_routes_the_transcripts_and_metrics(
    tmp_path: Path,
) -> None:
    assert served(tmp_path, "webrtc", "127.0.0.1") == PAGE | WEBRTC | TRANSCRIPTS | METRICS


def test_with_an_admin_token_the_transcripts_have_a_sign_in_route(tmp_path: Path) -> None:
    got = served(tmp_path, "webrtc", "127.0.0.1", admin_token="operator-token-long-enough")
    assert got == PAGE | WEBRTC | TRANSCRIPTS | LOGIN | METRICS


def test_on_the_network_without_an_admin_token_there_are_no_transcript_or_metrics_routes(
    tmp_path: Path,
) -> None:
    got = served(tmp_path, "webrtc", "0.0.0.0", session_secret="a-session-secret-long-enough")
    assert got == PAGE | WEBRTC


def test_on_the_network_with_an_admin_token_the_transcripts_and_metrics_are_back(
    tmp_path: Path,
) -> None:
    got = served(
        tmp_path,
        "webrtc",
        "0.0.0.0",
        session_secret="a-session-secret-long-enough",
        admin_token="operator-token-long-enough",
    )
    assert got == PAGE | WEBRTC | TRANSCRIPTS | LOGIN | METRICS


def test_a_daily_bot_serves_its_room_routes_and_no_webrtc_offers(tmp_path: Path) -> None:
    got = served(tmp_path, "daily", "127.0.0.1", daily_api_key="test-daily-key")
    assert got == PAGE | DAILY | TRANSCRIPTS | METRICS
