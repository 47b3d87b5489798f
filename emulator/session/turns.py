"""Conducting turns: what the model does with each finished user turn, one at a time, in order.

A finished turn goes to the first scenario rule that matches, else to the offline brain. While a
BLOCKING call is unanswered the model is held: the turn is recorded in the history but not
answered, and only the most recent held turn is answered once the calls are (as users report of
the real service). Speech while the model talks interrupts it and releases the hold.
"""

from __future__ import annotations

import dataclasses

from emulator import brain
from emulator.session.context import (
    AudioTurn,
    CallsCancelled,
    Context,
    Infer,
    Script,
    TextTurn,
    ToolResponses,
)
from emulator.session.control import Controls
from emulator.session.speaker import Speaker
from emulator.session.tool_calls import ToolCalls
from emulator.speech import Transcriber


class Turns:
    """The model's side of the conversation on one connection."""

    def __init__(
        self, ctx: Context, speaker: Speaker, tool_calls: ToolCalls, controls: Controls
    ) -> None:
        self._ctx = ctx
        self._speaker = speaker
        self._tool_calls = tool_calls
        self._controls = controls
        self._held: str | None = None  # the latest turn that came in while a call held the model
        self.handling = False  # an event is being handled (the next may already be queued)

    async def conduct(self) -> None:
        """Handle turns one at a time, in the order they happened."""
        while True:
            event = await self._ctx.events.get()
            self.handling = True
            try:
                await self._handle(event)
            finally:
                self.handling = False

    async def _handle(self, event: object) -> None:
        match event:
            case AudioTurn() as turn:
                await self._audio_turn(turn)
            case TextTurn(text=text, timing=timing):
                self._ctx.answering(timing)
                await self._user_turn(text, "text")
            case Infer(content=content):
                await self._infer(content)
            case ToolResponses(accepted=accepted):
                if await self._tool_calls.answer(accepted):
                    await self._release_held()
            case CallsCancelled():
                await self._release_held()
            case Script(steps=steps):
                await self._controls.run(steps)

    def barge_in(self) -> None:
        """The user started speaking: stop the model and cancel its blocking calls, unless the
        setup asked for `NO_INTERRUPTION`."""
        if self._ctx.config.activity_handling == "NO_INTERRUPTION":
            return
        pending = self._tool_calls.pending_blocking()
        if self._speaker.generating or pending:
            self._ctx.channel.spawn(self._speaker.interrupt(cancel_calls=pending), "barge-in")

    async def _audio_turn(self, turn: AudioTurn) -> None:
        timing = turn.timing
        if self._ctx.options.heard_as is not None:
            text = self._ctx.options.heard_as
        elif turn.early is not None:
            text = await turn.early
        else:
            if timing is not None:
                timing.mark("transcribe_started")
            text = await Transcriber.shared().transcribe(turn.audio)
            if timing is not None:
                timing.mark("transcribed")
        if not text:
            return
        self._ctx.answering(timing)
        if self._ctx.config.input_transcription:
            words = text.split(" ")
            step = max(1, (len(words) + 2) // 3)
            for i in range(0, len(words), step):
                piece = " ".join(words[i : i + step])
                transcription = {"text": piece if i == 0 else " " + piece}
                await self._ctx.channel.send(
                    {"server_content": {"input_transcription": transcription}}
                )
        await self._user_turn(text, "audio")

    async def _user_turn(self, text: str, source: str) -> None:
        conv = self._ctx.conv
        self._ctx.prompt_tokens += max(1, len(text.split()) * 4 // 3)
        history = conv.pairs()
        conv.add("user", text, source)
        if not await self._free_for(text):
            return
        await self._answer(text, history)

    async def _infer(self, content: bool) -> None:
        """Answer the history's last user turn; `content`: it came with `clientContent`."""
        history = self._ctx.conv.history
        if self._speaker.generating or not history or history[-1].role != "user":
            return
        if self._tool_calls.pending_blocking():
            # A blank nudge while the model is held is not new input; content is.
            if not content or not await self._free_for(history[-1].text):
                return
        await self._answer(history[-1].text, [(t.role, t.text) for t in history[:-1]])

    async def _free_for(self, text: str) -> bool:
        """Whether the model may answer new input now. A BLOCKING call holds it: the input is in
        the history, answered when the call is (or, with `cancel_blocking_on_input` on the 3.8
        family, the call is cancelled and the input answered at once)."""
        pending = self._tool_calls.pending_blocking()
        if not pending:
            return True
        if self._ctx.options.cancel_blocking_on_input and self._ctx.model.vertex_variants:
            await self._speaker.cancel_calls(pending)
            self._held = None
            return True
        self._held = text
        return False

    async def _answer(self, text: str, history: list[tuple[str, str]]) -> None:
        ctx = self._ctx
        scenario = ctx.options.scenario
        rule = scenario.first_rule(text, ctx.conv.scenario_uses) if scenario else None
        if rule is not None:
            if ctx.timing is not None:
                ctx.timing.mark("decided")
            await self._controls.run(rule.steps)
            return
        # The brain says a preamble only for calls that let the model talk on, so it sees each
        # tool as the model runs it, not as it was declared.
        tools = [
            dataclasses.replace(t, non_blocking=self._tool_calls.runs_non_blocking(t.name))
            for t in ctx.config.tools
        ]
        decision = brain.respond(
            text,
            tools,
            history=history,
            system_instruction=ctx.config.system_instruction,
            image=ctx.image,
        )
        if ctx.timing is not None:
            ctx.timing.mark("decided")
        if isinstance(decision, brain.Say):
            await self._speaker.start(decision.text)
        else:
            await self._tool_calls.call(decision.calls, decision.preamble)

    async def _release_held(self) -> None:
        if self._held is None or self._tool_calls.pending_blocking():
            return
        text, self._held = self._held, None
        await self._speaker.wait()
        await self._answer(text, self._ctx.conv.pairs()[:-1])
