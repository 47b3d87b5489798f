"""A testing kit for your own bot: scripted conversations in pytest, offline, against the emulator.

    async def test_the_bot_multiplies(live_bot):
        async with live_bot() as bot:
            turn = await bot.type("What is 6 times 7?")
            turn.expect.tool_call("calculate", {"expression": "6 * 7"})
            turn.expect.reply(contains="42")

The fixtures come from the pytest plugin (`bottest.plugin`); the rest is importable from here.
"""

from bottest.bot import BotError, LiveBot, ReplayMismatch, run_bot
from bottest.emulator import LiveEmulator, start_live_emulator
from bottest.events import Conversation, Event
from bottest.expect import Expect, ExpectationFailed
from bottest.model import Model
from bottest.turn import Turn

__all__ = [
    "BotError",
    "Conversation",
    "Event",
    "Expect",
    "ExpectationFailed",
    "LiveBot",
    "LiveEmulator",
    "Model",
    "ReplayMismatch",
    "Turn",
    "run_bot",
    "start_live_emulator",
]
