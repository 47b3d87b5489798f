"""One connection's WebSocket as the Live API frames it, the tasks that write to it, and its end.

Everything a session sends goes through `Channel.send` (camelCase JSON in binary frames, one frame
at a time). Every task that writes to the socket is spawned here, so the tasks end with the socket,
and an error in one of them closes the connection the way the service would (1011).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSMsgType, web
from loguru import logger

from emulator.wire import JsonRefused, camelize, load_json, normalize, snake_case

CLIENT_MESSAGES = ("setup", "client_content", "realtime_input", "tool_response")
"""The kinds of client message, one per message."""

MESSAGE_LIMIT = 8 * 1024 * 1024
"""The largest client message read; a larger one closes the connection with 1009."""


class CloseSession(Exception):
    """End this connection with a WebSocket close code and a reason, as the service would."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _closing_reason(reason: str) -> str:
    """Fit a reason into a close frame (123 bytes of UTF-8)."""
    data = reason.encode("utf-8")
    if len(data) <= 123:
        return reason
    return data[:120].decode("utf-8", "ignore") + "..."


def _as_sent(raw: Any, name: str) -> str:
    """The spelling the client used for a field known here only in snake_case."""
    if isinstance(raw, dict):
        for key in raw:
            if snake_case(str(key)) == name:
                return str(key)
    return name


class Channel:
    """The socket of one connection and the tasks that write to it.

    Args:
        ws: The prepared WebSocket.
        request: The HTTP request it was upgraded from (a drop aborts its transport).
        name: The connection's id, for logs and task names.
    """

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, name: str) -> None:
        self.ws = ws
        self.request = request
        self.name = name
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_at: float | None = None
        self.closing = False
        self._raw: dict[str, Any] = {}  # the last client message as sent, for error reasons
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def open(self) -> bool:
        return self.closed_at is None

    # ------------------------------------------------------------------ tasks

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` for as long as the connection lasts."""
        task = asyncio.create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, CloseSession):
            self.spawn(self.close(exc.code, exc.reason), "close")
            return
        if self.closing or self.ws.closed or isinstance(exc, ConnectionError):
            return  # the socket went away under a task that was still sending: not our error
        logger.opt(exception=exc).error(f"{self.name}: {task.get_name()} failed")
        self.spawn(self.close(1011, "Internal error encountered."), "close")

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> dict[str, Any] | None:
        """The next client message, normalised to snake_case; None once the client closed.

        Raises:
            CloseSession: The message is too large (1009), or not a JSON object within
                `emulator.wire.load_json`'s limits (1007).
        """
        msg = await self.ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        if msg.type == WSMsgType.ERROR:
            exc = self.ws.exception()
            code = getattr(exc, "code", 1009)
            raise CloseSession(
                code if isinstance(code, int) and code >= 1000 else 1009,
                f"Request rejected: {exc}",
            )
        raw = msg.data
        if len(raw) > MESSAGE_LIMIT:
            raise CloseSession(
                1009,
                f"Request payload size exceeds the limit: {len(raw)} > {MESSAGE_LIMIT} bytes.",
            )
        try:
            data = load_json(raw)
        except JsonRefused as exc:
            raise CloseSession(1007, f"Invalid JSON payload received. {exc}") from None
        if not isinstance(data, dict):
            raise CloseSession(1007, "Invalid JSON payload received. Expected a JSON object.")
        self._raw = data
        message: dict[str, Any] = normalize(data)
        for kind in CLIENT_MESSAGES:
            if message.get(kind) is not None and not isinstance(message[kind], dict):
                raise CloseSession(
                    1007, f"Invalid value for {_as_sent(data, kind)!r}: expected an object."
                )
        return message

    def unknown_name(self, name: str, *, within: str | None = None) -> str:
        """The service's reason for an unknown field, spelled as the client sent it.

        Args:
            name: The field, in snake_case.
            within: The message kind it was found in; None for a top-level field.
        """
        sent: Any = self._raw
        if within is not None:
            sent = next((v for k, v in self._raw.items() if snake_case(str(k)) == within), None)
        return f'Invalid JSON payload received. Unknown name "{_as_sent(sent, name)}".'

    # ------------------------------------------------------------------ sending and ending

    async def send(self, message: dict[str, Any]) -> None:
        """Send one server message, camelCase JSON in a binary frame as the service does.

        Raises:
            asyncio.CancelledError: The connection is closing: whatever was sending stops.
        """
        if self.closing or self.ws.closed:
            raise asyncio.CancelledError
        data = json.dumps(camelize(message), separators=(",", ":")).encode("utf-8")
        async with self._send_lock:
            await self.ws.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        """Close with a code and reason the client sees (the SDK raises them as `APIError`)."""
        if self.closing:
            return
        self.closing = True
        self.close_code, self.close_reason = code, reason
        if code not in (1000, 1001):
            logger.info(f"{self.name}: closing with {code}: {reason}")
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=_closing_reason(reason).encode("utf-8"))
        self.closed_at = self.closed_at or time.time()

    def drop(self) -> None:
        """Cut the TCP connection with no close frame, as a network failure would."""
        self.close_code, self.close_reason = 1006, "dropped by the emulator's fault control"
        self.closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.closed_at = time.time()

    def ended(self) -> None:
        """Record that the connection is over, however it ended."""
        if self.closed_at is None:
            self.closed_at = time.time()
            if self.close_code is None:
                self.close_code = self.ws.close_code or 1006

    async def finish(self) -> None:
        """Stop every task of the connection (but the caller) and close the socket if open."""
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close()
