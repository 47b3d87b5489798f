"""Client messages after `setup`: checked as the service checks them, then handed on.

Realtime input carries media (to `Media`), activity signals, and typed text; `clientContent` adds
to the history; `toolResponse` answers calls. Anything the service would refuse closes the
connection with 1007 and the service's kind of reason, before it can change any state.
"""

from __future__ import annotations

from typing import Any

from emulator.session.channel import CLIENT_MESSAGES, CloseSession
from emulator.session.context import Context, Infer, TextTurn, ToolResponses
from emulator.session.media import Media
from emulator.session.speaker import Speaker
from emulator.session.timing import TurnTiming
from emulator.wire import WireError, text_of

REALTIME_FIELDS = (
    "audio",
    "video",
    "text",
    "activity_start",
    "activity_end",
    "audio_stream_end",
    "media_chunks",
)


class Inbound:
    """Reads one connection's client messages until the client closes."""

    def __init__(self, ctx: Context, media: Media, speaker: Speaker) -> None:
        self._ctx = ctx
        self._media = media
        self._speaker = speaker

    async def receive(self) -> None:
        """Handle client messages in order until the client closes.

        Raises:
            CloseSession: A message the service would refuse.
        """
        channel = self._ctx.channel
        while True:
            message = await channel.receive()
            if message is None:
                return
            unknown = [k for k in message if k not in CLIENT_MESSAGES]
            if unknown:
                raise CloseSession(1007, channel.unknown_name(unknown[0]))
            if len(message) != 1:
                raise CloseSession(1007, "Exactly one message kind is allowed per client message.")
            self._ctx.client_index += 1
            ((kind, body),) = message.items()
            try:
                await self._handle(kind, body or {})
            except WireError as exc:
                raise CloseSession(1007, str(exc)) from None

    async def _handle(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "setup":
            raise CloseSession(1007, "setup must be the first and only setup message.")
        if kind == "realtime_input":
            await self._realtime_input(body)
        elif kind == "client_content":
            await self._client_content(body)
        elif kind == "tool_response":
            await self._tool_response(body)

    # ------------------------------------------------------------------ realtime input

    async def _realtime_input(self, body: dict[str, Any]) -> None:
        unknown = [k for k in body if k not in REALTIME_FIELDS]
        if unknown:
            raise WireError(self._ctx.channel.unknown_name(unknown[0], within="realtime_input"))
        await self._media_input(body)
        await self._activity(body)
        await self._text(body)

    async def _media_input(self, body: dict[str, Any]) -> None:
        chunks = body.get("media_chunks") or []
        if not isinstance(chunks, list):
            raise WireError(
                "Invalid value for realtimeInput.mediaChunks: expected a list of Blobs."
            )
        for blob in chunks:
            blob = _blob(blob, "mediaChunks")
            if str(blob.get("mime_type") or "").startswith("image/"):
                self._media.video(blob)
            else:
                await self._media.audio(blob)
        if body.get("audio") is not None:
            await self._media.audio(_blob(body["audio"], "audio"))
        if body.get("video") is not None:
            self._media.video(_blob(body["video"], "video"))

    async def _activity(self, body: dict[str, Any]) -> None:
        for signal in ("activity_start", "activity_end"):
            if body.get(signal) is None:
                continue
            self._ctx.frames[signal] += 1
            if not self._ctx.config.vad_disabled:
                name = "activityStart" if signal == "activity_start" else "activityEnd"
                raise WireError(
                    f"{name} is only allowed when automaticActivityDetection is disabled."
                )
            if signal == "activity_start":
                self._media.activity_start()
            else:
                await self._media.activity_end()
        if body.get("audio_stream_end"):
            self._ctx.frames["audio_stream_end"] += 1
            await self._media.stream_end()

    async def _text(self, body: dict[str, Any]) -> None:
        """Typed text is a turn of its own; a blank one, while the model is not talking, asks
        for an answer to the history (Pipecat's nudge after client content: nothing new)."""
        events = self._ctx.events
        text = body.get("text")
        if text is None:
            return
        self._ctx.frames["text"] += 1
        if not isinstance(text, str):
            raise WireError("Invalid value for realtimeInput.text: expected a string.")
        if text.strip():
            timing = TurnTiming("text")
            timing.mark("turn_ended")
            if self._speaker.generating:
                await self._speaker.interrupt()
            await events.put(TextTurn(text.strip(), timing))
        elif not self._speaker.generating:
            await events.put(Infer())

    # ------------------------------------------------------------------ other messages

    async def _client_content(self, body: dict[str, Any]) -> None:
        """Turns with explicit roles join the history, at any time in the session (Google's 3.1
        and 3.8 pages). `turnComplete: true` stops what the model is saying and asks for an
        answer at once, on every model as those pages say (Pipecat reads 3.x as needing a
        realtime input too, and sends a blank text nudge, which finds nothing new to answer);
        without it the model waits for more."""
        ctx = self._ctx
        ctx.frames["client_content"] += 1
        turns = _contents(body.get("turns"))
        complete = bool(body.get("turn_complete"))
        if complete and self._speaker.generating:
            # Stopped first, so the cut-short model turn comes before the new content.
            await self._speaker.interrupt()
        for turn in turns:
            role = str(turn.get("role") or "user")
            text = text_of(turn)
            if text.strip():
                ctx.conv.add("model" if role == "model" else "user", text, "client_content")
        if complete:
            await ctx.events.put(Infer(content=True))

    async def _tool_response(self, body: dict[str, Any]) -> None:
        if self._ctx.timing is not None:
            self._ctx.timing.mark("tool_response_received")
        self._ctx.frames["tool_response"] += 1
        responses = body.get("function_responses")
        if not isinstance(responses, list) or not responses:
            raise WireError("toolResponse needs a non-empty functionResponses list.")
        by_id = {c.id: c for c in self._ctx.conv.tool_calls}
        accepted = []
        for resp in responses:
            if not isinstance(resp, dict):
                raise WireError("Invalid value for functionResponses: expected objects.")
            call_id = resp.get("id")
            call = by_id.get(call_id) if isinstance(call_id, str) else None
            if call is None:
                raise WireError(
                    f"Function response for unknown function call id {call_id!r}: "
                    "answer only ids sent in toolCall."
                )
            accepted.append((call, resp))
        await self._ctx.events.put(ToolResponses(accepted))


def _blob(value: Any, name: str) -> dict[str, Any]:
    """A media `Blob` ({data, mimeType}) as the service requires one, or the reason it refuses."""
    if not isinstance(value, dict):
        raise WireError(f"Invalid value for realtimeInput.{name}: expected a Blob object.")
    return value


def _contents(turns: Any) -> list[dict[str, Any]]:
    """`clientContent.turns` checked as the service reads it: a list of `Content` objects whose
    role, if any, is a string and whose parts are objects with string text."""
    if turns is None:
        return []
    if not isinstance(turns, list):
        raise WireError("Invalid value for clientContent.turns: expected a list of Content.")
    for turn in turns:
        if not isinstance(turn, dict):
            raise WireError("Invalid value for clientContent.turns: expected Content objects.")
        if not isinstance(turn.get("role") or "", str):
            raise WireError("Invalid value for Content.role: expected a string.")
        parts = turn.get("parts") or []
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            raise WireError("Invalid value for Content.parts: expected a list of Part objects.")
        if not all(isinstance(p.get("text", ""), str) for p in parts):
            raise WireError("Invalid value for Part.text: expected a string.")
    return turns
