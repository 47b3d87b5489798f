"""The whole assistant bot on an in-memory transport, talking to an in-process emulator.

`run_bot` builds the bot with `bots.assistant.build_assistant` (so every stage is the real one),
with `ResilientGeminiLiveLLMService` as its Gemini stage, on `MemoryTransport`: the test puts
text and microphone audio in through the worker, and reads what came out (audio, RTVI messages)
from the transport and what passed through the pipeline from a `FrameLog` observer. What the
model heard and said is read from the emulator's own records.

Every wait is bounded and waits for something specific (`until`); nothing sleeps to let a race
settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    InputAudioRawFrame,
    InputTextRawFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame
from pipecat.services.llm_service import FunctionCallParams
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.workers.runner import WorkerRunner

import bots.assistant
from bots.assistant import build_assistant
from bots.gemini import make_llm
from bots.resilient_gemini import ResilientGeminiLiveLLMService
from bots.settings import Settings
from emulator.server import Running
from emulator.session import LiveSession
from emulator.state import Conversation
from processors.frames import SessionEvent, SessionEventFrame

TIMEOUT = 30.0
"""Upper bound of any single wait; generous, since CI shares 2 cores with Whisper and Piper."""
INPUT_RATE = 16000
CHUNK_BYTES = INPUT_RATE * 2 // 50  # 20 ms, as WebRTC delivers it


async def until(
    predicate: Callable[[], Any], what: str, within: float = TIMEOUT, poll: float = 0.01
) -> Any:
    """Wait until `predicate()` is truthy and return it, or fail saying what never happened."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(poll)  # polling interval, not a wait for a race to settle


# --------------------------------------------------------------------------------------------
# The transport


class MemoryInput(BaseInputTransport):
    """Input transport whose frames come from `worker.queue_frame` (audio goes through VAD)."""

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)


class MemoryOutput(BaseOutputTransport):
    """Output transport that keeps the bot's audio (with arrival times) and RTVI messages."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.audio: list[tuple[float, int]] = []  # (monotonic arrival, bytes)
        self.messages: list[dict[str, Any]] = []

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        self.audio.append((time.monotonic(), len(frame.audio)))
        return True

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> None:
        if isinstance(frame.message, dict):
            self.messages.append(frame.message)

    def rtvi(self, kind: str) -> list[dict[str, Any]]:
        """The RTVI messages of one type (`error`, `server-message`, ...) sent to the client."""
        return [m for m in self.messages if m.get("type") == kind]


class MemoryTransport(BaseTransport):
    """A transport with one in-memory client, connected when the test says so."""

    def __init__(self) -> None:
        super().__init__(name="memory")
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=INPUT_RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=24000,
        )
        self._input = MemoryInput(params, name="memory-input")
        self._output = MemoryOutput(params)
        self._register_event_handler("on_client_connected")
        self._register_event_handler("on_client_disconnected")

    def input(self) -> MemoryInput:
        return self._input

    def output(self) -> MemoryOutput:
        return self._output

    async def connect_client(self) -> None:
        await self._call_event_handler("on_client_connected", "memory-client")


# --------------------------------------------------------------------------------------------
# What passed through the pipeline


class FrameLog(BaseObserver):
    """Keeps the frames a test asserts on, once each, in the order they were first pushed."""

    KINDS = (
        SessionEventFrame,
        ErrorFrame,
        RTVIServerMessageFrame,
        FunctionCallCancelFrame,
        FunctionCallResultFrame,
    )

    def __init__(self) -> None:
        super().__init__(observe_every_push=False)
        self.frames: list[Frame] = []
        self._seen: set[int] = set()

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if frame.broadcast_sibling_id is not None and data.direction != FrameDirection.DOWNSTREAM:
            return  # a broadcast frame is one event: keep its downstream copy
        if isinstance(frame, self.KINDS) and frame.id not in self._seen:
            self._seen.add(frame.id)
            self.frames.append(frame)

    def of(self, kind: type[Frame]) -> list[Any]:
        return [f for f in self.frames if isinstance(f, kind)]

    def events(self, kind: SessionEvent | None = None) -> list[SessionEventFrame]:
        return [e for e in self.of(SessionEventFrame) if kind is None or e.kind == kind]

    def server_messages(self, kind: str) -> list[dict[str, Any]]:
        return [m.data for m in self.of(RTVIServerMessageFrame) if m.data.get("type") == kind]


# --------------------------------------------------------------------------------------------
# Tools a test controls


@dataclass
class GateTool:
    """A tool whose call runs until the test opens the gate; it records being cancelled."""

    name: str = "wait_for_gate"
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    def function(self) -> Callable[..., Any]:
        gate = self

        async def wait_for_gate(params: FunctionCallParams) -> None:
            """Wait until the gate opens, then say so."""
            gate.started.set()
            try:
                await gate.opened.wait()
            except asyncio.CancelledError:
                gate.cancelled.append(params.tool_call_id)
                raise
            gate.finished.append(params.tool_call_id)
            await params.result_callback({"gate": "open"})

        wait_for_gate.__name__ = self.name
        return wait_for_gate


# --------------------------------------------------------------------------------------------
# The bot


@dataclass
class Bot:
    """A running assistant bot and the emulator it talks to."""

    emulator: Running
    transport: MemoryTransport
    llm: ResilientGeminiLiveLLMService
    log: FrameLog
    worker: Any
    task: asyncio.Task[None]
    context: LLMContext
    asked: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ input

    async def ask(self, text: str) -> None:
        """Type a question (what the page's text box and RTVI `send-text` reach as text input)."""
        self.asked.append(text)
        await self.worker.queue_frame(InputTextRawFrame(text=text))

    async def speak(self, pcm: bytes, *, silence_secs: float = 0.0) -> None:
        """Send microphone audio (16 kHz PCM16) as 20 ms frames, then digital silence."""
        pcm = pcm + b"\x00\x00" * int(INPUT_RATE * silence_secs)
        frames = [
            InputAudioRawFrame(
                audio=pcm[i : i + CHUNK_BYTES], sample_rate=INPUT_RATE, num_channels=1
            )
            for i in range(0, len(pcm), CHUNK_BYTES)
        ]
        await self.worker.queue_frames(frames)

    # ------------------------------------------------------------------ the emulator's view

    def connections(self) -> list[LiveSession]:
        """Every connection the bot opened, oldest first."""
        return sorted(self.emulator.emulator.sessions.values(), key=lambda s: s.opened_at)

    def conversation(self) -> Conversation | None:
        """The conversation of the bot's current Gemini session."""
        sid = self.llm.session_id
        for session in reversed(self.connections()):
            if session.conv is not None and session.conv.id == sid:
                return session.conv
        return None

    def live(self) -> LiveSession | None:
        """The open connection of the current conversation, if there is one."""
        sid = self.llm.session_id
        return self.emulator.emulator.live_by_conversation.get(sid) if sid else None

    def user_texts(self) -> list[str]:
        conv = self.conversation()
        return (
            [t.text for t in conv.history if t.role == "user" and t.source == "text"]
            if conv
            else []
        )

    def model_turns(self) -> int:
        conv = self.conversation()
        return sum(t.role == "model" for t in conv.history) if conv else 0

    def answered(self, question: str) -> bool:
        """The question is in the history once, and a model turn follows it."""
        conv = self.conversation()
        if conv is None:
            return False
        turns = conv.history
        for i, turn in enumerate(turns):
            if turn.role == "user" and turn.text == question:
                return any(t.role == "model" for t in turns[i + 1 :])
        return False

    async def wait_answered(self, question: str, within: float = TIMEOUT) -> None:
        await until(lambda: self.answered(question), f"an answer to {question!r}", within)

    def latest_handle(self) -> str | None:
        """The newest resumption handle the emulator issued for the current conversation."""
        conv = self.conversation()
        issued = [
            (at, handle)
            for handle, (c, at, _turns) in self.emulator.emulator.handles.items()
            if conv is not None and c is conv
        ]
        return max(issued)[1] if issued else None

    async def wait_idle_with_handle(self, within: float = TIMEOUT) -> None:
        """Wait until the bot is between turns and holds the newest handle issued for it."""
        await until(
            lambda: (
                not self.llm._bot_is_responding
                and self.llm._handle_fresh
                and self.llm._session_resumption_handle == self.latest_handle()
            ),
            "the newest resumption handle",
            within,
        )

    async def wait_ended(self, within: float = TIMEOUT) -> None:
        await asyncio.wait_for(asyncio.shield(self.task), within)


@contextlib.asynccontextmanager
async def run_bot(
    emulator: Running,
    data_dir: Path,
    *,
    options: dict[str, Any] | None = None,
    extra_tools: Sequence[Callable[..., Any]] = (),
    user_processors: Sequence[FrameProcessor] = (),
    bot_processors: Sequence[FrameProcessor] = (),
    connect: bool = True,
    ready: bool = True,
    **settings: Any,
) -> AsyncIterator[Bot]:
    """Run the assistant bot, with `ResilientGeminiLiveLLMService`, until the block ends.

    Args:
        emulator: Where the bot's Gemini Live stage connects.
        data_dir: The bot's data folder (notes database).
        options: Constructor arguments of the service (retry delays, timeouts).
        extra_tools: Tools added to the assistant's own.
        user_processors: Extra user-side stages (e.g. the transcript logger's user half).
        bot_processors: Extra bot-side stages (e.g. the transcript logger's assistant half).
        connect: Fire `on_client_connected` (which starts the conversation) once running.
        ready: Wait until the Gemini Live stage takes input before handing the bot over.
        **settings: `Settings` fields to override.
    """
    config = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        emulator_url=emulator.base_url,
        emulator_ca=emulator.certs.ca,
        **settings,
    )
    built: list[ResilientGeminiLiveLLMService] = []

    def make_resilient(*args: Any, **kwargs: Any) -> Any:
        # The bot's own stage class is already resilient; the test adds its own constructor
        # options (short retry delays and timeouts) and keeps the service it built.
        assert issubclass(kwargs["service_class"], ResilientGeminiLiveLLMService)
        llm = make_llm(*args, **{**kwargs, **(options or {})})
        built.append(llm)
        return llm

    transport = MemoryTransport()
    # The one `make_llm` call `build_assistant` makes goes through `make_resilient`.
    with mock.patch.object(bots.assistant, "make_llm", make_resilient):
        assembled = build_assistant(
            config,
            transport,
            extra_tools=list(extra_tools),
            user_processors=user_processors,
            bot_processors=bot_processors,
            idle_timeout_secs=None,
        )
    log = FrameLog()
    worker = assembled.worker
    worker.add_observer(log)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run(), name="bot-runner")
    (llm,) = built
    bot = Bot(
        emulator, transport, llm, log, worker, task, assembled.aggregators.assistant().context
    )
    try:
        await until(lambda: llm._started or task.done(), "the pipeline to start")
        if connect:
            await transport.connect_client()
        if connect and ready:
            # The assistant starts without a greeting: its first context carries only the
            # system instruction, which Gemini gets in the setup.
            await until(lambda: llm._gate_open, "the Gemini Live stage to be ready for input")
            await bot.wait_idle_with_handle()
        yield bot
    finally:
        if not task.done():
            await worker.cancel(reason="test finished")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, TIMEOUT)
