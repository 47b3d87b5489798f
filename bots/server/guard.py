"""The checks every request passes before a route sees it: its Host, its Origin, its size.

- **Host**: only the names this server is meant to be reached by (`ALLOWED_HOSTS`; by default
  the loopback names and the bind host), so a DNS-rebinding page cannot talk to a local bot.
- **Origin**: a browser request from another site is refused (403) unless `ALLOWED_ORIGINS`
  names it; only then is CORS answered, and never with a wildcard or an echoed origin.
- **Size**: no request body over `max_body_bytes` is read (413), whether or not it says its
  length up front.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bots.server.health import PROBE_PATHS

MAX_BODY_BYTES = 64 * 1024
"""Largest request body: an SDP offer is a few KiB, a `/start` body far less."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
"""Bind addresses that name no host: every interface."""


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names to accept: the loopback names, the bind host, and `extra`."""
    hosts = [*LOOPBACK_HOSTS, *extra]
    if bind_host not in WILDCARD_HOSTS:
        hosts.append(bind_host)
    return list(dict.fromkeys(h.strip().lower() for h in hosts if h.strip()))


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server on this machine."""
    return host.lower() in LOOPBACK_HOSTS or host.startswith("127.")


async def send_json(send: Send, status: int, error: str, headers: dict[str, str] | None = None):
    """Answer with `{"detail": ...}` (FastAPI's error shape) from inside a middleware."""
    body = json.dumps({"detail": error}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class OriginCheck:
    """Refuse requests whose `Origin` is neither this server nor one of `allowed`."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._ok(origin.rstrip("/").lower(), headers):
                await send_json(send, 403, "Requests from another site are not allowed.")
                return
        await self.app(scope, receive, send)

    def _ok(self, origin: str, headers: Headers) -> bool:
        if origin in self.allowed:
            return True
        host = (headers.get("host") or "").lower()
        return bool(host) and urlsplit(origin).netloc == host


class BodyLimit:
    """Answer 413 to a body over `max_bytes`, counted as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            # Past the limit the client is answered here, and the app sees the client leave:
            # an exception would be turned into a 400 by the app's body parsing.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        await send_json(
            send, 413, f"The request body is over the {self.max_bytes // 1024} KiB limit."
        )


class HostCheck(TrustedHostMiddleware):
    """Starlette's Host check (DNS rebinding), except for `exempt` paths: by default the probe
    routes, which a load balancer or the kubelet calls by the pod's address, and which tell
    nothing but up and ready."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] | None = None,
        exempt: Iterable[str] = PROBE_PATHS,
    ) -> None:
        super().__init__(app, allowed_hosts=allowed_hosts)
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
