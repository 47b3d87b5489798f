"""`MEDIA_RESOLUTION` reaches the setup the model receives, from the vision bot's stage (issue 12).

`bots.vision` runs the assistant (`bots.assistant.run(vision=True)`: `build_assistant` with a
video gate in front of the stage). Here the same assembly runs on an in-memory transport
(`resilience_harness.run_bot`, with the vision bot's `SpeechGatedVideo`, fed by the pipeline's
VAD frames instead of its own Silero), and the emulator says what the setup carried.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from resilience_harness import run_bot

from emulator.server import Running
from processors.video_gate import SpeechGatedVideo

pytestmark = pytest.mark.emulator


@pytest.mark.parametrize(
    ("model", "resolution"),
    [
        ("gemini-3.8-live", "LOW"),
        ("gemini-3.8-live-extended-thinking", "MEDIUM"),
        ("gemini-3.1-flash-live-preview", "HIGH"),
    ],
)
async def test_the_vision_bots_media_resolution_is_in_the_setup_the_model_receives(
    emulator: Running, tmp_path: Path, model: str, resolution: str
) -> None:
    async with run_bot(
        emulator,
        tmp_path,
        user_processors=[SpeechGatedVideo()],
        gemini_model=model,
        media_resolution=resolution,
    ) as bot:
        setup = bot.live()
    assert setup is not None
    assert setup["model"] == f"models/{model}"
    assert setup["config"]["media_resolution"] == f"MEDIA_RESOLUTION_{resolution}"
