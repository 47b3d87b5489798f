"""The emulator's control API, scenario files and command line (issue 3, points 3, 4 and 7).

Tests steer the emulator over HTTPS on the same port as the Live API: inspect sessions, make the
model speak or call a tool now, send goAway, drop a socket, add latency, refuse connections. A
scenario file scripts whole conversations, and the CLI prints one `ready` line that clients use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from emulator_helpers import (
    MODEL,
    TIME_TOOL,
    audio_config,
    close_of,
    has_audio,
    live,
    model_text,
    post,
    raw,
    raw_open,
    raw_setup,
    say_text,
    sessions,
    text_config,
    tools,
    wait_session,
)
from emulator_helpers import (
    control as control_client,
)
from google import genai
from google.genai import errors, types

from emulator.client import http_options
from emulator.scenario import ScenarioError, load_scenario, parse_scenario
from emulator.server import Emulator, Running, running
from testkit.processes import stop_group_async

pytestmark = pytest.mark.emulator

BOOK_TOOL = types.FunctionDeclaration(
    name="book_table",
    description="Book a table at a restaurant.",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"people": types.Schema(type=types.Type.INTEGER)}
    ),
)


# ------------------------------------------------------------------ inspection


async def test_sessions_list_what_each_connection_did(emulator: Running) -> None:
    config = text_config(
        tools=tools(TIME_TOOL), system_instruction="You are Ava, a helpful assistant."
    )
    async with live(emulator, config) as (session, box):
        await say_text(session, "What time is it in Tokyo?")
        call = (await box.until(lambda m: m.tool_call))[-1].tool_call.function_calls[0]
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"time": "22:15"})
            ]
        )
        await box.turn()
        summary = await wait_session(
            emulator,
            lambda s: s["conversation_id"] == session.session_id and len(s["history"]) == 2,
        )
    assert summary["id"].startswith("sess-")
    assert summary["model"] == "models/gemini-3.1-flash-live-preview"
    assert summary["resumed_from"] is None
    assert summary["config"]["modality"] == "TEXT"
    assert summary["config"]["system_instruction"] == "You are Ava, a helpful assistant."
    assert summary["config"]["tools"] == [
        {"name": "get_time", "behavior": "BLOCKING", "declared": ""}
    ]
    assert summary["history"][0] == {
        "role": "user",
        "text": "What time is it in Tokyo?",
        "source": "text",
    }
    assert summary["history"][1]["role"] == "model"
    assert "22:15" in summary["history"][1]["text"]
    (record,) = summary["tool_calls"]
    assert record["id"] == call.id
    assert (record["name"], record["args"], record["status"]) == (
        "get_time",
        {"city": "Tokyo"},
        "answered",
    )
    assert record["responses"][0]["response"] == {"time": "22:15"}
    assert summary["frames"] == {"setup": 1, "text": 1, "tool_response": 1}


async def test_one_session_is_found_by_connection_or_conversation_id(emulator: Running) -> None:
    async with live(emulator) as (session, _box), control_client(emulator) as http:
        by_conversation = await http.get(f"/emulator/sessions/{session.session_id}")
        assert by_conversation.status_code == 200
        sid = by_conversation.json()["id"]
        by_connection = await http.get(f"/emulator/sessions/{sid}")
        missing = await http.get("/emulator/sessions/sess-nope")
    assert by_connection.json()["conversation_id"] == session.session_id
    assert missing.status_code == 404


# ------------------------------------------------------------------ steering a session


async def test_say_makes_the_model_speak_now(emulator: Running) -> None:
    async with live(emulator) as (session, box):
        response = await post(
            emulator, f"/emulator/sessions/{session.session_id}/say", {"text": "Scripted words."}
        )
        assert response.json() == {"ok": True, "session": response.json()["session"]}
        assert model_text(await box.turn()) == "Scripted words."
        bad = await post(emulator, f"/emulator/sessions/{session.session_id}/say", {"text": " "})
    assert bad.status_code == 400
    assert (
        await post(emulator, "/emulator/sessions/sess-nope/say", {"text": "x"})
    ).status_code == 404


async def test_tool_call_makes_the_model_call_a_declared_function(emulator: Running) -> None:
    async with live(emulator, text_config(tools=tools(BOOK_TOOL))) as (session, box):
        path = f"/emulator/sessions/{session.session_id}/tool_call"
        undeclared = await post(emulator, path, {"name": "launch_rocket", "args": {}})
        assert undeclared.status_code == 400
        assert "launch_rocket" in undeclared.json()["error"]["message"]
        assert (await post(emulator, path, {"name": 5})).status_code == 400

        ok = await post(emulator, path, {"name": "book_table", "args": {"people": 4}})
        assert ok.status_code == 200
        call = (await box.until(lambda m: m.tool_call))[-1].tool_call.function_calls[0]
        assert (call.name, call.args) == ("book_table", {"people": 4})
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(
                    id=call.id, name=call.name, response={"confirmation": "R-77"}
                )
            ]
        )
        assert "R-77" in model_text(await box.turn())


async def test_controls_on_a_closed_session_are_refused(emulator: Running) -> None:
    async with live(emulator) as (session, _box):
        sid = session.session_id
    await wait_session(emulator, lambda s: s["conversation_id"] == sid and not s["open"])
    listed = [s for s in await sessions(emulator) if s["conversation_id"] == sid]
    response = await post(emulator, f"/emulator/sessions/{listed[0]['id']}/say", {"text": "hi"})
    assert response.status_code == 409


async def test_drop_leaves_the_session_listed_as_closed_without_a_close_frame(
    emulator: Running,
) -> None:
    async with raw_open(emulator) as (ws, summary):
        assert (await post(emulator, f"/emulator/sessions/{summary['id']}/drop")).is_success
        code, _ = await close_of(ws)
    assert code == 1006
    after = await wait_session(emulator, lambda s: s["id"] == summary["id"] and not s["open"])
    assert after["close_code"] == 1006


@pytest.mark.speech
async def test_latency_delays_the_first_audio_of_each_answer(emulator: Running) -> None:
    async with live(emulator, audio_config()) as (session, box):
        path = f"/emulator/sessions/{session.session_id}/latency"
        assert (await post(emulator, path, {"first_audio_ms": 400})).is_success
        summary = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
        assert summary["first_audio_ms"] == 400
        sent = time.monotonic()
        await say_text(session, "Hello")
        await box.until(has_audio)
        waited = time.monotonic() - sent
    assert waited >= 0.4, "audio arrived before the configured latency"


async def test_default_latency_applies_to_new_sessions(emulator: Running) -> None:
    async with control_client(emulator) as http:
        response = await http.post("/emulator/latency", json={"first_audio_ms": 250})
    assert response.json() == {"first_audio_ms": 250}
    async with live(emulator) as (session, _box):
        summary = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    assert summary["first_audio_ms"] == 250


async def test_refused_connections_fail_then_the_next_one_succeeds(emulator: Running) -> None:
    async with control_client(emulator) as http:
        response = await http.post("/emulator/faults", json={"refuse_connections": 2})
    assert response.json()["refuse_connections"] == 2
    for _ in range(2):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with live(emulator):
                pass
        assert refused.value.response.status_code == 503
    async with live(emulator) as (session, box):
        await say_text(session, "Hello")
        assert model_text(await box.turn())


async def test_bad_control_bodies_are_refused(emulator: Running) -> None:
    async with live(emulator) as (session, _box), control_client(emulator) as http:
        base = f"/emulator/sessions/{session.session_id}"
        not_json = await http.post(f"{base}/say", content=b"{nope")
        not_object = await http.post(f"{base}/say", json=[1])
        unknown = await http.post(f"{base}/dance", json={})
        bad_time = await http.post(f"{base}/goaway", json={"time_left_s": "soon"})
    assert [r.status_code for r in (not_json, not_object, unknown, bad_time)] == [
        400,
        400,
        404,
        400,
    ]


async def test_close_from_the_control_api_ends_the_connection_with_that_code(
    emulator: Running,
) -> None:
    async with raw_open(emulator) as (ws, summary):
        body = {"code": 1011, "reason": "Internal error encountered."}
        response = await post(emulator, f"/emulator/sessions/{summary['id']}/close", body)
        assert response.status_code == 200
        code, reason = await close_of(ws)
    assert (code, reason) == (1011, "Internal error encountered.")
    after = await wait_session(emulator, lambda s: s["id"] == summary["id"] and not s["open"])
    assert after["close_code"] == 1011


@pytest.mark.parametrize(
    ("action", "body", "written"),
    [
        ("goaway", {"time_left_s": "soon"}, {"goaway": {"time_left_s": "soon"}}),
        ("latency", {"first_audio_ms": -5}, {"latency": {"first_audio_ms": -5}}),
        ("tool_call", {"args": {}}, {"tool_call": {"args": {}}}),
        ("say", {"text": ["a"]}, {"say": ["a"]}),
    ],
)
async def test_a_bad_action_is_refused_in_the_same_words_by_the_control_api_and_a_scenario(
    emulator: Running, action: str, body: dict[str, object], written: dict[str, object]
) -> None:
    async with live(emulator) as (session, _box):
        refused = await post(emulator, f"/emulator/sessions/{session.session_id}/{action}", body)
    with pytest.raises(ScenarioError) as scenario_error:
        parse_scenario({"rules": [{"do": [written]}]})
    assert refused.status_code == 400
    reason = refused.json()["error"]["message"]
    assert str(scenario_error.value) == f"rule 1, action 1: {reason}"


# ------------------------------------------------------------------ scenarios

SCENARIO = """\
on_connect:
  - say: Welcome to the scripted scenario.
rules:
  - when: weather
    do:
      - say: It is always sunny in Scenario Land.
  - when: book a table
    do:
      - tool_call: {name: book_table, args: {people: 4}}
  - when: only once
    times: 1
    do:
      - say: This rule runs one time.
  - when: goodbye
    do:
      - say: See you soon.
      - goaway: {time_left_s: 0.2}
  - when: vanish
    do:
      - drop:
"""


@pytest.fixture
async def scripted(cert_dir: Path, tmp_path: Path) -> AsyncIterator[Running]:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    emulator = Emulator(pace=0, connection_lifetime_s=None, scenario=load_scenario(path))
    async with running(emulator, cert_dir=cert_dir) as r:
        yield r


async def test_a_scenario_says_calls_and_counts_rule_uses(scripted: Running) -> None:
    config = text_config(tools=tools(BOOK_TOOL))
    async with live(scripted, config) as (session, box):
        assert model_text(await box.turn()) == "Welcome to the scripted scenario."
        await say_text(session, "How is the weather today?")
        assert model_text(await box.turn()) == "It is always sunny in Scenario Land."
        await say_text(session, "Please book a table for us.")
        call = (await box.until(lambda m: m.tool_call))[-1].tool_call.function_calls[0]
        assert (call.name, call.args) == ("book_table", {"people": 4})
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"table": 12})
            ]
        )
        assert "12" in model_text(await box.turn())
        await say_text(session, "Do this only once.")
        assert model_text(await box.turn()) == "This rule runs one time."
        await say_text(session, "Do this only once.")
        again = model_text(await box.turn())
    assert again != "This rule runs one time.", "times: 1 lets the brain answer the second time"


async def test_a_scenario_can_send_go_away(scripted: Running) -> None:
    async with raw(scripted) as ws:
        await raw_setup(ws)
        await ws.send('{"realtimeInput": {"text": "goodbye for now"}}')
        code, _ = await close_of(ws)
    assert code == 1001
    summary = await wait_session(scripted, lambda s: not s["open"])
    assert summary["history"][-1]["text"] == "See you soon."


async def test_a_scenario_can_drop_the_connection(scripted: Running) -> None:
    async with live(scripted) as (session, box):
        await box.turn()  # the welcome
        await say_text(session, "vanish")
        error = await box.error()
    assert isinstance(error, errors.APIError) and error.code == 1006


BAD_SCENARIOS = [
    ("list.yaml", "- say: hi\n", "is a mapping"),
    ("keys.yaml", "rulez: []\n", "Unknown scenario keys: rulez"),
    ("regex.yaml", "rules:\n  - when: '('\n    do: [{say: hi}]\n", "rule 1: 'when' is not a valid"),
    ("action.yaml", "rules:\n  - do: [{sing: la}]\n", "rule 1, action 1: unknown action 'sing'"),
    ("say.yaml", "rules:\n  - do: [{say: [1, 2]}]\n", "say takes the text"),
    ("tool.yaml", "rules:\n  - do: [{tool_call: {args: {}}}]\n", "tool_call needs a name"),
    ("two.yaml", "rules:\n  - do: [{say: a, drop: null}]\n", "one key"),
    ("times.yaml", "rules:\n  - times: 0\n    do: [{say: a}]\n", "'times' must be a positive"),
    ("empty.yaml", "rules:\n  - when: x\n", "rule 1: 'do' must be a non-empty list"),
    ("rule.yaml", "rules:\n  - just text\n", "rule 1: expected a mapping"),
    ("onconnect.yaml", "on_connect: [{wave: 1}]\n", "on_connect, action 1: unknown action"),
    ("broken.yaml", "rules: [\n", "is not valid yaml"),
    ("broken.json", "{", "is not valid json"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_SCENARIOS)
def test_a_bad_scenario_file_gives_a_clear_error(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert message.lower() in str(error.value).lower()


def test_a_missing_scenario_file_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="Cannot read scenario"):
        load_scenario(tmp_path / "absent.yaml")


def test_a_json_scenario_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"rules": [{"when": "hi", "do": [{"say": "Hello from JSON."}]}]}')
    scenario = load_scenario(path)
    assert scenario.match("hi there", {}) == [{"say": "Hello from JSON."}]


# ------------------------------------------------------------------ the command line

READY = re.compile(r"^ready (https://127\.0\.0\.1:(\d+)) ca=(\S+)$")


@contextlib.asynccontextmanager
async def cli(*args: str, stderr_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m emulator ...` in its own process group, which gets SIGTERM at the end."""
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "emulator",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            await stop_group_async(proc)


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


def ca_bytes(path: Path) -> bytes:
    assert path.is_file(), f"{path} is not a file"
    return path.read_bytes()


async def ready_line(proc: asyncio.subprocess.Process, stderr_path: Path) -> re.Match[str]:
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
    except TimeoutError:
        pytest.fail(f"no ready line in 60 s; stderr: {tail(stderr_path)}")
    match = READY.match(line.decode().rstrip("\n"))
    assert match, f"unexpected first line {line!r}; stderr: {tail(stderr_path)}"
    return match


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, bytes]:
    """SIGTERM by PID; return the exit code and whatever else the process printed to stdout."""
    assert proc.stdout is not None
    os.kill(proc.pid, signal.SIGTERM)
    rest = await asyncio.wait_for(proc.stdout.read(), 30)
    return await asyncio.wait_for(proc.wait(), 30), rest


async def test_the_cli_prints_one_ready_line_serves_the_sdk_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    certs = tmp_path / "certs"
    args = ("--port", "0", "--cert-dir", str(certs), "--no-warm", "--api-key", "cli-key")
    async with cli(*args, stderr_path=tmp_path / "err1") as proc:
        match = await ready_line(proc, tmp_path / "err1")
        base_url, ca = match.group(1), Path(match.group(3))
        assert int(match.group(2)) > 0
        assert ca.parent == certs
        first_ca = ca_bytes(ca)
        client = genai.Client(api_key="cli-key", http_options=http_options(base_url, ca))
        async with client.aio.live.connect(model=MODEL, config=text_config()) as s:
            await s.send_realtime_input(text="What is twelve times seven?")
            text = ""
            async for message in s.receive():
                text += message.text or ""
        assert "84" in text
        code, rest = await stop(proc)
    assert code == 0
    assert rest == b"", "the ready line must be the only line on stdout"

    async with cli(*args, stderr_path=tmp_path / "err2") as proc:
        match = await ready_line(proc, tmp_path / "err2")
        assert ca_bytes(Path(match.group(3))) == first_ca, "the CA must be reused"
        code, _ = await stop(proc)
    assert code == 0


async def test_the_cli_refuses_a_bad_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{do: [{sing: la}]}]\n")
    args = ("--port", "0", "--cert-dir", str(tmp_path), "--no-warm", "--scenario", str(bad))
    async with cli(*args, stderr_path=tmp_path / "err") as proc:
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 2
    assert "unknown action 'sing'" in tail(tmp_path / "err")


async def test_the_cli_flags_turn_on_the_vertex_guide_options(tmp_path: Path) -> None:
    args = ("--port", "0", "--cert-dir", str(tmp_path), "--no-warm", "--polite-interrupt")
    async with cli(*args, stderr_path=tmp_path / "err") as proc:
        base_url, ca = (await ready_line(proc, tmp_path / "err")).group(1, 3)
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as http:
            response = await http.post(base_url + "/emulator/options", json={})
        code, _ = await stop(proc)
    assert code == 0
    assert response.json() == {
        "cancel_blocking_on_input": False,
        "polite_interrupt": True,
        "pace": 1.0,
    }


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "gemini-live-emulator"
    assert script.is_file(), f"{script} is missing: reinstall the project (pip install -e .)"
    assert os.access(script, os.X_OK)
    assert "emulator.__main__" in script.read_text()
