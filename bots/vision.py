"""The vision assistant: the assistant plus the camera or a shared screen, sent as JPEG frames.

Frames reach Gemini about once a second and only while the user speaks (see
`processors.video_gate`), as Google advises for gemini-3.1 to save cost.
"""

from __future__ import annotations

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.runner.types import RunnerArguments

from bots.assistant import run
from processors.video_gate import SpeechGatedVideo


async def bot(runner_args: RunnerArguments) -> None:
    """Entry point for Pipecat's dev runner."""
    await run(runner_args, vision=True, user_processors=[SpeechGatedVideo(vad=SileroVADAnalyzer())])


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
