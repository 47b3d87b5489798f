"""The bot's own tool: the weather, from a table (a real bot would call a weather service)."""

from __future__ import annotations

from pipecat.services.llm_service import FunctionCallParams

FORECASTS = {
    "oslo": {"temperature_c": -3, "sky": "snow"},
    "paris": {"temperature_c": 11, "sky": "rain"},
    "cairo": {"temperature_c": 24, "sky": "clear"},
}


async def get_weather(params: FunctionCallParams, city: str) -> None:
    """Get the current weather in a city.

    Args:
        city: The city, e.g. "Oslo".
    """
    forecast = FORECASTS.get(city.strip().lower())
    if forecast is None:
        await params.result_callback({"city": city, "error": "no forecast for that city"})
        return
    await params.result_callback({"city": city, **forecast})
