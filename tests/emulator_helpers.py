"""Helpers for the emulator's protocol tests: the real SDK, raw WebSockets and the control API.

Every wait here is bounded (``asyncio.wait_for`` or a deadline) and waits for something specific:
a server message, a close frame, or a session summary from ``GET /emulator/sessions`` that meets a
condition. Nothing sleeps to let a race settle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from functools import cache
from typing import Any

import httpx
import websockets
from google import genai
from google.genai import errors, types
from websockets.asyncio.client import ClientConnection

from emulator.client import http_options
from emulator.server import Running
from testkit.waiting import until

API_KEY = "test-key"
MODEL = "gemini-3.1-flash-live-preview"
NATIVE_AUDIO_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
MODEL_38 = "gemini-3.8-live"
MODEL_38_THINKING = "gemini-3.8-live-extended-thinking"
MODELS_38 = (MODEL_38, MODEL_38_THINKING)
THREE_MODELS = (MODEL_38, MODEL_38_THINKING, MODEL)
"""The models whose behaviour differs, for tests parametrized over them."""
TIMEOUT = 30.0
"""Upper bound for any single wait; generous, since CI shares 2 cores with Whisper and Piper."""

SAMPLE_RATE = 16000
CHUNK_BYTES = SAMPLE_RATE * 2 // 10  # 100 ms of 16 kHz PCM16
SILENCE_1S = b"\x00\x00" * SAMPLE_RATE
PCM_16K = "audio/pcm;rate=16000"

TIME_TOOL = types.FunctionDeclaration(
    name="get_time",
    description="Get the current time in a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING, description="The city")},
        required=["city"],
    ),
)
CALC_TOOL = types.FunctionDeclaration(
    name="calculate",
    description="Evaluate an arithmetic expression with a calculator.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"expression": types.Schema(type=types.Type.STRING)},
        required=["expression"],
    ),
)


# ------------------------------------------------------------------ the SDK


def sdk_client(
    r: Running, *, api_key: str = API_KEY, api_version: str | None = None
) -> genai.Client:
    """A real google-genai client pointed at the running emulator."""
    return genai.Client(
        api_key=api_key, http_options=http_options(r.base_url, r.certs.ca, api_version=api_version)
    )


def text_config(**kwargs: Any) -> types.LiveConnectConfig:
    """A TEXT-modality config (no speech synthesis: the fastest kind of session)."""
    return types.LiveConnectConfig(response_modalities=[types.Modality.TEXT], **kwargs)


def audio_config(**kwargs: Any) -> types.LiveConnectConfig:
    """An AUDIO-modality config with both transcriptions on."""
    kwargs.setdefault("input_audio_transcription", types.AudioTranscriptionConfig())
    kwargs.setdefault("output_audio_transcription", types.AudioTranscriptionConfig())
    return types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO], **kwargs)


def model_config(model: str, **kwargs: Any) -> types.LiveConnectConfig:
    """The quickest config `model` accepts: TEXT where it may, else AUDIO with transcription;
    the extended-thinking model gets the thinking level it requires (LOW, as Pipecat sends)."""
    if model not in MODELS_38:
        return text_config(**kwargs)
    if model == MODEL_38_THINKING:
        kwargs.setdefault("thinking_config", types.ThinkingConfig(thinking_level="LOW"))
    kwargs.setdefault("output_audio_transcription", types.AudioTranscriptionConfig())
    return types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO], **kwargs)


def declared(decl: types.FunctionDeclaration, behavior: str | None) -> types.FunctionDeclaration:
    """`decl` with `behavior` (BLOCKING, NON_BLOCKING, or None for none declared)."""
    return decl.model_copy(update={"behavior": types.Behavior(behavior) if behavior else None})


def tools(*decls: types.FunctionDeclaration) -> list[types.Tool]:
    return [types.Tool(function_declarations=list(decls))]


class Inbox:
    """Reads an SDK session in the background so a test can wait for specific messages.

    `session.receive()` ends after each turnComplete; the reader calls it again and again, and
    an exception from the socket (a close) is queued like a message.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self.seen: list[types.LiveServerMessage] = []
        self._queue: asyncio.Queue[types.LiveServerMessage | BaseException] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                async for message in self.session.receive():
                    await self._queue.put(message)
        except Exception as exc:
            await self._queue.put(exc)

    async def next(self, within: float = TIMEOUT) -> types.LiveServerMessage:
        """The next message; raises the socket's error if it closed instead."""
        item = await asyncio.wait_for(self._queue.get(), within)
        if isinstance(item, BaseException):
            self._queue.put_nowait(item)  # the socket stays closed for later calls too
            raise item
        self.seen.append(item)
        return item

    async def until(
        self, predicate: Callable[[types.LiveServerMessage], Any], within: float = TIMEOUT
    ) -> list[types.LiveServerMessage]:
        """Messages up to and including the first that satisfies `predicate`."""
        got: list[types.LiveServerMessage] = []
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message in {within}s; got {summarize(got)}")
            try:
                message = await self.next(remaining)
            except TimeoutError:
                raise TimeoutError(
                    f"no matching message in {within}s; got {summarize(got)}"
                ) from None
            got.append(message)
            if predicate(message):
                return got

    async def turn(self, within: float = TIMEOUT) -> list[types.LiveServerMessage]:
        """Messages through the next turnComplete."""
        return await self.until(turn_complete, within)

    async def error(self, within: float = TIMEOUT) -> errors.APIError:
        """Wait for the socket to close, skipping messages; returns the SDK's APIError."""
        deadline = time.monotonic() + within
        while True:
            try:
                await self.next(max(0.01, deadline - time.monotonic()))
            except errors.APIError as exc:
                return exc

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


@contextlib.asynccontextmanager
async def live(
    r: Running,
    config: types.LiveConnectConfig | None = None,
    *,
    model: str = MODEL,
    client: genai.Client | None = None,
) -> AsyncIterator[tuple[Any, Inbox]]:
    """Connect with the real SDK and read in the background: `async with live(r) as (s, box)`."""
    client = client or sdk_client(r)
    async with client.aio.live.connect(model=model, config=config or text_config()) as session:
        inbox = Inbox(session)
        try:
            yield session, inbox
        finally:
            await inbox.aclose()


def turn_complete(message: types.LiveServerMessage) -> bool:
    return bool(message.server_content and message.server_content.turn_complete)


def interrupted(message: types.LiveServerMessage) -> bool:
    return bool(message.server_content and message.server_content.interrupted)


def has_audio(message: types.LiveServerMessage) -> bool:
    return bool(audio_parts(message))


def audio_parts(message: types.LiveServerMessage) -> list[types.Blob]:
    content = message.server_content
    if not content or not content.model_turn:
        return []
    return [p.inline_data for p in content.model_turn.parts or [] if p.inline_data]


def model_text(messages: Iterable[types.LiveServerMessage]) -> str:
    """The text parts of model turns, joined."""
    out = []
    for m in messages:
        content = m.server_content
        if content and content.model_turn:
            out.extend(p.text for p in content.model_turn.parts or [] if p.text)
    return "".join(out)


def output_transcript(messages: Iterable[types.LiveServerMessage]) -> str:
    return "".join(
        m.server_content.output_transcription.text or ""
        for m in messages
        if m.server_content and m.server_content.output_transcription
    )


def input_transcript(messages: Iterable[types.LiveServerMessage]) -> str:
    return "".join(
        m.server_content.input_transcription.text or ""
        for m in messages
        if m.server_content and m.server_content.input_transcription
    )


def said(messages: Iterable[types.LiveServerMessage]) -> str:
    """What the model said, in either modality: text parts plus the output transcription."""
    messages = list(messages)
    return model_text(messages) + output_transcript(messages)


def summarize(messages: Iterable[types.LiveServerMessage]) -> list[str]:
    """Short description of messages for assertion failures."""
    out = []
    for m in messages:
        d = m.model_dump(exclude_none=True)
        content = d.get("server_content", {})
        for part in (content.get("model_turn") or {}).get("parts", []):
            if "inline_data" in part:
                part["inline_data"] = f"<{len(part['inline_data'].get('data', b''))} bytes>"
        out.append(json.dumps(d, default=str)[:200])
    return out


async def assert_server_serves(r: Running, api_key: str = API_KEY) -> None:
    """A fresh SDK session still gets setupComplete and an answer: the server lives."""
    async with live(r, text_config(), client=sdk_client(r, api_key=api_key)) as (session, box):
        await say_text(session, "What is twelve times seven?")
        assert "84" in model_text(await box.turn())


async def send_audio(
    session: Any, pcm: bytes, *, mime_type: str = PCM_16K, chunk: int = CHUNK_BYTES
) -> None:
    """Send PCM as 100 ms chunks through the SDK, faster than real time (VAD counts samples)."""
    for i in range(0, len(pcm), chunk):
        await session.send_realtime_input(
            audio=types.Blob(data=pcm[i : i + chunk], mime_type=mime_type)
        )


async def say_text(session: Any, text: str) -> None:
    await session.send_realtime_input(text=text)


# ------------------------------------------------------------------ raw WebSockets


@cache
def _ssl(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def ws_url(
    r: Running,
    *,
    version: str = "v1beta",
    method: str = "BidiGenerateContent",
    key: str | None = None,
    double_slash: bool = False,
) -> str:
    base = r.base_url.replace("https://", "wss://")
    path = (
        f"{'//' if double_slash else '/'}ws/google.ai.generativelanguage.{version}."
        f"GenerativeService.{method}"
    )
    return base + path + (f"?key={key}" if key else "")


@contextlib.asynccontextmanager
async def raw(
    r: Running,
    *,
    version: str = "v1beta",
    key: str | None = API_KEY,
    in_query: bool = False,
    double_slash: bool = False,
    method: str = "BidiGenerateContent",
    headers: dict[str, str] | None = None,
    compression: str | None = "deflate",
) -> AsyncIterator[ClientConnection]:
    """A raw `websockets` client, for what the SDK cannot send."""
    all_headers = dict(headers or {})
    if key and not in_query and method == "BidiGenerateContent":
        all_headers["x-goog-api-key"] = key
    url = ws_url(
        r,
        version=version,
        method=method,
        key=key if in_query else None,
        double_slash=double_slash,
    )
    async with websockets.connect(
        url,
        ssl=_ssl(str(r.certs.ca)),
        additional_headers=all_headers,
        max_size=None,
        open_timeout=TIMEOUT,
        compression=compression,
    ) as ws:
        yield ws


async def recv_json(ws: ClientConnection, within: float = TIMEOUT) -> dict[str, Any]:
    """The next server message as JSON; it must arrive as a binary frame, as the service sends."""
    frame = await asyncio.wait_for(ws.recv(), within)
    assert isinstance(frame, bytes), f"server sent a text frame: {frame[:200]!r}"
    return json.loads(frame)


async def recv_until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], Any], within: float = TIMEOUT
) -> list[dict[str, Any]]:
    """Raw messages up to and including the first that satisfies `predicate`."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no matching raw message; got {[str(m)[:120] for m in got]}")
        got.append(await recv_json(ws, remaining))
        if predicate(got[-1]):
            return got


def raw_turn_complete(message: dict[str, Any]) -> bool:
    return bool(message.get("serverContent", {}).get("turnComplete"))


def raw_text(messages: Iterable[dict[str, Any]]) -> str:
    out = []
    for m in messages:
        content = m.get("serverContent", {})
        out.extend(p.get("text", "") for p in content.get("modelTurn", {}).get("parts", []))
        out.append(content.get("outputTranscription", {}).get("text", ""))
    return "".join(out)


async def close_of(ws: ClientConnection, within: float = TIMEOUT) -> tuple[int, str]:
    """Read until the server closes; return its close code and reason (1006: no close frame)."""

    async def drain() -> tuple[int, str]:
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as exc:
            if exc.rcvd is None:
                return 1006, ""
            return exc.rcvd.code, exc.rcvd.reason

    return await asyncio.wait_for(drain(), within)


def setup_message(
    model: str = MODEL, *, modality: str = "TEXT", camel: bool = True, **extra: Any
) -> str:
    key = "generationConfig" if camel else "generation_config"
    modalities = "responseModalities" if camel else "response_modalities"
    body = {"model": f"models/{model}", key: {modalities: [modality]}, **extra}
    return json.dumps({"setup": body})


async def raw_setup(ws: ClientConnection, setup: str | None = None) -> dict[str, Any]:
    """Send a setup and return setupComplete."""
    await ws.send(setup or setup_message())
    message = await recv_json(ws)
    assert "setupComplete" in message, message
    return message


def b64(data: bytes, *, urlsafe: bool = False, pad: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode("ascii")
    return text if pad else text.rstrip("=")


# ------------------------------------------------------------------ the control API


@contextlib.asynccontextmanager
async def control(r: Running) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTPS client for `/emulator/...`, trusting the emulator's CA and holding its key."""
    key = r.emulator.api_key
    async with httpx.AsyncClient(
        base_url=r.base_url,
        verify=_ssl(str(r.certs.ca)),
        timeout=TIMEOUT,
        headers={"x-goog-api-key": key} if key else None,
    ) as client:
        yield client


async def sessions(r: Running) -> list[dict[str, Any]]:
    async with control(r) as http:
        response = await http.get("/emulator/sessions")
        response.raise_for_status()
        return response.json()


async def post(r: Running, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async with control(r) as http:
        return await http.post(path, json=body if body is not None else {})


@contextlib.asynccontextmanager
async def raw_open(r: Running) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    """A raw socket past its setup, and its summary once `GET /emulator/sessions` lists it open."""
    async with raw(r) as ws:
        await raw_setup(ws)
        yield ws, await wait_session(r, lambda s: s["open"])


async def wait_session(
    r: Running, predicate: Callable[[dict[str, Any]], Any], within: float = TIMEOUT
) -> dict[str, Any]:
    """Poll `GET /emulator/sessions` until a session summary satisfies `predicate`."""
    last: list[dict[str, Any]] = []
    async with control(r) as http:
        fetching: asyncio.Task[list[dict[str, Any]]] | None = None

        async def fetch() -> list[dict[str, Any]]:
            response = await http.get("/emulator/sessions")
            response.raise_for_status()
            return response.json()

        def matched() -> dict[str, Any] | None:
            """The first summary that matches in the latest answer; asks again when none does."""
            nonlocal fetching, last
            if fetching is not None and fetching.done():
                last = fetching.result()
                fetching = None
                found = next((s for s in last if predicate(s)), None)
                if found is not None:
                    return found
            if fetching is None:
                fetching = asyncio.ensure_future(fetch())
            return None

        try:
            return await until(matched, "a session summary that matches", within, poll=0.02)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; sessions: {json.dumps(last)[:2000]}") from None
        finally:
            if fetching is not None:
                fetching.cancel()
