"""Who may use the emulator's control API, which can read every conversation and drive the model.

On a loopback address with no `--api-key` the emulator is a test double for this machine, and its
control API stays open, as tests expect. Once it is given a key, or listens where other machines can
reach it, the control API asks for that key the way the Live API does (`x-goog-api-key`, or a bearer
header for tools that only speak OAuth style); with no key to compare against, it answers nobody.
`/emulator/healthz` says only that the server is up, and stays open for health checks.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

CONTROL_PREFIX = "/emulator/"
OPEN_PATHS = frozenset({"/emulator/healthz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refusal = Callable[[int, str], web.Response]


def is_loopback(host: str) -> bool:
    """True for the addresses only this machine can reach (`localhost`, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def presented_key(request: web.Request) -> str | None:
    """The key a control request carries: `x-goog-api-key`, or `Authorization: Bearer <key>`."""
    key = request.headers.get("x-goog-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


@dataclass(frozen=True)
class ControlAccess:
    """The rule for one running emulator.

    Attributes:
        api_key: The key the emulator was started with, if any.
        host: The address it listens on.
    """

    api_key: str | None
    host: str

    @property
    def open(self) -> bool:
        """Whether the control API answers without a key."""
        return self.api_key is None and is_loopback(self.host)

    def refusal(self, request: web.Request) -> str | None:
        """Why this request may not use the control API; None when it may."""
        if self.open or not request.path.startswith(CONTROL_PREFIX):
            return None
        if request.path in OPEN_PATHS:
            return None
        if self.api_key is None:
            return (
                f"The control API is closed on {self.host}: start the emulator with --api-key "
                "(or EMULATOR_API_KEY) and send that key."
            )
        key = presented_key(request)
        if key is None:
            return (
                "The control API needs the emulator's key: send x-goog-api-key or a bearer token."
            )
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return "The key is not the emulator's key."
        return None

    def middleware(self, refuse: Refusal) -> Middleware:
        """An aiohttp middleware that answers refused requests with `refuse(401, reason)`."""

        @web.middleware
        async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
            reason = self.refusal(request)
            if reason is not None:
                response = refuse(401, reason)
                response.headers["WWW-Authenticate"] = 'Bearer realm="gemini-live-emulator"'
                return response
            return await handler(request)

        return check
