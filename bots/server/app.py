"""The bot's FastAPI app: the page, the session routes of one transport, the transcript pages
and `/metrics` (those two are routers that `bots.server.assemble` passes in).

Everything the app answers is registered here, in one place; anything else is a 404. There is
no `/docs`, no `/openapi.json`, no WebSocket, upload or dial-in route: a route nobody uses is
one nobody needs to secure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from bots.server.guard import MAX_BODY_BYTES, BodyLimit, HostCheck, OriginCheck
from bots.server.health import GEMINI_URL, PROBE_PATHS, Reachability, health_router
from bots.server.identity import LOCAL_USER, Identity, TokenError, bearer, verify
from bots.server.operator import LoginRequired, login_page
from bots.server.sessions import Limits, Refused, SessionBook
from bots.server.webrtc import (
    BotFunction,
    OfferRequest,
    OwnerOf,
    PatchRequest,
    StartRequest,
    WebRTCSessions,
)
from bots.web import DIST_DIR


@dataclass(frozen=True)
class ServerConfig:
    """What the app needs from the settings, as plain values (read at the entry point).

    Attributes:
        transport: The one transport served: the page's SmallWebRTC, or Daily rooms.
        allowed_hosts: Host header values accepted (others get 400).
        allowed_origins: Other sites whose pages may call this server (CORS); empty: none.
        session_secret: Signs session tokens; None serves the local user without tokens.
        limits: The session caps.
        ice_timeout_secs: A session whose media has not connected by then is ended.
        max_body_bytes: Largest request body.
        gemini_url: The model's endpoint (Gemini, or the emulator), probed by `/readyz`.
        any_host_paths: Paths answered whatever the Host header (the probes; `/metrics` when
            it needs the operator's token).
    """

    transport: Literal["webrtc", "daily"]
    allowed_hosts: list[str]
    limits: Limits
    allowed_origins: list[str] = field(default_factory=list)
    session_secret: str | None = None
    ice_timeout_secs: float = 30.0
    max_body_bytes: int = MAX_BODY_BYTES
    gemini_url: str = GEMINI_URL
    any_host_paths: frozenset[str] = PROBE_PATHS


def identify(config: ServerConfig) -> Any:
    """The dependency that says who a session request speaks for (401 when it cannot)."""

    async def dependency(request: Request) -> Identity:
        if config.session_secret is None:
            return Identity(user=LOCAL_USER, authenticated=False)
        token = bearer(request.headers.get("authorization"))
        if token is None:
            raise HTTPException(401, "A session token is required.", {"WWW-Authenticate": "Bearer"})
        try:
            return verify(config.session_secret, token)
        except TokenError as exc:
            raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None

    return Depends(dependency)


def client_of(request: Request, identity: Identity) -> str:
    """Whom the per-client cap counts: the token's user, or (without tokens) the address."""
    if identity.authenticated:
        return f"user:{identity.user}"
    return f"address:{request.client.host if request.client else 'unknown'}"


def build_app(
    config: ServerConfig,
    bot: BotFunction,
    *,
    routers: Sequence[APIRouter] = (),
    owner_of: OwnerOf | None = None,
) -> tuple[FastAPI, WebRTCSessions]:
    """The app for `bot`, and the sessions it runs (for shutdown and tests).

    `routers` are added as they are (the transcript pages); Daily's routes are installed by the
    entry point with `bots.daily.routes.install_daily_routes`. `owner_of` says whose a
    conversation id is (see `WebRTCSessions`).
    """
    sessions = WebRTCSessions(
        SessionBook(config.limits),
        bot,
        ice_timeout_secs=config.ice_timeout_secs,
        owner_of=owner_of,
    )

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _errors(app)
    app.mount("/client", StaticFiles(directory=DIST_DIR, html=True), name="client")

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/client/")

    app.include_router(
        health_router(
            full=lambda: len(sessions.book) >= config.limits.max_sessions,
            draining=lambda: sessions.draining,
            gemini=Reachability(config.gemini_url),
        )
    )
    if config.transport == "webrtc":
        _webrtc_routes(app, config, sessions)
    for router in routers:
        app.include_router(router)
    _guard(app, config)
    return app, sessions


def _webrtc_routes(app: FastAPI, config: ServerConfig, sessions: WebRTCSessions) -> None:
    who = identify(config)

    @app.post("/start")
    async def start(
        body: StartRequest, request: Request, identity: Identity = who
    ) -> dict[str, object]:
        return await sessions.start(identity, client_of(request, identity), body)

    @app.post("/sessions/{session_id}/api/offer")
    async def offer(session_id: str, body: OfferRequest, identity: Identity = who) -> object:
        return await sessions.offer(session_id, identity, body)

    @app.patch("/sessions/{session_id}/api/offer")
    async def patch(
        session_id: str, body: PatchRequest, identity: Identity = who
    ) -> dict[str, str]:
        await sessions.patch(session_id, identity, body)
        return {"status": "success"}


def _errors(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return JSONResponse({"detail": exc.message}, exc.status, headers)

    @app.exception_handler(LoginRequired)
    async def login(request: Request, exc: LoginRequired) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return login_page(exc.message)
        return JSONResponse({"detail": exc.detail}, 401, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # A short account of the first problem; never the body, which may be large or personal.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = first.get("msg", "invalid request")
        prefix = f"{where}: " if where else ""
        return JSONResponse({"detail": f"Invalid request: {prefix}{message}"}, 400)


def _guard(app: FastAPI, config: ServerConfig) -> None:
    # Added innermost first: the Host check runs first, then the Origin check, CORS, the size.
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    if config.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.allowed_origins,
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(OriginCheck, allowed=config.allowed_origins)
    app.add_middleware(HostCheck, allowed_hosts=config.allowed_hosts, exempt=config.any_host_paths)
