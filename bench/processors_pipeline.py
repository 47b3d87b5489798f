"""The synthetic real-time pipeline `bench.processors_bench` measures, and how it measures it.

    input → user aggregator → [stages under test] → FakeGemini → [stages under test]
        → output → assistant aggregator

- The input pushes a 20 ms 16 kHz `InputAudioRawFrame` every 20 ms on absolute deadlines, as a
  transport does; in each turn's user part it is loud (a 440 Hz tone), else silent.
- `FakeGemini` swallows the input audio (Gemini sends it to its socket) and plays one scripted
  turn every `turn_ticks`: two upstream `TranscriptionFrame` chunks, one tool call (through the
  `ToolRegistry` wrapper when the tool-call processor is measured, the bare function otherwise;
  announced with `FunctionCallInProgressFrame` / `FunctionCallResultFrame`), then an answer of
  20 ms `TTSAudioRawFrame`s at real time with an `LLMTextFrame` + `TTSTextFrame` every 100 ms,
  bracketed by TTS and LLM response start/stop frames, as Gemini Live pushes them. Every fourth
  answer is cut off by an interruption broadcast both ways.
- The output consumes the audio and reports the bot speaking upstream, as a transport does,
  and passes the rest on to the assistant aggregator.

The aggregator pair is Pipecat's own, in realtime mode, in every variant: the transcript
listens to its events, and every bot has it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams

from processors.frames import ToolCallEvent, ToolCallEventFrame, ToolOutcome
from testkit.frames import said
from testkit.tool_calls import make_call

TICK_S = 0.020
INPUT_RATE = 16000
OUTPUT_RATE = 24000
USER_SPEAKS = range(10, 40)
"""Ticks of each turn in which the input audio is loud (the user's question)."""


async def get_time(params: FunctionCallParams, zone: str) -> None:
    """Get the time in a time zone.

    Args:
        zone: An IANA time zone name.
    """
    await params.result_callback({"zone": zone, "time": "09:00"})


# ------------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Meter:
    """What one run measured."""

    turn: int = 0
    turn_ns: dict[int, int] = field(default_factory=dict)
    by_stage_ns: dict[str, int] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)
    """Calls per measured stage: process_frame calls, or an observer's callbacks."""
    frames: int = 0
    """Frames pushed through the pipeline (each counted once, however many hops it makes)."""
    input_late_ms: list[float] = field(default_factory=list)
    sent_at: dict[int, float] = field(default_factory=dict)
    first_audio_ids: set[int] = field(default_factory=set)
    input_delay_ms: list[float] = field(default_factory=list)
    first_audio_delay_ms: list[float] = field(default_factory=list)

    def add(self, ns: int, stage: str) -> None:
        self.turn_ns[self.turn] = self.turn_ns.get(self.turn, 0) + ns
        self.by_stage_ns[stage] = self.by_stage_ns.get(stage, 0) + ns
        self.visits[stage] = self.visits.get(stage, 0) + 1

    def sent(self, frame: Frame, *, first_audio: bool = False) -> None:
        """Note when a frame left its producer, to time its way to its consumer."""
        self.sent_at[frame.id] = time.perf_counter()
        if first_audio:
            self.first_audio_ids.add(frame.id)

    def received(self, frame: Frame, into: list[float]) -> None:
        sent = self.sent_at.pop(frame.id, None)
        if sent is not None:
            into.append((time.perf_counter() - sent) * 1000.0)


def instrument(processor: FrameProcessor, meter: Meter) -> None:
    """Time `process_frame`, less the time spent in the `push_frame`s it makes.

    CPU time of the event loop's thread, not wall time, so other processes on the machine do
    not count.
    """
    process = processor.process_frame
    push = processor.push_frame
    pushed = [0]
    name = type(processor).__name__

    async def timed_process(frame: Frame, direction: FrameDirection) -> None:
        start, pushed_before = time.thread_time_ns(), pushed[0]
        await process(frame, direction)
        meter.add(time.thread_time_ns() - start - (pushed[0] - pushed_before), name)

    async def timed_push(
        frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        start = time.thread_time_ns()
        await push(frame, direction)
        pushed[0] += time.thread_time_ns() - start

    processor.process_frame = timed_process  # type: ignore[method-assign]
    processor.push_frame = timed_push  # type: ignore[method-assign]


def instrument_calls(owner: Any, names: list[str], meter: Meter, stage: str) -> None:
    """Time methods of an object (an observer's callbacks, its event handlers) as one stage."""
    for name in names:
        method = getattr(owner, name)
        if asyncio.iscoroutinefunction(method):

            async def timed_async(*args: Any, method: Any = method) -> None:
                start = time.thread_time_ns()
                await method(*args)
                meter.add(time.thread_time_ns() - start, stage)

            setattr(owner, name, timed_async)
        else:

            def timed(*args: Any, method: Any = method) -> None:
                start = time.thread_time_ns()
                method(*args)
                meter.add(time.thread_time_ns() - start, stage)

            setattr(owner, name, timed)


# ------------------------------------------------------------------------------------------------
# The pipeline's stages


async def paced(seconds: float, step: Callable[[int], Awaitable[None]]) -> list[float]:
    """Call `step(n)` every 20 ms for `seconds`, on absolute deadlines; return lateness in ms."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    late: list[float] = []
    for n in range(round(seconds / TICK_S)):
        deadline = start + n * TICK_S
        delay = deadline - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(max(0.0, loop.time() - deadline) * 1000.0)
        await step(n)
    return late


class AudioInput(FrameProcessor):
    """Real-time microphone audio: a tone while the user speaks, silence otherwise."""

    def __init__(self, seconds: float, turn_ticks: int, meter: Meter, done: asyncio.Event) -> None:
        super().__init__()
        self._seconds = seconds
        self._turn_ticks = turn_ticks
        self._meter = meter
        self._done = done
        samples = int(INPUT_RATE * TICK_S)
        tone = np.sin(2 * np.pi * 440 * np.arange(samples) / INPUT_RATE) * 3000
        self._loud = tone.astype("<i2").tobytes()
        self._quiet = bytes(samples * 2)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._run(), "audio_input")

    async def _step(self, n: int) -> None:
        pcm = self._loud if n % self._turn_ticks in USER_SPEAKS else self._quiet
        audio = InputAudioRawFrame(audio=pcm, sample_rate=INPUT_RATE, num_channels=1)
        self._meter.sent(audio)
        await self.push_frame(audio)

    async def _run(self) -> None:
        self._meter.input_late_ms = await paced(self._seconds, self._step)
        self._done.set()


class FakeGemini(FrameProcessor):
    """Swallows input audio; plays one scripted turn every `turn_ticks` ticks of 20 ms."""

    def __init__(
        self,
        seconds: float,
        turn_ticks: int,
        meter: Meter,
        tool: Callable[..., Awaitable[None]],
        *,
        push_tool_events: bool,
    ) -> None:
        super().__init__()
        self._seconds = seconds
        self._turn_ticks = turn_ticks
        self._meter = meter
        self._tool = tool
        self._push_tool_events = push_tool_events
        self._audio = bytes(int(OUTPUT_RATE * TICK_S) * 2)
        self._answering = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._meter.received(frame, self._meter.input_delay_ms)
            return  # sent to the model's socket
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(paced(self._seconds, self._step), "fake_gemini")

    async def _step(self, n: int) -> None:
        turn, tick = divmod(n, self._turn_ticks)
        answer_end = self._turn_ticks - 10
        if tick == 0:
            self._meter.turn = turn + 1
        elif tick == 30:
            await self._user_says("What time is it")
        elif tick == 45:
            await self._user_says("in Tokyo?")
        elif tick == 50:
            await self._call_tool(turn)
        elif tick == 60:
            self._answering = True
            await self.push_frame(TTSStartedFrame())
            await self.push_frame(LLMFullResponseStartFrame())
        if self._answering and 60 <= tick < answer_end:
            await self._speak(turn, tick, answer_end)
        elif self._answering and tick == answer_end:
            self._answering = False
            await self.push_frame(TTSStoppedFrame())
            await self.push_frame(LLMFullResponseEndFrame())

    async def _speak(self, turn: int, tick: int, answer_end: int) -> None:
        audio = TTSAudioRawFrame(audio=self._audio, sample_rate=OUTPUT_RATE, num_channels=1)
        self._meter.sent(audio, first_audio=tick == 60)
        await self.push_frame(audio)
        if tick % 5 == 0:
            for text_frame in said(" It is nine o'clock."):
                await self.push_frame(text_frame)
        if turn % 4 == 3 and tick == (60 + answer_end) // 2:
            self._answering = False
            await self.broadcast_interruption()
            await self.push_frame(TTSStoppedFrame())

    async def _user_says(self, text: str) -> None:
        await self.push_frame(
            TranscriptionFrame(text=text, user_id="", timestamp=""), FrameDirection.UPSTREAM
        )

    async def _call_tool(self, turn: int) -> None:
        call_id, arguments = f"call-{turn}", {"zone": "Asia/Tokyo"}
        call = make_call("get_time", arguments, call_id)
        await self.push_frame(FunctionCallInProgressFrame("get_time", call_id, arguments))
        await self._tool(call.params, **arguments)
        results = [delivered.result for delivered in call.delivered]
        await self.push_frame(
            FunctionCallResultFrame(
                function_name="get_time",
                tool_call_id=call_id,
                arguments=arguments,
                result=results[0] if results else None,
            )
        )
        if self._push_tool_events:
            event = ToolCallEvent("get_time", call_id, arguments, ToolOutcome.OK, results[0])
            await self.push_frame(ToolCallEventFrame(event=event))


class AudioOutput(FrameProcessor):
    """Consumes the audio; reports the bot speaking upstream, as the output transport does."""

    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self._meter = meter
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.UPSTREAM or isinstance(frame, StartFrame | EndFrame):
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, TTSAudioRawFrame):
            if frame.id in self._meter.first_audio_ids:
                self._meter.received(frame, self._meter.first_audio_delay_ms)
            if not self._speaking:
                self._speaking = True
                await self.broadcast_frame(BotStartedSpeakingFrame)
            return
        if isinstance(frame, TTSStoppedFrame | InterruptionFrame) and self._speaking:
            self._speaking = False
            await self.broadcast_frame(BotStoppedSpeakingFrame)
        await self.push_frame(frame, direction)
