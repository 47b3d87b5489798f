"""Private, expiring Daily rooms for `-t daily`, with a separate non-owner token for the browser.

Pipecat's dev runner (`pipecat.runner.daily.configure`) creates PUBLIC rooms and hands the
bot's OWNER token to the browser, so anyone with the room URL can join and the browser can act
as the host. Here the same ecosystem helper (`DailyRESTHelper`) is asked for a PRIVATE room that
expires and ejects everyone when it does, an owner token that stays on the server with the bot,
and a second, NON-owner token for the browser. The room is deleted when the session ends (only a
room made here; a `DAILY_ROOM_URL` room is the user's and only gets tokens).

`DAILY_API_KEY` is read once from a
`SecretStr` into the helper's `Authorization` header; no message, log line or response built
here contains it (error text from Daily is scrubbed of it too, in case a proxy echoes headers).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
from loguru import logger
from pipecat.runner.types import DailyRunnerArguments
from pipecat.transports.daily.utils import (
    DailyRESTHelper,
    DailyRoomObject,
    DailyRoomParams,
    DailyRoomProperties,
)

from bots.settings import Settings

ROOM_PREFIX = "gemini-live"
"""Rooms made here are named `gemini-live-<12 hex>`: unguessable, and easy to spot in Daily."""

BotFunction = Callable[[DailyRunnerArguments], Awaitable[None]]
"""What the runner calls per session: `bot(runner_args)`."""

_T = TypeVar("_T")
_DASHBOARD = "https://dashboard.daily.co/developers"
_MAX_INFO_CHARS = 300


class DailyRoomError(RuntimeError):
    """A Daily room or token could not be made, with a message a user can act on.

    The message never contains `DAILY_API_KEY`. `status` is Daily's HTTP status (None for a
    network error or a bad setting); `retry_after` is the seconds Daily asked us to wait (429).
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class DailyRoom:
    """One session's room and its two tokens.

    Attributes:
        room_url: the room, e.g. `https://you.daily.co/gemini-live-0123456789ab`.
        room_name: the last path part of `room_url`, what Daily's REST API calls it.
        bot_token: the bot's token (owner); it stays on the server.
        browser_token: the browser's token (not owner); it may be shown and sent to the page.
        expires_at: when the browser's token stops working (never after the room's expiry).
        created: True when this module made the room and so deletes it; False for
            `DAILY_ROOM_URL`, which is left alone.
        browser_url: the link to open: `room_url` with the browser's token as `?t=`.
    """

    room_url: str
    room_name: str
    bot_token: str = field(repr=False)
    browser_token: str = field(repr=False)
    expires_at: datetime
    created: bool
    browser_url: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        separator = "&" if "?" in self.room_url else "?"
        object.__setattr__(self, "browser_url", f"{self.room_url}{separator}t={self.browser_token}")


class _HTTPFailure(Exception):
    """Raised by the session's status check so `_call` can word it; never leaves this module."""

    def __init__(self, status: int, retry_after: str | None, body: str) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after
        self.body = body


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _daily_error(body: str) -> tuple[str, str]:
    """Daily's `{"error": ..., "info": ...}` from an error body (either may be empty)."""
    try:
        data = json.loads(body)
    except ValueError:
        return "", body.strip()
    if not isinstance(data, dict):
        return "", body.strip()
    return str(data.get("error") or ""), str(data.get("info") or "")


def _room_name_of(room_url: str) -> str:
    """The room name in a Daily room URL (`https://domain.daily.co/NAME`), or raise."""
    parts = urlsplit(room_url)
    name = parts.path.strip("/")
    if parts.scheme not in ("http", "https") or not parts.netloc or not name or "/" in name:
        raise DailyRoomError(
            f"DAILY_ROOM_URL {room_url!r} is not a Daily room URL "
            "(expected https://YOUR-DOMAIN.daily.co/ROOM-NAME)."
        )
    return name


class DailyRooms:
    """Makes (or reuses) a private room with a bot token and a browser token, and deletes it.

    Each call opens its own short-lived aiohttp session, so this can be used from route
    handlers and `finally` blocks without any lifecycle to manage.
    """

    def __init__(self, settings: Settings) -> None:
        """Read the Daily settings; raise `DailyRoomError` at once if `-t daily` cannot work.

        Args:
            settings: `daily_api_key` (required), `daily_api_url` (the REST base),
                `daily_room_url` (reuse), and the expiry and timeout settings.
        """
        if settings.daily_api_key is None:
            raise DailyRoomError(
                "DAILY_API_KEY is not set: -t daily needs your Daily API key to make a private "
                f"room and its tokens. Copy it from {_DASHBOARD} into .env."
            )
        self._key = settings.daily_api_key
        self.api_url = settings.daily_api_url.strip().rstrip("/")
        reuse = (settings.daily_room_url or "").strip().rstrip("/")
        self.reuse_url = reuse or None
        if self.reuse_url:
            _room_name_of(self.reuse_url)
        self.room_expiry_s = settings.daily_room_expiry_minutes * 60
        self.token_expiry_s = settings.daily_token_expiry_minutes * 60
        self._timeout = aiohttp.ClientTimeout(total=settings.daily_api_timeout_secs)
        self._deleted: set[str] = set()

    # -- REST plumbing --------------------------------------------------------------------

    @asynccontextmanager
    async def _helper(self) -> AsyncIterator[DailyRESTHelper]:
        """Pipecat's helper on a session whose status check raises before the helper's does.

        The helper raises a bare `Exception` with Daily's body and drops the headers, so the
        status and `Retry-After` are taken here, in aiohttp's `raise_for_status` hook.
        """
        async with aiohttp.ClientSession(
            timeout=self._timeout, raise_for_status=self._check_status
        ) as http:
            yield DailyRESTHelper(
                daily_api_key=self._key.get_secret_value(),
                daily_api_url=self.api_url,
                aiohttp_session=http,
            )

    @staticmethod
    async def _check_status(response: aiohttp.ClientResponse) -> None:
        if response.status < 400:
            return
        if response.status == 404 and response.method == "DELETE":
            return  # already gone: what a delete wants (the helper treats it the same way)
        try:
            body = await response.text()
        except (aiohttp.ClientError, UnicodeDecodeError):
            body = ""
        raise _HTTPFailure(response.status, response.headers.get("Retry-After"), body)

    def _scrub(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "[DAILY_API_KEY]") if key else text

    async def _call(self, action: str, operation: Awaitable[_T]) -> _T:
        """Await one helper call; turn every failure into a `DailyRoomError` naming `action`.

        The error is raised outside the `except` blocks so it carries no chained traceback
        through the helper's frames (whose locals hold the `Authorization` header).
        """
        error: DailyRoomError
        try:
            return await operation
        except _HTTPFailure as exc:
            error = self._http_error(action, exc)
        except TimeoutError:
            error = DailyRoomError(
                f"Daily's API at {self.api_url} did not answer within "
                f"{self._timeout.total:g} s while {action}; check your connection and retry."
            )
        except aiohttp.ClientError as exc:
            error = DailyRoomError(
                f"Could not reach Daily's API at {self.api_url} while {action}: "
                f"{self._scrub(f'{type(exc).__name__}: {exc}')}. Check your connection "
                "and DAILY_API_URL."
            )
        except Exception as exc:  # the helper's own "Invalid response" and the like
            error = DailyRoomError(
                f"Daily's API gave an unexpected answer while {action}: "
                f"{self._scrub(str(exc))[:_MAX_INFO_CHARS]}"
            )
        raise error

    def _http_error(self, action: str, failure: _HTTPFailure) -> DailyRoomError:
        status = failure.status
        code, info = _daily_error(self._scrub(failure.body))
        detail = f" ({code}: {info[:_MAX_INFO_CHARS]})" if code and info else ""
        if status == 401:
            message = (
                f"DAILY_API_KEY was rejected by Daily (401) while {action}. Copy the key again "
                f"from {_DASHBOARD} into .env (and check DAILY_API_URL points at Daily)."
            )
        elif status == 400 and code == "authorization-header-error":
            message = (
                f"Daily found no usable API key (400 authorization-header-error) while {action}. "
                "Check DAILY_API_KEY in .env for stray quotes or spaces."
            )
        elif status == 429:
            wait = _retry_after_seconds(failure.retry_after)
            when = f"retry after {wait:.0f} s" if wait is not None else "retry in a few seconds"
            return DailyRoomError(
                f"Daily rate limited this API key (429) while {action}; {when}.",
                status=status,
                retry_after=wait,
            )
        elif status >= 500:
            message = (
                f"Daily's API is unavailable ({status}) while {action}; try again shortly "
                "(https://status.daily.co)."
            )
        elif status == 404:
            message = f"Daily has no such room (404) while {action}{detail}."
        else:
            shown = f"{code}: {info}" if code else info
            message = f"Daily refused {action} ({status}): {shown[:_MAX_INFO_CHARS] or 'no reason'}"
        return DailyRoomError(message, status=status)

    # -- rooms and tokens -----------------------------------------------------------------

    async def open(self, conversation_room: str | None = None) -> DailyRoom:
        """A private room (made now, or `DAILY_ROOM_URL`) with a bot token and a browser token.

        Args:
            conversation_room: The room a conversation already has (another process made it):
                it is used again with fresh tokens while it exists and has not expired;
                otherwise a new room is made.

        Raises:
            DailyRoomError: Daily refused or could not be reached; a room made before the
                failure has been deleted again.
        """
        async with self._helper() as helper:
            if self.reuse_url:
                return await self._reuse(helper, self.reuse_url)
            if conversation_room:
                try:
                    return await self._rejoin(helper, conversation_room)
                except DailyRoomError as exc:
                    if exc.status is not None and exc.status >= 500:
                        raise
                    logger.info(f"the conversation's room is gone ({exc}); making a new one")
            return await self._create(helper)

    async def _rejoin(self, helper: DailyRESTHelper, room_url: str) -> DailyRoom:
        """Fresh tokens for a room this module made for the conversation (maybe elsewhere)."""
        now = time.time()
        name = _room_name_of(room_url)
        found: DailyRoomObject = await self._call(
            f"looking up the conversation's room {name}", helper.get_room_from_url(room_url)
        )
        room_exp = found.config.exp
        if room_exp is not None and room_exp <= now + 60:
            raise DailyRoomError(f"room {name} expires at {_clock(room_exp)}", status=410)
        if found.privacy != "private":
            raise DailyRoomError(f"room {name} is {found.privacy}, not private", status=409)
        room = await self._mint(helper, room_url, name, room_exp, now, created=True)
        logger.info(f"Joining the conversation's Daily room {name} again, with fresh tokens")
        return room

    async def _create(self, helper: DailyRESTHelper) -> DailyRoom:
        now = time.time()
        room_exp = int(now + self.room_expiry_s)
        name = f"{ROOM_PREFIX}-{uuid.uuid4().hex[:12]}"
        params = DailyRoomParams(
            name=name,
            privacy="private",
            properties=DailyRoomProperties(exp=room_exp, eject_at_room_exp=True),
        )
        made = await self._call(f"creating room {name}", helper.create_room(params))
        try:
            if made.privacy != "private":
                raise DailyRoomError(
                    f"Daily made room {made.name} {made.privacy!r}, not private; deleting it."
                )
            room = await self._mint(helper, made.url, made.name, room_exp, now, created=True)
        except DailyRoomError:
            await self._delete(helper, made.name, made.config.exp or room_exp)
            raise
        logger.info(
            f"Created private Daily room {room.room_name}; it expires at "
            f"{_clock(room_exp)} and is deleted when the session ends"
        )
        return room

    async def _reuse(self, helper: DailyRESTHelper, room_url: str) -> DailyRoom:
        now = time.time()
        name = _room_name_of(room_url)
        found: DailyRoomObject = await self._call(
            f"looking up DAILY_ROOM_URL room {name}", helper.get_room_from_url(room_url)
        )
        room_exp = found.config.exp
        if room_exp is not None and room_exp <= now:
            raise DailyRoomError(
                f"DAILY_ROOM_URL room {name} expired at {_clock(room_exp)}; unset DAILY_ROOM_URL "
                "to get a fresh private room, or extend the room in Daily's dashboard."
            )
        if found.privacy != "private":
            logger.warning(
                f"DAILY_ROOM_URL room {name} is {found.privacy}: anyone with its URL can join "
                "without a token. Make it private in Daily's dashboard, or unset DAILY_ROOM_URL."
            )
        room = await self._mint(helper, room_url, name, room_exp, now, created=False)
        logger.info(f"Using DAILY_ROOM_URL room {name} (not deleted at the end)")
        return room

    async def _mint(
        self,
        helper: DailyRESTHelper,
        room_url: str,
        name: str,
        room_exp: float | None,
        now: float,
        *,
        created: bool,
    ) -> DailyRoom:
        """The bot's owner token and the browser's non-owner token, neither outliving the room.

        The bot gets an owner token: it never leaves the server, and ownership lets the bot
        use Daily's owner-only features (transcription, recording, ejecting) if a pipeline
        turns them on. The browser's token is not an owner's, so the page cannot take over
        the room, and `eject_at_token_exp` removes it when the token runs out.
        """
        lifetime = float(self.token_expiry_s)
        if room_exp is not None:
            lifetime = min(lifetime, room_exp - now)
        bot_token = await self._call(
            f"minting the bot's token for room {name}",
            helper.get_token(room_url, lifetime, eject_at_token_exp=True, owner=True),
        )
        browser_token = await self._call(
            f"minting the browser's token for room {name}",
            helper.get_token(room_url, lifetime, eject_at_token_exp=True, owner=False),
        )
        return DailyRoom(
            room_url=room_url,
            room_name=name,
            bot_token=bot_token,
            browser_token=browser_token,
            expires_at=datetime.fromtimestamp(int(now + lifetime), UTC),
            created=created,
        )

    async def close(self, room: DailyRoom) -> bool:
        """Delete the room if this module made it; never raises (it runs in `finally`).

        Returns:
            True if the room is gone (deleted now or before), False if left in place: a
            `DAILY_ROOM_URL` room, or a failed delete (the room then expires by itself).
        """
        if not room.created:
            return False
        if room.room_name in self._deleted:
            return True
        async with self._helper() as helper:
            return await self._delete(helper, room.room_name, None)

    async def _delete(self, helper: DailyRESTHelper, name: str, room_exp: float | None) -> bool:
        try:
            await self._call(f"deleting room {name}", helper.delete_room_by_name(name))
        except DailyRoomError as exc:
            expiry = f" at {_clock(room_exp)}" if room_exp else ""
            logger.warning(f"{exc} The room expires by itself{expiry}.")
            return False
        self._deleted.add(name)
        logger.info(f"Deleted Daily room {name}")
        return True

    @asynccontextmanager
    async def session(self) -> AsyncIterator[DailyRoom]:
        """`open()` on entry and `close()` on exit, for code that owns a room for a block."""
        room = await self.open()
        try:
            yield room
        finally:
            await self.close(room)


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
