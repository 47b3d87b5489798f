"""A transport the test drives: frames in through the worker, the bot's output kept in memory.

No browser and no WebRTC: what a user says goes straight into the pipeline as Pipecat's own
input frames (through the input transport, so audio reaches the stages exactly as a WebRTC
client's would), and what the bot plays or sends to its client is kept for the test to read.
Paced, the output plays its audio at real time, as a WebRTC track does: what an interruption
drops is what had not been heard yet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipecat.frames.frames import (
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
)
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

INPUT_RATE = 16000
OUTPUT_RATE = 24000
MAX_KEPT_MESSAGES = 10_000
"""Client messages kept per session; past this the oldest are dropped (a test reads recent ones)."""


class MemoryInput(BaseInputTransport):
    """Input transport whose frames come from `worker.queue_frame` (audio goes through VAD)."""

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)


class MemoryOutput(BaseOutputTransport):
    """Output transport that keeps the bot's audio (with arrival times) and client messages.

    Args:
        params: The transport's parameters.
        paced: Take as long to write each chunk of audio as it lasts (a device playing it);
            otherwise audio is taken as fast as it comes.
    """

    def __init__(self, params: TransportParams, *, paced: bool = False) -> None:
        super().__init__(params)
        self.audio: list[tuple[float, int]] = []  # (monotonic arrival, bytes)
        self.audio_bytes = 0
        self.messages: list[dict[str, Any]] = []
        self._paced = paced
        self._played_until = 0.0  # monotonic time the audio written so far ends

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if len(self.audio) < MAX_KEPT_MESSAGES * 10:
            self.audio.append((time.monotonic(), len(frame.audio)))
        self.audio_bytes += len(frame.audio)
        if self._paced:
            # Back to back on a schedule, so waking late does not add up over a long answer.
            lasts = len(frame.audio) / (2 * frame.num_channels * frame.sample_rate)
            self._played_until = max(time.monotonic(), self._played_until) + lasts
            await asyncio.sleep(self._played_until - time.monotonic())
        return True

    def audio_ends_at(self) -> float | None:
        """When the last chunk of audio written ends playing (monotonic); None before any."""
        if not self.audio:
            return None
        at, size = self.audio[-1]
        return at + size / (2 * OUTPUT_RATE)

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> None:
        if isinstance(frame.message, dict):
            self.messages.append(frame.message)
            del self.messages[:-MAX_KEPT_MESSAGES]

    def rtvi(self, kind: str) -> list[dict[str, Any]]:
        """The RTVI messages of one type (`error`, `server-message`, ...) sent to the client."""
        return [m for m in self.messages if m.get("type") == kind]


class MemoryTransport(BaseTransport):
    """A transport with one in-memory client, connected when the test says so.

    Args:
        paced: The output plays its audio at real time (see `MemoryOutput`).
    """

    def __init__(self, *, paced: bool = False) -> None:
        super().__init__(name="memory")
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=INPUT_RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=OUTPUT_RATE,
        )
        self._input = MemoryInput(params, name="memory-input")
        self._output = MemoryOutput(params, paced=paced)
        self._register_event_handler("on_client_connected")
        self._register_event_handler("on_client_disconnected")

    def input(self) -> MemoryInput:
        return self._input

    def output(self) -> MemoryOutput:
        return self._output

    async def connect_client(self) -> None:
        """What a browser joining does: the bot starts its conversation."""
        await self._call_event_handler("on_client_connected", "memory-client")

    async def disconnect_client(self) -> None:
        """What a browser leaving does: the bot ends the session."""
        await self._call_event_handler("on_client_disconnected", "memory-client")
