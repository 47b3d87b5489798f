"""Our `-t daily` routes, in front of Pipecat's runner: private rooms, the bot's token kept here.

`install_daily_routes` serves `POST /start` and `GET /daily` with the flow of `bots.daily.rooms`
(registered before the runner's own where both are installed: routes match in registration order),
so the bot gets the owner's token and the browser only ever sees the room URL and its own token.
A Daily session is held to what a SmallWebRTC one is: the session token (`SESSION_SECRET`) names
its user, never the request body, and it counts against the same `SessionBook` caps. `GET /daily`
cannot carry a token, so it is served only without `SESSION_SECRET`, and never to another site's
page: a navigation from elsewhere (`Sec-Fetch-Site: cross-site`) would open a room on the operator's
keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from loguru import logger
from pipecat.runner.types import DailyRunnerArguments
from pydantic import BaseModel, ConfigDict

from bots import metrics
from bots.conversations import conversation_id_in
from bots.daily.rooms import BotFunction, DailyRoom, DailyRoomError, DailyRooms
from bots.server.app import ServerConfig, client_of, identify
from bots.server.identity import LOCAL_USER, Identity
from bots.server.sessions import Refused, SessionBook
from bots.settings import Settings
from bots.storage import open_stores
from stores.conversations import Conversation, ConversationStore, NotYours

HANDOVER_ATTEMPTS = 5
HANDOVER_RETRY_SECS = 0.5
HANDOVER_SECS = 10.0
"""The most a stopping replica spends handing its Daily rooms over to the fleet."""

SAME_SITE_FETCHES = frozenset({"same-origin", "none"})
"""`Sec-Fetch-Site` values of a request this server's own page or the address bar made; a request
without the header is not a browser's, so no other site can have sent it."""


class DailySessions:
    """The sessions started by our `-t daily` routes: each runs the bot and owns one room."""

    def __init__(
        self,
        rooms: DailyRooms,
        bot: BotFunction,
        book: SessionBook,
        draining: Callable[[], bool] = lambda: False,
        conversations: Callable[[], ConversationStore] | None = None,
    ) -> None:
        """Keep the room maker, the bot function the runner would call, and the caps.

        Args:
            rooms: makes and deletes the rooms.
            bot: `bot(runner_args)`, called with `DailyRunnerArguments` holding the bot token.
            book: the process's session caps, shared with `/readyz`.
            draining: whether the server is stopping (then no session starts).
            conversations: the conversation store (opened on first use), where each
                conversation's room is kept: a `/start` with a known conversation id joins
                its room again, on whichever process receives it.
        """
        self.rooms = rooms
        self.bot = bot
        self.book = book
        self.draining = draining
        self.conversations = conversations
        self.tasks: set[asyncio.Task[None]] = set()
        self.running: dict[str, tuple[str, str]] = {}
        """Session id -> (conversation id, user) of the sessions that belong to a conversation."""

    async def start(
        self, identity: Identity, client: str, body: dict[str, Any] | None = None
    ) -> tuple[DailyRoom, str]:
        """Take a place under the caps, open a room, start the bot in it in the background, and
        print the link to open.

        Returns:
            The room and the session id. Raises `Refused` (503/429) when a cap is reached or the
            server is stopping, `DailyRoomError` when no room could be had.
        """
        if self.draining():
            metrics.refused("draining")
            raise Refused(503, "This server is restarting. Try again in a moment.", 5)
        conversation = await self._conversation(body, identity)
        entry = self.book.reserve(client, identity.user, body or {})
        self.book.start(entry.session_id)
        try:
            room = await self.rooms.open(conversation.room_url if conversation else None)
            if conversation is not None and room.room_url != conversation.room_url:
                store = self._store()
                await asyncio.to_thread(store.set_room, conversation.conversation_id, room.room_url)
        except BaseException:
            self.book.end(entry.session_id)
            raise
        session_id = entry.session_id
        runner_args = DailyRunnerArguments(
            room_url=room.room_url,
            token=room.bot_token,
            # The token's user (or the local one), never the client's body.
            body={**entry.body, "user_id": identity.user},
            session_id=session_id,
        )
        # The browser's token is meant to be shown (it is not the API key, and not the owner's).
        print(
            f"Open {room.browser_url} in a browser (private Daily room {room.room_name}; "
            f"this link works until {room.expires_at:%H:%M:%S} UTC).",
            flush=True,
        )
        if conversation is not None:
            self.running[session_id] = (conversation.conversation_id, identity.user)
        task = asyncio.create_task(
            self._run(session_id, room, runner_args), name=f"daily-{session_id}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return room, session_id

    def _store(self) -> ConversationStore:
        assert self.conversations is not None
        return self.conversations()

    async def _conversation(
        self, body: dict[str, Any] | None, identity: Identity
    ) -> Conversation | None:
        """The conversation a `/start` names (claimed for its user when new), or None."""
        if self.conversations is None:
            return None
        try:
            conversation_id = conversation_id_in(body)
        except ValueError as exc:
            raise HTTPException(400, f"Invalid conversation id: {exc}") from None
        if conversation_id is None:
            return None
        store = self._store()
        try:
            found = await asyncio.to_thread(store.get, conversation_id)
            if found is None:
                # Claimed now, so the room made for it is kept with it; the bot claims it again.
                found = await asyncio.to_thread(
                    store.claim, conversation_id, identity.user, "daily-start"
                )
        except NotYours:
            found = None
        except Exception as exc:
            logger.warning(f"conversation lookup failed: {type(exc).__name__}: {exc}")
            raise Refused(
                503, "The conversation store cannot be reached. Try again in a moment.", 5
            ) from None
        if found is None or found.user_id != identity.user:
            raise HTTPException(404, "No such conversation: start a new one.")
        return found

    async def _run(
        self, session_id: str, room: DailyRoom, runner_args: DailyRunnerArguments
    ) -> None:
        try:
            with metrics.session_running():
                await self.bot(runner_args)
        except Exception:
            logger.exception(f"Daily session {session_id} ended with an error")
        finally:
            self.book.end(session_id)
            self.running.pop(session_id, None)
            body = runner_args.body if isinstance(runner_args.body, dict) else {}
            if self.draining() and body.get("conversation_id"):
                # The conversation goes on: another process's bot joins this room again.
                logger.info(f"Leaving Daily room {room.room_name} for the next bot")
            else:
                await self.rooms.close(room)

    async def hand_over(
        self, fleet: httpx.AsyncClient, token_for: Callable[[str], str | None]
    ) -> int:
        """Ask the fleet, through its load balancer, for a bot in each conversation's room.

        A stopping replica cannot move a Daily user (their client is Daily's, not our page),
        so it asks for its replacement itself: a `POST /start` naming the conversation, as its
        user (a session token minted for them when tokens are on). The balancer sends it to a
        replica that is ready, whose bot joins the same room with fresh tokens and resumes the
        conversation. Returns how many conversations were taken.
        """
        taken = 0
        for conversation_id, user in list(self.running.values()):
            token = token_for(user)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            request = {"transport": "daily", "body": {"conversation_id": conversation_id}}
            for attempt in range(HANDOVER_ATTEMPTS):
                try:
                    answer = await fleet.post("/start", json=request, headers=headers)
                except httpx.HTTPError as exc:
                    logger.warning(f"hand-over of a Daily conversation failed: {exc!r}")
                    answer = None
                if answer is not None and answer.status_code == 200:
                    taken += 1
                    break
                if answer is not None and answer.status_code not in (429, 502, 503, 504):
                    logger.warning(f"the fleet refused a Daily hand-over: {answer.status_code}")
                    break
                # The balancer may not have seen this replica go unready yet: ask again.
                await asyncio.sleep(HANDOVER_RETRY_SECS * (attempt + 1))
        if self.running:
            logger.info(f"handed {taken} of {len(self.running)} Daily conversation(s) over")
        return taken

    async def wait(self) -> None:
        """Wait for every running session to end (and its room to be deleted)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def aclose(self, grace_s: float = 10.0) -> None:
        """Stop every session (server shutdown) so each deletes its room before we exit.

        Args:
            grace_s: how long to wait for the bots to stop and the deletes to finish; a room
                still there afterwards expires by itself.
        """
        if not self.tasks:
            return
        logger.info(f"Stopping {len(self.tasks)} Daily session(s) and deleting their rooms")
        for task in self.tasks:
            task.cancel()
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace_s)
        if pending:
            logger.warning(
                f"{len(pending)} Daily session(s) still stopping after {grace_s:g} s; "
                "their rooms are deleted when they end, or expire by themselves"
            )


def _error_response(exc: DailyRoomError) -> JSONResponse:
    """429 stays 429 (with Retry-After), Daily down is 503, anything else a 502 (bad gateway)."""
    headers: dict[str, str] = {}
    if exc.status == 429:
        status = 429
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    elif exc.status is not None and exc.status >= 500:
        status = 503
    else:
        status = 502
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


class StartRequest(BaseModel):
    """The body of `POST /start` as Pipecat's client sends it; FastAPI answers 422 to bad JSON."""

    model_config = ConfigDict(extra="allow")

    transport: str | None = None
    body: dict[str, Any] | None = None


def install_daily_routes(
    app: FastAPI,
    settings: Settings,
    bot: BotFunction,
    *,
    config: ServerConfig,
    book: SessionBook,
    draining: Callable[[], bool] = lambda: False,
) -> DailySessions:
    """Serve `POST /start` and `GET /daily` with private rooms, under the server's identity rule
    and session caps.

    Only for `-t daily`: our `/start` refuses other transports. Installed before the runner's
    routes where both exist, ours answer (routes match in registration order). The server stops
    the sessions (`aclose`) when it stops, deleting their rooms.

    Args:
        app: the app to serve them on.
        settings: the Daily settings; raises `DailyRoomError` now if `DAILY_API_KEY` is unset.
        bot: the bot function, called with `DailyRunnerArguments(room_url, token=bot token)`.
        config: the server's configuration (the session secret: who a request speaks for).
        book: the session caps, shared with the rest of the server.
        draining: whether the server is stopping.

    Returns:
        The sessions (tests wait on them; shutdown closes them).
    """
    sessions = DailySessions(
        DailyRooms(settings), bot, book, draining, lambda: open_stores(settings).conversations
    )
    who = identify(config)

    @app.post("/start")
    async def start_daily_session(
        request: Request, data: StartRequest | None = None, identity: Identity = who
    ) -> Response:
        """Like the runner's `/start` for Daily, but private room and a non-owner token."""
        data = data or StartRequest()
        transport = data.transport or "daily"
        if transport != "daily":
            return JSONResponse(
                {
                    "detail": f"Transport '{transport}' is not allowed. "
                    "Server is configured for 'daily' only (-t daily)."
                },
                status_code=400,
            )
        extra = data.model_extra or {}
        ignored = [k for k in ("dailyRoomProperties", "dailyMeetingTokenProperties") if k in extra]
        if ignored:
            logger.warning(
                f"Ignoring {', '.join(ignored)} from the client: the server sets room privacy, "
                "expiry and token ownership"
            )
        try:
            room, session_id = await sessions.start(
                identity, client_of(request, identity), data.body or {}
            )
        except DailyRoomError as exc:
            logger.error(f"Could not start a Daily session: {exc}")
            return _error_response(exc)
        return JSONResponse(
            {"dailyRoom": room.room_url, "dailyToken": room.browser_token, "sessionId": session_id}
        )

    @app.get("/daily")
    async def open_daily_room(request: Request) -> Response:
        """Start a session and send the browser into the room with its own (non-owner) token."""
        if config.session_secret is not None:
            raise HTTPException(
                401,
                "This server needs a session token: POST /start with it as a bearer header.",
                {"WWW-Authenticate": "Bearer"},
            )
        if request.headers.get("sec-fetch-site", "none") not in SAME_SITE_FETCHES:
            raise HTTPException(403, "Open /daily from the address bar, not from another site.")
        identity = Identity(user=LOCAL_USER, authenticated=False)
        try:
            room, _ = await sessions.start(identity, client_of(request, identity), {})
        except DailyRoomError as exc:
            logger.error(f"Could not start a Daily session: {exc}")
            return _error_response(exc)
        return RedirectResponse(room.browser_url)

    return sessions
