"""One Live API connection, from the `setup` handshake to its close, put together from its parts.

The session behaves as users report the real service behaves, because client code must meet those
behaviours here before it meets them in production:
- server-side VAD ends a user turn after ~0.5 s of silence; speech while the model talks
  interrupts it (`media`, `turns`);
- a BLOCKING tool call holds the model: new input is recorded but not answered until every blocking
  call is answered (a voice barge-in still interrupts, and cancels the calls) (`tool_calls`);
- output is paced at real time, so "the model is talking" lasts as long as the audio does
  (`speaker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from loguru import logger

from emulator import actions
from emulator.config import SessionConfig
from emulator.models import LiveModel
from emulator.registry import Registry, SessionOptions
from emulator.session.channel import Channel, CloseSession
from emulator.session.context import Context, Script
from emulator.session.control import Controls
from emulator.session.handshake import admit, configure, open_conversation, read_setup
from emulator.session.inbound import Inbound
from emulator.session.media import Media
from emulator.session.speaker import Speaker
from emulator.session.tool_calls import ToolCalls
from emulator.session.turns import Turns
from emulator.state import Conversation, Turn
from emulator.tokens import AuthToken

HANDLES_KEPT = 1000
"""Resumption handles a connection remembers for its summary (one is issued per turn)."""

SPOKEN_KEPT = 200
"""Model turns a connection remembers for its summary."""


class NotSetUp(Exception):
    """A control action for a connection whose `setup` has not been accepted yet."""


@dataclass(frozen=True)
class _Parts:
    """The working parts of a set-up connection."""

    ctx: Context
    speaker: Speaker
    controls: Controls
    turns: Turns
    media: Media
    inbound: Inbound


class LiveSession:
    """Serves one WebSocket connection of the BidiGenerateContent protocol.

    Args:
        registry: The server's shared state (handles, tokens, live connections).
        ws: The prepared WebSocket.
        request: The request it was upgraded from.
        options: How the server wants the connection to behave.
        api_version: `v1`, `v1beta` or `v1alpha`, from the path.
        token: The ephemeral token's name, on the constrained endpoint.
    """

    def __init__(
        self,
        registry: Registry,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        options: SessionOptions,
        api_version: str,
        token: str | None,
    ) -> None:
        self.id = f"sess-{uuid.uuid4().hex[:12]}"
        self.registry = registry
        self.options = options
        self.api_version = api_version
        self.token_name = token
        self.channel = Channel(ws, request, self.id)
        self.token: AuthToken | None = None
        self.config: SessionConfig | None = None
        self.model: LiveModel | None = None
        self.conv: Conversation | None = None
        self.resumed_from: str | None = None
        self.opened_at = time.time()
        self.frames: Counter[str] = Counter()
        self.handles: deque[str] = deque(maxlen=HANDLES_KEPT)
        # What this connection's model said, kept even if a resume later drops it from history.
        self.spoken: deque[Turn] = deque(maxlen=SPOKEN_KEPT)
        self._first_audio_ms = options.first_audio_ms
        self._parts: _Parts | None = None

    # ------------------------------------------------------------------ what it is

    @property
    def open(self) -> bool:
        return self.channel.open

    @property
    def closed_at(self) -> float | None:
        return self.channel.closed_at

    @property
    def close_code(self) -> int | None:
        return self.channel.close_code

    @property
    def close_reason(self) -> str:
        return self.channel.close_reason

    @property
    def generating(self) -> bool:
        """True while the model is sending a turn."""
        return self._parts is not None and self._parts.speaker.generating

    @property
    def busy(self) -> bool:
        """The model owes the client something: a turn being sent, a result to say when idle,
        or a turn, response or script queued or being handled."""
        parts = self._parts
        return parts is not None and (
            parts.speaker.busy or parts.turns.handling or not parts.ctx.events.empty()
        )

    @property
    def first_audio_ms(self) -> int:
        """Delay before each answer of this connection."""
        return self._parts.ctx.first_audio_ms if self._parts else self._first_audio_ms

    @first_audio_ms.setter
    def first_audio_ms(self, value: int) -> None:
        self._first_audio_ms = value
        if self._parts is not None:
            self._parts.ctx.first_audio_ms = value

    def summary(self) -> dict[str, Any]:
        """The JSON that `GET /emulator/sessions` lists for this connection."""
        conv, media = self.conv, self._parts.media if self._parts else None
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
            "history": [t.to_json() for t in conv.history] if conv else [],
            "tool_calls": [c.to_json() for c in conv.tool_calls] if conv else [],
            "frames": dict(self.frames),
            "audio_in_s": round(media.audio_in_s, 3) if media else 0.0,
            "video_frames": list(media.video_frames) if media else [],
            "speech_segments": list(media.speech_segments) if media else [],
            "user_speaking": media.user_speaking if media else False,
            "model_speaking": self.generating,
            "model_busy": self.busy,
            "first_audio_ms": self.first_audio_ms,
            "handles": list(self.handles),
            "spoken": [t.to_json() for t in self.spoken],
            "turn_timings": [t.to_json() for t in self._parts.ctx.timings] if self._parts else [],
        }

    # ------------------------------------------------------------------ its life

    async def run(self) -> None:
        """Serve the connection until it closes; never raises."""
        try:
            parts = await self._set_up()
            parts.ctx.channel.spawn(parts.turns.conduct(), "conduct")
            await parts.inbound.receive()
        except CloseSession as exc:
            await self.close(exc.code, exc.reason)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception(f"{self.id}: unexpected error")
            await self.close(1011, "Internal error encountered.")
        finally:
            self.channel.ended()
            if self.conv is not None:
                self.registry.release(self.conv.id, self)
            await self.channel.finish()

    async def refuse(self, code: int, reason: str) -> None:
        """Close after reading the client's first message, as the service answers a bad setup."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.channel.ws.receive(), timeout=5)
        await self.close(code, reason)

    async def close(self, code: int, reason: str) -> None:
        """Close with a code and reason the client sees (the SDK raises them as `APIError`)."""
        await self.channel.close(code, reason)

    def drop(self) -> None:
        """Cut the TCP connection with no close frame, as a network failure would."""
        self.channel.drop()

    async def perform(self, action: actions.Action) -> None:
        """Control API: do `action` now; `say` and `tool_call` return once the turn has begun.

        Raises:
            NotSetUp: The connection has not finished its handshake.
            ValueError: A `tool_call` names a function the setup did not declare.
        """
        if isinstance(action, actions.Latency):
            self.first_audio_ms = int(action.first_audio_ms)
        elif isinstance(action, actions.Drop):
            self.drop()
        elif self._parts is None:
            raise NotSetUp(f"Session {self.id} is not set up yet.")
        else:
            await self._parts.controls.perform(action, scripted=False)

    async def go_away(self, time_left_s: float) -> None:
        """Send goAway now, then close when the time is up (as `perform` with a GoAway).

        Raises:
            NotSetUp: The connection has not finished its handshake.
        """
        await self.perform(actions.GoAway(time_left_s=time_left_s))

    async def _set_up(self) -> _Parts:
        """The handshake, then the parts that serve the connection, then the welcome."""
        setup = await read_setup(self.channel, self.frames)
        if self.token_name is not None:
            self.token, setup = admit(self.registry, self.token_name, setup)
        self.config, self.model = configure(
            setup, self.api_version, default_silence_ms=self.options.default_silence_ms
        )
        self.conv, self.resumed_from = open_conversation(self.config, self.registry, self)
        ctx = Context(
            id=self.id,
            channel=self.channel,
            registry=self.registry,
            options=self.options,
            config=self.config,
            model=self.model,
            conv=self.conv,
            frames=self.frames,
            handles=self.handles,
            spoken=self.spoken,
            first_audio_ms=self._first_audio_ms,
        )
        speaker = Speaker(ctx)
        tool_calls = ToolCalls(ctx, speaker)
        controls = Controls(ctx, speaker, tool_calls)
        turns = Turns(ctx, speaker, tool_calls, controls)
        media = Media(ctx, turns)
        parts = _Parts(ctx, speaker, controls, turns, media, Inbound(ctx, media, speaker))
        self._parts = parts
        await self.channel.send({"setup_complete": {"session_id": self.conv.id}})
        await speaker.send_resumption_update()
        controls.start_lifetime()
        scenario = self.options.scenario
        if scenario and scenario.on_connect and not self.resumed_from:
            await ctx.events.put(Script(scenario.on_connect))
        return parts
