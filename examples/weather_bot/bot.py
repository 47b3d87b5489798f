"""The weather bot: the assistant, with a weather tool and a processor that sends forecast cards.

`build_weather_bot(settings, transport)` has the shape of `bots.assistant.build_assistant`, so the
testing kit runs it as it runs the assistant: `live_bot(build_weather_bot)`.
"""

from __future__ import annotations

from typing import Any

from pipecat.transports.base_transport import BaseTransport

from bots.assistant import build_assistant
from bots.pipeline import Assembled
from bots.settings import Settings
from examples.weather_bot.cards import WeatherCards
from examples.weather_bot.tools import get_weather


def build_weather_bot(settings: Settings, transport: BaseTransport, **kwargs: Any) -> Assembled:
    """The assistant's pipeline with the weather tool and the card processor added."""
    return build_assistant(
        settings,
        transport,
        extra_tools=[get_weather, *kwargs.pop("extra_tools", [])],
        bot_processors=[WeatherCards(), *kwargs.pop("bot_processors", [])],
        bot_name="weather",
        **kwargs,
    )
