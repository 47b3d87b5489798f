"""The weather bot's tests, written with the testing kit alone (its plugin gives the fixtures)."""

from pathlib import Path

from examples.weather_bot.bot import build_weather_bot


async def test_it_calls_the_weather_tool_and_says_the_forecast(live_bot):
    async with live_bot(build_weather_bot) as bot:
        turn = await bot.type("What is the weather in Oslo?")
        turn.expect.tool_call("get_weather", {"city": "Oslo"})
        turn.expect.tool_result("get_weather", {"sky": "snow"}, partial=True)
        turn.expect.reply(contains="snow")
        turn.expect.no_more_events()


async def test_it_sends_the_page_a_card_for_each_forecast(live_bot):
    async with live_bot(build_weather_bot) as bot:
        await bot.type("What's the weather like in Paris?")
        cards = [m for m in bot.transport.output().messages if m.get("type") == "weather-card"]
        assert cards == [
            {"type": "weather-card", "city": "Paris", "temperature_c": 11, "sky": "rain"}
        ]


async def test_a_city_it_has_no_forecast_for_gets_no_card_and_an_honest_answer(live_bot):
    async with live_bot(build_weather_bot) as bot:
        turn = await bot.type("What is the weather in Lima?")
        turn.expect.tool_result("get_weather", {"error": "no forecast for that city"}, partial=True)
        turn.expect.reply()
        assert not bot.transport.output().rtvi("weather-card")


async def test_it_still_does_sums_and_keeps_going_after_a_goaway(live_bot):
    async with live_bot(build_weather_bot) as bot:
        await bot.model.goaway(time_left_s=1)
        await bot.reconnected()
        turn = await bot.type("What is 6 times 7?")
        turn.expect.tool_call("calculate", {"expression": "6 * 7"})
        turn.expect.reply(contains="42")


CASSETTE = Path(__file__).parent / "cassettes" / "weather_oslo.jsonl"
"""Recorded with RECORD_DIR set (here against the emulator; with a key, against Gemini)."""


async def test_the_recorded_session_still_holds(live_bot, live_replay):
    async with live_bot(build_weather_bot, emulator=live_replay(CASSETTE)) as bot:
        turn = await bot.type("What is the weather in Oslo?")
        turn.expect.tool_call("get_weather", {"city": "Oslo"})
        turn.expect.reply(contains="snow")
