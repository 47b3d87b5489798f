"""The model's function calls on one connection: making them, holding, and reading results back.

A BLOCKING call holds the model: no `turnComplete` follows the `toolCall`, and the results are
spoken only once every blocking call has its final answer. A NON_BLOCKING call (on a model that
honours it: the 2.5 models when declared so, the 3.8 family unless declared BLOCKING) lets the model
go on; each of its results, intermediate (`willContinue`) or final, is spoken as its `scheduling`
says, and the final one closes the call.
"""

from __future__ import annotations

import secrets
from typing import Any

from emulator import brain
from emulator.session.context import CallsCancelled, Context
from emulator.session.speaker import Speaker
from emulator.state import MAX_RESPONSES, ToolCallRecord

SCHEDULINGS = ("INTERRUPT", "WHEN_IDLE", "SILENT")


def _result(response: Any) -> Any:
    """What the model reads of a response: a `scheduling` inside it is how to deliver the result
    (Google's guides put it there, Pipecat sends it there too), not part of the result."""
    if isinstance(response, dict) and str(response.get("scheduling", "")).upper() in SCHEDULINGS:
        return {k: v for k, v in response.items() if k != "scheduling"}
    return response


def _scheduling(resp: dict[str, Any]) -> str:
    """`scheduling` from the FunctionResponse field or inside `response`; WHEN_IDLE if neither."""
    response = resp.get("response")
    inner = response.get("scheduling") if isinstance(response, dict) else ""
    return str(resp.get("scheduling") or inner or "WHEN_IDLE").upper()


class ToolCalls:
    """Issues calls and takes their responses."""

    def __init__(self, ctx: Context, speaker: Speaker) -> None:
        self._ctx = ctx
        self._speaker = speaker

    def pending_blocking(self) -> list[ToolCallRecord]:
        """The blocking calls still waiting for their final answer."""
        return [c for c in self._ctx.conv.tool_calls if c.blocking and c.status == "pending"]

    def runs_non_blocking(self, name: str) -> bool:
        """Whether a call to `name` lets the model go on: its declared `behavior` as the model
        reads it; a function that is not declared runs as the model's default."""
        return self._ctx.model.runs_non_blocking(self._ctx.config.behaviors.get(name, ""))

    async def call(self, calls: list[tuple[str, dict[str, Any]]], preamble: str) -> None:
        """Say `preamble`, then call the functions in one `toolCall`.

        Args:
            calls: `(name, args)` pairs; a function that is not declared runs as the model's
                default behaviour (BLOCKING before 3.8, NON_BLOCKING from 3.8).
            preamble: Words said first; may be empty.
        """
        records = [
            ToolCallRecord(
                id=f"function-call-{secrets.token_hex(8)}",
                name=name,
                args=args,
                blocking=not self.runs_non_blocking(name),
            )
            for name, args in calls
        ]
        self._ctx.conv.add_calls(records)
        blocking = any(r.blocking for r in records)
        await self._speaker.start(preamble, calls=records, complete=not blocking)

    async def cancel(self, ids: list[str] | None) -> None:
        """The model gives up on unanswered calls (`ids`, or all): `toolCallCancellation`.

        A BLOCKING call cancelled this way frees the model, which then answers what the user said
        while it was held, as if the call had been answered.

        Raises:
            ValueError: An id is not a call still waiting for its final answer.
        """
        pending = {c.id: c for c in self._ctx.conv.tool_calls if c.status == "pending"}
        unknown = [i for i in ids or [] if i not in pending]
        if unknown:
            raise ValueError(f"No unanswered function call with id {unknown[0]!r}.")
        calls = [pending[i] for i in ids] if ids is not None else list(pending.values())
        if not calls:
            return
        await self._speaker.cancel_calls(calls)
        if any(c.blocking for c in calls) and not self.pending_blocking():
            await self._ctx.events.put(CallsCancelled())

    async def answer(self, accepted: list[tuple[ToolCallRecord, dict[str, Any]]]) -> bool:
        """Take the client's responses.

        Returns:
            True when the results of the blocking calls have just been spoken, so the model is
            free again.
        """
        for call, resp in accepted:
            scheduling = _scheduling(resp)
            response = resp.get("response")
            call.responses.append(
                {
                    "response": response,
                    "scheduling": scheduling,
                    "will_continue": bool(resp.get("will_continue")),
                }
            )
            del call.responses[:-MAX_RESPONSES]
            if call.status == "cancelled":
                continue  # a late answer to a call the model gave up on is ignored
            if not resp.get("will_continue"):
                call.status = "answered"
            if not call.blocking:
                await self._non_blocking_result(call, response, scheduling)
        if self.pending_blocking():
            return False
        return await self._blocking_results()

    async def _non_blocking_result(
        self, call: ToolCallRecord, response: Any, scheduling: str
    ) -> None:
        said = brain.respond_to_tool_results([(call.name, _result(response))]).text
        if scheduling == "SILENT":
            return
        if scheduling == "INTERRUPT" and self._polite():
            # Vertex's 3.8 guide: an INTERRUPT result waits for the user to finish speaking.
            await self._ctx.user_quiet.wait()
        if scheduling == "INTERRUPT" and self._speaker.generating:
            await self._speaker.interrupt()
            await self._speaker.start(said)
        elif self._speaker.generating:
            self._speaker.say_when_idle(said)
        else:
            await self._speaker.start(said)

    def _polite(self) -> bool:
        return self._ctx.options.polite_interrupt and self._ctx.model.vertex_variants

    async def _blocking_results(self) -> bool:
        """Speak the results of the blocking calls not yet spoken, every value in them."""
        unreported = [
            c
            for c in self._ctx.conv.tool_calls
            if c.blocking and c.status == "answered" and not c.reported
        ]
        for call in unreported:
            call.reported = True
        if not unreported:
            return False
        said = brain.respond_to_tool_results(
            [(c.name, _result(c.responses[-1]["response"])) for c in unreported]
        ).text
        await self._speaker.start(said)
        return True
