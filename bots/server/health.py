"""`/healthz` and `/readyz`, as load balancers and Kubernetes probe them.

Liveness says only that the process answers; restarting it for anything else would end every
conversation it holds. Readiness says whether a new session would be taken: not when the process is
full, draining after a stop signal, or cannot reach Gemini (or the emulator standing in for it), so
a balancer sends new users elsewhere while the running sessions go on. The reachability probe is
a TCP connect, remembered for a few seconds so a probing balancer cannot make it a load of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import JSONResponse

GEMINI_URL = "https://generativelanguage.googleapis.com"
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
"""Answered whatever the Host header: a balancer or kubelet probes by address."""
PROBE_TIMEOUT_SECS = 2.0
PROBE_CACHE_SECS = 5.0


@dataclass
class Reachability:
    """Whether the model's endpoint accepts TCP connections, checked at most every few seconds.

    Args:
        url: The endpoint, e.g. `https://generativelanguage.googleapis.com` or an emulator's.
    """

    url: str
    clock: Callable[[], float] = time.monotonic
    _checked_at: float | None = field(default=None, init=False)
    _reachable: bool = field(default=False, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def reachable(self) -> bool:
        async with self._lock:
            now = self.clock()
            if self._checked_at is None or now - self._checked_at >= PROBE_CACHE_SECS:
                self._reachable = await self._connect()
                self._checked_at = self.clock()
            return self._reachable

    async def _connect(self) -> bool:
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, port), PROBE_TIMEOUT_SECS
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True


def health_router(
    *, full: Callable[[], bool], draining: Callable[[], bool], gemini: Reachability
) -> APIRouter:
    """The two probe routes; their answers are JSON with the reason when not ready."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        if draining():
            return _not_ready("draining: the server is stopping")
        if full():
            return _not_ready("full: every session slot is taken")
        if not await gemini.reachable():
            return _not_ready(f"Gemini cannot be reached at {gemini.url}")
        return JSONResponse({"ready": True})

    return router


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"ready": False, "reason": reason}, 503, {"Retry-After": "5"})
