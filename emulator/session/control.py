"""Control hooks: what a scenario or the control API makes one connection do, and its lifetime.

The same actions come from both (see `emulator.actions`); they differ only in waiting. A scenario's
actions run in order, each `say` and `tool_call` on the wire before the next action starts, while
the control API returns as soon as the action has begun. A control `tool_call` must name a declared
function; a scenario may call anything.
"""

from __future__ import annotations

import asyncio

from emulator import actions
from emulator.session.channel import CloseSession
from emulator.session.context import Context
from emulator.session.speaker import Speaker
from emulator.session.tool_calls import ToolCalls
from emulator.wire import duration


class Controls:
    """Carries out actions on one connection."""

    def __init__(self, ctx: Context, speaker: Speaker, tool_calls: ToolCalls) -> None:
        self._ctx = ctx
        self._speaker = speaker
        self._tool_calls = tool_calls

    async def perform(self, action: actions.Action, *, scripted: bool) -> None:
        """Do one action.

        Args:
            action: What to do.
            scripted: From a scenario: wait for words and calls to be sent, and end the
                connection by raising `CloseSession` from the turns loop.

        Raises:
            ValueError: A control `tool_call` names a function the setup did not declare, or
                `cancel_tool_calls` an id that is not an unanswered call.
            CloseSession: A scripted `close`.
        """
        match action:
            case actions.Say(text=text):
                await self._speaker.start(text)
            case actions.ToolCall(name=name, args=args):
                if not scripted and name not in {t.name for t in self._ctx.config.tools}:
                    raise ValueError(f"Function {name!r} is not declared in this session's setup.")
                await self._tool_calls.call([(name, dict(args))], "")
            case actions.CancelToolCalls(ids=ids):
                await self._tool_calls.cancel(ids)
            case actions.GoAway(time_left_s=time_left):
                await self.go_away(float(time_left))
            case actions.Drop():
                self._ctx.channel.drop()
            case actions.Latency(first_audio_ms=ms):
                self._ctx.first_audio_ms = int(ms)
            case actions.Close(code=code, reason=reason):
                if scripted:
                    raise CloseSession(int(code), reason)
                await self._ctx.channel.close(int(code), reason)
            case actions.WaitMs(ms=ms):
                await asyncio.sleep(float(ms) / 1000)
        if scripted and isinstance(action, actions.Say | actions.ToolCall):
            await self._speaker.wait()  # on the wire before the next action starts

    async def run(self, steps: tuple[actions.Action, ...]) -> None:
        """Do scenario actions in order."""
        for step in steps:
            await self.perform(step, scripted=True)

    async def go_away(self, time_left_s: float) -> None:
        """Send goAway, then close when the time is up, as the service does near its limit."""
        await self._ctx.channel.send({"go_away": {"time_left": duration(time_left_s)}})
        self._ctx.channel.spawn(self._close_later(time_left_s), "goaway-close")

    def start_lifetime(self) -> None:
        """End the connection after the server's lifetime, announced by goAway."""
        lifetime = self._ctx.options.connection_lifetime_s
        if lifetime:
            self._ctx.channel.spawn(self._lifetime(lifetime), "lifetime")

    async def _close_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._ctx.channel.close(1001, "Connection time limit reached (goAway).")

    async def _lifetime(self, lifetime_s: float) -> None:
        lead = min(self._ctx.options.goaway_lead_s, lifetime_s)
        await asyncio.sleep(lifetime_s - lead)
        await self.go_away(lead)
