"""The vision assistant: the assistant plus the camera or a shared screen, sent as JPEG frames.

Frames reach Gemini about once a second and only while the user speaks (see
`processors.video_gate`), as Google advises for gemini-3.1 to save cost.

Start it with `make run ARGS=vision` (`python -m bots vision`); `python -m bots.vision
[-t webrtc|daily] [--host H] [--port P]`, Pipecat's way, does the same (`bots.pipecat_runner`).
"""

from __future__ import annotations

import sys

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.runner.types import RunnerArguments

from bots.assistant import run
from processors.video_gate import SpeechGatedVideo


async def bot(runner_args: RunnerArguments) -> None:
    """One session: what our server (and Pipecat's runner, given a key or an emulator) calls."""
    await run(runner_args, vision=True, user_processors=[SpeechGatedVideo(vad=SileroVADAnalyzer())])


if __name__ == "__main__":
    from bots.pipecat_runner import main

    sys.exit(main("vision"))
