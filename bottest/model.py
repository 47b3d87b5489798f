"""The emulated model on demand: the emulator's control actions on the bot's connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bottest.bot import LiveBot


class Model:
    """What the emulated model does when the test says so: the emulator's control actions on
    the bot's current connection, and faults on its next ones."""

    def __init__(self, bot: LiveBot) -> None:
        self._bot = bot

    async def _act(self, action: str, body: dict[str, Any] | None = None) -> None:
        self._bot.injected(action, body)
        await self._bot.emulator.act(await self._bot.connection_id(), action, body)

    async def say(self, text: str) -> None:
        """The model says `text` now, a turn of its own."""
        await self._act("say", {"text": text})

    async def call_tool(self, name: str, args: dict[str, Any] | None = None) -> None:
        """The model calls a declared tool now."""
        await self._act("tool_call", {"name": name, "args": args or {}})

    async def cancel_tool_calls(self, ids: Sequence[str] | None = None) -> None:
        """The model gives up on its unanswered calls (all, or those ids)."""
        await self._act("cancel_tool_calls", {"ids": list(ids)} if ids is not None else {})

    async def goaway(self, time_left_s: float = 1.0) -> None:
        """The server announces its connection ends in `time_left_s`, then closes it."""
        await self._act("goaway", {"time_left_s": time_left_s})

    async def drop(self) -> None:
        """The network drops the connection: no close frame."""
        await self._act("drop")

    async def close(self, code: int = 1011, reason: str = "") -> None:
        """The server closes the connection with `code`."""
        await self._act("close", {"code": code, "reason": reason})

    async def latency(self, first_audio_ms: int) -> None:
        """Every later answer on this connection starts `first_audio_ms` late."""
        await self._act("latency", {"first_audio_ms": first_audio_ms})

    async def refuse_connections(self, count: int = 1, *, for_s: float | None = None) -> None:
        """The next `count` connections (or all for `for_s` seconds) are refused with 503."""
        faults: dict[str, Any] = {"refuse_connections": count}
        if for_s is not None:
            faults["refuse_for_s"] = for_s
        self._bot.injected("refuse_connections", faults)
        await self._bot.emulator.set_faults(**faults)
