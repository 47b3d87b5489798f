"""The whole assistant bot on an in-memory transport, talking to an in-process emulator.

`run_bot` builds the bot with `bots.assistant.build_assistant` (so every stage is the real one,
the Gemini stage `GeminiLiveStage`) on `MemoryTransport`: the test puts text and microphone
audio in through the worker, and reads what came out (audio, RTVI messages) from the transport
and what passed through the pipeline from a `FrameLog` observer. What the model heard and said
is read from the emulator's control API (`GET /emulator/sessions`), which `EmulatorView` keeps
fetching in the background while the bot runs; the stage itself is read through its public
`status`.

Every wait is bounded and waits for something specific (`testkit.waiting.until`); nothing
sleeps to let a race settle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator_helpers import control, post
from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    InputAudioRawFrame,
    InputTextRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame
from pipecat.services.llm_service import FunctionCallParams
from pipecat.workers.runner import WorkerRunner

from bots.assistant import build_assistant
from bots.conversations import ConversationKeeper, Resumed
from bots.gemini_live.service import GeminiLiveStage
from bots.settings import Settings
from bottest.transport import MemoryTransport
from emulator.server import Running
from processors.frames import SessionEvent, SessionEventFrame
from testkit.waiting import until

TIMEOUT = 30.0
"""Upper bound of any single wait; generous, since CI shares 2 cores with Whisper and Piper."""
INPUT_RATE = 16000
CHUNK_BYTES = INPUT_RATE * 2 // 50  # 20 ms, as WebRTC delivers it
REFRESH_SECS = 0.02
"""How often the emulator's view is fetched again (a polling interval, not a wait)."""

Summary = dict[str, Any]
"""One connection as `GET /emulator/sessions` describes it."""


# --------------------------------------------------------------------------------------------
# The transport


# The transport is the testing kit's own: `bottest.transport.MemoryTransport`.


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
        LLMFullResponseStartFrame,
        LLMFullResponseEndFrame,
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


class PassedOn(BaseObserver):
    """Counts the microphone frames one processor has finished with and passed on."""

    def __init__(self, processor: FrameProcessor) -> None:
        super().__init__()  # every push: the processor's own push, not only the first
        self._processor = processor
        self.audio_frames = 0

    async def on_push_frame(self, data: FramePushed) -> None:
        if isinstance(data.frame, InputAudioRawFrame) and data.source is self._processor:
            self.audio_frames += 1


# --------------------------------------------------------------------------------------------
# What the emulator says


class EmulatorView:
    """The emulator's connections, as its control API lists them, fetched in the background.

    Read it in `until` predicates: every read sees the latest fetch. `fresh()` waits for a
    fetch that began after the call, for a read that must include everything done before it.
    """

    def __init__(self, emulator: Running) -> None:
        self.emulator = emulator
        self.sessions: list[Summary] = []
        self._fetches = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._keep_fetching(), name="emulator-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def switch(self, emulator: Running) -> None:
        """Look at another emulator from now on (one restarted on the same port, say)."""
        self.emulator = emulator
        self.sessions = []
        await self.refresh()

    async def refresh(self) -> list[Summary]:
        async with control(self.emulator) as http:
            response = await http.get("/emulator/sessions")
            response.raise_for_status()
            self.sessions = sorted(response.json(), key=lambda s: s["opened_at"])
        self._fetches += 1
        return self.sessions

    async def fresh(self) -> None:
        """Wait until a fetch that started after this call has finished."""
        seen = self._fetches
        await until(lambda: self._fetches >= seen + 2, "a fresh view of the emulator")

    async def _keep_fetching(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the emulator may be restarting
                async with control(self.emulator) as http:
                    while True:
                        response = await http.get("/emulator/sessions")
                        response.raise_for_status()
                        self.sessions = sorted(response.json(), key=lambda s: s["opened_at"])
                        self._fetches += 1
                        await asyncio.sleep(REFRESH_SECS)
            await asyncio.sleep(REFRESH_SECS)

    # ------------------------------------------------------------------ queries

    def of_conversation(self, conversation_id: str | None) -> list[Summary]:
        """The connections of one conversation, oldest first."""
        if not conversation_id:
            return []
        return [s for s in self.sessions if s["conversation_id"] == conversation_id]

    def latest(self, conversation_id: str | None) -> Summary | None:
        """The newest connection of the conversation (the open one, if any)."""
        connections = self.of_conversation(conversation_id)
        return connections[-1] if connections else None

    def live(self, conversation_id: str | None) -> Summary | None:
        """The open connection of the conversation, if there is one."""
        latest = self.latest(conversation_id)
        return latest if latest is not None and latest["open"] else None

    def history(self, conversation_id: str | None) -> list[dict[str, Any]]:
        latest = self.latest(conversation_id)
        return latest["history"] if latest is not None else []

    def tool_call(self, conversation_id: str | None, call_id: str) -> dict[str, Any] | None:
        latest = self.latest(conversation_id)
        calls = latest["tool_calls"] if latest is not None else []
        return next((c for c in calls if c["id"] == call_id), None)

    def latest_handle(self, conversation_id: str | None) -> str | None:
        """The newest resumption handle issued for the conversation."""
        issued = [h for s in self.of_conversation(conversation_id) for h in s["handles"]]
        return issued[-1] if issued else None


# --------------------------------------------------------------------------------------------
# Tools a test controls


@dataclass
class GateTool:
    """A tool whose call runs until the test opens the gate; it records being cancelled.

    ``non_blocking`` registers it with ``cancel_on_interruption=False``: NON_BLOCKING on the
    models that have such calls (gemini-3.8-live), blocking elsewhere.
    """

    name: str = "wait_for_gate"
    non_blocking: bool = False
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
        if self.non_blocking:
            tool_options(wait_for_gate, cancel_on_interruption=False)
        return wait_for_gate


# --------------------------------------------------------------------------------------------
# The bot


@dataclass
class Bot:
    """A running assistant bot and the emulator it talks to."""

    emulator: Running
    transport: MemoryTransport
    llm: GeminiLiveStage
    log: FrameLog
    worker: Any
    task: asyncio.Task[None]
    context: LLMContext
    view: EmulatorView
    passed: PassedOn
    asked: list[str] = field(default_factory=list)
    keeper: ConversationKeeper | None = None

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

    async def control(self, action: str, body: dict[str, Any] | None = None) -> None:
        """`POST /emulator/sessions/{session}/{action}` on the bot's current session."""
        sid = self.llm.session_id
        response = await post(self.emulator, f"/emulator/sessions/{sid}/{action}", body)
        assert response.status_code == 200, response.text

    async def call_tool(self, name: str, args: dict[str, Any] | None = None) -> str:
        """Make the model call a tool now; return the id of the call."""
        await self.view.fresh()
        before = {c["id"] for c in (self.live() or {}).get("tool_calls", [])}
        await self.control("tool_call", {"name": name, "args": args or {}})
        new = await until(
            lambda: [
                c["id"] for c in (self.live() or {}).get("tool_calls", []) if c["id"] not in before
            ],
            "a call",
        )
        return new[-1]

    # ------------------------------------------------------------------ the emulator's view

    def connections(self) -> list[Summary]:
        """Every connection the emulator has seen, oldest first."""
        return self.view.sessions

    def live(self) -> Summary | None:
        """The open connection of the bot's current Gemini session, if there is one."""
        return self.view.live(self.llm.session_id)

    def history(self) -> list[dict[str, Any]]:
        """The conversation of the bot's current Gemini session, as the emulator holds it."""
        return self.view.history(self.llm.session_id)

    def tool_call(self, call_id: str) -> dict[str, Any]:
        return self.view.tool_call(self.llm.session_id, call_id) or {}

    def connection(self, connection_id: str) -> Summary:
        """One connection the emulator has seen, by its id."""
        (summary,) = [c for c in self.connections() if c["id"] == connection_id]
        return summary

    def user_texts(self) -> list[str]:
        turns = self.history()
        return [t["text"] for t in turns if t["role"] == "user" and t.get("source") == "text"]

    def model_turns(self) -> int:
        return sum(t["role"] == "model" for t in self.history())

    def answered(self, question: str) -> bool:
        """The question is in the history, and a model turn follows it."""
        turns = self.history()
        for i, turn in enumerate(turns):
            if turn["role"] == "user" and turn["text"] == question:
                return any(t["role"] == "model" for t in turns[i + 1 :])
        return False

    async def wait_answered(self, question: str, within: float = TIMEOUT) -> None:
        await until(lambda: self.answered(question), f"an answer to {question!r}", within)

    async def wait_idle_with_handle(self, within: float = TIMEOUT) -> None:
        """Wait until the bot is between turns and holds the newest handle issued for it."""

        def idle() -> bool:
            status = self.llm.status
            return (
                not status.bot_responding
                and status.handle_covers_last_turn
                and status.resumption_handle is not None
                and status.resumption_handle == self.view.latest_handle(status.session_id)
            )

        await until(idle, "the newest resumption handle", within)

    async def wait_ended(self, within: float = TIMEOUT) -> None:
        await asyncio.wait_for(asyncio.shield(self.task), within)


def find_stage(processors: Sequence[FrameProcessor]) -> GeminiLiveStage:
    (llm,) = [p for p in processors if isinstance(p, GeminiLiveStage)]
    return llm


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
    conversation: Resumed | None = None,
    **settings: Any,
) -> AsyncIterator[Bot]:
    """Run the assistant bot until the block ends.

    Args:
        emulator: Where the bot's Gemini Live stage connects.
        data_dir: The bot's data folder (notes database).
        options: `StageOptions` of the stage (retry delays, timeouts).
        extra_tools: Tools added to the assistant's own.
        user_processors: Extra user-side stages (e.g. a video gate).
        bot_processors: Extra bot-side stages (e.g. a logger of frames).
        connect: Fire `on_client_connected` (which starts the conversation) once running.
        ready: Wait until the Gemini Live stage takes input before handing the bot over.
        conversation: A stored conversation to continue (`bots.conversations.resume`).
        **settings: `Settings` fields to override.
    """
    config = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        emulator_url=emulator.base_url,
        emulator_ca=emulator.certs.ca,
        **settings,
    )
    transport = MemoryTransport()
    assembled = build_assistant(
        config,
        transport,
        extra_tools=list(extra_tools),
        user_processors=user_processors,
        bot_processors=bot_processors,
        idle_timeout_secs=None,
        stage_options=options,
        conversation=conversation,
    )
    llm = find_stage(assembled.pipeline.processors)
    log = FrameLog()
    passed = PassedOn(llm)
    worker = assembled.worker
    worker.add_observer(log)
    worker.add_observer(passed)
    view = EmulatorView(emulator)
    await view.start()
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run(), name="bot-runner")
    context = assembled.aggregators.assistant().context
    bot = Bot(emulator, transport, llm, log, worker, task, context, view, passed)
    bot.keeper = assembled.keeper
    try:
        await until(lambda: llm.status.started or task.done(), "the pipeline to start")
        if connect:
            await transport.connect_client()
        if connect and ready:
            # The assistant starts without a greeting: its first context carries only the
            # system instruction, which Gemini gets in the setup.
            await until(lambda: llm.status.ready, "the Gemini Live stage to be ready for input")
            await bot.wait_idle_with_handle()
        yield bot
    finally:
        if not task.done():
            await worker.cancel(reason="test finished")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, TIMEOUT)
        await view.stop()
        if bot.keeper is not None:
            await bot.keeper.close()
