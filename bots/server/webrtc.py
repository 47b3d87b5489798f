"""The SmallWebRTC session routes our page uses: `POST /start`, then the offer and its ICE patches.

The flow is Pipecat's own (the runner's `/start` and its `/sessions/{id}/api/offer` proxy, and
`SmallWebRTCRequestHandler` for the peer connections), with what a served bot needs on top: the
caller's identity, the session caps, offers checked before a pipeline starts, and a session whose
media never connects ended after `ice_timeout_secs` (with its Gemini socket).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc.sdp import SessionDescription
from fastapi import HTTPException
from loguru import logger
from pipecat.runner.types import RunnerArguments, SmallWebRTCRunnerArguments
from pipecat.transports.smallwebrtc.connection import IceServer, SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pydantic import BaseModel, ConfigDict, Field

from bots import metrics
from bots.conversations import conversation_id_in
from bots.server.identity import Identity
from bots.server.sessions import Entry, Refused, SessionBook

BotFunction = Callable[[RunnerArguments], Awaitable[None]]
"""What the server calls per session: the bot module's `bot(runner_args)`."""
OwnerOf = Callable[[str], Awaitable[str | None]]
"""Whose conversation an id is (the user), or None for one nobody has started."""
DEFAULT_STUN = "stun:stun.l.google.com:19302"
"""What Pipecat's runner hands a page that asks for default ICE servers; we do the same."""
MAX_SDP_CHARS = 32 * 1024


class StartRequest(BaseModel):
    """`POST /start` as `@pipecat-ai/client-js` sends it."""

    model_config = ConfigDict(extra="ignore")

    transport: str = "webrtc"
    enableDefaultIceServers: bool = False
    body: dict[str, Any] = Field(default_factory=dict)


class OfferRequest(BaseModel):
    """An SDP offer (or a renegotiation of an existing peer connection, by `pc_id`)."""

    model_config = ConfigDict(extra="ignore")

    sdp: str = Field(max_length=MAX_SDP_CHARS)
    type: Literal["offer"]
    pc_id: str | None = Field(default=None, max_length=200)
    restart_pc: bool | None = None


class Candidate(BaseModel):
    candidate: str = Field(max_length=2000)
    sdp_mid: str = Field(max_length=200)
    sdp_mline_index: int = Field(ge=0, le=64)


class PatchRequest(BaseModel):
    """Trickled ICE candidates for a peer connection."""

    pc_id: str = Field(max_length=200)
    candidates: list[Candidate] = Field(max_length=64)


def check_offer(sdp: str) -> None:
    """Refuse an offer that aiortc cannot answer, before any pipeline starts for it."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:
        raise HTTPException(400, f"The offer's SDP could not be read: {exc}") from None
    if not sdp.startswith("v=0") or not any(m.kind == "audio" for m in description.media):
        raise HTTPException(400, "The offer's SDP has no audio section: it is not a call offer.")


async def check_conversation(
    body: dict[str, Any] | None, identity: Identity, owner_of: OwnerOf | None
) -> None:
    """Refuse a malformed conversation id (400) and another user's conversation (404, as for
    one that does not exist: ids are not disclosed); 503 when the store cannot say."""
    try:
        conversation_id = conversation_id_in(body)
    except ValueError as exc:
        raise HTTPException(400, f"Invalid conversation id: {exc}") from None
    if conversation_id is None or owner_of is None:
        return
    try:
        owner = await owner_of(conversation_id)
    except Exception as exc:
        logger.warning(f"conversation lookup failed: {type(exc).__name__}: {exc}")
        raise Refused(
            503, "The conversation store cannot be reached. Try again in a moment.", 5
        ) from None
    if owner is not None and owner != identity.user:
        raise HTTPException(404, "No such conversation: start a new one.")


@dataclass
class WebRTCSessions:
    """The sessions started through `/start` and their offers, under a `SessionBook`.

    Attributes:
        book: The caps and the reservations.
        bot: The bot function to run for each connected session.
        ice_servers: STUN/TURN servers for the bot's peer connections (and handed to the page).
        ice_timeout_secs: A session whose media has not connected by then is ended.
        owner_of: Looks up whose a conversation id is, so that `/start` refuses another
            user's conversation; None takes every well-formed id as the caller's.
    """

    book: SessionBook
    bot: BotFunction
    ice_servers: list[IceServer] = field(default_factory=list)
    ice_timeout_secs: float = 30.0
    owner_of: OwnerOf | None = None
    draining: bool = False
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.handler = SmallWebRTCRequestHandler(ice_servers=self.ice_servers or None)

    async def start(self, identity: Identity, client: str, request: StartRequest) -> dict[str, Any]:
        """Reserve a session; the answer the page's `/start` expects."""
        if request.transport != "webrtc":
            raise HTTPException(
                400,
                f"Transport '{request.transport}' is not allowed. "
                "Server is configured for 'webrtc' only.",
            )
        if self.draining:
            metrics.refused("draining")
            raise Refused(503, "This server is restarting. Try again in a moment.", 5)
        await check_conversation(request.body, identity, self.owner_of)
        entry = self.book.reserve(client, identity.user, request.body)
        answer: dict[str, Any] = {"sessionId": entry.session_id}
        if self.ice_servers:
            answer["iceConfig"] = {"iceServers": [vars(s) for s in self.ice_servers]}
        elif request.enableDefaultIceServers:
            answer["iceConfig"] = {"iceServers": [{"urls": [DEFAULT_STUN]}]}
        return answer

    def _entry(self, session_id: str, identity: Identity) -> Entry:
        entry = self.book.get(session_id)
        if entry is None or entry.user != identity.user:
            # The same answer for another user's session as for none: ids are not disclosed.
            raise HTTPException(404, "No such session, or it has expired: start a new one.")
        return entry

    async def offer(self, session_id: str, identity: Identity, offer: OfferRequest) -> Any:
        """Answer an offer: a new peer connection starts the bot, a known one renegotiates."""
        entry = self._entry(session_id, identity)
        check_offer(offer.sdp)
        known = entry.extra.get("pc_id")
        if offer.pc_id is not None and offer.pc_id != known:
            raise HTTPException(404, "No such peer connection in this session.")
        if known is None and entry.started:
            raise HTTPException(409, "This session has already started.")
        request = SmallWebRTCRequest(
            sdp=offer.sdp, type=offer.type, pc_id=offer.pc_id, restart_pc=offer.restart_pc
        )

        async def connected(connection: SmallWebRTCConnection) -> None:
            self._run(self.book.start(session_id), connection)

        try:
            answer = await self.handler.handle_web_request(request, connected)
        except HTTPException:
            raise
        except Exception as exc:
            logger.warning(f"session {session_id}: the offer could not be answered: {exc}")
            self._stop(session_id)
            raise HTTPException(400, f"The offer could not be answered: {exc}") from None
        entry.extra["pc_id"] = answer["pc_id"] if answer else known
        return answer

    async def patch(self, session_id: str, identity: Identity, patch: PatchRequest) -> None:
        """Add trickled ICE candidates to the session's peer connection."""
        entry = self._entry(session_id, identity)
        if patch.pc_id != entry.extra.get("pc_id"):
            raise HTTPException(404, "No such peer connection in this session.")
        request = SmallWebRTCPatchRequest(
            pc_id=patch.pc_id,
            candidates=[IceCandidate(**c.model_dump()) for c in patch.candidates],
        )
        try:
            await self.handler.handle_patch_request(request)
        except HTTPException:
            raise
        except Exception as exc:
            raise HTTPException(400, f"The ICE candidate could not be used: {exc}") from None

    def _run(self, entry: Entry, connection: SmallWebRTCConnection) -> None:
        body = {**entry.body, "user_id": entry.user}  # the token's user, never the client's
        runner_args = SmallWebRTCRunnerArguments(
            webrtc_connection=connection, body=body, session_id=entry.session_id
        )
        task = asyncio.create_task(
            self._session(entry.session_id, runner_args, connection),
            name=f"session-{entry.session_id}",
        )
        self.tasks[entry.session_id] = task

    async def _session(
        self, session_id: str, runner_args: RunnerArguments, connection: SmallWebRTCConnection
    ) -> None:
        connected = asyncio.Event()
        connection.add_event_handler("connected", lambda _connection: connected.set())
        watchdog = asyncio.create_task(self._watch_ice(session_id, connection, connected))
        try:
            with metrics.session_running():
                await self.bot(runner_args)
        except asyncio.CancelledError:
            logger.info(f"session {session_id} cancelled")
            raise
        except Exception:
            logger.exception(f"session {session_id} ended with an error")
        finally:
            watchdog.cancel()
            self.tasks.pop(session_id, None)
            self.book.end(session_id)

    async def _watch_ice(
        self, session_id: str, connection: SmallWebRTCConnection, connected: asyncio.Event
    ) -> None:
        """End a session whose media never connects: its pipeline and Gemini socket are open."""
        if connection.is_connected():
            return
        try:
            await asyncio.wait_for(connected.wait(), self.ice_timeout_secs)
            return
        except TimeoutError:
            pass
        logger.warning(
            f"session {session_id}: media did not connect within {self.ice_timeout_secs:g} s; "
            "ending it"
        )
        with contextlib.suppress(Exception):
            await connection.disconnect()
        self._stop(session_id)

    def _stop(self, session_id: str) -> None:
        task = self.tasks.get(session_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        elif task is None:
            self.book.end(session_id)

    async def aclose(self, grace_secs: float = 5.0) -> None:
        """Cancel the sessions still running, wait for them to unwind, close every peer."""
        running = list(self.tasks.values())
        for task in running:
            task.cancel()
        if running:
            _, pending = await asyncio.wait(running, timeout=grace_secs)
            if pending:
                logger.warning(f"{len(pending)} session(s) still unwinding after {grace_secs:g} s")
        with contextlib.suppress(Exception):
            await self.handler.close()
