"""A developer's own bot, run in-process against the emulator, driven one step at a time.

`run_bot` builds the bot with the developer's function (`build_assistant` by default, the same
one the real bot uses) on a `MemoryTransport`, starts it, connects the in-memory client, and
hands over a `LiveBot`: the user types or speaks, the bot answers, and each step returns a
`Turn` whose `expect` walks what happened. Every wait is bounded and waits for something the
bot or the emulator reports (a reply, the model being idle, a reconnect), never a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pipecat.frames.frames import InputAudioRawFrame, InputTransportMessageFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.processors.frameworks.rtvi.models import MESSAGE_LABEL
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.workers.runner import WorkerRunner

from bots.gemini_live.service import GeminiLiveStage
from bots.settings import Settings
from bottest.emulator import ControlError, LiveEmulator
from bottest.events import Conversation, Event
from bottest.expect import Expect, ExpectationFailed
from bottest.model import Model
from bottest.observer import ConversationObserver
from bottest.speech import INPUT_RATE, read_wav, synthesize
from bottest.transport import MemoryTransport
from bottest.turn import Turn
from observers.loudness import is_speech

TIMEOUT = 30.0
"""Upper bound of one wait; generous, since CI shares 2 cores with Whisper and Piper."""
FRAME_BYTES = INPUT_RATE * 2 // 50
"""20 ms of microphone audio, as WebRTC delivers it."""
TRAILING_SILENCE_SECS = 1.0
"""Digital silence after spoken words: past the model's end-of-turn silence (500 ms by default)."""
POLL = 0.02

Until = Literal["done", "speaking", "heard", "sent"]
"""Where a step returns: the bot's turn is over; its answer has begun playing; the model has
heard the spoken words; at once."""

Build = Callable[..., Any]
"""`build(settings, transport, **kwargs)` returning `bots.pipeline.Assembled` or a
`PipelineWorker`: `bots.assistant.build_assistant` has that shape."""

FAST_RETRIES = {"reconnect_base_delay_secs": 0.05, "reconnect_max_delay_secs": 0.5}
"""Reconnect quickly after an injected fault (the settings' own defaults suit a network)."""


class BotError(AssertionError):
    """The bot did not do what a step waited for; the message shows the conversation."""


class ReplayMismatch(AssertionError):
    """The bot's session differed from the recording it was replayed against."""


class LiveBot:
    """A running bot; see `run_bot`."""

    def __init__(
        self,
        emulator: LiveEmulator,
        settings: Settings,
        transport: MemoryTransport,
        worker: PipelineWorker,
        stage: GeminiLiveLLMService | None,
        observer: ConversationObserver,
        assembled: Any,
    ) -> None:
        self.emulator = emulator
        self.settings = settings
        self.transport = transport
        self.worker = worker
        self.stage = stage
        self.assembled = assembled
        self.observer = observer
        self.conversation = observer.conversation
        self.model = Model(self)
        self.expect = Expect(self.conversation)
        """A cursor over the whole conversation, kept from one expectation to the next."""
        self.task: asyncio.Task[None] | None = None
        self._fault_mark = 0
        self._replay_checked = 0.0
        self._seen_history = 0
        self._last_end = 0  # where the last turn a step waited for ended

    # ------------------------------------------------------------------ what the user does

    async def type(
        self,
        text: str,
        *,
        run_immediately: bool = True,
        until: Until = "done",
        within: float = TIMEOUT,
    ) -> Turn:
        """The user types `text` in the page's text box: an RTVI `send-text` client message,
        delivered as the WebRTC transport delivers one, through Pipecat's RTVI processor (which
        interrupts the bot first when `run_immediately`, Pipecat's default); Gemini gets it as
        realtime text."""
        start, mark = len(self.conversation.events), await self._history_mark()
        self.conversation.add("typed", text=text)
        message = {
            "label": MESSAGE_LABEL,
            "type": "send-text",
            "id": f"send-text-{start}",
            "data": {"content": text, "options": {"run_immediately": run_immediately}},
        }
        await self.transport.input().broadcast_frame(InputTransportMessageFrame, message=message)
        return await self._turn(start, until, within, mark)

    async def send_text(
        self,
        text: str,
        *,
        run_immediately: bool = True,
        until: Until = "done",
        within: float = TIMEOUT,
    ) -> Turn:
        """`type` by the name of the RTVI message it sends."""
        return await self.type(text, run_immediately=run_immediately, until=until, within=within)

    async def say(
        self, text: str, *, realtime: bool = False, until: Until = "done", within: float = TIMEOUT
    ) -> Turn:
        """The user says `text`: Piper speaks it offline and it is sent as microphone audio,
        faster than real time unless `realtime` (the model's VAD counts audio, not seconds)."""
        start, mark = len(self.conversation.events), await self._history_mark()
        spoke = self.conversation.add("spoke", text=text)
        spoke.speech = await self.send_audio(await synthesize(text), realtime=realtime)
        return await self._turn(start, until, within, mark)

    async def play(
        self,
        wav: str | Path,
        *,
        realtime: bool = False,
        until: Until = "done",
        within: float = TIMEOUT,
    ) -> Turn:
        """The user's microphone plays a WAV file (any rate; 16-bit PCM)."""
        start, mark = len(self.conversation.events), await self._history_mark()
        spoke = self.conversation.add("spoke", text=f"<{Path(wav).name}>")
        spoke.speech = await self.send_audio(read_wav(wav), realtime=realtime)
        return await self._turn(start, until, within, mark)

    async def send_audio(
        self, pcm: bytes, *, realtime: bool = False, silence_secs: float = TRAILING_SILENCE_SECS
    ) -> tuple[float, float] | None:
        """16 kHz PCM16 in 20 ms frames, then digital silence, as a microphone sends it; returns
        when the first and the last loud frame went in (`observers.loudness`), None if none was.
        """
        pcm += b"\x00\x00" * int(INPUT_RATE * silence_secs)
        frames = [
            InputAudioRawFrame(
                audio=pcm[i : i + FRAME_BYTES], sample_rate=INPUT_RATE, num_channels=1
            )
            for i in range(0, len(pcm), FRAME_BYTES)
        ]
        loud = [n for n, frame in enumerate(frames) if is_speech(frame.audio)]
        if not realtime:
            sent = time.monotonic()
            await self.worker.queue_frames(frames)
            return (sent, sent) if loud else None
        began = time.monotonic()
        speech: list[float] = []
        for n, frame in enumerate(frames):
            await self.worker.queue_frame(frame)
            if loud and n in (loud[0], loud[-1]):
                speech.append(time.monotonic())
            # Paced as a microphone is: frame n is due n × 20 ms after the first.
            await asyncio.sleep(max(0.0, began + (n + 1) * 0.02 - time.monotonic()))
        return (speech[0], speech[-1]) if speech else None

    async def next_turn(self, *, until: Until = "done", within: float = TIMEOUT) -> Turn:
        """Wait for a turn the test did not start with a step (after `model.say`, say): its
        events are everything since the last turn a step returned."""
        return await self._turn(self._last_end, until, within, self._seen_history)

    # ------------------------------------------------------------------ waiting

    async def _history_mark(self) -> int:
        """How many turns the emulator's history holds now (the step's answer comes after)."""
        summary = await self.emulator.session(await self.connection_id())
        return len((summary or {}).get("history", []))

    async def _turn(self, start: int, until: Until, within: float, mark: int = 0) -> Turn:
        __tracebackhide__ = True
        if until != "sent":
            await self._wait(
                lambda: self._reached(start, until), f"the bot's turn ({until})", within
            )
            if until == "done":
                await self._wait_model_idle(start, mark, within)
        self._last_end = len(self.conversation.events)
        return Turn(self.conversation, start, self._last_end)

    def _reached(self, start: int, until: Until) -> bool:
        events = self.conversation.events[start:]
        if until == "heard":
            return any(e.kind == "heard" for e in events)
        if until == "speaking":
            return self._speaking_since(start) or any(e.kind == "reply" for e in events)
        return self._bot_side_done(events)

    def _speaking_since(self, start: int) -> bool:
        began = self.conversation.events[start].at if start < len(self.conversation.events) else 0
        return any(at >= began for at, _ in self.transport.output().audio[-5:])

    @staticmethod
    def _caught_up(summary: dict[str, Any] | None, mark: int, events: list[Event]) -> bool:
        """The bot's words since the step end with the model's last turn since it (a replay, or
        a last turn cut short, has nothing to compare: the other checks suffice)."""
        history = (summary or {}).get("history", [])[mark:]
        said = [t for t in history if t.get("role") == "model"]
        if not said or said[-1].get("interrupted"):
            return True
        bot = _letters(" ".join(e.text for e in events if e.kind == "reply"))
        return bot.endswith(_letters(str(said[-1].get("text", ""))))

    def _bot_side_done(self, events: list[Event]) -> bool:
        """A reply came after the step, every tool call has its result, no result is left
        unanswered by a later reply, and the stage is not mid-answer."""
        if not any(e.kind == "reply" for e in events):
            return False
        calls = {e.call_id for e in events if e.kind == "tool_call"}
        results = {e.call_id for e in events if e.kind == "tool_result"}
        if calls - results:
            return False
        last_reply = max(e.index for e in events if e.kind == "reply")
        if any(e.kind == "tool_result" and e.index > last_reply for e in events):
            return False
        return not (isinstance(self.stage, GeminiLiveStage) and self.stage.status.bot_responding)

    async def _wait_model_idle(self, start: int, mark: int, within: float) -> None:
        """The emulator agrees: the model owes nothing (no turn being sent or held back, no
        unanswered call), and the bot has said the last thing the model said."""
        __tracebackhide__ = True
        deadline = time.monotonic() + within
        while True:
            summary = await self.emulator.session(await self.connection_id())
            busy = summary is not None and (
                summary.get("model_busy", summary.get("model_speaking"))
                or any(c.get("status") == "pending" for c in summary.get("tool_calls", []))
            )
            events = self.conversation.events[start:]
            if not busy and self._bot_side_done(events) and self._caught_up(summary, mark, events):
                self._seen_history = len((summary or {}).get("history", []))
                return
            await self._check_replay()
            if time.monotonic() > deadline:
                self._fail(f"timed out after {within:g} s waiting for the model to finish", start)
            await asyncio.sleep(POLL)

    async def _check_replay(self) -> None:
        """Against a replay, fail at once when the session has strayed from the recording."""
        __tracebackhide__ = True
        if self.emulator.replaying and time.monotonic() >= self._replay_checked + 0.1:
            self._replay_checked = time.monotonic()
            problems = await self.emulator.replay_problems()
            if problems:
                raise ReplayMismatch(
                    f"the session differs from the recording: {problems[0]}\n\n"
                    f"the conversation so far:\n{self.conversation.render()}"
                )

    async def _wait(self, predicate: Callable[[], bool], what: str, within: float) -> None:
        __tracebackhide__ = True
        deadline = time.monotonic() + within
        while not predicate():
            await self._check_replay()
            if self.task is not None and self.task.done():
                self._fail(f"the bot stopped while waiting for {what}", 0)
            if time.monotonic() > deadline:
                self._fail(f"timed out after {within:g} s waiting for {what}", 0)
            await asyncio.sleep(POLL)

    def _fail(self, message: str, start: int) -> None:
        __tracebackhide__ = True
        raise BotError(
            f"{message}\n\nthe conversation so far:\n{self.conversation.render(start=start)}"
        )

    def injected(self, action: str, body: dict[str, Any] | None) -> None:
        """Note in the conversation what the test made the model do (failures show it)."""
        self.conversation.add("injected", name=action, arguments=dict(body or {}))
        self._fault_mark = len(self.conversation.events)

    async def reconnected(self, *, within: float = TIMEOUT) -> Event:
        """Wait until the bot has a new connection after the last injected fault (resumed or
        fresh) and the stage takes input again; return the connection event."""
        __tracebackhide__ = True
        mark = self._fault_mark

        def back() -> Event | None:
            for event in self.conversation.events[mark:]:
                if event.kind == "session" and event.name in ("reconnected", "resumed"):
                    if not isinstance(self.stage, GeminiLiveStage) or self.stage.status.ready:
                        return event
            return None

        await self._wait(lambda: back() is not None, "a new connection to the model", within)
        found = back()
        assert found is not None
        return found

    # ------------------------------------------------------------------ what the emulator saw

    async def connection_id(self) -> str:
        """The emulator's id for the bot's current connection."""
        if isinstance(self.stage, GeminiLiveStage) and self.stage.session_id:
            return self.stage.session_id
        opened = [s for s in await self.emulator.sessions() if s.get("open")]
        if not opened:
            raise BotError("the bot has no open connection to the emulator")
        return str(opened[-1]["id"])

    def transcript_turns(self) -> list[tuple[str, str]]:
        """The stored transcript's turns so far, as (role, text)."""
        from bots.storage import open_stores

        store = open_stores(self.settings).transcripts
        sessions = store.sessions()
        if not sessions:
            return []
        newest = max(sessions, key=lambda s: s.started_at or 0)
        return [(t.role, t.text) for t in store.load(newest.session_id).turns]

    async def transcript_line(
        self, role: Literal["user", "bot"], contains: str, *, within: float = TIMEOUT
    ) -> None:
        """Wait until the stored transcript has a `role` turn containing `contains`."""
        __tracebackhide__ = True
        deadline = time.monotonic() + within
        while True:
            turns = await asyncio.to_thread(self.transcript_turns)
            if any(r == role and contains.casefold() in t.casefold() for r, t in turns):
                return
            if time.monotonic() > deadline:
                lines = "\n".join(f"    {r:<5} {t!r}" for r, t in turns) or "    (no turns yet)"
                raise ExpectationFailed(
                    f"expected a {role} line containing {contains!r} in the transcript; it has:\n"
                    f"{lines}\n\nthe conversation so far:\n{self.conversation.render()}"
                )
            await asyncio.sleep(POLL * 5)


def _letters(text: str) -> str:
    """Only the letters and digits, lower case: spoken and written forms of a turn compare."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _find(processors: Sequence[FrameProcessor], kind: type) -> Any:
    found = [p for p in processors if isinstance(p, kind)]
    return found[0] if found else None


def _parts(
    assembled: Any,
) -> tuple[PipelineWorker, list[FrameProcessor], LLMAssistantAggregator | None]:
    if isinstance(assembled, PipelineWorker):
        worker = assembled
        processors = list(getattr(worker, "_pipeline", None).processors)  # type: ignore[union-attr]
        return worker, processors, _find(processors, LLMAssistantAggregator)
    processors = list(assembled.pipeline.processors)
    return assembled.worker, processors, assembled.aggregators.assistant()


def kit_settings(emulator: LiveEmulator, data_dir: Path, **overrides: Any) -> Settings:
    """The bot's settings: the emulator as its endpoint, its data in `data_dir`, no `.env`."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        emulator_url=emulator.base_url,
        emulator_ca=emulator.ca,
        **{**FAST_RETRIES, **overrides},
    )


@contextlib.asynccontextmanager
async def run_bot(
    emulator: LiveEmulator,
    data_dir: Path,
    build: Build | None = None,
    *,
    settings: dict[str, Any] | None = None,
    scenario: dict[str, Any] | None = None,
    realtime: bool = False,
    **build_kwargs: Any,
) -> AsyncIterator[LiveBot]:
    """Run a bot until the block ends.

    Args:
        emulator: Where its Gemini Live stage connects.
        data_dir: Its data folder (notes, transcripts): a fresh one per bot.
        build: `build(settings, transport, **build_kwargs)`; `build_assistant` by default.
        settings: `bots.settings.Settings` fields to set (`gemini_model`, `response_modality`).
        scenario: A scenario (the emulator's scenario-file format) for this bot's connections.
        realtime: The model speaks, and the bot's audio plays, at real time (for
            interruptions); by default both go at once.
        **build_kwargs: Passed to `build` (`extra_tools=[...]`, `bot_processors=[...]`).
    """
    if build is None:
        from bots.assistant import build_assistant

        build = build_assistant
    await emulator.reset()
    if scenario:
        await emulator.set_scenario(scenario)
    if realtime:
        await emulator.set_pace(1.0)
    config = kit_settings(emulator, data_dir, **(settings or {}))
    transport = MemoryTransport(paced=realtime)
    assembled = build(config, transport, **build_kwargs)
    worker, processors, assistant = _parts(assembled)
    stage = _find(processors, GeminiLiveLLMService)
    observer = ConversationObserver(Conversation())
    if assistant is not None:
        observer.attach(assistant)
    worker.add_observer(observer)
    bot = LiveBot(emulator, config, transport, worker, stage, observer, assembled)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    bot.task = asyncio.create_task(runner.run(), name="bottest-bot")
    try:
        await bot._wait(lambda: _started(stage), "the pipeline to start", TIMEOUT)
        await transport.connect_client()
        await bot._wait(lambda: _ready(stage), "the model connection to be ready", TIMEOUT)
        yield bot
        bot._replay_checked = 0.0
        await bot._check_replay()
    except Exception as exc:
        if emulator.replaying and not isinstance(exc, ReplayMismatch):
            bot._replay_checked = 0.0
            with contextlib.suppress(ControlError):
                await bot._check_replay()  # raised from the failure the difference caused
        raise
    finally:
        if not bot.task.done():
            await worker.cancel(reason="test finished")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bot.task, TIMEOUT)
        keeper = getattr(assembled, "keeper", None)
        if keeper is not None:
            await keeper.close()


def _started(stage: Any) -> bool:
    return not isinstance(stage, GeminiLiveStage) or stage.status.started


def _ready(stage: Any) -> bool:
    if isinstance(stage, GeminiLiveStage):
        status = stage.status
        return status.ready and status.session_id is not None
    return bool(getattr(stage, "_ready_for_realtime_input", True))
