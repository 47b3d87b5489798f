"""Cassettes: a Gemini Live session's wire messages, recorded in order with their timing.

The bot writes them (`RECORD_DIR`, `bots.gemini_live.recording`) and the emulator replays them
(`--replay FILE`, `emulator.replay`); neither imports the other, so the format lives here.
"""

from cassettes.format import (
    FORMAT,
    Cassette,
    CassetteError,
    Entry,
    read_cassette,
)
from cassettes.scrub import Scrubber
from cassettes.writer import CassetteWriter

__all__ = [
    "FORMAT",
    "Cassette",
    "CassetteError",
    "CassetteWriter",
    "Entry",
    "Scrubber",
    "read_cassette",
]
