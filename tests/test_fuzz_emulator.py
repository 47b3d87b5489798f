"""Random requests against every control route and the WebSocket of a running `python -m emulator`:
never a 5xx, never a 1011, never a traceback, and it still holds a conversation afterwards
(issue 13, point 8).

The emulator runs as a user starts it, in its own process, with `--api-key` so the key check is
on the path. Hypothesis draws methods, paths, keys, headers and bodies (JSON of any shape and depth,
`NaN`, bytes) for HTTP, and for the socket a setup or not followed by messages of every kind with
random bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.asyncio.client
from fuzz_strategies import deep, json_values, methods, paths
from google import genai
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from emulator.client import http_options
from testkit.waiting import wait_for

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(600)]

KEY = "fuzzing-emulator-key-1234"
WS_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
PATHS = (
    "/emulator/healthz",
    "/emulator/sessions",
    "/emulator/sessions/{sid}",
    "/emulator/sessions/{sid}/say",
    "/emulator/sessions/{sid}/tool_call",
    "/emulator/sessions/{sid}/goaway",
    "/emulator/sessions/{sid}/latency",
    "/emulator/sessions/{sid}/nonsense",
    "/emulator/sessions/nobody/say",
    "/emulator/faults",
    "/emulator/latency",
    "/emulator/options",
    "/emulator/scenario",
    "/v1alpha/auth_tokens",
    "/v1beta/auth_tokens",
    WS_PATH,
    "/",
)
MODELS = ("gemini-3.1-flash-live-preview", "gemini-3.8-live", "gemini-3.8-live-extended-thinking")
EMULATOR = (sys.executable, "-m", "emulator", "--no-warm", "--pace", "0")
READY = re.compile(r"^ready (https://127\.0\.0\.1:\d+) ca=(\S+)$")

control_like = st.fixed_dictionaries(
    {},
    optional={
        "text": st.text(max_size=60) | json_values,
        "name": st.sampled_from(["get_time", "calculate", ""]) | json_values,
        "args": json_values,
        "time_left_s": json_values | st.sampled_from(["NaN", "Infinity", "-1"]),
        "first_audio_ms": json_values,
        "refuse_connections": json_values,
        "refuse_for_s": json_values,
        "reset": json_values,
        "polite_interrupt": json_values,
        "uses": json_values,
        "expireTime": st.text(max_size=30) | json_values,
        "bidiGenerateContentSetup": json_values,
    },
)
non_finite = st.sampled_from(['{"first_audio_ms": NaN}', '{"refuse_for_s": Infinity}', "-1e999"])
bodies = (
    st.none()
    | json_values.map(json.dumps)
    | control_like.map(json.dumps)
    | non_finite
    | deep
    | st.binary(max_size=2000)
    | st.integers(min_value=1_000_000, max_value=1_200_000).map(lambda n: "x" * n)
)
keys = st.sampled_from(
    [
        {},
        {"x-goog-api-key": KEY},
        {"x-goog-api-key": "wrong"},
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {KEY}"},
    ]
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(["application/json", "text/plain", "multipart/form-data"]),
        "Origin": st.sampled_from(["https://evil.example", "null"]),
    },
)

kinds = st.sampled_from(
    ["setup", "clientContent", "realtimeInput", "toolResponse", "client_content", "nonsense"]
)
realtime = st.fixed_dictionaries(
    {},
    optional={
        "text": json_values,
        "audio": st.fixed_dictionaries(
            {},
            optional={
                "data": st.sampled_from(["AAAA", "!!", ""]) | json_values,
                "mimeType": st.sampled_from(["audio/pcm;rate=16000", "audio/pcm;rate=0", "x"])
                | json_values,
            },
        ),
        "activityStart": json_values,
        "activityEnd": json_values,
        "audioStreamEnd": json_values,
        "video": json_values,
    },
)
setup_like = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS) | json_values},
    optional={
        "generationConfig": st.fixed_dictionaries(
            {},
            optional={
                "responseModalities": st.lists(st.sampled_from(["TEXT", "AUDIO", "X"]))
                | json_values,
                "thinkingConfig": json_values,
                "speechConfig": json_values,
                "mediaResolution": json_values,
                "temperature": json_values,
            },
        ),
        "systemInstruction": json_values,
        "tools": st.lists(
            st.fixed_dictionaries({}, optional={"functionDeclarations": json_values}), max_size=2
        )
        | json_values,
        "realtimeInputConfig": json_values,
        "sessionResumption": json_values,
        "contextWindowCompression": json_values,
        "inputAudioTranscription": json_values,
        "outputAudioTranscription": json_values,
        "proactivity": json_values,
        "enableAffectiveDialog": json_values,
    },
)
parts = st.lists(st.fixed_dictionaries({}, optional={"text": json_values}) | json_values)
client_content_like = st.fixed_dictionaries(
    {},
    optional={
        "turns": st.lists(
            st.fixed_dictionaries(
                {}, optional={"role": st.sampled_from(["user", "model", "x"]), "parts": parts}
            )
            | json_values,
            max_size=3,
        )
        | json_values,
        "turnComplete": json_values,
    },
)
tool_response_like = st.fixed_dictionaries(
    {},
    optional={
        "functionResponses": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": st.text(max_size=10) | json_values,
                    "name": st.text(max_size=10) | json_values,
                    "response": json_values,
                    "scheduling": st.sampled_from(["SILENT", "WHEN_IDLE", "INTERRUPT", "X"]),
                    "willContinue": json_values,
                },
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)
messages = (
    st.builds(lambda kind, body: json.dumps({kind: body}), kinds, json_values | realtime)
    | setup_like.map(lambda body: json.dumps({"setup": body}))
    | client_content_like.map(lambda body: json.dumps({"clientContent": body}))
    | tool_response_like.map(lambda body: json.dumps({"toolResponse": body}))
    | st.builds(lambda body: json.dumps({"realtimeInput": body}), realtime)
    | json_values.map(json.dumps)
    | non_finite
    | deep.map(lambda d: '{"realtimeInput": {"text": ' + d + "}}")
    | st.binary(max_size=500)
)
SETUP = json.dumps(
    {
        "setup": {
            "model": "models/gemini-3.1-flash-live-preview",
            "generationConfig": {"responseModalities": ["TEXT"]},
        }
    }
)


@dataclass
class Served:
    """The emulator process, where it listens and what it has logged."""

    proc: subprocess.Popen[str]
    base_url: str
    ca: str
    log: Path

    def ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def sessions(self) -> list[dict[str, Any]]:
        with httpx.Client(base_url=self.base_url, verify=self.ssl(), timeout=30) as http:
            answer = http.get("/emulator/sessions", headers={"x-goog-api-key": KEY})
            answer.raise_for_status()
            return list(answer.json())

    def async_socket(self) -> Any:
        """An asyncio client (the sync one can hang joining its reader after a failed TLS
        handshake)."""
        url = self.base_url.replace("https://", "wss://") + WS_PATH
        return websockets.asyncio.client.connect(
            url,
            ssl=self.ssl(),
            additional_headers={"x-goog-api-key": KEY},
            open_timeout=30,
            max_size=None,
        )

    def socket(self) -> ClientConnection:
        url = self.base_url.replace("https://", "wss://") + WS_PATH
        return connect(
            url,
            ssl=self.ssl(),
            additional_headers={"x-goog-api-key": KEY},
            open_timeout=30,
            max_size=None,
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("fuzz-emulator")
    log = workdir / "emulator.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [*EMULATOR, "--cert-dir", str(workdir / "certs"), "--api-key", KEY],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        match = READY.match(proc.stdout.readline().rstrip("\n"))
        assert match, log.read_text()
        yield Served(proc, match.group(1), match.group(2), log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, verify=served.ssl(), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def target() -> Iterator[contextlib.ExitStack]:
    """Holds the set-up connections the control routes act on, closed at the end."""
    with contextlib.ExitStack() as held:
        yield held


def open_session_id(served: Served, held: contextlib.ExitStack) -> str:
    """The id of a set-up connection that is still open, opening a new one if need be."""
    listed = [s for s in served.sessions() if s["open"] and s["model"]]
    if listed:
        return str(listed[-1]["id"])
    ws = held.enter_context(served.socket())
    ws.send(SETUP)
    assert "setupComplete" in json.loads(ws.recv(timeout=30))
    return open_session_id(served, held)


@given(
    method=methods,
    path=paths(PATHS, prefix="/emulator/", alphabet="/abcemulator.%?=&"),
    key=keys,
    extra=headers,
    body=bodies,
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_control_request_gets_a_server_error(
    served: Served,
    http: httpx.Client,
    target: contextlib.ExitStack,
    method: str,
    path: str,
    key: dict[str, str],
    extra: dict[str, str],
    body: Any,
) -> None:
    # An injected fault makes the socket route answer 503 on purpose; start every request clean.
    http.post("/emulator/faults", json={"reset": True}, headers={"x-goog-api-key": KEY})
    if "{sid}" in path:
        path = path.format(sid=open_session_id(served, target))
    content = body.encode() if isinstance(body, str) else body
    answer = http.request(method, path, headers={**key, **extra}, content=content)
    assert answer.status_code < 500, (method, path, key, answer.status_code, answer.text[:300])
    if path.startswith("/emulator/") and path != "/emulator/healthz":
        if KEY not in json.dumps(key):
            assert answer.status_code in (401, 404, 405), (method, path, answer.status_code)


def exchange(served: Served, with_setup: bool, sent: list[str | bytes]) -> str | None:
    """Send the messages on a new connection and close it; the connection's id, if it opened."""
    before = {s["id"] for s in served.sessions()}

    async def talk() -> None:
        async with served.async_socket() as ws:
            if with_setup:
                await ws.send(SETUP)
                assert "setupComplete" in json.loads(await asyncio.wait_for(ws.recv(), 30))
            with contextlib.suppress(ConnectionClosed):
                for message in sent:
                    await ws.send(message)

    try:
        asyncio.run(talk())
    except InvalidStatus as refused:
        pytest.fail(f"the upgrade was refused with {refused.response.status_code}")
    new = [s["id"] for s in served.sessions() if s["id"] not in before]
    return new[0] if new else None


@given(with_setup=st.booleans(), sent=st.lists(messages, min_size=1, max_size=4))
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_client_message_closes_a_socket_with_an_internal_error(
    served: Served, with_setup: bool, sent: list[str | bytes]
) -> None:
    sid = exchange(served, with_setup, sent)
    assert sid is not None

    def closed() -> dict[str, Any] | None:
        found = [s for s in served.sessions() if s["id"] == sid]
        return found[0] if found and not found[0]["open"] else None

    summary = wait_for(closed, f"connection {sid} to close")
    assert summary["close_code"] != 1011, (sent, summary["close_reason"])


def test_afterwards_the_log_has_no_traceback_and_the_emulator_still_answers(
    served: Served,
) -> None:
    async def converse() -> str:
        client = genai.Client(api_key=KEY, http_options=http_options(served.base_url, served.ca))
        config = types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
        async with client.aio.live.connect(
            model="gemini-3.1-flash-live-preview", config=config
        ) as session:
            await session.send_realtime_input(text="What is twelve times seven?")
            text = ""
            async for message in session.receive():
                text += message.text or ""
                if message.server_content and message.server_content.turn_complete:
                    break
            return text

    assert "84" in asyncio.run(converse())
    log = served.log.read_text()
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 2000) :][:6000]
    assert KEY not in log
