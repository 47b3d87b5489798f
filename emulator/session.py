"""One Live API connection: the `setup` handshake, realtime input, turns, tool calls, and faults.

The session behaves as users report the real service behaves, because client code must meet those
behaviours here before it meets them in production:
- server-side VAD ends a user turn after ~0.5 s of silence; speech while the model talks
  interrupts it;
- a BLOCKING tool call holds the model: new input is recorded but not answered until every blocking
  call is answered (a voice barge-in still interrupts, and cancels the calls);
- output is paced at real time, so "the model is talking" lasts as long as the audio does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import secrets
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from loguru import logger

from emulator import brain, speech
from emulator.models import LiveModel, lookup
from emulator.state import Conversation, SessionConfig, ToolCallRecord, Turn
from emulator.tokens import AuthToken, TokenRefused, apply_constraints
from emulator.wire import (
    WireError,
    camelize,
    decode_bytes,
    duration,
    encode_bytes,
    normalize,
    parse_rate,
    snake_case,
    text_of,
)

if TYPE_CHECKING:
    from emulator.server import Emulator

CLIENT_MESSAGES = ("setup", "client_content", "realtime_input", "tool_response")
REALTIME_FIELDS = (
    "audio",
    "video",
    "text",
    "activity_start",
    "activity_end",
    "audio_stream_end",
    "media_chunks",
)
CHUNK_MS = 100
MESSAGE_LIMIT = 8 * 1024 * 1024
AUDIO_TOKENS_PER_S = 25


class CloseSession(Exception):
    """End this connection with a WebSocket close code and a reason, as the service would."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _closing_reason(reason: str) -> str:
    """Fit a reason into a close frame (123 bytes of UTF-8)."""
    data = reason.encode("utf-8")
    if len(data) <= 123:
        return reason
    return data[:120].decode("utf-8", "ignore") + "..."


def _as_sent(raw: Any, name: str) -> str:
    """The spelling the client used for a field known here only in snake_case."""
    if isinstance(raw, dict):
        for key in raw:
            if snake_case(str(key)) == name:
                return str(key)
    return name


def _image_info(jpeg: bytes) -> brain.ImageInfo | None:
    """Size and mean colour of a JPEG frame, enough for the brain to say what it sees."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(jpeg)) as img:
            width, height = img.size
            small = img.convert("RGB").resize((8, 8))
            pixels = list(small.getdata())
    except Exception:
        return None
    n = len(pixels) or 1
    r, g, b = (sum(p[i] for p in pixels) // n for i in range(3))
    return brain.ImageInfo(width=width, height=height, mean_rgb=(r, g, b))


class LiveSession:
    """Serves one WebSocket connection of the BidiGenerateContent protocol."""

    def __init__(
        self,
        server: Emulator,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        api_version: str,
        token: str | None,
    ) -> None:
        self.id = f"sess-{uuid.uuid4().hex[:12]}"
        self.server = server
        self.ws = ws
        self.request = request
        self.api_version = api_version
        self.token_name = token
        self.token: AuthToken | None = None
        self.config: SessionConfig | None = None
        self.model: LiveModel | None = None
        self.conv: Conversation | None = None
        self.resumed_from: str | None = None
        self.opened_at = time.time()
        self.closed_at: float | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.frames: Counter[str] = Counter()
        self.audio_in_s = 0.0
        self.video_frames: list[dict[str, Any]] = []
        self.first_audio_ms = server.first_audio_ms
        self._send_lock = asyncio.Lock()
        self._events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._speaker: asyncio.Task[None] | None = None
        self._idle_queue: list[str] = []
        self._held_turns: list[str] = []
        self._vad: speech.TurnDetector | None = None
        self._resampler: speech.PcmResampler | None = None
        self._early_audio: bytes | None = None
        self._early_text: asyncio.Future[str] | None = None
        self._resampler_rate = 0
        self._manual_audio: bytearray | None = None
        self._inference_requested = False
        self._user_speaking = False
        self._image: brain.ImageInfo | None = None
        self.speech_segments: list[dict[str, float | None]] = []
        # What this connection's model said, kept even if a resume later drops it from history.
        self.spoken: list[Turn] = []
        self.handles: list[str] = []  # resumption handles issued on this connection, oldest first
        self._client_index = 0
        self._raw: dict[str, Any] = {}  # the last client message as sent, for error reasons
        self._prompt_tokens = 0
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def summary(self) -> dict[str, Any]:
        """The JSON that `GET /emulator/sessions` lists for this connection."""
        conv = self.conv
        return {
            "id": self.id,
            "conversation_id": conv.id if conv else None,
            "model": self.config.model if self.config else None,
            "api_version": self.api_version,
            "open": self.open,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "ephemeral_token": self.token_name is not None,
            "config": self.config.summary() if self.config else None,
            "resumed_from": self.resumed_from,
            "handles": self.handles[-200:],
            "history": [t.to_json() for t in conv.history] if conv else [],
            "tool_calls": [c.to_json() for c in conv.tool_calls] if conv else [],
            "frames": dict(self.frames),
            "audio_in_s": round(self.audio_in_s, 3),
            "video_frames": self.video_frames[-600:],
            "speech_segments": self.speech_segments[-200:],
            "user_speaking": self._user_speaking,
            "model_speaking": self.generating,
            "first_audio_ms": self.first_audio_ms,
        }

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self.id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, CloseSession):
            self._spawn(self.close(exc.code, exc.reason), "close")
            return
        if self._closing or self.ws.closed or isinstance(exc, ConnectionError):
            return  # the socket went away under a task that was still sending: not our error
        logger.opt(exception=exc).error(f"{self.id}: {task.get_name()} failed")
        self._spawn(self.close(1011, "Internal error encountered."), "close")

    async def run(self) -> None:
        """Serve the connection until it closes; never raises."""
        try:
            await self._handshake()
            self._spawn(self._conduct(), "conduct")
            await self._receive_loop()
        except CloseSession as exc:
            await self.close(exc.code, exc.reason)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception(f"{self.id}: unexpected error")
            await self.close(1011, "Internal error encountered.")
        finally:
            await self._finish()

    async def _finish(self) -> None:
        if self.closed_at is None:
            self.closed_at = time.time()
            if self.close_code is None:
                self.close_code = self.ws.close_code or 1006
        if self.conv is not None and self.server.live_by_conversation.get(self.conv.id) is self:
            del self.server.live_by_conversation[self.conv.id]
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def close(self, code: int, reason: str) -> None:
        """Close with a code and reason the client sees (the SDK raises them as `APIError`)."""
        if self._closing:
            return
        self._closing = True
        self.close_code, self.close_reason = code, reason
        if code not in (1000, 1001):
            logger.info(f"{self.id}: closing with {code}: {reason}")
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=_closing_reason(reason).encode("utf-8"))
        self.closed_at = self.closed_at or time.time()

    def drop(self) -> None:
        """Cut the TCP connection with no close frame, as a network failure would."""
        self.close_code, self.close_reason = 1006, "dropped by the emulator's fault control"
        self._closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.closed_at = time.time()

    # ------------------------------------------------------------------ sending

    async def send(self, message: dict[str, Any]) -> None:
        """Send one server message, camelCase JSON in a binary frame as the service does."""
        if self._closing or self.ws.closed:
            raise asyncio.CancelledError
        data = json.dumps(camelize(message), separators=(",", ":")).encode("utf-8")
        async with self._send_lock:
            await self.ws.send_bytes(data)

    async def _send_resumption_update(self) -> None:
        assert self.config is not None and self.conv is not None
        if not self.config.resumption:
            return
        pending = any(c.status == "pending" for c in self.conv.tool_calls if c.blocking)
        update: dict[str, Any]
        if pending or self.generating:
            update = {"new_handle": "", "resumable": False}
        else:
            handle = self.server.issue_handle(self.conv)
            self.handles.append(handle)
            update = {"new_handle": handle, "resumable": True}
        if self.config.transparent:
            update["last_consumed_client_message_index"] = self._client_index
        await self.send({"session_resumption_update": update})

    # ------------------------------------------------------------------ handshake

    async def _next_message(self) -> dict[str, Any] | None:
        msg = await self.ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        if msg.type == WSMsgType.ERROR:
            exc = self.ws.exception()
            code = getattr(exc, "code", 1009)
            raise CloseSession(
                code if isinstance(code, int) and code >= 1000 else 1009,
                f"Request rejected: {exc}",
            )
        raw = msg.data
        if len(raw) > MESSAGE_LIMIT:
            raise CloseSession(
                1009,
                f"Request payload size exceeds the limit: {len(raw)} > {MESSAGE_LIMIT} bytes.",
            )
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CloseSession(
                1007, "Invalid JSON payload received. The message is not valid JSON."
            ) from None
        if not isinstance(data, dict):
            raise CloseSession(1007, "Invalid JSON payload received. Expected a JSON object.")
        self._raw = data
        return normalize(data)

    async def _handshake(self) -> None:
        message = await self._next_message()
        if message is None:
            raise CloseSession(1000, "Client closed before setup.")
        kinds = [k for k in message if k in CLIENT_MESSAGES]
        unknown = [k for k in message if k not in CLIENT_MESSAGES]
        if unknown:
            raise CloseSession(
                1007,
                f'Invalid JSON payload received. Unknown name "{_as_sent(self._raw, unknown[0])}".',
            )
        if kinds != ["setup"]:
            raise CloseSession(1007, "The first message must be a setup message.")
        self.frames["setup"] += 1
        setup = message["setup"]
        if self.token_name is not None:
            resuming = bool(((setup or {}).get("session_resumption") or {}).get("handle"))
            try:
                self.token = self.server.tokens.admit(self.token_name, resuming=resuming)
            except TokenRefused as exc:
                raise CloseSession(1008, str(exc)) from None
            setup = apply_constraints(setup, self.token)
        try:
            config = SessionConfig.from_setup(setup)
        except WireError as exc:
            raise CloseSession(1007, str(exc)) from None
        model = lookup(config.model)
        if model is None:
            name = config.model if config.model.startswith("models/") else f"models/{config.model}"
            raise CloseSession(
                1008,
                f"{name} is not found for API version {self.api_version}, or is not supported "
                "for bidiGenerateContent.",
            )
        self.config, self.model = config, model
        if config.resume_handle:
            resolved = self.server.resolve_handle(config.resume_handle)
            if resolved is None:
                raise CloseSession(1008, "Session resumption handle is invalid or has expired.")
            conv, turns = resolved
            previous = self.server.live_by_conversation.get(conv.id)
            if previous is not None and previous.open:
                raise CloseSession(
                    1011,
                    "Resumption refused: an earlier connection of this session is still open.",
                )
            self.resumed_from = config.resume_handle
            if len(conv.history) > turns:
                # A handle restores the state it stood for: later turns are lost, as on Gemini,
                # where a client must resend what it sent after the handle it resumes with.
                del conv.history[turns:]
            self.conv = conv
        else:
            self.conv = Conversation()
        self.server.live_by_conversation[self.conv.id] = self
        await self.send({"setup_complete": {"session_id": self.conv.id}})
        await self._send_resumption_update()
        if self.server.connection_lifetime_s:
            self._spawn(self._lifetime_timer(self.server.connection_lifetime_s), "lifetime")
        if self.server.scenario and self.server.scenario.on_connect and not self.resumed_from:
            await self._events.put(("actions", self.server.scenario.on_connect, ""))

    # ------------------------------------------------------------------ receiving

    async def _receive_loop(self) -> None:
        while True:
            message = await self._next_message()
            if message is None:
                return
            kinds = list(message)
            unknown = [k for k in kinds if k not in CLIENT_MESSAGES]
            if unknown:
                raise CloseSession(
                    1007,
                    "Invalid JSON payload received. "
                    f'Unknown name "{_as_sent(self._raw, unknown[0])}".',
                )
            if len(kinds) != 1:
                raise CloseSession(1007, "Exactly one message kind is allowed per client message.")
            self._client_index += 1
            kind = kinds[0]
            body = message[kind]
            try:
                if kind == "setup":
                    raise CloseSession(1007, "setup must be the first and only setup message.")
                if kind == "realtime_input":
                    await self._on_realtime_input(body or {})
                elif kind == "client_content":
                    self._on_client_content(body or {})
                elif kind == "tool_response":
                    await self._on_tool_response(body or {})
            except WireError as exc:
                raise CloseSession(1007, str(exc)) from None

    async def _on_realtime_input(self, body: dict[str, Any]) -> None:
        assert self.config is not None
        unknown = [k for k in body if k not in REALTIME_FIELDS]
        if unknown:
            sent = next(
                (v for k, v in self._raw.items() if snake_case(str(k)) == "realtime_input"), None
            )
            raise WireError(
                f'Invalid JSON payload received. Unknown name "{_as_sent(sent, unknown[0])}".'
            )
        for blob in body.get("media_chunks") or []:
            mime = str((blob or {}).get("mime_type") or "")
            if mime.startswith("image/"):
                self._on_video(blob)
            else:
                self._on_audio(blob)
        if body.get("audio") is not None:
            self._on_audio(body["audio"])
        if body.get("video") is not None:
            self._on_video(body["video"])
        if body.get("activity_start") is not None:
            self.frames["activity_start"] += 1
            if not self.config.vad_disabled:
                raise WireError(
                    "activityStart is only allowed when automaticActivityDetection is disabled."
                )
            self._manual_audio = bytearray()
            self._speech_started()
        if body.get("activity_end") is not None:
            self.frames["activity_end"] += 1
            if not self.config.vad_disabled:
                raise WireError(
                    "activityEnd is only allowed when automaticActivityDetection is disabled."
                )
            self._drain_resampler()
            audio = bytes(self._manual_audio or b"")
            self._manual_audio = None
            self._speech_ended()
            if audio:
                await self._events.put(("audio_turn", audio))
        if body.get("audio_stream_end"):
            self.frames["audio_stream_end"] += 1
            self._drain_resampler()
            if self._vad is not None:
                event = self._vad.flush()
                if event is not None and event.kind == "ended":
                    self._speech_ended()
                    await self._events.put(("audio_turn", event.audio))
        text = body.get("text")
        if text is not None:
            self.frames["text"] += 1
            if not isinstance(text, str):
                raise WireError("Invalid value for realtimeInput.text: expected a string.")
            if text.strip():
                if self.generating:
                    await self._interrupt()
                await self._events.put(("text_turn", text.strip()))
            elif self._inference_requested or not self.generating:
                await self._events.put(("infer",))
            self._inference_requested = False
        elif self._inference_requested and any(
            body.get(k) is not None for k in ("audio", "video", "media_chunks")
        ):
            self._inference_requested = False
            await self._events.put(("infer",))

    def _on_audio(self, blob: dict[str, Any]) -> None:
        assert self.config is not None
        self.frames["audio"] += 1
        rate = parse_rate(blob.get("mime_type"))
        pcm = decode_bytes(blob.get("data", ""))
        if len(pcm) % 2:
            raise WireError("Invalid audio: 16-bit PCM needs an even number of bytes.")
        if rate != speech.INPUT_RATE:
            if self._resampler is None or self._resampler_rate != rate:
                self._resampler = speech.PcmResampler(rate, speech.INPUT_RATE)
                self._resampler_rate = rate
            pcm = self._resampler.process(pcm)
        self._take_audio(pcm)

    def _drain_resampler(self) -> None:
        """Take the audio a resampler still holds: the stream paused (or the turn ended)."""
        if self._resampler is None:
            return
        tail = self._resampler.process(b"", last=True)
        self._resampler, self._resampler_rate = None, 0
        if tail:
            self._take_audio(tail)

    def _take_audio(self, pcm: bytes) -> None:
        """Count 16 kHz input audio and hand it to VAD, or to the turn that activityStart began."""
        assert self.config is not None
        self.audio_in_s += len(pcm) / 2 / speech.INPUT_RATE
        if self.config.vad_disabled:
            if self._manual_audio is not None:
                self._manual_audio.extend(pcm)
            return
        if self._vad is None:
            self._vad = speech.TurnDetector(
                silence_ms=self.config.silence_ms,
                prefix_padding_ms=self.config.prefix_padding_ms,
                start_sensitivity=self.config.start_sensitivity,
                end_sensitivity=self.config.end_sensitivity,
            )
        ended = False
        for event in self._vad.feed(pcm):
            if event.kind == "started":
                self._speech_started()
            else:
                ended = True
                self._speech_ended()
                self._events.put_nowait(("audio_turn", event.audio))
        if not ended:
            self._maybe_transcribe_early()

    def _maybe_transcribe_early(self) -> None:
        """Start transcribing during the end-of-turn silence, so the answer need not wait for it.

        The turn ends only after `silence_ms` of quiet, but its audio is complete well before; if
        the turn ends with exactly that audio, the early transcript is used (see
        `_on_audio_turn`), which takes Whisper's time off the response latency.
        """
        assert self._vad is not None
        audio = self._vad.paused_utterance()
        if audio is None or audio == self._early_audio:
            return
        self._early_audio = audio
        self._early_text = asyncio.ensure_future(speech.Transcriber.shared().transcribe(audio))

    def _on_video(self, blob: dict[str, Any]) -> None:
        self.frames["video"] += 1
        mime = str(blob.get("mime_type") or "image/jpeg")
        if mime not in ("image/jpeg", "image/png", "image/webp"):
            raise WireError(f"Unsupported video MIME type {mime!r}: send JPEG frames.")
        data = decode_bytes(blob.get("data", ""))
        info = _image_info(data)
        if info is None:
            raise WireError(f"Invalid video frame: the data is not a decodable {mime} image.")
        self._image = info
        self.video_frames.append(
            {
                "t": round(time.time(), 3),
                "bytes": len(data),
                "width": info.width,
                "height": info.height,
                "during_speech": self._user_speaking,
            }
        )

    def _speech_ended(self) -> None:
        if self._user_speaking and self.speech_segments:
            self.speech_segments[-1]["end"] = round(time.time(), 3)
        self._user_speaking = False

    def _speech_started(self) -> None:
        assert self.config is not None and self.conv is not None
        if not self._user_speaking:
            self.speech_segments.append({"start": round(time.time(), 3), "end": None})
        self._user_speaking = True
        if self.config.activity_handling == "NO_INTERRUPTION":
            return
        pending = [c for c in self.conv.tool_calls if c.blocking and c.status == "pending"]
        if self.generating or pending:
            self._spawn(self._interrupt(cancel_calls=pending), "barge-in")

    def _on_client_content(self, body: dict[str, Any]) -> None:
        assert self.config is not None and self.conv is not None and self.model is not None
        self.frames["client_content"] += 1
        is_31 = not self.model.name.startswith("gemini-2")
        if is_31 and not self.config.initial_history_in_client_content:
            raise WireError(
                "clientContent is only accepted for initial history on this model: set "
                "historyConfig.initialHistoryInClientContent in setup."
            )
        for turn in body.get("turns") or []:
            role = str((turn or {}).get("role") or "user")
            text = text_of(turn)
            if text.strip():
                self.conv.add("model" if role == "model" else "user", text, "client_content")
        if body.get("turn_complete"):
            if is_31:
                # Gemini 3.x waits for a realtime input before it runs inference.
                self._inference_requested = True
            else:
                self._events.put_nowait(("infer",))

    async def _on_tool_response(self, body: dict[str, Any]) -> None:
        assert self.conv is not None
        self.frames["tool_response"] += 1
        responses = body.get("function_responses")
        if not isinstance(responses, list) or not responses:
            raise WireError("toolResponse needs a non-empty functionResponses list.")
        by_id = {c.id: c for c in self.conv.tool_calls}
        accepted = []
        for resp in responses:
            call_id = (resp or {}).get("id")
            call = by_id.get(call_id) if isinstance(call_id, str) else None
            if call is None:
                raise WireError(
                    f"Function response for unknown function call id {call_id!r}: "
                    "answer only ids sent in toolCall."
                )
            accepted.append((call, resp))
        await self._events.put(("tool_responses", accepted))

    # ------------------------------------------------------------------ the model

    @property
    def generating(self) -> bool:
        return self._speaker is not None and not self._speaker.done()

    async def _conduct(self) -> None:
        """Handle turns one at a time, in the order they happened."""
        while True:
            event = await self._events.get()
            kind = event[0]
            if kind == "audio_turn":
                await self._on_audio_turn(event[1])
            elif kind == "text_turn":
                await self._user_turn(event[1], "text")
            elif kind == "infer":
                await self._infer()
            elif kind == "tool_responses":
                await self._handle_tool_responses(event[1])
            elif kind == "actions":
                await self._run_actions(event[1], event[2])

    async def _on_audio_turn(self, audio: bytes) -> None:
        assert self.config is not None
        early, self._early_text = self._early_text, None
        if early is not None and audio == self._early_audio:
            text = await early
        else:
            text = await speech.Transcriber.shared().transcribe(audio)
        if not text:
            return
        if self.config.input_transcription:
            words = text.split(" ")
            step = max(1, (len(words) + 2) // 3)
            for i in range(0, len(words), step):
                piece = " ".join(words[i : i + step])
                await self.send(
                    {
                        "server_content": {
                            "input_transcription": {"text": piece if i == 0 else " " + piece}
                        }
                    }
                )
        await self._user_turn(text, "audio")

    def _pending_blocking(self) -> list[ToolCallRecord]:
        assert self.conv is not None
        return [c for c in self.conv.tool_calls if c.blocking and c.status == "pending"]

    async def _user_turn(self, text: str, source: str) -> None:
        assert self.conv is not None and self.config is not None
        self._prompt_tokens += max(1, len(text.split()) * 4 // 3)
        history = self.conv.pairs()
        self.conv.add("user", text, source)
        if self._pending_blocking():
            # A BLOCKING call holds the model: the input is in the history but not answered yet.
            self._held_turns.append(text)
            return
        await self._answer(text, history)

    async def _infer(self) -> None:
        assert self.conv is not None
        if self.generating or self._pending_blocking():
            return
        history = self.conv.history
        if not history or history[-1].role != "user":
            return
        await self._answer(history[-1].text, [(t.role, t.text) for t in history[:-1]])

    async def _answer(self, text: str, history: list[tuple[str, str]]) -> None:
        assert self.conv is not None and self.config is not None
        scenario = self.server.scenario
        actions = scenario.match(text, self.conv.scenario_uses) if scenario else None
        if actions is not None:
            await self._run_actions(actions, text)
            return
        assert self.model is not None
        tools = self.config.tools
        if not self.model.non_blocking_tools:
            # The model ignores `behavior`: its calls block, so it does not talk on while calling.
            tools = [dataclasses.replace(t, non_blocking=False) for t in tools]
        decision = brain.respond(
            text,
            tools,
            history=history,
            system_instruction=self.config.system_instruction,
            image=self._image,
        )
        if isinstance(decision, brain.Say):
            await self._start_output(decision.text)
        else:
            await self._call_tools(decision.calls, decision.preamble)

    async def _run_actions(self, actions: list[dict[str, Any]], user_text: str) -> None:
        """Carry out scenario or control actions in order."""
        for action in actions:
            ((kind, arg),) = action.items()
            if kind == "say":
                await self._start_output(str(arg))
                await self._wait_output()
            elif kind == "tool_call":
                await self._call_tools([(arg["name"], dict(arg.get("args") or {}))], "")
                await self._wait_output()  # the toolCall is on the wire before the next action
            elif kind == "goaway":
                opts = arg if isinstance(arg, dict) else {}
                await self.go_away(float(opts.get("time_left_s", 1)))
            elif kind == "drop":
                self.drop()
            elif kind == "latency":
                self.first_audio_ms = int(arg.get("first_audio_ms", 0))
            elif kind == "close":
                close = arg if isinstance(arg, dict) else {}
                raise CloseSession(int(close.get("code", 1011)), str(close.get("reason", "")))
            elif kind == "wait_ms":
                await asyncio.sleep(float(arg) / 1000)

    async def _wait_output(self) -> None:
        if self._speaker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._speaker)

    async def _call_tools(self, calls: list[tuple[str, dict[str, Any]]], preamble: str) -> None:
        assert self.config is not None and self.conv is not None and self.model is not None
        declared = {t.name: t for t in self.config.tools}
        records = []
        for name, args in calls:
            decl = declared.get(name)
            non_blocking = bool(decl and decl.non_blocking and self.model.non_blocking_tools)
            records.append(
                ToolCallRecord(
                    id=f"function-call-{secrets.token_hex(8)}",
                    name=name,
                    args=args,
                    blocking=not non_blocking,
                )
            )
        self.conv.tool_calls.extend(records)
        blocking = any(r.blocking for r in records)
        await self._start_output(preamble, calls=records, complete=not blocking)

    async def _handle_tool_responses(
        self, accepted: list[tuple[ToolCallRecord, dict[str, Any]]]
    ) -> None:
        for call, resp in accepted:
            response = resp.get("response")
            scheduling = str(
                resp.get("scheduling")
                or (response.get("scheduling") if isinstance(response, dict) else "")
                or "WHEN_IDLE"
            ).upper()
            call.responses.append(
                {
                    "response": response,
                    "scheduling": scheduling,
                    "will_continue": bool(resp.get("will_continue")),
                }
            )
            if call.status == "cancelled":
                continue  # a late answer to a call the model gave up on is ignored
            if not resp.get("will_continue"):
                call.status = "answered"
            if call.blocking:
                continue
            said = brain.respond_to_tool_results([(call.name, response)]).text
            if scheduling == "SILENT":
                continue
            if scheduling == "INTERRUPT" and self.generating:
                await self._interrupt()
                await self._start_output(said)
            elif self.generating:
                self._idle_queue.append(said)
            else:
                await self._start_output(said)
        if self._pending_blocking():
            return
        assert self.conv is not None
        unreported = [
            c
            for c in self.conv.tool_calls
            if c.blocking and c.status == "answered" and not c.reported
        ]
        for call in unreported:
            call.reported = True
        if unreported:
            said = brain.respond_to_tool_results(
                [(c.name, c.responses[-1]["response"]) for c in unreported]
            ).text
            await self._start_output(said)
            await self._release_held()

    async def _release_held(self) -> None:
        if not self._held_turns or self._pending_blocking():
            return
        text = self._held_turns[-1]
        self._held_turns.clear()
        await self._wait_output()
        await self._answer(text, self.conv.pairs()[:-1] if self.conv else [])

    async def _start_output(
        self, text: str, *, calls: list[ToolCallRecord] | None = None, complete: bool = True
    ) -> None:
        """Start a model turn (after any turn still playing) that says `text`, then calls tools."""
        await self._wait_output()
        self._speaker = self._spawn(self._speak(text, calls or [], complete), "speak")

    async def _speak(self, text: str, calls: list[ToolCallRecord], complete: bool) -> None:
        assert self.config is not None and self.conv is not None
        spoken: list[str] = []
        audio_s = 0.0
        try:
            if self.first_audio_ms:
                await asyncio.sleep(self.first_audio_ms / 1000)
            sentences = speech.split_sentences(text) if text.strip() else []
            start: float | None = None
            if self.config.modality == "TEXT":
                for sentence in sentences:
                    part = {"model_turn": {"role": "model", "parts": [{"text": sentence}]}}
                    await self.send({"server_content": part})
                    spoken.append(sentence)
            # Synthesis of the next sentence runs while this one streams, so a slow sentence
            # does not leave a silent gap between two (the client holds only ~`lead` of audio).
            synth = speech.Synthesizer.shared()
            audio_sentences = sentences if self.config.modality == "AUDIO" else []
            pending = (
                asyncio.ensure_future(synth.synthesize(audio_sentences[0]))
                if audio_sentences
                else None
            )
            try:
                for index, sentence in enumerate(audio_sentences):
                    assert pending is not None
                    pcm = await pending
                    nxt = index + 1
                    pending = (
                        asyncio.ensure_future(synth.synthesize(audio_sentences[nxt]))
                        if nxt < len(audio_sentences)
                        else None
                    )
                    step = speech.OUTPUT_RATE * 2 * CHUNK_MS // 1000
                    for i in range(0, len(pcm), step):
                        chunk = pcm[i : i + step]
                        if start is None:
                            start = time.monotonic()
                        await self._pace(start, audio_s)
                        content: dict[str, Any] = {
                            "model_turn": {
                                "parts": [
                                    {
                                        "inline_data": {
                                            "mime_type": f"audio/pcm;rate={speech.OUTPUT_RATE}",
                                            "data": encode_bytes(chunk),
                                        }
                                    }
                                ]
                            }
                        }
                        if i == 0:
                            if self.config.output_transcription:
                                # split_sentences keeps the space between sentences on each piece.
                                content["output_transcription"] = {"text": sentence}
                            spoken.append(sentence)
                        await self.send({"server_content": content})
                        audio_s += len(chunk) / 2 / speech.OUTPUT_RATE
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()
            if calls:
                await self.send(
                    {
                        "tool_call": {
                            "function_calls": [
                                {"id": c.id, "name": c.name, "args": c.args} for c in calls
                            ]
                        }
                    }
                )
                if not complete:
                    if spoken:
                        self.spoken.append(self.conv.add("model", "".join(spoken).strip(), "model"))
                    return
            await self.send({"server_content": {"generation_complete": True}})
            response_tokens = int(audio_s * AUDIO_TOKENS_PER_S) + sum(
                len(s.split()) for s in spoken
            )
            modality = self.config.modality
            prompt = max(self._prompt_tokens, 1)
            await self.send(
                {
                    "server_content": {"turn_complete": True},
                    "usage_metadata": {
                        "prompt_token_count": prompt,
                        "response_token_count": response_tokens,
                        "total_token_count": prompt + response_tokens,
                        "prompt_tokens_details": [{"modality": "TEXT", "token_count": prompt}],
                        "response_tokens_details": [
                            {"modality": modality, "token_count": response_tokens}
                        ],
                    },
                }
            )
            if spoken:
                self.spoken.append(self.conv.add("model", "".join(spoken).strip(), "model"))
        except asyncio.CancelledError:
            if spoken:
                turn = self.conv.add("model", "".join(spoken).strip(), "model", interrupted=True)
                self.spoken.append(turn)
            raise
        self._spawn(self._after_turn(), "after-turn")

    async def _after_turn(self) -> None:
        await self._send_resumption_update()
        if self._idle_queue:
            said = " ".join(self._idle_queue)
            self._idle_queue.clear()
            await self._start_output(said)

    async def _pace(self, start: float, audio_s: float) -> None:
        """Keep the audio sent at most `lead` ahead of real time, as a talking model would."""
        pace = self.server.pace
        if pace <= 0:
            await asyncio.sleep(0)
            return
        due = start + audio_s / pace - self.server.lead_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _interrupt(self, cancel_calls: list[ToolCallRecord] | None = None) -> None:
        """Barge-in: stop the model's output and tell the client, as the service does."""
        speaker = self._speaker
        self._idle_queue.clear()
        if speaker is not None and not speaker.done():
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await speaker
        if cancel_calls:
            for call in cancel_calls:
                call.status = "cancelled"
            await self.send({"tool_call_cancellation": {"ids": [c.id for c in cancel_calls]}})
        await self.send({"server_content": {"interrupted": True}})

    # ------------------------------------------------------------------ control

    async def say(self, text: str) -> None:
        """Control API: the model speaks `text` now (after any output still playing)."""
        await self._start_output(text)

    async def call_tool(self, name: str, args: dict[str, Any]) -> None:
        """Control API: the model calls a declared function now."""
        assert self.config is not None
        if name not in {t.name for t in self.config.tools}:
            raise ValueError(f"Function {name!r} is not declared in this session's setup.")
        await self._call_tools([(name, args)], "")

    async def go_away(self, time_left_s: float) -> None:
        """Send goAway, then close when the time is up, as the service does near its limit."""
        await self.send({"go_away": {"time_left": duration(time_left_s)}})
        self._spawn(self._close_later(time_left_s), "goaway-close")

    async def _close_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.close(1001, "Connection time limit reached (goAway).")

    async def _lifetime_timer(self, lifetime_s: float) -> None:
        lead = min(self.server.goaway_lead_s, lifetime_s)
        await asyncio.sleep(lifetime_s - lead)
        await self.go_away(lead)
