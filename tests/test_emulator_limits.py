"""The emulator's control API asks for its key off loopback, and its stores and buffers are bounded
(issue 13, point 5).

On 127.0.0.1 with no `--api-key` the emulator stays an open test double; with a key, or on an
address other machines reach, the control API (which reads every conversation and can make the
model call tools) answers 401 without that key. Ephemeral tokens and resumption handles are pruned
when they expire; open connections and one turn's audio are capped with clear close codes; NaN,
infinity, negative numbers and JSON nested past a sane depth are refused as bad input, not crashes.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestServer
from emulator_helpers import (
    assert_server_serves,
    b64,
    close_of,
    control,
    live,
    raw,
    raw_setup,
    sessions,
    setup_message,
    text_config,
)
from google.genai import errors

from emulator.__main__ import build_parser
from emulator.access import ControlAccess, is_loopback
from emulator.server import Emulator, Running, running
from emulator.state import MAX_TOOL_CALLS, MAX_TURNS, Conversation, ToolCallRecord
from emulator.tokens import TokenLimit, TokenStore
from emulator.wire import MAX_JSON_DEPTH

pytestmark = pytest.mark.emulator

KEY = "emulator-key-7f3a"
CONTROL_ROUTES = (
    ("GET", "/emulator/sessions"),
    ("GET", "/emulator/sessions/anything"),
    ("POST", "/emulator/sessions/anything/say"),
    ("POST", "/emulator/faults"),
    ("POST", "/emulator/latency"),
    ("POST", "/emulator/options"),
    ("POST", "/emulator/scenario"),
)


@pytest.fixture
async def keyed(cert_dir: Path) -> AsyncIterator[Running]:
    async with running(Emulator(api_key=KEY, pace=0), cert_dir=cert_dir) as r:
        yield r


def _client(r: Running, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=r.base_url,
        verify=ssl.create_default_context(cafile=str(r.certs.ca)),
        headers=headers or None,
        timeout=30,
    )


# ------------------------------------------------------------------ who may use the control API


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("emulator", False),
    ],
)
def test_only_addresses_this_machine_alone_can_reach_count_as_loopback(
    host: str, loopback: bool
) -> None:
    assert is_loopback(host) is loopback


async def test_with_a_key_every_control_route_answers_401_without_it(keyed: Running) -> None:
    async with _client(keyed) as anonymous, _client(keyed, **{"x-goog-api-key": "wrong"}) as wrong:
        for method, path in CONTROL_ROUTES:
            for client in (anonymous, wrong):
                answer = await client.request(method, path, json={"text": "hello"})
                assert answer.status_code == 401, (method, path)
                assert answer.json()["error"]["status"] == "UNAUTHENTICATED"
                assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_with_a_key_the_control_api_answers_the_key_in_either_header(keyed: Running) -> None:
    async with (
        _client(keyed, **{"x-goog-api-key": KEY}) as google_style,
        _client(keyed, authorization=f"Bearer {KEY}") as bearer,
    ):
        assert (await google_style.get("/emulator/sessions")).status_code == 200
        assert (await bearer.get("/emulator/sessions")).status_code == 200


async def test_a_refused_control_request_changes_nothing(keyed: Running) -> None:
    async with _client(keyed) as anonymous:
        refused = await anonymous.post("/emulator/faults", json={"refuse_connections": 5})
    assert refused.status_code == 401
    assert keyed.emulator.faults.refuse_connections == 0
    await assert_server_serves(keyed, api_key=KEY)


async def test_the_health_check_stays_open_without_the_key(keyed: Running) -> None:
    async with _client(keyed) as anonymous:
        health = await anonymous.get("/emulator/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True


async def test_on_loopback_without_a_key_the_control_api_is_open(emulator: Running) -> None:
    async with _client(emulator) as anonymous:
        assert (await anonymous.get("/emulator/sessions")).status_code == 200


async def test_on_a_network_address_without_a_key_the_control_api_answers_nobody() -> None:
    # The rule for an emulator bound to 0.0.0.0, served here on loopback as tests must be.
    app = Emulator(pace=0).app(ControlAccess(api_key=None, host="0.0.0.0"))
    async with TestServer(app, host="127.0.0.1") as server:
        async with httpx.AsyncClient(base_url=str(server.make_url(""))) as http:
            listed = await http.get("/emulator/sessions", headers={"x-goog-api-key": "any"})
            health = await http.get("/emulator/healthz")
    assert listed.status_code == 401
    assert "--api-key" in listed.json()["error"]["message"]
    assert health.status_code == 200


def test_the_key_can_come_from_the_environment_so_it_is_not_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMULATOR_API_KEY", KEY)
    assert build_parser().parse_args([]).api_key == KEY
    monkeypatch.delenv("EMULATOR_API_KEY")
    assert build_parser().parse_args([]).api_key is None


@pytest.mark.parametrize("flag", ["--pace", "--handle-ttl-s", "--max-turn-audio-s"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_the_command_line_refuses_numbers_that_are_not_finite_and_non_negative(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([flag, value])
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err


# ------------------------------------------------------------------ bounded stores


def test_expired_tokens_are_forgotten_when_the_next_one_is_made() -> None:
    store = TokenStore()
    start = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    for _ in range(5):
        store.create({"expireTime": "2026-12-03T12:01:00Z"}, now=start)
    store.create({}, now=start + dt.timedelta(minutes=2))
    assert len(store) == 1


def test_past_the_cap_a_new_token_is_refused_until_some_expire() -> None:
    store = TokenStore(limit=3)
    start = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    for _ in range(3):
        store.create({"expireTime": "2026-12-03T12:01:00Z"}, now=start)
    with pytest.raises(TokenLimit):
        store.create({}, now=start)
    assert store.create({}, now=start + dt.timedelta(minutes=1)).name


async def test_the_token_cap_answers_429_with_a_reason(cert_dir: Path) -> None:
    emulator = Emulator(pace=0, tokens=TokenStore(limit=1))
    async with running(emulator, cert_dir=cert_dir) as r, control(r) as http:
        made = await http.post("/v1alpha/auth_tokens", json={}, headers={"x-goog-api-key": "k"})
        refused = await http.post("/v1alpha/auth_tokens", json={}, headers={"x-goog-api-key": "k"})
    assert made.status_code == 200
    assert refused.status_code == 429
    assert refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "expire" in refused.json()["error"]["message"]


def test_expired_resumption_handles_are_forgotten_when_the_next_one_is_issued() -> None:
    now = [1000.0]
    emulator = Emulator(handle_ttl_s=60, clock=lambda: now[0])
    conversation = Conversation()
    old = [emulator.issue_handle(conversation) for _ in range(4)]
    now[0] += 61
    fresh = emulator.issue_handle(conversation)
    assert list(emulator.handles) == [fresh]
    assert all(emulator.resolve_handle(handle) is None for handle in old)


async def test_one_connection_past_the_cap_is_closed_with_1013_and_a_reason(
    cert_dir: Path,
) -> None:
    async with running(Emulator(pace=0, max_sessions=1), cert_dir=cert_dir) as r:
        async with live(r, text_config()):
            with pytest.raises(errors.APIError) as refused:
                async with live(r, text_config()):
                    pass
        assert refused.value.code == 1013
        assert "Too many open sessions" in str(refused.value)
        await assert_server_serves(r)


async def test_a_turn_that_buffers_more_audio_than_allowed_closes_with_1009(
    cert_dir: Path,
) -> None:
    manual = {"realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}}}
    second = b64(b"\x00\x00" * 16000)
    async with running(Emulator(pace=0, max_turn_audio_s=2), cert_dir=cert_dir) as r:
        async with raw(r) as ws:
            await raw_setup(ws, setup_message(**manual))
            await ws.send(json.dumps({"realtimeInput": {"activityStart": {}}}))
            for _ in range(3):
                await ws.send(
                    json.dumps(
                        {"realtimeInput": {"audio": {"data": second, "mimeType": "audio/pcm"}}}
                    )
                )
            code, reason = await close_of(ws)
        assert code == 1009
        assert "More than 2 s of audio in one turn" in reason
        await assert_server_serves(r)


# ------------------------------------------------------------------ numbers and nesting


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/emulator/latency", '{"first_audio_ms": NaN}'),
        ("/emulator/latency", '{"first_audio_ms": Infinity}'),
        ("/emulator/latency", '{"first_audio_ms": -5}'),
        ("/emulator/latency", '{"first_audio_ms": 1e999}'),
        ("/emulator/faults", '{"refuse_for_s": NaN}'),
        ("/emulator/faults", '{"refuse_for_s": -Infinity}'),
        ("/emulator/faults", '{"refuse_connections": -1}'),
        ("/emulator/options", '{"polite_interrupt": NaN}'),
    ],
)
async def test_numbers_that_are_not_finite_and_non_negative_are_refused_with_400(
    emulator: Running, path: str, body: str
) -> None:
    async with control(emulator) as http:
        answer = await http.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert emulator.emulator.first_audio_ms == 0
    assert not emulator.emulator.faults.refusing()


async def test_a_bad_delay_for_one_session_is_refused_and_the_session_goes_on(
    emulator: Running,
) -> None:
    async with live(emulator, text_config()) as (_, _box):
        (session,) = await sessions(emulator)
        async with control(emulator) as http:
            for body in ('{"time_left_s": NaN}', '{"time_left_s": -1}', '{"time_left_s": 1e400}'):
                answer = await http.post(
                    f"/emulator/sessions/{session['id']}/goaway",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                assert answer.status_code == 400, body
        (after,) = await sessions(emulator)
    assert after["open"] is True


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_a_control_body_nested_too_deep_is_a_400_not_a_crash(emulator: Running) -> None:
    async with control(emulator) as http:
        for depth in (MAX_JSON_DEPTH + 1, 100_000):
            answer = await http.post(
                "/emulator/options",
                content='{"x": ' + _nested(depth) + "}",
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 400
            assert "nests deeper" in answer.json()["error"]["message"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
@pytest.mark.parametrize("after_setup", [False, True])
async def test_a_message_nested_too_deep_closes_the_socket_with_1007(
    emulator: Running, depth: int, after_setup: bool
) -> None:
    async with raw(emulator) as ws:
        if after_setup:
            await raw_setup(ws)
        await ws.send('{"realtimeInput": {"text": ' + _nested(depth) + "}}")
        code, reason = await close_of(ws)
    assert code == 1007
    assert "nests deeper" in reason
    await assert_server_serves(emulator)


async def test_a_message_holding_nan_closes_the_socket_with_1007(emulator: Running) -> None:
    async with raw(emulator) as ws:
        await raw_setup(ws)
        await ws.send(
            '{"toolResponse": {"functionResponses": [{"id": "x", "response": {"v": NaN}}]}}'
        )
        code, reason = await close_of(ws)
    assert code == 1007 and "NaN" in reason


async def test_json_nested_as_deep_as_allowed_is_still_read(emulator: Running) -> None:
    # The wrapper objects count: {"realtimeInput": {"text": [[...]]}} is two levels more.
    async with raw(emulator) as ws:
        await raw_setup(ws)
        await ws.send('{"realtimeInput": {"text": ' + _nested(MAX_JSON_DEPTH - 2) + "}}")
        code, reason = await close_of(ws)
    # Read, then refused for what it is (text must be a string), not for its depth.
    assert code == 1007 and "nests deeper" not in reason


def test_a_long_conversation_keeps_its_latest_turns_and_a_handle_still_rewinds_to_its_turn() -> (
    None
):
    conversation = Conversation()
    for n in range(MAX_TURNS + 10):
        conversation.add("user", f"turn {n}")
    mark = conversation.turn_mark
    conversation.add("user", "after the handle")
    conversation.rewind(mark)
    # The handle's last turn is still its last; the one forgotten to make room stays forgotten.
    assert conversation.history[-1].text == f"turn {MAX_TURNS + 9}"
    assert conversation.history[0].text == "turn 11"
    assert len(conversation.history) == MAX_TURNS - 1


def test_old_settled_tool_calls_are_forgotten_and_unanswered_ones_are_kept() -> None:
    conversation = Conversation()
    waiting = ToolCallRecord(id="waiting", name="f", args={}, blocking=False)
    conversation.add_calls([waiting])
    for n in range(MAX_TOOL_CALLS + 5):
        call = ToolCallRecord(id=f"done-{n}", name="f", args={}, blocking=False)
        call.status = "answered"
        conversation.add_calls([call])
    ids = [c.id for c in conversation.tool_calls]
    assert len(ids) == MAX_TOOL_CALLS
    assert ids[0] == "waiting" and ids[-1] == f"done-{MAX_TOOL_CALLS + 4}"
