"""The app `python -m bots` serves, made from the settings: one place, so tests serve the same.

The settings are read here into the server's plain `ServerConfig`; what the app needs at run
time (drain on the first stop signal, cancel on the second, close after the server stops) comes
back with it in `Served`.
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, FastAPI
from loguru import logger

from bots import lifecycle
from bots.daily.routes import HANDOVER_SECS, DailySessions, install_daily_routes
from bots.server.app import ServerConfig, build_app
from bots.server.guard import WILDCARD_HOSTS, allowed_hosts, is_loopback
from bots.server.health import GEMINI_URL, PROBE_PATHS
from bots.server.identity import mint
from bots.server.operator import OperatorAccess
from bots.server.run import run, serve
from bots.server.scrape import METRICS_PATH, metrics_router
from bots.server.sessions import Limits
from bots.server.webrtc import BotFunction, OwnerOf, WebRTCSessions
from bots.settings import Settings
from bots.storage import open_stores
from bots.transcripts_page import transcripts_router

SESSIONS_PER_CORE = 2
"""Default `MAX_SESSIONS` per usable core, from `python -m bench.load` on a 2-core machine: one
assistant session over SmallWebRTC costs 25-34 % of a core (stock Pipecat the same), about 3.5
per core by CPU; 70 % of that, rounded down, leaves the running sessions their real time when one
more connects (the README's Capacity section has the table)."""
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container's `cpus:` limit), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores or 1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cores or 1)


def default_max_sessions(cores: int) -> int:
    """`MAX_SESSIONS` when the settings leave it unset: cores × `SESSIONS_PER_CORE`."""
    return cores * SESSIONS_PER_CORE


@dataclass
class Served:
    """The app, and the sessions it runs, with what stopping needs to do to them."""

    app: FastAPI
    sessions: WebRTCSessions
    daily: DailySessions | None = None
    move_secs: float = lifecycle.MOVE_SECS
    fleet_url: str | None = None
    session_secret: str | None = None

    async def drain(self) -> None:
        """The first stop signal: no new sessions; the clients are asked to move to another
        replica (Daily rooms are handed over to the fleet), and the sessions still here after
        `move_secs` end gracefully."""
        self.sessions.draining = True
        if self.daily is not None and self.fleet_url:
            secret = self.session_secret
            async with httpx.AsyncClient(base_url=self.fleet_url, timeout=5) as fleet:
                try:
                    async with asyncio.timeout(HANDOVER_SECS):
                        await self.daily.hand_over(
                            fleet, lambda user: mint(secret, user, 5) if secret else None
                        )
                except TimeoutError:
                    logger.warning(f"handing Daily rooms over took {HANDOVER_SECS:g} s; stopping")
        await lifecycle.move_all(self.move_secs)
        await lifecycle.end_all()

    def cancel(self) -> None:
        """The second stop signal: cancel every session now."""
        for task in list(self.sessions.tasks.values()):
            task.cancel()

    async def close(self, grace_secs: float) -> None:
        """After the server stopped: let the sessions unwind, close their peers and rooms."""
        await self.sessions.aclose(grace_secs)
        if self.daily is not None:
            await self.daily.aclose(grace_secs)

    def serve(self, host: str, port: int) -> None:
        """Serve on `host:port` until stopped (drain, then cancel on a second signal, close)."""
        run(serve(self.app, host, port, drain=self.drain, cancel=self.cancel, close=self.close))


Transport = Literal["webrtc", "daily"]


def published_host(settings: Settings) -> list[str]:
    """The address a container's port is published on (`EXPOSED_HOST`, compose's `BOT_BIND`):
    a browser that opens it sends it as the Host. None for a wildcard."""
    exposed = settings.exposed_host
    return [exposed] if exposed and exposed not in WILDCARD_HOSTS else []


def fleet_host(settings: Settings) -> list[str]:
    """The load balancer's own name (`FLEET_URL`'s host): another replica handing a Daily room
    over sends it as the Host, so every replica of the fleet accepts it."""
    host = urlsplit(settings.fleet_url).hostname if settings.fleet_url else None
    return [host] if host else []


def server_config(
    settings: Settings, transport: Transport, host: str, gemini_url: str | None = None
) -> ServerConfig:
    """The server's configuration from the bot settings and the command line.

    `gemini_url` is the model's endpoint when the entry point knows better than the settings (an
    emulator it started itself); by default the settings' emulator, or Gemini.
    """
    secret = settings.session_secret.get_secret_value() if settings.session_secret else None
    return ServerConfig(
        transport=transport,
        allowed_hosts=allowed_hosts(
            host, [*settings.allowed_hosts, *published_host(settings), *fleet_host(settings)]
        ),
        allowed_origins=settings.allowed_origins,
        session_secret=secret,
        limits=Limits(
            max_sessions=settings.max_sessions or default_max_sessions(usable_cores()),
            max_per_client=settings.max_sessions_per_client,
            id_prefix=settings.replica_id or "",
        ),
        ice_timeout_secs=settings.ice_timeout_secs,
        gemini_url=gemini_url or settings.emulator_url or GEMINI_URL,
        # Behind the token, a scraper may call /metrics by address (see bots.server.scrape).
        any_host_paths=(PROBE_PATHS | {METRICS_PATH}) if settings.admin_token else PROBE_PATHS,
    )


def transcript_routes(settings: Settings, host: str) -> list[APIRouter]:
    """The transcript pages: behind `ADMIN_TOKEN`, or, without one, only on a loopback bind."""
    if settings.admin_token is not None:
        access = OperatorAccess(settings.admin_token.get_secret_value())
        pages = transcripts_router(
            lambda: open_stores(settings).transcripts, require=access.require
        )
        return [access.login_router(), pages]
    if is_loopback(settings.exposed_host or host):
        return [transcripts_router(lambda: open_stores(settings).transcripts)]
    return []


def metrics_routes(settings: Settings, host: str) -> list[APIRouter]:
    """`/metrics`, by the transcripts' rule: behind `ADMIN_TOKEN`, else only on a loopback bind."""
    if settings.admin_token is not None:
        return [metrics_router(settings.admin_token.get_secret_value())]
    if is_loopback(settings.exposed_host or host):
        return [metrics_router(None)]
    return []


def conversation_owner(settings: Settings) -> OwnerOf:
    """Whose a conversation is, from the process's conversation store (opened on first use)."""

    async def owner_of(conversation_id: str) -> str | None:
        store = open_stores(settings).conversations
        conversation = await asyncio.to_thread(store.get, conversation_id)
        return conversation.user_id if conversation else None

    return owner_of


def make_app(
    settings: Settings,
    bot: BotFunction,
    *,
    transport: Transport,
    host: str,
    gemini_url: str | None = None,
) -> Served:
    """The app for `bot`; raises `bots.daily.rooms.DailyRoomError` when Daily cannot be used."""
    config = server_config(settings, transport, host, gemini_url)
    app, sessions = build_app(
        config,
        bot,
        routers=[*transcript_routes(settings, host), *metrics_routes(settings, host)],
        owner_of=conversation_owner(settings),
    )
    daily = None
    if transport == "daily":
        daily = install_daily_routes(
            app,
            settings,
            bot,
            config=config,
            book=sessions.book,
            draining=lambda: sessions.draining,
        )
    return Served(
        app,
        sessions,
        daily,
        move_secs=settings.drain_move_secs,
        fleet_url=settings.fleet_url,
        session_secret=config.session_secret,
    )
