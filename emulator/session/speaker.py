"""The model's output on the wire: one model turn at a time, paced as a talking model is.

A client learns that the model is talking from the audio arriving, so audio goes out at real time
(times `pace`) in 100 ms chunks, at most `lead_s` ahead; "the model is talking" then lasts as long
as its audio, which is what barge-in and turn-taking in the client are built around.

What a listener waits for is the first sound, so the start of an answer is made short: its first
clause is synthesized alone (`split_first_clause`), Piper's quiet lead-in is cut from it, and its
first chunk is a small one (`FIRST_CHUNK_MS`), sent the moment it exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from emulator.session.context import Context
from emulator.session.timing import TurnTiming, audio_digest
from emulator.speech import OUTPUT_RATE, Synthesizer, split_sentences
from emulator.speech.audio import lead_in_ms, trim_lead_in
from emulator.speech.sentences import split_first_clause
from emulator.state import ToolCallRecord
from emulator.wire import encode_bytes

CHUNK_MS = 100
"""Output audio per message."""

AUDIO_TOKENS_PER_S = 25
"""Response tokens counted per second of output audio, as the service counts them."""

FIRST_CHUNK_MS = 40
"""Audio in an answer's first message: small, so it is on its way as soon as it exists (a 100 ms
chunk takes aiohttp's compression off to a thread), and the client has sound sooner."""

LEAD_IN_KEPT_MS = 10
"""Quiet left before the first sound of an answer (Piper's own lead-in is 0-80 ms)."""

_CHUNK_BYTES = OUTPUT_RATE * 2 * CHUNK_MS // 1000
_FIRST_CHUNK_BYTES = OUTPUT_RATE * 2 * FIRST_CHUNK_MS // 1000


def speech_pieces(sentences: list[str]) -> list[tuple[str, str]]:
    """What is synthesized, one piece at a time, each with the sentence it begins ("" for none):
    the first sentence cut after its first clause, then the other sentences whole.

    A sentence joins what the model said (its history) when its first piece starts, so a turn
    cut short holds the sentences that had started, as before the first was cut in two.
    """
    if not sentences:
        return []
    head, *rest = split_first_clause(sentences[0])
    return [(head, sentences[0]), *((p, "") for p in rest), *((s, s) for s in sentences[1:])]


def chunk_bounds(size: int, *, first: bool) -> list[tuple[int, int]]:
    """The chunks of `size` bytes of audio: `FIRST_CHUNK_MS` first when it begins an answer, then
    `CHUNK_MS` each."""
    bounds: list[tuple[int, int]] = []
    start = 0
    if first and size > 0:
        bounds.append((0, min(size, _FIRST_CHUNK_BYTES)))
        start = bounds[0][1]
    bounds += [(i, min(size, i + _CHUNK_BYTES)) for i in range(start, size, _CHUNK_BYTES)]
    return bounds


@dataclass
class _Said:
    """What one model turn has sent so far."""

    sentences: list[str] = field(default_factory=list)
    audio_s: float = 0.0
    started: float | None = None  # monotonic time of the first audio chunk
    timing: TurnTiming | None = None  # the user turn being answered, stamped as it goes

    @property
    def text(self) -> str:
        return "".join(self.sentences).strip()


class Speaker:
    """Starts model turns, streams them, and stops them on barge-in."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._when_idle: list[str] = []  # results to say once the current output has ended

    @property
    def generating(self) -> bool:
        """True while a model turn is being sent."""
        return self._task is not None and not self._task.done()

    @property
    def busy(self) -> bool:
        """Sending a turn, or holding a result to say once the current turn has ended."""
        return self.generating or bool(self._when_idle)

    async def start(
        self, text: str, *, calls: list[ToolCallRecord] | None = None, complete: bool = True
    ) -> None:
        """Start a model turn (after any turn still playing) that says `text`, then calls tools.

        Args:
            text: What the model says; may be empty.
            calls: Function calls sent after the words, in one `toolCall`.
            complete: End the turn with `turnComplete`; False while the calls hold the model.
        """
        await self.wait()
        timing = self._ctx.timing
        self._task = self._ctx.channel.spawn(
            self._speak(text, calls or [], complete, timing), "speak"
        )

    async def wait(self) -> None:
        """Wait until the turn being sent, if any, has been sent or stopped."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    def say_when_idle(self, text: str) -> None:
        """Say `text` as a turn of its own once the current output has ended."""
        self._when_idle.append(text)

    async def interrupt(self, cancel_calls: list[ToolCallRecord] | None = None) -> None:
        """Barge-in: stop the output, cancel the calls, and tell the client, as the service does."""
        task = self._task
        self._when_idle.clear()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if cancel_calls:
            await self.cancel_calls(cancel_calls)
        await self._ctx.channel.send({"server_content": {"interrupted": True}})

    async def cancel_calls(self, calls: list[ToolCallRecord]) -> None:
        """The model gives up on these calls: `toolCallCancellation`, and their late answers
        are ignored."""
        for call in calls:
            call.status = "cancelled"
        await self._ctx.channel.send({"tool_call_cancellation": {"ids": [c.id for c in calls]}})

    async def send_resumption_update(self) -> None:
        """A new resumption handle, or none while a turn or a blocking call is under way."""
        ctx = self._ctx
        if not ctx.config.resumption:
            return
        pending = any(c.status == "pending" for c in ctx.conv.tool_calls if c.blocking)
        update: dict[str, Any]
        if pending or self.generating:
            update = {"new_handle": "", "resumable": False}
        else:
            handle = ctx.registry.issue_handle(ctx.conv)
            ctx.handles.append(handle)
            update = {"new_handle": handle, "resumable": True}
        if ctx.config.transparent:
            update["last_consumed_client_message_index"] = ctx.client_index
        await ctx.channel.send({"session_resumption_update": update})

    # ------------------------------------------------------------------ one model turn

    async def _speak(
        self,
        text: str,
        calls: list[ToolCallRecord],
        complete: bool,
        timing: TurnTiming | None = None,
    ) -> None:
        said = _Said(timing=timing)
        try:
            if self._ctx.first_audio_ms:
                await asyncio.sleep(self._ctx.first_audio_ms / 1000)
            sentences = split_sentences(text) if text.strip() else []
            if self._ctx.config.modality == "TEXT":
                await self._write(sentences, said)
            else:
                await self._say_aloud(sentences, said)
            if calls:
                if timing is not None:
                    timing.mark("tool_call_sent")
                await self._send_calls(calls)
                if not complete:
                    self._record(said)
                    return
            await self._complete(said)
            self._record(said)
        except asyncio.CancelledError:
            self._record(said, interrupted=True)
            raise
        self._ctx.channel.spawn(self._after_turn(), "after-turn")

    async def _write(self, sentences: list[str], said: _Said) -> None:
        """TEXT modality: one text part per sentence, unpaced."""
        for sentence in sentences:
            part = {"model_turn": {"role": "model", "parts": [{"text": sentence}]}}
            await self._ctx.channel.send({"server_content": part})
            said.sentences.append(sentence)

    async def _say_aloud(self, sentences: list[str], said: _Said) -> None:
        """AUDIO modality: each piece synthesized, then streamed in paced chunks."""
        pieces = speech_pieces(sentences)
        if not pieces:
            return
        # The next piece is synthesized while this one streams, so a slow sentence does not
        # leave a silent gap between two (the client holds only ~`lead_s` of audio).
        synth = Synthesizer.shared()
        timing = said.timing
        if timing is not None:
            timing.mark("synthesis_started")
        pending: asyncio.Future[bytes] | None = asyncio.ensure_future(
            synth.synthesize(pieces[0][0])
        )
        try:
            for index, (piece, begins) in enumerate(pieces):
                assert pending is not None
                pcm = await pending
                if timing is not None:
                    timing.mark("synthesized")
                following = index + 1
                pending = (
                    asyncio.ensure_future(synth.synthesize(pieces[following][0]))
                    if following < len(pieces)
                    else None
                )
                if said.audio_s == 0:
                    pcm = trim_lead_in(pcm, LEAD_IN_KEPT_MS)
                await self._stream(piece, pcm, said, begins=begins)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()

    async def _stream(
        self, piece: str, pcm: bytes, said: _Said, *, begins: str | None = None
    ) -> None:
        """Send one piece's audio: its first chunk at once, the rest paced. `begins`: the
        sentence this piece begins, which joins what was said ("" for none; the piece itself
        when not given)."""
        for i, end in chunk_bounds(len(pcm), first=said.audio_s == 0):
            chunk = pcm[i:end]
            if said.started is None:
                said.started = time.monotonic()
            await self._pace(said.started, said.audio_s)
            blob = {"mime_type": f"audio/pcm;rate={OUTPUT_RATE}", "data": encode_bytes(chunk)}
            content: dict[str, Any] = {"model_turn": {"parts": [{"inline_data": blob}]}}
            if i == 0:
                if self._ctx.config.output_transcription:
                    # The pieces keep the spaces between them, so they join into the text said.
                    content["output_transcription"] = {"text": piece}
                sentence = piece if begins is None else begins
                if sentence:
                    said.sentences.append(sentence)
            timing = said.timing
            if timing is not None and not timing.has("first_audio_sent"):
                timing.mark("first_audio_sent")
                timing.first_audio_digest = audio_digest(chunk)
                timing.lead_in_ms = lead_in_ms(chunk)
            await self._ctx.channel.send({"server_content": content})
            said.audio_s += len(chunk) / 2 / OUTPUT_RATE

    async def _pace(self, start: float, audio_s: float) -> None:
        """Keep the audio sent at most `lead_s` ahead of real time, as a talking model would."""
        pace = self._ctx.options.pace
        if pace <= 0:
            await asyncio.sleep(0)  # yield between chunks: other sessions' audio goes out too
            return
        due = start + audio_s / pace - self._ctx.options.lead_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _send_calls(self, calls: list[ToolCallRecord]) -> None:
        function_calls = [{"id": c.id, "name": c.name, "args": c.args} for c in calls]
        await self._ctx.channel.send({"tool_call": {"function_calls": function_calls}})

    async def _complete(self, said: _Said) -> None:
        """End the turn: generationComplete, then turnComplete with the usage counts."""
        await self._ctx.channel.send({"server_content": {"generation_complete": True}})
        response = int(said.audio_s * AUDIO_TOKENS_PER_S) + sum(
            len(s.split()) for s in said.sentences
        )
        prompt = max(self._ctx.prompt_tokens, 1)
        usage = {
            "prompt_token_count": prompt,
            "response_token_count": response,
            "total_token_count": prompt + response,
            "prompt_tokens_details": [{"modality": "TEXT", "token_count": prompt}],
            "response_tokens_details": [
                {"modality": self._ctx.config.modality, "token_count": response}
            ],
        }
        content: dict[str, Any] = {"turn_complete": True}
        if self._ctx.model.reports_interaction_status:
            # The emulator never reasons in the background, so every turnComplete is the turn's
            # last: IDLE. Pipecat holds a turn open while the status is IN_PROGRESS
            # (`_read_interaction_status`), and the SDK's receive() ends a turn only at IDLE.
            content["interaction_status"] = "IDLE"
        await self._ctx.channel.send({"server_content": content, "usage_metadata": usage})

    def _record(self, said: _Said, *, interrupted: bool = False) -> None:
        """Put what was said in the history (marked interrupted when cut short)."""
        if said.sentences:
            turn = self._ctx.conv.add("model", said.text, "model", interrupted=interrupted)
            self._ctx.spoken.append(turn)

    async def _after_turn(self) -> None:
        await self.send_resumption_update()
        if self._when_idle:
            text = " ".join(self._when_idle)
            self._when_idle.clear()
            await self.start(text)
