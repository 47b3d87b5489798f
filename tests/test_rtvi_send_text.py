"""Text typed in the page reaches Gemini Live: RTVI `send-text` through Pipecat's own processor.

The page sends what the user types as an RTVI `send-text` client message. Pipecat 1.14's RTVI
processor turns it into an `LLMMessagesAppendFrame` (which the user aggregator writes into the
context; Gemini Live never reads an updated context) and an `RTVISendTextFrame`; the Gemini
stage sends the latter as realtime text. These tests deliver the client message as the WebRTC
transport does (`bot.send_text`) and read what the emulator's model received from its control
API (`GET /emulator/sessions`): the user's text in its history, as typed text.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bots.models import DEFAULT_MODEL, LEGACY_MODEL
from bottest import LiveBot
from testkit.waiting import until

pytestmark = pytest.mark.emulator

QUESTION = "What is 6 times 7?"
STORY = "Tell me a long story about a dragon."

MODELS = [
    pytest.param({"gemini_model": DEFAULT_MODEL}, id="3.8-audio"),
    pytest.param({"gemini_model": LEGACY_MODEL}, id="3.1-audio"),
    pytest.param({"gemini_model": LEGACY_MODEL, "response_modality": "TEXT"}, id="3.1-text"),
]


async def model_history(bot: LiveBot) -> list[dict[str, Any]]:
    """The conversation as the emulated model holds it, on the bot's current connection."""
    summary = await bot.emulator.session(await bot.connection_id())
    assert summary is not None, "the emulator has no record of the bot's connection"
    history: list[dict[str, Any]] = summary["history"]
    return history


@pytest.mark.parametrize("settings", MODELS)
async def test_text_sent_from_the_page_reaches_gemini_as_realtime_text_and_is_answered(
    live_bot: Any, settings: dict[str, str]
) -> None:
    async with live_bot(settings=settings) as bot:
        turn = await bot.send_text(QUESTION)
        turn.expect.tool_call("calculate", {"expression": "6 * 7"})
        turn.expect.reply(contains="42")
        history = await model_history(bot)
        typed = [t for t in history if t["role"] == "user" and t["text"] == QUESTION]
        assert typed and typed[0].get("source") == "text", history
        summary = await bot.emulator.session(await bot.connection_id())
        assert summary is not None and summary["frames"]["text"] >= 1, summary
        # Pipecat acknowledges the text to the page as the user's input, once.
        acks = [m["data"] for m in bot.transport.output().rtvi("user-input")]
        chats = [a for a in acks if a.get("input_type") == "chat"]
        assert [a["text"] for a in chats] == [QUESTION], acks
        # The bot answers the question; it never says it back (on TEXT, Piper speaks the reply).
        assert QUESTION not in turn.reply, turn.reply
        assert not bot.transport.output().rtvi("error"), bot.transport.output().rtvi("error")


@pytest.mark.parametrize("settings", MODELS)
async def test_text_sent_while_the_bot_speaks_interrupts_it_and_is_answered(
    live_bot: Any, settings: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    async with live_bot(settings=settings, realtime=True) as bot:
        await bot.send_text(STORY, until="speaking")
        output = bot.transport.output()
        text = settings.get("response_modality") == "TEXT"
        if not text:
            # The kit plays the audio at real time: the story's first words are heard (they
            # come with its first chunk of audio) before the text is sent.
            await until(lambda: output.rtvi("bot-tts-text"), "the story's first words to play")
        interruptions = len(output.rtvi("bot-interrupted"))
        sent_at = time.monotonic()
        await bot.send_text(QUESTION, until="sent")
        # The story's cut-off turn may end the step before the answer: wait for the answer.
        await bot.transcript_line("bot", "42")
        # On TEXT the reply is spoken by Piper, whose words are counted as they are played: the
        # story may be cut off before the first of them. On AUDIO its first words came with
        # its first chunk (the emulator starts an answer with its first clause).
        bot.expect.interrupted(contains=None if text else "once upon a time")
        bot.expect.tool_call("calculate", {"expression": "6 * 7"})
        result = bot.expect.tool_result("calculate", {"result": 42}, partial=True)
        bot.expect.reply(contains="42")
        bot.expect.no_more_events()
        history = await model_history(bot)
        story = [t for t in history if t["role"] == "model" and "dragon" in t["text"].lower()]
        # On AUDIO the model was still speaking and stopped; on TEXT it wrote the story at once.
        assert story and story[0].get("interrupted") is (None if text else True), history
        assert [t["text"] for t in history if t["role"] == "user"] == [STORY, QUESTION], history
        assert len(output.rtvi("bot-interrupted")) > interruptions
        # The story's audio stopped soon after the text was sent, well before the answer's.
        story_audio = [at for at, _ in output.audio if sent_at <= at < result.at]
        stopped_ms = ((story_audio[-1] if story_audio else sent_at) - sent_at) * 1000
        with capsys.disabled():
            print(f"\nthe story's audio went on for {stopped_ms:.0f} ms after the text was sent")
        assert stopped_ms < 1500, f"the story went on for {stopped_ms:.0f} ms"
