"""The bot's own processor: each forecast the tool finds is also sent to the page as a card."""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import Frame, FunctionCallResultFrame, OutputTransportMessageUrgentFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class WeatherCards(FrameProcessor):
    """Sends `{"type": "weather-card", ...}` to the client for every forecast found."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, FunctionCallResultFrame) and frame.function_name == "get_weather":
            result: Any = frame.result
            if isinstance(result, dict) and "error" not in result:
                card = {"type": "weather-card", **result}
                await self.push_frame(OutputTransportMessageUrgentFrame(message=card))
        await self.push_frame(frame, direction)
