"""The Gemini Live stage: Pipecat's service, with its connection life cycle replaced.

`GeminiLiveStage` keeps everything Pipecat's `GeminiLiveLLMService` does with a connection (the
setup message, seeding the conversation, transcription, audio, tool calls) and owns how the
connection lives: the parts it is made of are plain objects, each in its own module.

- `supervisor`: connect, retry with backoff and jitter, goAway switch, give up;
- `outbox` (with `wire`): every send, in order, queued while no socket is usable;
- `microphone`: `audioStreamEnd` when the microphone goes quiet;
- `calls` and `tool_calls`: tool-call cancellation, one answer per call, INTERRUPT scheduling;
- `handles` and `turns`: resumption handles and turn boundaries, for resuming and switching.

Where Pipecat has no public hook, the stage uses a private one; each is listed, with the reason,
in `bots.gemini_live.pipecat_contract`, and a test checks them against the installed Pipecat.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast

from google.genai import Client
from google.genai.types import (
    LiveConnectConfig,
    LiveServerContent,
    LiveServerMessage,
    SessionResumptionConfig,
)
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InputAudioRawFrame,
    InputTextRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    StartFrame,
    UserMuteStartedFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.processors.frameworks.rtvi.frames import RTVISendTextFrame, RTVIServerMessageFrame
from pipecat.services.google.gemini_live.llm import (
    GeminiLiveLLMService,
    GeminiLiveLLMSettings,
    GeminiVADParams,
)
from pipecat.services.google.utils import update_google_client_http_options
from pipecat.utils.tracing.service_decorators import traced_gemini_live
from pipecat.utils.types import assert_given

from bots.gemini_live.calls import CallBook
from bots.gemini_live.handles import ResumptionHandles
from bots.gemini_live.messages import ServerMessages
from bots.gemini_live.microphone import MicWatchdog
from bots.gemini_live.options import StageOptions, StageStatus
from bots.gemini_live.outbox import Outbox, Outgoing
from bots.gemini_live.recording import recorded
from bots.gemini_live.supervisor import StageHooks, Supervisor
from bots.gemini_live.tool_calls import MODEL_CANCELLED_EVENT, ToolCallControl, tool_timeouts
from bots.gemini_live.turns import FinishSpeaking, TurnState
from bots.gemini_live.wire import SessionFacade, direct_sends, holding_audio, send_on
from processors.frames import SessionEvent, SessionEventFrame

if TYPE_CHECKING:
    from google.genai.live import AsyncSession

HANDLE_EVENT = "on_resumption_handle"


class GeminiLiveStage(GeminiLiveLLMService):
    """`GeminiLiveLLMService` that survives goAway, dropped sockets, failed connects and
    tool cancellation (the behaviours are described in `bots.gemini_live`).

    Event handler `on_tool_calls_cancelled_by_model(service, ids)` runs (synchronously) when
    Gemini cancels calls, before Pipecat cancels them: the place for a tool-call registry to
    record the cause, e.g. `registry.cancel(call_id, by_model=True)` for each id.

    Event handler `on_resumption_handle(service, handle)` runs (as a task of its own) for each
    new resumption handle: the place to keep it where another process can resume the session
    (`bots.conversations.ConversationKeeper`).

    Giving up pushes `SessionEventFrame(FAILED)` and an error with
    `force_treat_as_permanent=True`: the stage is no longer usable, and the worker's
    unusable-processor policy ends the session (`bots.pipeline.assemble` sets END).

    Args:
        options: The stage's knobs (see `StageOptions`); any of its fields may also be passed
            by name, and overrides ``options``.
        clock: Monotonic clock for handles, turns, goAway and retries (the microphone's timer
            runs on the event loop's time).
        **kwargs: Passed to `GeminiLiveLLMService`.
    """

    def __init__(
        self,
        *,
        options: StageOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self._options = StageOptions.take(options, kwargs)
        # `create_client()` runs inside Pipecat's constructor and needs these.
        self._api_key_for_client = str(kwargs.get("api_key", ""))
        self._http_options_for_client = kwargs.get("http_options")
        super().__init__(**kwargs)
        self._audio_paused = bool(kwargs.get("start_audio_paused", False))
        vad = cast(GeminiLiveLLMSettings, self.settings).vad
        self._watch_mic = not (isinstance(vad, GeminiVADParams) and bool(vad.disabled))

        self._turns = TurnState(clock=clock)
        self._handles = ResumptionHandles(
            self._options.resumption_handle_ttl_secs,
            clock=clock,
            on_received=lambda h: self._spawn(self._call_event_handler(HANDLE_EVENT, h), "handle"),
        )
        if self._options.resume_handle:
            self._handles.restore(self._options.resume_handle, self._options.resume_handle_age_secs)
        self._calls = CallBook()
        self._outbox = Outbox(
            self._send_queued,
            usable=lambda: self._supervisor.usable(),
            stale=self._calls.stale,
            max_audio_secs=self._options.max_queued_audio_secs,
        )
        self._supervisor = Supervisor(
            self._hooks(),
            outbox=self._outbox,
            handles=self._handles,
            retry=self._options.retry_policy(),
            connect_timeout_secs=self._options.connect_timeout_secs,
            goaway_margin_secs=self._options.goaway_safety_margin_secs,
            clock=clock,
        )
        self._facade = SessionFacade(
            self._outbox, lambda: self._supervisor.socket, self._supervisor.close_socket
        )
        self._mic = MicWatchdog(
            self._options.quiet_mic_timeout_secs,
            end_stream=self._send_audio_stream_end,
            spawn=self._spawn,
        )
        self._tools = ToolCallControl(
            self,
            self._calls,
            timeouts=tool_timeouts(kwargs.get("tools")),
            default_timeout_secs=kwargs.get("function_call_timeout_secs"),
        )
        self._messages = ServerMessages(
            service=self,
            supervisor=self._supervisor,
            handles=self._handles,
            turns=self._turns,
            calls=self._calls,
            tools=self._tools,
            input_sent=self._input_sent,
        )
        self._processing = False  # the StartFrame has passed
        self._early: list[Callable[[], Awaitable[None]]] = []  # pushes made before it had
        self._connect_wanted = False
        self._connection_requested = False
        self._seed_pending = False
        self._seeded = False
        self._input_ready = False
        self._finishing = FinishSpeaking(
            self._options.finish_speaking_secs,
            responding=lambda: self._turns.bot_responding,
            close_turn=self._close_turn,
            spawn=self._spawn,
        )
        self._socket_resumed = False  # the current socket resumed a session (it has the history)
        # Pipecat drops realtime input until the first seed is sent; the outbox holds it instead.
        self._ready_for_realtime_input = True
        # Sync: it runs in the same step as the cancellation, before Pipecat settles the calls.
        self._register_event_handler(MODEL_CANCELLED_EVENT, sync=True)
        self._register_event_handler(HANDLE_EVENT)

    def _hooks(self) -> StageHooks:
        return StageHooks(
            spawn=self._spawn,
            socket_opened=self._socket_opened,
            socket_closed=self._socket_closed,
            server_message=lambda message: self._messages.handle(message),
            session_event=self._session_event,
            tell_browser=self._tell_browser,
            give_up=self._give_up,
            at_turn_boundary=self._at_turn_boundary,
            bot_responding=lambda: self._turns.bot_responding,
            conversation_seeded=lambda: self._seeded,
        )

    def create_client(self) -> None:
        """Build the client the supervisor connects with (Pipecat's hook for a custom client)."""
        self._genai = Client(
            api_key=self._api_key_for_client,
            http_options=update_google_client_http_options(self._http_options_for_client),
        )

    # ------------------------------------------------------------------ what others may read

    @property
    def session_id(self) -> str | None:
        """The id `setupComplete` gave the current Gemini session (the same across resumptions)."""
        return self._supervisor.session_id

    @property
    def status(self) -> StageStatus:
        """A snapshot of the connection, the outbox and the turn (see `StageStatus`)."""
        return StageStatus.of(
            self._processing, self._supervisor, self._outbox, self._handles, self._turns, self._mic
        )

    # ------------------------------------------------------------------ life cycle

    async def start(self, frame: StartFrame) -> None:
        """Register the tools, then connect (the setup message declares them as registered).

        Pipecat connects in `setup()`, before `start()` registers the handlers of the tools
        given to the constructor, so a NON_BLOCKING tool would be declared as a blocking one;
        the stage connects here instead.
        """
        await super().start(frame)
        if self._connect_wanted:
            self._connect_wanted = False
            await self._open_connection()

    async def stop(self, frame: EndFrame) -> None:
        """Close the socket with a normal close, then let Pipecat stop."""
        await self._shut_down("the session is ending")
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        """Close the socket with a normal close, then let Pipecat cancel."""
        await self._shut_down("the session is ending")
        await super().cancel(frame)

    async def cleanup(self) -> None:
        """Close everything the stage owns, then let Pipecat clean up."""
        await self._shut_down("the session is ending")
        await super().cleanup()

    def set_audio_input_paused(self, paused: bool) -> None:
        """Pause or resume the microphone (the watchdog does not watch a paused one)."""
        self._audio_paused = paused
        super().set_audio_input_paused(paused)

    async def _shut_down(self, why: str) -> None:
        await self._supervisor.stop()
        await self._mic.stop()
        self._finishing.stop()
        self._outbox.end(why)

    # ------------------------------------------------------------------ Pipecat's connection

    async def _connect(self, session_resumption_handle: str | None = None) -> None:
        """Start the supervisor (the handle is its choice), once the tools are registered."""
        if self._supervisor.stopping or self._supervisor.failed or self._connection_requested:
            return
        if not self._processing and not self._supervisor.ever_connected:
            self._connect_wanted = True  # from setup(): `start()` connects
            return
        if self._supervisor.ever_connected:
            # Pipecat reconnects only when the first context changes the system instruction
            # or the tools, before anything was said: the new setup starts a fresh session.
            logger.info(f"{self}: the context changes the setup; opening a fresh session with it")
            self._handles.forget()
        await self._open_connection()

    async def _open_connection(self) -> None:
        # Pipecat builds the setup and starts `_connection_task_handler` with it, but only
        # while `_session` is None; from then on `_session` is the outbox's facade.
        self._connection_requested = True
        self._session = None
        try:
            await super()._connect()
        finally:
            self._session = cast("AsyncSession", self._facade)
            self._ready_for_realtime_input = True

    async def _connection_task_handler(self, config: LiveConnectConfig) -> None:
        """Run the supervisor with the setup Pipecat built (only the handle changes)."""
        model = assert_given(self.settings.model)
        if not model:
            raise ValueError("Gemini Live model must be specified")
        client = self._genai

        def connect(handle: str | None) -> Any:
            resume = {"session_resumption": SessionResumptionConfig(handle=handle)}
            opened = client.aio.live.connect(model=model, config=config.model_copy(update=resume))
            return recorded(opened, self._options.recorder, model)  # RECORD_DIR's cassettes

        try:
            await self._supervisor.run(connect)
        finally:
            self._connection_requested = False

    async def _create_initial_response(self, for_reconnect: bool = False) -> None:
        """Seed on the socket directly (ahead of queued input), or once there is one.

        A session resumed with a handle from another process already holds the conversation:
        it is not seeded again. A conversation begun elsewhere that must start a fresh session
        is seeded as after a reconnect: the model takes the history in and waits for the user.
        """
        if not self._supervisor.usable():
            self._seed_pending = True
            return
        if self._socket_resumed and not self._seeded:
            logger.info(f"{self}: resumed a session begun elsewhere; it has the conversation")
            self._seeded = self._input_ready = self._ready_for_realtime_input = True
            await self._outbox.flush()
            return
        with direct_sends():
            await super()._create_initial_response(
                for_reconnect=for_reconnect or self._options.continues_conversation
            )
        self._seeded = True
        self._input_ready = True
        await self._outbox.flush()

    @traced_gemini_live(operation="llm_setup")
    async def _traced_setup(self, socket: AsyncSession, *, resumed: bool) -> None:
        """Pipecat's `llm_setup` span per connection (its `_handle_session_ready` is bypassed)."""

    async def _socket_opened(self, socket: AsyncSession, *, resumed: bool, first: bool) -> None:
        self._socket_resumed = resumed
        self._turns.socket_opened()  # no answer in progress carries over to a new socket
        await self._traced_setup(socket, resumed=resumed)
        if not resumed and not first:
            self._calls.new_session()  # the calls of the previous session cannot be answered
        if self._seed_pending:
            # The first context arrived before any socket did.
            self._seed_pending = False
            await self._create_initial_response()
        elif resumed:
            self._input_ready = True
        elif self._seeded:
            # A fresh session (the handle expired or was refused): seed it with all said so far.
            await self._create_initial_response(for_reconnect=True)
        if self._input_ready:
            await self._outbox.flush()

    async def _socket_closed(self, *, cancelled: bool) -> None:
        if cancelled or not self._turns.bot_responding:
            return
        # No turnComplete will come for an answer cut off with its socket: end the bot turn
        # here, so aggregators and a deferred EndFrame are not left waiting for it.
        logger.warning(f"{self}: the connection ended while the model was answering")
        await self._close_turn()

    async def _close_turn(self) -> None:
        """End the model's turn as its `turnComplete` would (Pipecat closes it, and a deferred
        EndFrame goes on)."""
        await self._handle_server_message(
            LiveServerMessage(server_content=LiveServerContent(turn_complete=True))
        )

    async def _send_queued(self, item: Outgoing) -> bool:
        return self._supervisor.usable() and await send_on(self._supervisor.socket, item)

    # ------------------------------------------------------------------ turns

    def _at_turn_boundary(self) -> bool:
        return self._turns.at_boundary(
            blocking_call_running=self._calls.blocking_running(),
            user_speaking=self._mic.user_speaking(),
            handle_covers_turn=self._handles.covers_last_turn,
        )

    def _input_sent(self) -> None:
        """User input or a tool result went out: a reply is due, and the handle lags."""
        self._turns.input_sent()
        self._handles.outdated()

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Watch the user's input, let Pipecat handle the frame, then send text typed in a page."""
        hold = False
        if isinstance(frame, UserMuteStartedFrame):
            await self._mic.end_stream("the user is muted")
        elif isinstance(frame, InputAudioRawFrame):
            hold = self._watch_mic and not self._audio_paused and self._mic.observe(frame.audio)
        elif isinstance(frame, (InputTextRawFrame, RTVISendTextFrame)):
            self._input_sent()
        elif isinstance(frame, EndFrame) and self._turns.bot_responding:
            self._finishing.soon()
        with holding_audio() if hold else contextlib.nullcontext():
            await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self._turns.interrupted_here()  # Pipecat's own handling ended the answer
        elif isinstance(frame, RTVISendTextFrame):  # typed: Pipecat only puts it in the context
            await self._send_user_text(frame.text)
        elif isinstance(frame, StartFrame) and not self._processing:
            # Frames pushed before StartFrame went downstream would be refused there.
            self._processing = True
            early, self._early = self._early, []
            for push in early:
                await push()

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Track the turn and the tool calls on their way out; answer calls cancelled here."""
        downstream = direction == FrameDirection.DOWNSTREAM
        if isinstance(frame, FunctionCallCancelFrame):
            outcome = self._tools.cancel_frame(frame, downstream=downstream)
            if not outcome.push:
                return
            if outcome.answer is not None:
                # Before the frame goes on: the "CANCELLED" the context aggregator writes for it
                # must find the call answered.
                logger.info(f"{self}: answering {frame.function_name} [{frame.tool_call_id}]")
                await self._tool_result(
                    frame.tool_call_id,
                    frame.function_name,
                    {"error": outcome.answer},
                    is_final=True,
                    spoken=bool(frame.run_llm),
                )
        elif downstream:
            self._observe_down(frame)
        await super().push_frame(frame, direction)
        if downstream and isinstance(frame, FunctionCallResultFrame):
            if frame.properties is None or frame.properties.is_final:
                self._calls.finished(frame.tool_call_id)

    def _observe_down(self, frame: Frame) -> None:
        if isinstance(frame, LLMFullResponseStartFrame):
            self._turns.bot_started()
        elif isinstance(frame, LLMFullResponseEndFrame):
            self._turns.bot_stopped()
        elif isinstance(frame, FunctionCallInProgressFrame):
            self._calls.started(
                frame.tool_call_id,
                frame.function_name,
                cancel_on_interruption=frame.cancel_on_interruption,
            )

    async def _tool_result(
        self,
        tool_call_id: str,
        tool_name: str,
        tool_result_message: dict[str, Any],
        *,
        is_final: bool = True,
        spoken: bool = True,
    ) -> None:
        """Send a tool result the way `ToolCallControl.send_result` says."""
        await self._tools.send_result(
            tool_call_id,
            tool_name,
            tool_result_message,
            is_final=is_final,
            spoken=spoken,
            send_plain=super()._tool_result,
            send_response=self._facade.send_tool_response,
            input_sent=self._input_sent,
        )

    # ------------------------------------------------------------------ what goes out

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return self.create_task(coro, name)

    async def _emit(self, push: Callable[[], Awaitable[None]]) -> None:
        if self._processing:
            await push()
        else:
            self._early.append(push)

    async def _session_event(self, kind: SessionEvent, detail: str) -> None:
        logger.info(f"{self}: session {kind}: {detail}")
        await self._emit(lambda: self.push_frame(SessionEventFrame(kind=kind, detail=detail)))

    async def _tell_browser(self, data: dict[str, Any]) -> None:
        await self._emit(lambda: self.push_frame(RTVIServerMessageFrame(data=data)))

    async def _give_up(self, message: str, error: Exception) -> None:
        """Tell the transcript and the pipeline; the stage can no longer do its job."""
        self._outbox.end("the connection could not be restored")
        await self._session_event(SessionEvent.FAILED, message)
        await self._emit(
            lambda: self.push_error(message, exception=error, force_treat_as_permanent=True)
        )

    async def _send_audio_stream_end(self, why: str) -> None:
        if self._supervisor.stopping or self._supervisor.failed:
            return
        try:
            await self._facade.send_realtime_input(audio_stream_end=True)
        except Exception as exc:
            await self.push_error(f"Send error: {exc}", exception=exc)
