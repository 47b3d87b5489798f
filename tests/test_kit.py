"""The testing kit as a developer uses it: their bot, typed and spoken turns, faults, and what a
failing expectation prints. Everything runs against the real emulator process the plugin starts."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import AUDIO_DIR
from pipecat.services.llm_service import FunctionCallParams

from bottest import ExpectationFailed

pytestmark = pytest.mark.emulator


async def get_weather(params: FunctionCallParams, city: str) -> None:
    """Get the current weather in a city.

    Args:
        city: The city, e.g. "Oslo".
    """
    await params.result_callback({"city": city, "temperature_c": 7, "sky": "snow"})


async def get_order_status(params: FunctionCallParams, order_id: str) -> None:
    """Look up where an order is.

    Args:
        order_id: The order's number.
    """
    await params.result_callback({"order_id": order_id, "status": "shipped"})


async def broken_weather(params: FunctionCallParams, city: str) -> None:
    """Get the current weather in a city.

    Args:
        city: The city.
    """
    raise RuntimeError("the weather service is down")


# ------------------------------------------------------------------ typed turns


async def test_three_typed_turns_each_get_their_tool_call_and_answer(live_bot: Any) -> None:
    async with live_bot() as bot:
        first = await bot.type("What is 6 times 7?")
        first.expect.tool_call("calculate", {"expression": "6 * 7"})
        first.expect.tool_result("calculate", {"result": 42}, partial=True)
        first.expect.reply(contains="42")
        first.expect.no_more_events()

        second = await bot.type("What time is it in Tokyo?")
        second.expect.tool_call("get_current_time", {"place": "Tokyo"})
        second.expect.tool_result("get_current_time", {"timezone": "Asia/Tokyo"}, partial=True)
        second.expect.reply(matches=r"\d\d:\d\d")
        second.expect.no_more_events()

        third = await bot.type("Please remember that my locker code is 4512.")
        third.expect.tool_call("remember_note", {"text": re.compile("4512")}, partial=True)
        third.expect.reply()

    # The whole conversation, in order, through the bot's own cursor.
    bot.expect.tool_call("calculate")
    bot.expect.tool_call("get_current_time")
    bot.expect.tool_call("remember_note")
    with pytest.raises(ExpectationFailed):
        bot.expect.tool_call("calculate")  # no fourth call


@pytest.mark.parametrize(
    "settings",
    [
        {"gemini_model": "gemini-3.8-live"},
        {"gemini_model": "gemini-3.8-live-extended-thinking"},
        {"gemini_model": "gemini-3.1-flash-live-preview", "response_modality": "AUDIO"},
        {"gemini_model": "gemini-3.1-flash-live-preview", "response_modality": "TEXT"},
    ],
    ids=lambda s: "-".join(s.values()),
)
async def test_a_typed_turn_reads_the_same_on_every_model_and_modality(
    live_bot: Any, settings: dict[str, str]
) -> None:
    async with live_bot(settings=settings) as bot:
        turn = await bot.type("What is 6 times 7?")
        turn.expect.tool_call("calculate", {"expression": "6 * 7"})
        turn.expect.tool_result("calculate", {"result": 42}, partial=True)
        # The thinking model says "let me check" first (its tools do not block): either way
        # the answer is among what the bot said.
        turn.expect.said(contains="42")
        turn.expect.no_more_events()
        assert bot.transport.output().audio_bytes > 0  # spoken by Gemini, or by Piper in TEXT


async def test_a_custom_tool_is_called_and_its_result_reaches_the_reply(live_bot: Any) -> None:
    async with live_bot(extra_tools=[get_weather]) as bot:
        turn = await bot.type("What is the weather in Oslo?")
        turn.expect.tool_call("get_weather", {"city": "Oslo"})
        turn.expect.tool_result("get_weather", {"temperature_c": 7}, partial=True)
        turn.expect.reply(contains="7")
        turn.expect.no_more_events()


async def test_a_tool_that_raises_is_reported_as_failed_and_the_bot_still_answers(
    live_bot: Any,
) -> None:
    async with live_bot(extra_tools=[broken_weather]) as bot:
        turn = await bot.type("What is the weather in Oslo?")
        turn.expect.tool_call("broken_weather", {"city": "Oslo"})
        result = turn.expect.tool_result("broken_weather", outcome="failed")
        assert "error" in result.result
        turn.expect.reply()


async def test_a_scenario_makes_the_model_call_a_tool_the_brain_would_not(live_bot: Any) -> None:
    scenario = {
        "rules": [
            {
                "when": "where is my (order|parcel)",
                "do": [{"tool_call": {"name": "get_order_status", "args": {"order_id": "A-17"}}}],
            }
        ]
    }
    async with live_bot(scenario=scenario, extra_tools=[get_order_status]) as bot:
        turn = await bot.type("Where is my parcel?")
        turn.expect.tool_call("get_order_status", {"order_id": "A-17"})
        turn.expect.tool_result("get_order_status", {"status": "shipped"}, partial=True)
        turn.expect.reply(contains="shipped")
    async with live_bot(extra_tools=[get_order_status]) as bot:  # the next bot: no scenario
        turn = await bot.type("Where is my parcel?")
        with pytest.raises(ExpectationFailed, match="expected a tool call get_order_status"):
            turn.expect.tool_call("get_order_status")


async def test_the_model_can_be_made_to_speak_and_to_call_a_tool_between_turns(
    live_bot: Any,
) -> None:
    async with live_bot(extra_tools=[get_order_status]) as bot:
        await bot.model.say("Before you go: your order has shipped.")
        spoken = await bot.next_turn()
        spoken.expect.reply(contains="order has shipped")

        await bot.model.call_tool("get_order_status", {"order_id": "B-2"})
        called = await bot.next_turn()
        called.expect.tool_call("get_order_status", {"order_id": "B-2"})
        called.expect.tool_result("get_order_status")
        called.expect.reply()


# ------------------------------------------------------------------ faults


async def test_after_a_goaway_the_conversation_goes_on_on_a_resumed_connection(
    live_bot: Any,
) -> None:
    async with live_bot() as bot:
        await bot.type("What is 6 times 7?")
        await bot.model.goaway(time_left_s=1.0)
        event = await bot.reconnected()
        assert event.name == "resumed"
        turn = await bot.type("What is 2 plus 3?")
        turn.expect.tool_call("calculate", {"expression": "2 + 3"})
        turn.expect.reply(contains="5")


async def test_after_a_drop_and_two_refused_reconnects_the_bot_comes_back(live_bot: Any) -> None:
    async with live_bot() as bot:
        await bot.model.refuse_connections(2)
        await bot.model.drop()
        await bot.reconnected()
        retries = [e for e in bot.conversation.events if e.name == "reconnecting"]
        assert len(retries) >= 3  # the drop, then the two refusals
        turn = await bot.type("What is 9 times 9?")
        turn.expect.reply(contains="81")


async def test_latency_set_on_the_connection_is_applied_and_the_answer_still_comes(
    live_bot: Any,
) -> None:
    async with live_bot() as bot:
        await bot.model.latency(300)
        summary = await bot.emulator.session(await bot.connection_id())
        assert summary is not None and summary["first_audio_ms"] == 300
        turn = await bot.type("What is 3 times 3?")
        turn.expect.reply(contains="9")


async def test_the_stored_transcript_has_the_bot_s_answer(live_bot: Any) -> None:
    async with live_bot() as bot:
        await bot.type("What is 6 times 7?")
        await bot.transcript_line("bot", "42")
        with pytest.raises(ExpectationFailed, match="expected a bot line containing 'dragon'"):
            await bot.transcript_line("bot", "dragon", within=0.5)


# ------------------------------------------------------------------ spoken turns


@pytest.mark.speech
async def test_a_spoken_question_is_heard_and_answered(live_bot: Any) -> None:
    async with live_bot() as bot:
        turn = await bot.say("What is twelve times seven?")
        turn.expect.heard(matches=r"(12|twelve)")
        turn.expect.tool_call("calculate", {"expression": re.compile(r"12\s*\*\s*7")})
        turn.expect.reply(contains="84")


@pytest.mark.speech
async def test_a_wav_file_plays_as_the_user_s_microphone(live_bot: Any) -> None:
    async with live_bot() as bot:
        turn = await bot.play(AUDIO_DIR / "what_time_tokyo.wav")
        turn.expect.heard(contains="Tokyo")
        turn.expect.tool_call("get_current_time", {"place": "Tokyo"})
        turn.expect.reply()


@pytest.mark.speech
async def test_speaking_over_the_bot_interrupts_it(live_bot: Any) -> None:
    async with live_bot(realtime=True) as bot:
        await bot.type("Tell me a long story about a dragon who learned to fly.", until="speaking")
        stop = await bot.say("Stop.", realtime=True)
        stop.expect.interrupted()


# ------------------------------------------------------------------ what a failure shows


async def test_a_failing_expectation_shows_a_diff_and_the_conversation(live_bot: Any) -> None:
    async with live_bot() as bot:
        turn = await bot.type("What is 6 times 7?")
    with pytest.raises(ExpectationFailed) as failed:
        turn.expect.tool_call("calculate", {"expression": "6 * 8"})
    message = str(failed.value)
    assert "the next tool call (event 3) differs" in message
    assert '-   "expression": "6 * 8"' in message
    assert '+   "expression": "6 * 7"' in message
    assert re.search(r">\s+3\s+tool call\s+calculate", message), message
    assert "user typed   'What is 6 times 7?'" in message


def test_a_project_s_tests_get_the_fixtures_with_no_conftest(tmp_path: Path) -> None:
    (tmp_path / "test_my_bot.py").write_text(
        textwrap.dedent(
            """
            async def test_it_multiplies(live_bot):
                async with live_bot() as bot:
                    turn = await bot.type("What is 6 times 7?")
                    turn.expect.tool_call("calculate", {"expression": "6 * 7"})
                    turn.expect.reply(contains="42")

            async def test_it_multiplies_wrongly(live_bot):
                async with live_bot() as bot:
                    turn = await bot.type("What is 6 times 7?")
                    turn.expect.reply(contains="48")
            """
        )
    )
    # A project of its own: its own folder, no conftest, the plugin found by its entry point.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output + result.stderr
    assert "1 failed, 1 passed" in output
    assert "expected a reply containing '48', but the next bot said (event 5) differs" in output
    assert "live conversation" in output
    assert "bot said     '6 * 7 is 42.'" in output
