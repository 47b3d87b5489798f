"""Where the Pipecat service's sends meet the outbox: a stand-in for the SDK's live session.

Pipecat's `GeminiLiveLLMService` sends from many places (audio, video, text, tool results,
appended messages, the seed of a conversation), always through `self._session`, and drops the
send when that is None. The stage sets `SessionFacade` there for its whole life, so every send
reaches the outbox instead: sent at once on a usable socket, queued otherwise.

Two kinds of send bypass the queue, each inside a `with` block of this module: the seed of a
new connection goes straight to its socket (`direct_sends`), ahead of input queued while it was
being opened; and digital silence after `audioStreamEnd` is not sent at all (`holding_audio`),
since any audio would re-open the stream that was just ended.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from google.genai.types import Blob, FunctionResponse
from loguru import logger

from bots.gemini_live import outbox as kinds
from bots.gemini_live.errors import describe, is_connection_error
from bots.gemini_live.outbox import Outbox, Outgoing

if TYPE_CHECKING:
    from google.genai.live import AsyncSession

_DIRECT: ContextVar[bool] = ContextVar("gemini_live_direct_send", default=False)
_HOLD_AUDIO: ContextVar[bool] = ContextVar("gemini_live_hold_audio", default=False)

DEFAULT_INPUT_RATE = 16000


@contextlib.contextmanager
def _flag(var: ContextVar[bool]) -> Iterator[None]:
    token = var.set(True)
    try:
        yield
    finally:
        var.reset(token)


def direct_sends() -> contextlib.AbstractContextManager[None]:
    """Sends made inside go straight to the socket, ahead of the queue (the seed)."""
    return _flag(_DIRECT)


def holding_audio() -> contextlib.AbstractContextManager[None]:
    """Microphone audio sent inside is not sent at all (digital silence after the stream ended)."""
    return _flag(_HOLD_AUDIO)


def describe_send(method: str, kwargs: dict[str, Any]) -> tuple[str, float, tuple[str, ...]]:
    """The outbox kind of one SDK send, with its seconds of audio and the calls it answers."""
    if method == "send_tool_response":
        responses = kwargs.get("function_responses")
        items = responses if isinstance(responses, list) else [responses]
        ids = tuple(r.id for r in items if isinstance(r, FunctionResponse) and r.id)
        return kinds.TOOL_RESPONSE, 0.0, ids
    if method == "send_client_content":
        return kinds.CLIENT_CONTENT, 0.0, ()
    audio = kwargs.get("audio")
    if isinstance(audio, Blob):
        secs = len(audio.data or b"") / 2 / rate_of(audio.mime_type)
        return kinds.AUDIO, secs, ()
    if kwargs.get("video") is not None:
        return kinds.VIDEO, 0.0, ()
    if kwargs.get("text") is not None:
        return kinds.TEXT, 0.0, ()
    if kwargs.get("audio_stream_end"):
        return kinds.AUDIO_STREAM_END, 0.0, ()
    return kinds.ACTIVITY, 0.0, ()


def rate_of(mime_type: str | None) -> int:
    """The sample rate in an `audio/pcm;rate=N` MIME type (16 kHz when it names none)."""
    for part in (mime_type or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "rate" and value.isdigit() and int(value) > 0:
            return int(value)
    return DEFAULT_INPUT_RATE


async def send_on(socket: AsyncSession | None, item: Outgoing) -> bool:
    """Put one outbox message on a socket; False (keep the message) when the socket is gone."""
    if socket is None:
        return False
    method, kwargs = item.payload
    return await _put(socket, method, kwargs, f"{item.kind} (queued for later)")


async def _put(socket: AsyncSession, method: str, kwargs: dict[str, Any], what: str) -> bool:
    try:
        await getattr(socket, method)(**kwargs)
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        logger.debug(f"{what} not sent: {describe(exc)}")
        return False
    return True


class SessionFacade:
    """Stands in for the SDK's `AsyncSession` wherever the Pipecat service uses `_session`.

    Args:
        outbox: Where ordinary sends go.
        socket: The socket in use now (None between sockets), for direct sends.
        close: Closes the socket in use (Pipecat calls it when it disconnects).
    """

    def __init__(
        self,
        outbox: Outbox,
        socket: Callable[[], AsyncSession | None],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self._outbox = outbox
        self._socket = socket
        self._close = close

    async def send_realtime_input(self, **kwargs: Any) -> None:
        """As `AsyncSession.send_realtime_input`: audio, video, text, activity, stream end."""
        if _HOLD_AUDIO.get() and kwargs.get("audio") is not None:
            return
        await self._submit("send_realtime_input", kwargs)

    async def send_client_content(self, **kwargs: Any) -> None:
        """As `AsyncSession.send_client_content`: turns, and turn completion."""
        await self._submit("send_client_content", kwargs)

    async def send_tool_response(self, **kwargs: Any) -> None:
        """As `AsyncSession.send_tool_response`."""
        await self._submit("send_tool_response", kwargs)

    async def close(self) -> None:
        """Close the socket in use (the stage reconnects unless it is stopping)."""
        await self._close()

    async def _submit(self, method: str, kwargs: dict[str, Any]) -> None:
        if _DIRECT.get():
            await self._send_direct(method, kwargs)
            return
        kind, audio_secs, call_ids = describe_send(method, kwargs)
        item = self._outbox.item(kind, (method, kwargs), audio_secs=audio_secs, call_ids=call_ids)
        await self._outbox.submit(item)

    async def _send_direct(self, method: str, kwargs: dict[str, Any]) -> None:
        socket = self._socket()
        if socket is None:
            # The connection went away while it was being seeded; the next one seeds again.
            logger.debug(f"no Gemini Live socket for a direct {method}")
            return
        await _put(socket, method, kwargs, f"direct {method} (the next connection seeds again)")
