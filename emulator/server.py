"""The emulator's HTTPS server: Live API WebSockets, auth tokens, and a control API for tests.

Everything shares one TLS port, as the real endpoint does: `/ws/...BidiGenerateContent` for the
Live API, `/{version}/auth_tokens` for ephemeral tokens, and `/emulator/...` for fault injection and
inspection, which the real service does not have.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from loguru import logger

from cassettes import Cassette
from emulator.access import ControlAccess
from emulator.actions import (
    ActionError,
    Faults,
    Latency,
    Say,
    finite_non_negative,
    parse_action,
    parse_faults,
)
from emulator.certs import DEFAULT_HOSTS, CertPaths, ensure_certs, server_ssl_context
from emulator.registry import Listed, SessionOptions
from emulator.replay import Replayer
from emulator.scenario import Scenario, ScenarioError, parse_scenario
from emulator.session import CloseSession, LiveSession, NotSetUp
from emulator.state import Conversation
from emulator.tokens import AuthToken, TokenLimit, TokenStore
from emulator.wire import JsonRefused, WireError, load_json

WS_PATH = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)
HARD_MESSAGE_LIMIT = 32 * 1024 * 1024
MAX_KEPT_SESSIONS = 500
"""Closed connections kept for `GET /emulator/sessions`; past this the oldest closed are dropped."""
MAX_OPEN_SESSIONS = 100
"""Default cap on connections open at once; one more is closed with 1013 (try again later)."""
MAX_HANDLES = 10_000
"""Resumption handles kept; past this the expired ones, then the oldest, are forgotten."""
CONTROL_ACTIONS = ("say", "tool_call", "cancel_tool_calls", "goaway", "drop", "latency", "close")
"""What `POST /emulator/sessions/{sid}/{action}` can make a connection do."""
OPTIONS = ("cancel_blocking_on_input", "polite_interrupt")
"""The behaviour options `POST /emulator/options` sets for connections opened from then on."""
NUMERIC_OPTIONS = ("pace",)
"""The numeric options it sets too: a test kit shares one emulator between fast tests and ones
that need answers spoken at real time (an interruption needs a bot still speaking)."""


@dataclass
class Emulator:
    """Process-wide state: sessions, resumption handles, tokens, scenario and options.

    It is the `emulator.registry.Registry` of every connection it accepts. `clock` dates the
    resumption handles (their lifetime runs from when they were issued); tests pass a fake one.
    `cancel_blocking_on_input` and `polite_interrupt` turn on, for the 3.8 family, two
    behaviours Vertex's 3.8 guide describes and the Gemini API pages do not (see
    `emulator.registry.SessionOptions`); both are off by default, as the Gemini API pages read.
    """

    api_key: str | None = None
    scenario: Scenario | None = None
    pace: float = 1.0
    lead_s: float = 0.2
    first_audio_ms: int = 0
    connection_lifetime_s: float | None = 600.0
    goaway_lead_s: float = 10.0
    handle_ttl_s: float = 7200.0
    cancel_blocking_on_input: bool = False
    polite_interrupt: bool = False
    max_sessions: int = MAX_OPEN_SESSIONS
    max_turn_audio_s: float = 120.0
    heard_as: str | None = None
    default_silence_ms: int = 500
    replay: Cassette | None = None
    """`--replay`: every connection is answered from this recorded session (`emulator.replay`)."""
    clock: Callable[[], float] = time.time
    sessions: dict[str, LiveSession] = field(default_factory=dict)
    live_by_conversation: dict[str, LiveSession] = field(default_factory=dict)
    handles: dict[str, tuple[Conversation, float, int]] = field(default_factory=dict)
    tokens: TokenStore = field(default_factory=TokenStore)
    faults: Faults = field(default_factory=Faults)

    # ------------------------------------------------------------------ the registry

    def admit_token(self, name: str, *, resuming: bool) -> AuthToken:
        return self.tokens.admit(name, resuming=resuming)

    def issue_handle(self, conversation: Conversation) -> str:
        """A new resumption handle for the conversation as it is now (its first N turns)."""
        self._forget_handles()
        handle = f"handle-{secrets.token_urlsafe(18)}"
        self.handles[handle] = (conversation, self.clock(), conversation.turn_mark)
        return handle

    def resolve_handle(self, handle: str) -> tuple[Conversation, int] | None:
        """The conversation a handle resumes and how many of its turns the handle covers; None
        when the handle is unknown or past its lifetime."""
        entry = self.handles.get(handle)
        if entry is None:
            return None
        conv, issued, turns = entry
        if self.clock() - issued > self.handle_ttl_s:
            del self.handles[handle]
            return None
        return conv, turns

    def claim(self, conversation_id: str, connection: Listed) -> bool:
        if not isinstance(connection, LiveSession):
            raise TypeError(f"not a connection of this server: {connection!r}")
        previous = self.live_by_conversation.get(conversation_id)
        if previous is not None and previous is not connection and previous.open:
            return False
        self.live_by_conversation[conversation_id] = connection
        return True

    def release(self, conversation_id: str, connection: Listed) -> None:
        if self.live_by_conversation.get(conversation_id) is connection:
            del self.live_by_conversation[conversation_id]

    def _forget_handles(self) -> None:
        """Drop expired handles, then the oldest while at the cap.

        Handles are kept in the order they were issued and all live `handle_ttl_s`, so the expired
        ones are at the front: each call costs only what it removes.
        """
        now = self.clock()
        while self.handles:
            oldest = next(iter(self.handles))
            if (
                now - self.handles[oldest][1] <= self.handle_ttl_s
                and len(self.handles) < MAX_HANDLES
            ):
                break
            del self.handles[oldest]

    # ------------------------------------------------------------------ connections

    def find(self, ident: str) -> LiveSession | None:
        """A connection by its id, or the live connection of a conversation id."""
        return self.sessions.get(ident) or self.live_by_conversation.get(ident)

    def _options(self) -> SessionOptions:
        return SessionOptions(
            pace=self.pace,
            lead_s=self.lead_s,
            first_audio_ms=self.first_audio_ms,
            connection_lifetime_s=self.connection_lifetime_s,
            goaway_lead_s=self.goaway_lead_s,
            scenario=self.scenario,
            cancel_blocking_on_input=self.cancel_blocking_on_input,
            polite_interrupt=self.polite_interrupt,
            max_turn_audio_s=self.max_turn_audio_s,
            heard_as=self.heard_as,
            default_silence_ms=self.default_silence_ms,
        )

    def _keep(self, session: LiveSession) -> None:
        self.sessions[session.id] = session
        closed = [sid for sid, kept in self.sessions.items() if not kept.open]
        for sid in closed[: max(0, len(closed) - MAX_KEPT_SESSIONS)]:
            del self.sessions[sid]

    def open_sessions(self) -> int:
        """How many connections are open now."""
        return sum(1 for session in self.sessions.values() if session.open)

    # ------------------------------------------------------------------ HTTP handlers

    def _credential(self, request: web.Request, constrained: bool) -> tuple[str | None, str | None]:
        """Return (api_key, token name) from the places official clients put them."""
        if constrained:
            auth = request.headers.get("Authorization", "")
            token = auth[len("Token ") :].strip() if auth.startswith("Token ") else None
            token = token or request.query.get("access_token") or request.query.get("key")
            return None, token
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        return key, None

    def _key_ok(self, key: str | None) -> bool:
        if not key or key.startswith("auth_tokens/"):
            return False
        if self.api_key is None:
            return True
        return hmac.compare_digest(key.encode(), self.api_key.encode())

    async def live(self, request: web.Request) -> web.StreamResponse:
        match = WS_PATH.match(request.path)
        if match is None:
            return _json_error(404, f"Not found: {request.path}")
        if self.faults.refusing():
            logger.info("refusing a connection (fault injection)")
            return _json_error(503, "The service is currently unavailable.")
        api_version, method = match.groups()
        constrained = method.endswith("Constrained")
        key, token = self._credential(request, constrained)
        if self.replay is not None and self.replayer.full:
            return _json_error(
                503, f"Too many open sessions ({self.max_sessions}): try again later."
            )
        if self.replay is not None:
            return await self.replayer.serve(request)
        full = self.open_sessions() >= self.max_sessions
        ws = web.WebSocketResponse(max_msg_size=HARD_MESSAGE_LIMIT, compress=True, heartbeat=None)
        await ws.prepare(request)
        session = LiveSession(
            self, ws, request, options=self._options(), api_version=api_version, token=token
        )
        self._keep(session)
        if full:
            logger.warning(f"refusing a connection: {self.max_sessions} sessions are open")
            await session.refuse(
                1013, f"Too many open sessions ({self.max_sessions}): try again later."
            )
        elif constrained and not token:
            await session.refuse(1008, "Ephemeral token required: send 'Authorization: Token ...'.")
        elif not constrained and not self._key_ok(key):
            reason = (
                "Ephemeral tokens are only accepted on BidiGenerateContentConstrained."
                if key and key.startswith("auth_tokens/")
                else "API key not valid. Please pass a valid API key."
            )
            await session.refuse(1008, reason)
        else:
            await session.run()
        return ws

    @functools.cached_property
    def replayer(self) -> Replayer:
        """The connections answered from `replay` (only used when it is set)."""
        assert self.replay is not None
        return Replayer(self.replay, pace=self.pace, max_open=self.max_sessions)

    async def replay_report(self, request: web.Request) -> web.Response:
        empty: dict[str, Any] = {"cassette": None, "sessions": []}
        return web.json_response(self.replayer.report() if self.replay is not None else empty)

    async def create_token(self, request: web.Request) -> web.Response:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not self._key_ok(key):
            return _json_error(
                400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
            )
        body = await _json_object(request, empty_ok=True)
        if isinstance(body, web.Response):
            return body
        try:
            token = self.tokens.create(body)
        except WireError as exc:
            return _json_error(400, f"Invalid request: {exc}", "INVALID_ARGUMENT")
        except TokenLimit as exc:
            return _json_error(429, str(exc))
        return web.json_response(token.to_json())

    async def list_sessions(self, request: web.Request) -> web.Response:
        listed = [s.summary() for s in self.sessions.values()]
        replayed = self.replayer.summaries() if self.replay is not None else []
        return web.json_response(listed + replayed)

    async def get_session(self, request: web.Request) -> web.Response:
        ident = request.match_info["sid"]
        session = self.find(ident) or (self.replayer.find(ident) if self.replay else None)
        if session is None:
            return _json_error(404, "No such session.")
        return web.json_response(session.summary())

    async def control(self, request: web.Request) -> web.Response:
        session = self.find(request.match_info["sid"])
        if session is None:
            return _json_error(404, "No such session.")
        kind = request.match_info["action"]
        body = await _json_object(request, empty_ok=True)
        if isinstance(body, web.Response):
            return body
        if not session.open and kind != "latency":
            return _json_error(409, f"Session {session.id} is closed.")
        if kind not in CONTROL_ACTIONS:
            return _json_error(404, f"Unknown control action {kind!r}.")
        try:
            action = parse_action(kind, body)
        except ActionError as exc:
            return _json_error(400, str(exc))
        if isinstance(action, Say) and not action.text.strip():
            return _json_error(400, 'say needs {"text": "..."}.')
        try:
            await session.perform(action)
        except ValueError as exc:
            return _json_error(400, str(exc))
        except NotSetUp as exc:
            return _json_error(409, str(exc))
        except (asyncio.CancelledError, CloseSession, ConnectionError):
            return _json_error(409, f"Session {session.id} is closing.")
        return web.json_response({"ok": True, "session": session.id})

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        try:
            asked = parse_faults(body)
        except ActionError as exc:
            return _json_error(400, str(exc))
        if asked.refuse_connections is not None:
            self.faults.refuse_connections = int(asked.refuse_connections)
        if asked.refuse_for_s is not None:
            self.faults.refuse_until = time.monotonic() + float(asked.refuse_for_s)
        if asked.reset:
            self.faults = Faults()
        return web.json_response(
            {
                "refuse_connections": self.faults.refuse_connections,
                "refuse_for_s": max(0.0, self.faults.refuse_until - time.monotonic()),
            }
        )

    async def set_defaults(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        if "first_audio_ms" in body:
            try:
                latency = parse_action("latency", body)
            except ActionError as exc:
                return _json_error(400, str(exc))
            assert isinstance(latency, Latency)
            self.first_audio_ms = int(latency.first_audio_ms)
        return web.json_response({"first_audio_ms": self.first_audio_ms})

    async def set_options(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        known = (*OPTIONS, *NUMERIC_OPTIONS)
        unknown = sorted(set(body) - set(known))
        if unknown:
            return _json_error(400, f"Unknown option {unknown[0]!r}: use {', '.join(known)}.")
        for name, value in body.items():
            if name in OPTIONS and not isinstance(value, bool):
                return _json_error(400, f"{name} must be true or false.")
            if name in NUMERIC_OPTIONS and not finite_non_negative(value):
                return _json_error(400, f"{name} must be a finite number at least 0.")
        for name, value in body.items():
            setattr(self, name, float(value) if name in NUMERIC_OPTIONS else value)
        return web.json_response({name: getattr(self, name) for name in known})

    async def set_scenario(self, request: web.Request) -> web.Response:
        """Replace the scenario for connections opened from now on; `{}` removes it."""
        body = await _json_object(request, empty_ok=True)
        if isinstance(body, web.Response):
            return body
        try:
            self.scenario = parse_scenario(body) if body else None
        except ScenarioError as exc:
            return _json_error(400, str(exc))
        rules = len(self.scenario.rules) if self.scenario else 0
        return web.json_response({"rules": rules})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "sessions": len(self.live_by_conversation)})

    def app(self, access: ControlAccess | None = None) -> web.Application:
        """The aiohttp application serving every route.

        Args:
            access: Who may use the control API; by default the rule for a loopback address.
        """
        access = access or ControlAccess(self.api_key, "127.0.0.1")
        app = web.Application(
            client_max_size=1024 * 1024, middlewares=[access.middleware(_json_error)]
        )
        app.router.add_get("/emulator/healthz", self.health)
        app.router.add_get("/emulator/sessions", self.list_sessions)
        app.router.add_get("/emulator/sessions/{sid}", self.get_session)
        app.router.add_post("/emulator/sessions/{sid}/{action}", self.control)
        app.router.add_post("/emulator/faults", self.set_faults)
        app.router.add_post("/emulator/latency", self.set_defaults)
        app.router.add_post("/emulator/options", self.set_options)
        app.router.add_post("/emulator/scenario", self.set_scenario)
        app.router.add_get("/emulator/replay", self.replay_report)
        app.router.add_post(r"/{version:v1|v1beta|v1alpha}/auth_tokens", self.create_token)
        app.router.add_get("/{tail:.*}", self.live)
        return app


async def _json_object(
    request: web.Request, *, empty_ok: bool = False
) -> dict[str, Any] | web.Response:
    """The request's JSON object body (``{}`` for none, where `empty_ok`), or the 400 to send."""
    raw = await request.read()
    if empty_ok and not raw.strip():
        return {}
    try:
        body = load_json(raw)
    except JsonRefused as exc:
        return _json_error(400, f"The body must be JSON: {exc}")
    if not isinstance(body, dict):
        return _json_error(400, "The body must be a JSON object.")
    return body


def _json_error(status: int, message: str, code: str | None = None) -> web.Response:
    body = {
        "error": {"code": status, "message": message, "status": code or _STATUS.get(status, "")}
    }
    return web.json_response(body, status=status)


_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


@dataclass
class Running:
    """A started emulator: where it listens and which CA clients must trust."""

    emulator: Emulator
    host: str
    port: int
    certs: CertPaths
    runner: web.AppRunner

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ready_line(self) -> str:
        return f"ready {self.base_url} ca={self.certs.ca}"

    async def stop(self) -> None:
        for session in list(self.emulator.sessions.values()):
            if session.open:
                await session.close(1001, "The emulator is shutting down.")
        await self.runner.cleanup()


async def start(
    emulator: Emulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    cert_dir: Path,
    cert_hosts: tuple[str, ...] = (),
) -> Running:
    """Start serving; `port=0` picks a free port, reported on the result."""
    hosts = tuple(
        dict.fromkeys(
            (*DEFAULT_HOSTS, *cert_hosts, *([host] if host not in ("0.0.0.0", "::") else []))
        )
    )
    certs = ensure_certs(cert_dir, hosts)
    runner = web.AppRunner(
        emulator.app(ControlAccess(emulator.api_key, host)),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=1,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=server_ssl_context(certs))
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return Running(emulator, host, bound, certs, runner)


@contextlib.asynccontextmanager
async def running(
    emulator: Emulator | None = None, *, cert_dir: Path, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Running]:
    """Run an emulator in this event loop for the duration of a `with` block (tests use it)."""
    started = await start(emulator or Emulator(), host=host, port=port, cert_dir=cert_dir)
    try:
        yield started
    finally:
        await started.stop()
