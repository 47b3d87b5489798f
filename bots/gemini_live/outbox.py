"""The one ordered queue every client message of the Gemini Live stage goes through.

A Gemini Live socket goes away on every reconnect and goAway switch, and Pipecat's service drops
whatever it sends while there is none. Here each message is sent at once while the socket is
usable and queued, in submission order, while it is not; the next socket gets the queue first.

Bounds, because an outage can last a while and the microphone does not stop: queued audio is
capped (the oldest goes first), only the newest video frame is kept (a stale frame is worth
nothing once a newer one exists), and text, tool results and appended messages are never
dropped below a hard item limit. A tool result for a call of an earlier session that could not
be resumed is not sent: the new session never saw that call.

Pure Python: the caller describes each message (kind, seconds of audio, the tool calls it
answers) and passes in the function that puts one on the socket.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

AUDIO = "audio"
VIDEO = "video"
TEXT = "text"
TOOL_RESPONSE = "tool_response"
CLIENT_CONTENT = "client_content"
AUDIO_STREAM_END = "audio_stream_end"
ACTIVITY = "activity"

DEFAULT_MAX_AUDIO_SECS = 10.0
DEFAULT_MAX_ITEMS = 5000
"""Far more than an outage can fill before the stage gives up (audio is capped in seconds)."""


@dataclass(frozen=True, order=True)
class Outgoing:
    """One client message waiting for (or on its way to) a socket, in submission order.

    Attributes:
        seq: Submission order; a message put back after a failed send keeps its place.
        kind: One of the kind constants of this module.
        payload: What the sender needs to send it (opaque here).
        audio_secs: Seconds of microphone audio it carries.
        call_ids: The tool calls it answers.
    """

    seq: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, repr=False)
    audio_secs: float = field(default=0.0, compare=False)
    call_ids: tuple[str, ...] = field(default=(), compare=False)


Send = Callable[[Outgoing], Awaitable[bool]]
"""Put one message on the current socket: True once sent, False when no socket could take it
(the message is then kept). Any other failure raises."""


class Outbox:
    """Sends now while the gate is open, queues in order while it is closed.

    The gate opens when a flush has emptied the queue onto a usable socket, and closes when a
    send fails or the owner closes it (the socket went away, a switch began).

    Args:
        send: Puts one message on the current socket.
        usable: Whether there is a socket to flush onto now.
        stale: The ids among a message's tool calls that belong to an earlier, unresumable
            session; a message answering any of them is not sent.
        max_audio_secs: Most audio kept while the gate is closed; older audio is dropped.
        max_items: Hard limit on queued messages; past it new ones are refused and logged.
    """

    def __init__(
        self,
        send: Send,
        *,
        usable: Callable[[], bool] = lambda: True,
        stale: Callable[[tuple[str, ...]], list[str]] = lambda ids: [],
        max_audio_secs: float = DEFAULT_MAX_AUDIO_SECS,
        max_items: int = DEFAULT_MAX_ITEMS,
    ) -> None:
        if max_audio_secs < 0 or max_items < 1:
            raise ValueError("max_audio_secs must be >= 0 and max_items >= 1")
        self._send = send
        self._usable = usable
        self._stale = stale
        self._max_audio = max_audio_secs
        self._max_items = max_items
        self._queue: list[Outgoing] = []
        self._seq = 0
        self._open = False
        self._ended = False
        self._flushing = False
        self._dropped_audio_secs = 0.0
        self._dropped_video = 0
        self._refused = 0

    # ------------------------------------------------------------------ state

    @property
    def is_open(self) -> bool:
        """Whether messages go straight to the socket."""
        return self._open

    @property
    def pending(self) -> tuple[str, ...]:
        """The kinds of the queued messages, oldest first."""
        return tuple(item.kind for item in self._queue)

    def queued(self) -> tuple[Outgoing, ...]:
        """The queued messages themselves, oldest first (for inspection; do not send them)."""
        return tuple(self._queue)

    @property
    def dropped_audio_secs(self) -> float:
        """Seconds of queued audio dropped since the last flush."""
        return self._dropped_audio_secs

    @property
    def dropped_video(self) -> int:
        """Stale video frames dropped since the last flush."""
        return self._dropped_video

    # ------------------------------------------------------------------ input

    def item(
        self, kind: str, payload: Any, *, audio_secs: float = 0.0, call_ids: tuple[str, ...] = ()
    ) -> Outgoing:
        """Describe the next message; its place in the order is taken now."""
        self._seq += 1
        return Outgoing(self._seq, kind, payload, audio_secs, call_ids)

    async def submit(self, item: Outgoing) -> None:
        """Send one message now if the gate is open, else queue it in order."""
        if self._ended:
            logger.debug(f"outbox: dropping a {item.kind} after the session ended")
            return
        if self._open:
            if await self._deliver(item):
                return
            self._open = False
        self._enqueue(item)

    def close(self) -> None:
        """Queue from now on (the socket went away, or a switch began)."""
        self._open = False

    def end(self, why: str) -> None:
        """Drop everything queued and refuse what comes later: the session is over."""
        self._open = False
        self._ended = True
        if self._queue:
            kinds = Counter(q.kind for q in self._queue)
            logger.warning(f"outbox: {why}; not sending queued input {dict(kinds)}")
        self._queue.clear()

    async def flush(self) -> bool:
        """Send everything queued, oldest first, then open the gate; False if a send failed."""
        if self._flushing or self._ended:
            return False
        self._flushing = True
        sent: Counter[str] = Counter()
        try:
            while self._queue:
                if not self._usable():
                    return False
                item = self._queue.pop(0)
                try:
                    delivered = await self._deliver(item)
                except Exception as exc:
                    logger.error(f"outbox: could not send a queued {item.kind}: {exc}")
                    continue
                if not delivered:
                    self._enqueue(item)
                    return False
                sent[item.kind] += 1
            self._open = self._usable()
            return self._open
        finally:
            self._flushing = False
            self._report(sent)

    # ------------------------------------------------------------------ internals

    async def _deliver(self, item: Outgoing) -> bool:
        stale = self._stale(item.call_ids) if item.call_ids else []
        if stale:
            logger.warning(
                f"outbox: not sending the result of tool call(s) {', '.join(stale)}: they "
                "belong to a previous Gemini session that could not be resumed (the new session "
                "was seeded with the conversation instead)"
            )
            return True
        return await self._send(item)

    def _enqueue(self, item: Outgoing) -> None:
        if len(self._queue) >= self._max_items and item.kind != AUDIO:
            self._refused += 1
            logger.error(f"outbox: {self._max_items} messages queued; refusing a {item.kind}")
            return
        if not self._queue:
            logger.info("outbox: no usable Gemini Live socket; queueing input until there is one")
        if item.kind == VIDEO:
            before = len(self._queue)
            self._queue = [q for q in self._queue if q.kind != VIDEO]
            self._dropped_video += before - len(self._queue)
        bisect.insort(self._queue, item)
        if item.kind == AUDIO:
            self._cap_audio()

    def _cap_audio(self) -> None:
        queued = sum(q.audio_secs for q in self._queue if q.kind == AUDIO)
        while queued > self._max_audio or len(self._queue) > self._max_items:
            oldest = next((q for q in self._queue if q.kind == AUDIO), None)
            if oldest is None:
                return
            self._queue.remove(oldest)
            queued -= oldest.audio_secs
            self._dropped_audio_secs += oldest.audio_secs

    def _report(self, sent: Counter[str]) -> None:
        if sent:
            logger.info(f"outbox: sent what was queued while disconnected: {dict(sent)}")
        if self._dropped_audio_secs or self._dropped_video:
            logger.warning(
                f"outbox: while disconnected, dropped {self._dropped_audio_secs:.1f}s of the "
                f"oldest microphone audio (over the {self._max_audio:g}s kept) and "
                f"{self._dropped_video} stale video frame(s)"
            )
            self._dropped_audio_secs = 0.0
            self._dropped_video = 0
