"""Replaying a recorded session: the model answers each turn as the real one did, and the client
must do what the recorded client did where it matters.

A cassette (`cassettes`) is read into a script of steps once, at start:

- `Expect`: a client message that matters (the setup's model and tools, typed text, client
  content, tool responses, manual activity marks) must come next, equal to the recorded one;
- `SpeechEnd`: the user spoke here (the recorded model transcribed speech): wait until the
  client's microphone audio has had speech and then the end-of-turn silence;
- `Send`: a server message, after its recorded delay (times `--pace`; 0 sends at once);
- `Close`: the server closed the socket here.

Audio is never compared byte for byte (a replayed microphone is a different recording), only
where the turns fall. The first difference fails the session loudly: it is logged at ERROR with
both sides, kept for `GET /emulator/replay`, and the socket is closed with 1008 and a short
reason. Every connection replays the cassette from its start.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from loguru import logger

from cassettes import Cassette
from cassettes.scrub import plain_key
from emulator.wire import WireError, decode_bytes, parse_rate

MISMATCH_CLOSE = 1008
MAX_MESSAGE = 32 * 1024 * 1024
MAX_KEPT = 500
"""Replayed connections kept for the report; past this the oldest are forgotten."""
MAX_QUEUED = 256
"""Client messages that matter, held while the script is busy sending; more is a mismatch."""
SPEECH_RMS = 300.0
"""RMS (of 32768) above which 20 ms of microphone audio counts as speech: Piper's voice and any
real talker are far above it, digital and room silence far below."""
DEFAULT_SILENCE_MS = 500
SIGNIFICANT = ("setup", "text", "client_content", "tool_response", "activity_start", "activity_end")


def field_of(message: Mapping[str, Any], name: str) -> Any:
    """`message[name]` whichever way the key is spelled (`tool_response`, `toolResponse`)."""
    wanted = plain_key(name)
    return next((v for k, v in message.items() if plain_key(k) == wanted), None)


def client_kind(message: Mapping[str, Any]) -> str:
    """What a client message is: one of `SIGNIFICANT`, or audio, video, stream_end, other."""
    if field_of(message, "setup") is not None:
        return "setup"
    if field_of(message, "clientContent") is not None:
        return "client_content"
    if field_of(message, "toolResponse") is not None:
        return "tool_response"
    realtime = field_of(message, "realtimeInput")
    if not isinstance(realtime, Mapping):
        return "other"
    for name, kind in (
        ("text", "text"),
        ("activityStart", "activity_start"),
        ("activityEnd", "activity_end"),
        ("audioStreamEnd", "stream_end"),
        ("video", "video"),
    ):
        if field_of(realtime, name) is not None:
            return kind
    return "audio" if field_of(realtime, "audio") or field_of(realtime, "mediaChunks") else "other"


def _text_of(turns: Any) -> list[list[str]]:
    out = []
    for turn in turns if isinstance(turns, list) else []:
        parts = field_of(turn, "parts") or []
        words = " ".join(str(field_of(p, "text") or "") for p in parts if isinstance(p, Mapping))
        out.append([str(field_of(turn, "role") or ""), words.strip()])
    return out


def essence(kind: str, message: Mapping[str, Any]) -> Any:
    """The part of a client message a replay compares (what the model would act on)."""
    if kind == "setup":
        setup = field_of(message, "setup") or {}
        tools = field_of(setup, "tools") or []
        names = sorted(
            str(field_of(d, "name"))
            for tool in tools
            if isinstance(tool, Mapping)
            for d in (field_of(tool, "functionDeclarations") or [])
            if isinstance(d, Mapping)
        )
        model = str(field_of(setup, "model") or "").removeprefix("models/")
        return {"model": model, "tools": names}
    if kind == "text":
        return str(field_of(field_of(message, "realtimeInput"), "text")).strip()
    if kind == "client_content":
        content = field_of(message, "clientContent") or {}
        return {
            "turns": _text_of(field_of(content, "turns")),
            "turn_complete": bool(field_of(content, "turnComplete")),
        }
    if kind == "tool_response":
        responses = field_of(field_of(message, "toolResponse"), "functionResponses") or []
        return [
            {k: field_of(r, k) for k in ("id", "name", "response")}
            for r in responses
            if isinstance(r, Mapping)
        ]
    return kind


@dataclass(frozen=True)
class Expect:
    kind: str
    essence: Any
    line: int


@dataclass(frozen=True)
class SpeechEnd:
    line: int


@dataclass(frozen=True)
class Send:
    message: dict[str, Any]
    delay: float
    line: int


@dataclass(frozen=True)
class Close:
    code: int
    reason: str
    delay: float


Step = Expect | SpeechEnd | Send | Close


def _starts_answer(message: Mapping[str, Any]) -> bool:
    content = field_of(message, "serverContent") or {}
    return field_of(message, "toolCall") is not None or field_of(content, "modelTurn") is not None


def script_of(cassette: Cassette) -> list[Step]:
    """The steps a replay takes, from the cassette's entries (see the module docstring)."""
    steps: list[Step] = []
    last_t = 0.0
    speech_marked = False  # this user turn already has its SpeechEnd
    audio_since_trigger = False
    for line, entry in enumerate(cassette.entries, start=2):
        if entry.side == "client":
            if entry.message is None:
                continue
            kind = client_kind(entry.message)
            if kind in SIGNIFICANT:
                steps.append(Expect(kind, essence(kind, entry.message), line))
                last_t, speech_marked, audio_since_trigger = entry.t, False, False
            elif kind == "audio":
                audio_since_trigger = True
            continue
        if entry.close is not None:
            code = int(entry.close.get("code") or 1000)
            steps.append(Close(code, str(entry.close.get("reason") or ""), entry.t - last_t))
            last_t = entry.t
            continue
        message = entry.message or {}
        content = field_of(message, "serverContent") or {}
        heard = field_of(content, "inputTranscription") is not None
        if not speech_marked and (heard or (audio_since_trigger and _starts_answer(message))):
            steps.append(SpeechEnd(line))
            speech_marked, last_t = True, entry.t
        steps.append(Send(_replayable(message), max(0.0, entry.t - last_t), line))
        last_t = entry.t
        if field_of(content, "turnComplete") or field_of(message, "toolCall") is not None:
            speech_marked, audio_since_trigger = False, False
    return steps


def _replayable(message: Any) -> Any:
    """Hashed media back to bytes of the recorded length (silence: the voice was not kept)."""
    if isinstance(message, list):
        return [_replayable(item) for item in message]
    if not isinstance(message, dict):
        return message
    if "sha256" in message and "bytes" in message and message.get("data") == "":
        out = {k: v for k, v in message.items() if k not in ("sha256", "bytes")}
        out["data"] = base64.b64encode(bytes(int(message["bytes"]))).decode()
        return out
    return {k: _replayable(v) for k, v in message.items()}


def _silence_ms(message: Mapping[str, Any]) -> int:
    """The end-of-turn silence the client's setup asks for (Gemini's default otherwise)."""
    found: Any = field_of(message, "setup")
    for name in ("realtimeInputConfig", "automaticActivityDetection", "silenceDurationMs"):
        found = field_of(found, name) if isinstance(found, Mapping) else None
    return int(found) if isinstance(found, int | float) and found > 0 else DEFAULT_SILENCE_MS


class Mismatch(Exception):
    """The client strayed from the recording."""


@dataclass
class _Speech:
    """The client's microphone, counted in audio time: has it spoken and then gone quiet?"""

    silence_ms: int = DEFAULT_SILENCE_MS
    spoke: bool = False
    quiet_ms: float = 0.0
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def audio(self, pcm: bytes, rate: int) -> None:
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
        if not samples.size:
            return
        ms = samples.size * 1000 / rate
        loud = float(np.sqrt(np.mean(samples**2))) > SPEECH_RMS
        if loud:
            self.spoke, self.quiet_ms = True, 0.0
        elif self.spoke:
            self.quiet_ms += ms
            if self.quiet_ms >= self.silence_ms:
                self.turn_ended()

    def turn_ended(self) -> None:
        if self.spoke:
            self.ended.set()

    def reset(self) -> None:
        self.spoke, self.quiet_ms = False, 0.0
        self.ended.clear()


class ReplaySession:
    """One connection answered from a cassette."""

    def __init__(
        self, cassette: Cassette, steps: list[Step], ws: web.WebSocketResponse, *, pace: float
    ) -> None:
        self.cassette = cassette
        self.steps = steps
        self.ws = ws
        self.pace = pace
        self.id = f"replay-{secrets.token_hex(6)}"
        self.session_id: str | None = None  # the recorded setupComplete's, once sent
        self.opened_at = time.time()
        self.step = 0
        self.error: str | None = None
        self.sending = False
        self.pending_calls: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, Any, Mapping[str, Any]]] = asyncio.Queue(MAX_QUEUED)
        self._speech = _Speech()
        self._closed = False

    @property
    def open(self) -> bool:
        return not self._closed and not self.ws.closed

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.session_id,
            "replay": str(self.cassette.path or ""),
            "open": self.open,
            "opened_at": self.opened_at,
            "step": self.step,
            "steps": len(self.steps),
            "error": self.error,
            "model_speaking": self.sending,
            "model_busy": self.sending,
            "tool_calls": [{"id": i, "status": "pending"} for i in sorted(self.pending_calls)],
        }

    async def run(self) -> None:
        """Play the script while reading the client, until the client leaves or strays."""
        play = asyncio.create_task(self._play(), name=f"{self.id}-play")
        reader = asyncio.create_task(self._read(), name=f"{self.id}-read")
        pending: set[asyncio.Task[None]] = {play, reader}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a Mismatch, or the connection's own end
                if reader in done:
                    break  # the client has gone: nothing more to replay to it
        except Mismatch as exc:
            await self._fail(str(exc))
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception(f"{self.id}: unexpected error in the replay")
            if not self.ws.closed:
                await self.ws.close(code=1011, message=b"Internal error encountered.")
        finally:
            for task in (play, reader):
                task.cancel()
            self._closed = True

    # ------------------------------------------------------------------ the client's side

    async def _read(self) -> None:
        async for raw in self.ws:
            if raw.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                message = json.loads(raw.data)
            except ValueError:
                raise Mismatch("the client sent a message that is not JSON") from None
            if not isinstance(message, dict):
                raise Mismatch("the client sent JSON that is not an object")
            kind = client_kind(message)
            if kind == "audio":
                self._hear(message)
            elif kind == "stream_end":
                self._speech.turn_ended()
            elif kind in SIGNIFICANT:
                if self.step >= len(self.steps):
                    raise Mismatch(
                        f"the recording has ended, but the client sent {kind} "
                        f"{json.dumps(essence(kind, message))[:200]}"
                    )
                if self._queue.full():
                    raise Mismatch(f"the client sent more than {MAX_QUEUED} messages unanswered")
                self._queue.put_nowait((kind, essence(kind, message), message))

    def _hear(self, message: Mapping[str, Any]) -> None:
        realtime = field_of(message, "realtimeInput") or {}
        blobs = [field_of(realtime, "audio"), *(field_of(realtime, "mediaChunks") or [])]
        for blob in blobs:
            if isinstance(blob, Mapping) and field_of(blob, "data") is not None:
                try:
                    pcm = decode_bytes(field_of(blob, "data"))
                    rate = parse_rate(field_of(blob, "mimeType"))
                except WireError as exc:
                    raise Mismatch(f"the client sent audio that cannot be read: {exc}") from None
                self._speech.audio(pcm, rate)

    # ------------------------------------------------------------------ the script

    async def _play(self) -> None:
        for index, step in enumerate(self.steps):
            self.step = index
            if isinstance(step, Expect):
                self.sending = False
                await self._expect(step)
            elif isinstance(step, SpeechEnd):
                self.sending = False
                await self._speech_end(step)
            elif isinstance(step, Send):
                self.sending = True
                await self._pause(step.delay)
                await self._send(step.message)
            else:
                await self._pause(step.delay)
                await self.ws.close(code=step.code, message=step.reason.encode()[:123])
                self._closed = True
                return
        self.step = len(self.steps)
        self.sending = False

    async def _pause(self, delay: float) -> None:
        if self.pace > 0 and delay > 0:
            await asyncio.sleep(delay * self.pace)

    async def _expect(self, step: Expect) -> None:
        kind, got, message = await self._queue.get()
        if kind != step.kind:
            raise Mismatch(
                f"cassette line {step.line}: expected the client's {step.kind} "
                f"{json.dumps(step.essence)[:200]}, but it sent {kind} {json.dumps(got)[:200]}"
            )
        if got != step.essence:
            raise Mismatch(
                f"cassette line {step.line}: the client's {kind} differs from the recording: "
                f"expected {json.dumps(step.essence)[:300]}, got {json.dumps(got)[:300]}"
            )
        if kind == "tool_response":
            self.pending_calls -= {str(r.get("id")) for r in got}
        if kind == "setup":
            self._speech.silence_ms = _silence_ms(message)

    async def _speech_end(self, step: SpeechEnd) -> None:
        waiter = asyncio.create_task(self._speech.ended.wait())
        other = asyncio.create_task(self._queue.get())
        done, _ = await asyncio.wait({waiter, other}, return_when=asyncio.FIRST_COMPLETED)
        if other in done:
            waiter.cancel()
            kind, got, _message = other.result()
            raise Mismatch(
                f"cassette line {step.line}: the user spoke here in the recording, but the "
                f"client sent {kind} {json.dumps(got)[:200]}"
            )
        other.cancel()
        self._speech.reset()

    async def _send(self, message: dict[str, Any]) -> None:
        complete = field_of(message, "setupComplete")
        if isinstance(complete, Mapping) and field_of(complete, "sessionId"):
            self.session_id = str(field_of(complete, "sessionId"))
        calls = field_of(field_of(message, "toolCall") or {}, "functionCalls") or []
        self.pending_calls |= {str(field_of(c, "id")) for c in calls if isinstance(c, Mapping)}
        await self.ws.send_bytes(json.dumps(message, separators=(",", ":")).encode())

    async def _fail(self, why: str) -> None:
        self.error = why
        logger.error(f"{self.id}: replay of {self.cassette.path} failed: {why}")
        if not self.ws.closed:
            await self.ws.close(
                code=MISMATCH_CLOSE, message=f"Replay mismatch: {why}".encode()[:123]
            )


class Replayer:
    """Every connection of an emulator started with `--replay`, answered from one cassette.

    Args:
        cassette: The recorded session.
        pace: Recorded delays are multiplied by this (0 sends at once).
        max_open: Connections open at once; one more is answered 503.
    """

    def __init__(self, cassette: Cassette, *, pace: float, max_open: int) -> None:
        self.cassette = cassette
        self.steps = script_of(cassette)
        self.pace = pace
        self.max_open = max_open
        self.sessions: dict[str, ReplaySession] = {}

    @property
    def full(self) -> bool:
        """As many replayed connections are open as may be (the server answers 503)."""
        return sum(r.open for r in self.sessions.values()) >= self.max_open

    async def serve(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, compress=True, heartbeat=None)
        await ws.prepare(request)
        failed = next((r.error for r in self.sessions.values() if r.error), None)
        if failed is not None:
            # A client that strayed and reconnects would only replay the start again: refuse it
            # (1008 before setupComplete is permanent to the SDK's callers), naming why.
            await ws.close(code=MISMATCH_CLOSE, message=f"Replay mismatch: {failed}".encode()[:123])
            return ws
        session = ReplaySession(self.cassette, self.steps, ws, pace=self.pace)
        self.sessions[session.id] = session
        for old in list(self.sessions)[: max(0, len(self.sessions) - MAX_KEPT)]:
            del self.sessions[old]
        await session.run()
        return ws

    def find(self, ident: str) -> ReplaySession | None:
        """A replayed connection by its id or its recorded session id (the newest)."""
        found = [r for r in self.sessions.values() if ident in (r.id, r.session_id)]
        return found[-1] if found else None

    def summaries(self) -> list[dict[str, Any]]:
        return [r.summary() for r in self.sessions.values()]

    def report(self) -> dict[str, Any]:
        """What `GET /emulator/replay` answers: the cassette and how each replay went."""
        return {"cassette": str(self.cassette.path or ""), "sessions": self.summaries()}
