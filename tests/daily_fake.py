"""A local server that speaks Daily's REST API for rooms and meeting tokens, for tests.

It follows https://docs.daily.co/reference/rest-api where the bots touch it: `POST /rooms`,
`GET /rooms/{name}`, `DELETE /rooms/{name}`, `POST /meeting-tokens` and
`GET /meeting-tokens/{token}`, all under `/v1`, each checking `Authorization: Bearer KEY`
(400 `authorization-header-error` without one, 401 `authentication-error` for a wrong key), with
Daily's error shape `{"error": ..., "info": ...}`. Every request is recorded so tests can assert
what was sent (privacy, expiries, owner flags), and `fail_next()` makes the next requests fail
(401, 429 with `Retry-After`, 5xx, ...). Tokens are fake JWTs whose payload is the token's
properties as JSON, so `decode_token()` reads back `is_owner`, `exp` and `room_name`.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from aiohttp import web

from testkit.lifecycle import AsyncResource

ROOM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""Daily's rule for room names: ASCII letters, digits, dash, underscore; at most 128."""

ROOM_PROPERTIES = frozenset(
    {
        "nbf",
        "exp",
        "max_participants",
        "enable_people_ui",
        "enable_pip_ui",
        "enable_emoji_reactions",
        "enable_hand_raising",
        "enable_prejoin_ui",
        "enable_network_ui",
        "enable_noise_cancellation_ui",
        "enable_knocking",
        "enable_screenshare",
        "enable_video_processing_ui",
        "enable_chat",
        "enable_advanced_chat",
        "start_video_off",
        "start_audio_off",
        "owner_only_broadcast",
        "enable_recording",
        "eject_at_room_exp",
        "eject_after_elapsed",
        "enable_dialout",
        "enable_transcription_storage",
        "geo",
        "lang",
        "recordings_bucket",
        "transcription_bucket",
        "sip",
        "sip_uri",
        "permissions",
    }
)
"""Room properties Daily documents (a subset; an unknown one is a 400, as on Daily)."""

TOKEN_PROPERTIES = frozenset(
    {
        "room_name",
        "eject_at_token_exp",
        "eject_after_elapsed",
        "nbf",
        "exp",
        "is_owner",
        "user_name",
        "user_id",
        "enable_screenshare",
        "start_video_off",
        "start_audio_off",
        "enable_recording",
        "enable_prejoin_ui",
        "start_cloud_recording",
        "permissions",
        "lang",
    }
)
"""Meeting-token properties Daily documents (a subset; an unknown one is a 400)."""


@dataclass(frozen=True)
class Recorded:
    """One request as the fake saw it: `path` is relative to `/v1` (e.g. `/rooms/abc`)."""

    method: str
    path: str
    authorization: str | None
    json: Any


@dataclass
class _Failure:
    status: int
    count: int
    path: str | None
    retry_after: str | None
    error: str
    info: str


_DEFAULT_ERRORS = {
    400: "invalid-request-error",
    401: "authentication-error",
    403: "forbidden-error",
    404: "not-found",
    429: "rate-limit-error",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_token(payload: dict[str, Any]) -> str:
    """A JWT-shaped token (`header.payload.signature`) whose payload is `payload` as JSON."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "fake": "daily"}).encode())
    body = _b64(json.dumps(payload, sort_keys=True).encode())
    return f"{header}.{body}.{_b64(b'fake-daily-signature')}"


def decode_token(token: str) -> dict[str, Any]:
    """The properties a fake token was minted with (plus `iat`)."""
    body = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def _error(status: int, error: str, info: str, headers: dict[str, str] | None = None) -> Any:
    return web.json_response({"error": error, "info": info}, status=status, headers=headers)


class FakeDaily(AsyncResource):
    """Daily's REST API on 127.0.0.1 and a free port; `base_url` is the `DAILY_API_URL`."""

    def __init__(
        self, api_key: str = "test-daily-key", domain: str = "https://fake-domain.daily.co"
    ) -> None:
        self.api_key = api_key
        self.domain = domain.rstrip("/")
        self.rooms: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- test controls ----------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        path: str | None = None,
        retry_after: str | None = None,
        error: str | None = None,
        info: str | None = None,
    ) -> None:
        """Answer the next `count` requests (to paths starting with `path`, if given) with an
        error: `status`, Daily's `{"error", "info"}` body, and `Retry-After` when given."""
        code = error or _DEFAULT_ERRORS.get(status, "server-error")
        self._failures.append(
            _Failure(status, count, path, retry_after, code, info or f"fake failure {status}")
        )

    def add_room(
        self, name: str, *, privacy: str = "private", exp: int | None = None
    ) -> dict[str, Any]:
        """A room that already exists (made in Daily's dashboard), as for `DAILY_ROOM_URL`."""
        config: dict[str, Any] = {} if exp is None else {"exp": exp}
        return self._store_room(name, privacy, config)

    def sent(self, method: str, prefix: str) -> list[Recorded]:
        """The recorded requests with this method whose path starts with `prefix`."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/rooms", self._create_room)
        app.router.add_get("/v1/rooms/{name}", self._get_room)
        app.router.add_delete("/v1/rooms/{name}", self._delete_room)
        app.router.add_post("/v1/meeting-tokens", self._create_token)
        app.router.add_get("/v1/meeting-tokens/{token}", self._get_token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- request handling -------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.removeprefix("/v1")
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = await request.text()
        self.requests.append(
            Recorded(request.method, path, request.headers.get("Authorization"), body)
        )
        for failure in self._failures:
            if failure.count > 0 and (failure.path is None or path.startswith(failure.path)):
                failure.count -= 1
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
                return _error(failure.status, failure.error, failure.info, headers)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return _error(400, "authorization-header-error", "Bearer token required")
        if auth.removeprefix("Bearer ") != self.api_key:
            return _error(401, "authentication-error", "the API key is not valid")
        if request.method == "POST" and not isinstance(body, dict):
            return _error(400, "invalid-request-error", "body must be a JSON object")
        response: web.StreamResponse = await handler(request)
        return response

    def _store_room(self, name: str, privacy: str, config: dict[str, Any]) -> dict[str, Any]:
        room = {
            "id": str(uuid.uuid4()),
            "name": name,
            "api_created": True,
            "privacy": privacy,
            "url": f"{self.domain}/{name}",
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "config": config,
        }
        self.rooms[name] = room
        return room

    def _live_room(self, name: str) -> dict[str, Any] | None:
        room = self.rooms.get(name)
        exp = room["config"].get("exp") if room else None
        if room is not None and exp is not None and exp <= time.time():
            return None  # Daily treats expired rooms as deleted
        return room

    async def _create_room(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        name = body.get("name") or uuid.uuid4().hex[:20]
        if not isinstance(name, str) or not ROOM_NAME.match(name):
            return _error(400, "invalid-request-error", f"invalid room name {name!r}")
        if self._live_room(name) is not None:
            return _error(400, "invalid-request-error", f"a room named {name} already exists")
        privacy = body.get("privacy", "public")
        if privacy not in ("public", "private", "org"):
            return _error(400, "invalid-request-error", f"privacy {privacy!r} is not valid")
        properties = body.get("properties") or {}
        unknown = sorted(set(properties) - ROOM_PROPERTIES)
        if unknown:
            return _error(400, "invalid-request-error", f"unknown room properties {unknown}")
        exp = properties.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or exp <= time.time()):
            return _error(400, "invalid-request-error", "exp must be a time in the future")
        return web.json_response(self._store_room(name, privacy, dict(properties)))

    async def _get_room(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        room = self._live_room(name)
        if room is None:
            return _error(404, "not-found", f"room {name} was not found")
        return web.json_response(room)

    async def _delete_room(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if self._live_room(name) is None:
            return _error(404, "not-found", f"room {name} was not found")
        del self.rooms[name]
        return web.json_response({"deleted": True, "name": name})

    async def _create_token(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        properties = body.get("properties")
        if not isinstance(properties, dict):
            return _error(400, "invalid-request-error", "properties must be an object")
        unknown = sorted(set(properties) - TOKEN_PROPERTIES)
        if unknown:
            return _error(400, "invalid-request-error", f"unknown token properties {unknown}")
        exp = properties.get("exp")
        if exp is not None and (not isinstance(exp, int) or exp <= time.time()):
            return _error(400, "invalid-request-error", "exp must be an integer in the future")
        token = encode_token({**properties, "iat": int(time.time())})
        self.tokens[token] = properties
        return web.json_response({"token": token})

    async def _get_token(self, request: web.Request) -> web.StreamResponse:
        properties = self.tokens.get(request.match_info["token"])
        if properties is None:
            return _error(400, "invalid-request-error", "token is not valid")
        return web.json_response(properties)
