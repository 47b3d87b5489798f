"""The brain's fixed sentences, in one place because tests compare against them."""

from __future__ import annotations

from typing import Final

HEAR_YOU: Final = "Hello! Yes, I can hear you clearly. How can I help you today?"
STOP_ACK: Final = "Okay, I'll stop."
WAIT_ACK: Final = "Sure, I'll wait."
ASK_TIME_CITY: Final = "Which city would you like the time for?"
ASK_WEATHER_CITY: Final = "Which city would you like the weather for?"
NO_CLOCK: Final = "I can't tell the time here, because no clock tool is available to me."
NO_WEATHER: Final = "I can't check the weather, because no weather tool is available to me."
NO_CAMERA: Final = "I can't see anything: no camera or screen is shared with me right now."
NON_BLOCKING_PREAMBLE: Final = "Let me check that for you."
SAVING_PREAMBLE: Final = "Sure, I'm saving that."
ECHO_TAIL: Final = (
    "I am the local Gemini Live emulator; I understand questions about the time, arithmetic, "
    "notes and what the camera sees."
)
