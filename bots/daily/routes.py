"""Our `-t daily` routes, in front of Pipecat's runner: private rooms, the bot's token kept here.

`install_daily_routes` puts the flow of `bots.daily.rooms` in front of the runner's own
`POST /start` and `GET /daily` (routes match in registration order), so the runner starts our bot
with the bot's token and the browser only ever sees the room URL and its own token.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from loguru import logger
from pipecat.runner.types import DailyRunnerArguments
from pydantic import BaseModel, ConfigDict

from bots import metrics
from bots.daily.rooms import BotFunction, DailyRoom, DailyRoomError, DailyRooms
from bots.settings import Settings


class DailySessions:
    """The sessions started by our `-t daily` routes: each runs the bot and owns one room."""

    def __init__(self, rooms: DailyRooms, bot: BotFunction) -> None:
        """Keep the room maker and the bot function the runner would call.

        Args:
            rooms: makes and deletes the rooms.
            bot: `bot(runner_args)`, called with `DailyRunnerArguments` holding the bot token.
        """
        self.rooms = rooms
        self.bot = bot
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, body: Any = None) -> tuple[DailyRoom, str]:
        """Open a room, start the bot in it in the background, and print the link to open.

        Returns:
            The room and the session id. Raises `DailyRoomError` when no room could be had.
        """
        room = await self.rooms.open()
        session_id = str(uuid.uuid4())
        runner_args = DailyRunnerArguments(
            room_url=room.room_url,
            token=room.bot_token,
            body=body if body is not None else {},
            session_id=session_id,
        )
        # The browser's token is meant to be shown (it is not the API key, and not the owner's).
        print(
            f"Open {room.browser_url} in a browser (private Daily room {room.room_name}; "
            f"this link works until {room.expires_at:%H:%M:%S} UTC).",
            flush=True,
        )
        task = asyncio.create_task(self._run(room, runner_args), name=f"daily-{session_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return room, session_id

    async def _run(self, room: DailyRoom, runner_args: DailyRunnerArguments) -> None:
        try:
            with metrics.session_running():
                await self.bot(runner_args)
        except Exception:
            logger.exception(f"Daily session {runner_args.session_id} ended with an error")
        finally:
            await self.rooms.close(room)

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


def install_daily_routes(app: FastAPI, settings: Settings, bot: BotFunction) -> DailySessions:
    """Serve `POST /start` and `GET /daily` with private rooms, ahead of the runner's own.

    Call this before `pipecat.runner.run.main()` adds its routes: routes match in
    registration order, so ours answer and the runner's public-room versions are never
    reached. Only for `-t daily`: our `/start` refuses other transports, as the runner's
    does when started with `-t daily`. The server stops the sessions (`aclose`) when it stops,
    deleting their rooms.

    Args:
        app: the runner's FastAPI app (`pipecat.runner.run.app`).
        settings: the Daily settings; raises `DailyRoomError` now if `DAILY_API_KEY` is unset.
        bot: the bot function, called with `DailyRunnerArguments(room_url, token=bot token)`.

    Returns:
        The sessions (tests wait on them; shutdown closes them).
    """
    sessions = DailySessions(DailyRooms(settings), bot)

    @app.post("/start")
    async def start_daily_session(request: StartRequest | None = None) -> Response:
        """Like the runner's `/start` for Daily, but private room and a non-owner token."""
        data = request or StartRequest()
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
            room, session_id = await sessions.start(data.body or {})
        except DailyRoomError as exc:
            logger.error(f"Could not start a Daily session: {exc}")
            return _error_response(exc)
        return JSONResponse(
            {"dailyRoom": room.room_url, "dailyToken": room.browser_token, "sessionId": session_id}
        )

    @app.get("/daily")
    async def open_daily_room() -> Response:
        """Start a session and send the browser into the room with its own (non-owner) token."""
        try:
            room, _ = await sessions.start({})
        except DailyRoomError as exc:
            logger.error(f"Could not start a Daily session: {exc}")
            return _error_response(exc)
        return RedirectResponse(room.browser_url)

    return sessions
