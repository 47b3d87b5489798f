"""A Gemini Live stage that survives goAway, dropped sockets, failed connects and tool cancellation.

Pipecat 1.14's `GeminiLiveLLMService` ignores `goAway`, reconnects a dropped socket at most twice
with no backoff, only logs a failed connect (the bot then sits silent), ignores
`toolCallCancellation`, never sends `audioStreamEnd`, and drops whatever is sent while it
reconnects. `ResilientGeminiLiveLLMService` keeps the base class's protocol handling (setup,
seeding, transcription, tool scheduling) and replaces the connection lifecycle around it:

- one supervisor task owns the socket: it connects, resumes, retries with backoff, switches
  connections after `goAway`, and gives up with a fatal error when it must;
- every send goes through one ordered outbox, so input that arrives while no socket is usable is
  queued and sent on the next one instead of being lost;
- tool calls the model cancels are cancelled here, and a call we cancel still gets an answer.

Pipecat internals overridden (pinned to pipecat-ai 1.14 by pyproject): `_connect`,
`_connection_task_handler`, `_reconnect`, `_disconnect`, `_handle_session_ready`,
`_create_initial_response`, `_handle_server_message`, `_handle_msg_tool_call`,
`_handle_msg_resumption_update`, `_send_user_audio`, `_send_user_text`, `_tool_result`,
`_handle_send_error`, and from `LLMService` `_broadcast_function_call_cancelled` and
`_timeout_function_call`; it calls `_cancel_function_call_tasks` and `_handle_interruption`. The
base class keeps sending through `self._session`; here that is a facade whose sends go through the
outbox (see `_SessionFacade`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import ssl
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from google.genai import errors as genai_errors
from google.genai.types import (
    Blob,
    FunctionResponse,
    LiveConnectConfig,
    LiveServerMessage,
    SessionResumptionConfig,
)
from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    StartFrame,
    TTSStoppedFrame,
    UserMuteStartedFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame
from pipecat.services.google.gemini_live.llm import (
    GeminiLiveLLMService,
    GeminiLiveLLMSettings,
    GeminiModalities,
)
from pipecat.services.llm_service import FunctionCallFromLLM, FunctionCallRunnerItem
from pipecat.utils.types import assert_given
from websockets.exceptions import ConnectionClosed, InvalidStatus

from processors.frames import SessionEvent, SessionEventFrame

if TYPE_CHECKING:
    from google.genai.live import AsyncSession

    from bots.settings import Settings as BotSettings

SERVICE_NAME = "Gemini Live"

# Sends made while this is set go straight to the socket, bypassing the outbox: the seed of a new
# connection must reach the server before anything queued while it was being opened.
_DIRECT: ContextVar[bool] = ContextVar("resilient_gemini_direct_send", default=False)

# How often the goAway timer re-checks for a turn boundary.
_GOAWAY_POLL_SECS = 0.05
# A reply is expected this long after user input (text, a tool result, a transcribed turn); the
# goAway switch waits for it to start rather than cut it off.
_REPLY_GRACE_SECS = 3.0
# The user counts as speaking for this long after the last loud microphone frame, so a switch
# does not land in the middle of an utterance (the server's VAD state is not carried over).
_USER_SPEECH_HOLD_SECS = 1.0
# Frames louder than this RMS (16-bit PCM, about -40 dBFS) count as the user speaking.
_SPEECH_RMS = 300.0
# Frames whose peak is at most this are digital silence: a muted WebRTC track sends zeros.
_DIGITAL_SILENCE_PEAK = 2
# A connection that lived this long, or completed a model turn, was healthy: its loss resets the
# attempt counter and is retried at once.
_HEALTHY_SECS = 5.0
# HTTP statuses on the WebSocket upgrade that retrying cannot fix.
_PERMANENT_HTTP = frozenset({400, 401, 403, 404})


@dataclass(order=True)
class _Outgoing:
    """One client message waiting for (or on its way to) a socket, in submission order."""

    seq: int
    method: str = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False)
    kind: str = field(compare=False)
    audio_secs: float = field(default=0.0, compare=False)
    call_ids: tuple[str, ...] = field(default=(), compare=False)


class _SessionFacade:
    """Stands in for the SDK's `AsyncSession` wherever the base class uses `self._session`.

    The base class sends from many places (audio, video, text, tool results, appended messages)
    and drops a send whenever `self._session` is None. The facade is set for the whole life of the
    service, so those sends reach `_submit`, which sends at once on a usable socket and queues
    otherwise.
    """

    def __init__(self, service: ResilientGeminiLiveLLMService) -> None:
        self._service = service

    async def send_realtime_input(self, **kwargs: Any) -> None:
        await self._service._submit("send_realtime_input", kwargs)

    async def send_client_content(self, **kwargs: Any) -> None:
        await self._service._submit("send_client_content", kwargs)

    async def send_tool_response(self, **kwargs: Any) -> None:
        await self._service._submit("send_tool_response", kwargs)

    async def close(self) -> None:
        await self._service._close_socket()


class ResilientGeminiLiveLLMService(GeminiLiveLLMService):
    """`GeminiLiveLLMService` with connection supervision, an input outbox and tool cancellation.

    Behaviour, in the order the issue lists it:

    - **goAway**: a timer started by the `goAway` message switches connections at the next turn
      boundary (model idle, no BLOCKING tool running, no reply pending, user quiet, a handle
      issued since the last turn), and at the latest `goaway_safety_margin_secs` before
      `timeLeft` runs out, even if the server sends nothing more. The old socket is closed first,
      then the session is resumed with the latest handle.
    - **Drops and failed connects** (the first connect too): retried up to `reconnect_attempts`
      times with exponential backoff and jitter, resuming with the handle when there is one. The
      browser gets RTVI `service-reconnecting` / `service-reconnected` server messages. Giving up
      pushes `SessionEventFrame(FAILED)` and a fatal `ErrorFrame`, which ends the session.
    - **Outbox**: audio, video, text, tool results and appended messages submitted while no socket
      is usable are queued in order and sent on the next socket. Queued audio is capped at
      `max_queued_audio_secs` (the oldest is dropped, with a warning) and only the newest video
      frame is kept; text, tool results and appended messages are never dropped.
    - **Tool calls**: `toolCallCancellation` cancels the named running calls; a server
      `interrupted` cancels running calls registered with `cancel_on_interruption=True`. Either
      way Pipecat pushes `FunctionCallCancelFrame`. A call cancelled or timed out on our side is
      answered with `{"error": ...}`, because Gemini holds the turn until every BLOCKING call has
      an answer.
    - **audioStreamEnd**: sent once when the microphone goes quiet (no frames, or only digital
      silence, for `quiet_mic_timeout_secs`) or the user is muted (`UserMuteStartedFrame`); re-armed
      by the next audible frame. Digital silence after it is held back, since any audio re-opens
      the stream. Not used when Gemini's automatic activity detection is disabled.
    - **Resumption handles** are used for `resumption_handle_ttl_secs` after they were issued. An
      expired handle, or one the server refuses (close 1008), falls back to a fresh session seeded
      with the conversation so far (the base class's `clientContent` seed, with
      `historyConfig.initialHistoryInClientContent`).

    Event handler `on_tool_calls_cancelled_by_model(service, ids)` runs (synchronously) when
    Gemini cancels calls, before Pipecat cancels them: the place for a tool-call registry to
    record the cause, e.g. `registry.cancel(call_id, by_model=True)` for each id.

    Session events (`SessionEventFrame`, downstream, for the transcript): CONNECTED on the first
    connection, RESUMED after a goAway switch that resumed, RECONNECTING before each retry,
    RECONNECTED when a retry (or a switch that had to start afresh) succeeds, FAILED on giving up.
    The end of the session is recorded by the transcript logger from the pipeline's End/Cancel
    frame, so no ENDED event is pushed here.
    """

    # The base class annotates this with its `Settings` alias, which mypy cannot resolve.
    _settings: GeminiLiveLLMSettings

    def __init__(
        self,
        *,
        reconnect_attempts: int = 6,
        reconnect_base_delay_secs: float = 0.25,
        reconnect_max_delay_secs: float = 8.0,
        reconnect_jitter: float = 0.2,
        resumption_handle_ttl_secs: float = 7200.0,
        quiet_mic_timeout_secs: float = 1.0,
        goaway_safety_margin_secs: float = 1.0,
        max_queued_audio_secs: float = 10.0,
        connect_timeout_secs: float = 10.0,
        **kwargs: Any,
    ) -> None:
        """Create the service; every other argument goes to `GeminiLiveLLMService`.

        Args:
            reconnect_attempts: Retries after a drop or failed connect before giving up. The
                count starts again after a connection that completed a turn or lived 5 s.
            reconnect_base_delay_secs: Delay before retry n is `base * 2**(n-1)`, capped; the first
                retry after a healthy connection drops is immediate (one lost socket is the common
                case, and resuming at once keeps the gap short).
            reconnect_max_delay_secs: Ceiling of the retry delay.
            reconnect_jitter: Each delay is scaled by a random factor in `1 ± jitter`, so many
                bots cut off at once do not reconnect in lockstep.
            resumption_handle_ttl_secs: How long after it was issued a resumption handle is used
                (Gemini keeps them about 2 hours); older ones start a fresh, seeded session.
            quiet_mic_timeout_secs: Microphone silence (no frames, or digital silence) after which
                `audioStreamEnd` is sent.
            goaway_safety_margin_secs: How long before goAway's `timeLeft` runs out the switch
                happens at the latest (capped at half of `timeLeft`).
            max_queued_audio_secs: Most audio kept while no socket is usable; older is dropped.
            connect_timeout_secs: Limit for opening a socket and receiving `setupComplete`.
            **kwargs: Passed to `GeminiLiveLLMService`.
        """
        super().__init__(**kwargs)
        self._reconnect_attempts = max(0, reconnect_attempts)
        self._base_delay = max(0.0, reconnect_base_delay_secs)
        self._max_delay = max(self._base_delay, reconnect_max_delay_secs)
        self._jitter = min(max(reconnect_jitter, 0.0), 1.0)
        self._handle_ttl = resumption_handle_ttl_secs
        self._quiet_mic_timeout = quiet_mic_timeout_secs
        self._goaway_margin = max(0.0, goaway_safety_margin_secs)
        self._max_queued_audio = max_queued_audio_secs
        self._connect_timeout = connect_timeout_secs

        self._facade = _SessionFacade(self)
        self._raw: AsyncSession | None = None  # the socket in use, None between sockets
        self._gate_open = False  # sends go straight to `_raw` only while this is set
        self._queue: list[_Outgoing] = []
        self._seq = 0
        self._flushing = False
        self._dropped_audio_secs = 0.0
        self._dropped_video = 0

        self._stopping = False
        self._failed = False
        self._started = False
        self._pending_pushes: list[tuple[Frame, FrameDirection]] = []

        self._ever_connected = False
        self._conversation_seeded = False
        self._socket_resumed = False
        self._socket_progress = False  # a model turn completed on the current socket
        self._next_open_reason: str | None = None  # "goaway" or "outage"
        self._outage_announced = False
        self._session_id: str | None = None
        self._epoch = 0  # bumped by every fresh session after the first: call ids are per session
        self._call_epoch: dict[str, int] = {}

        self._handle_received_at = 0.0
        self._handle_fresh = False  # a resumable handle arrived since the model last did anything
        self._goaway_deadline: float | None = None
        self._goaway_task: asyncio.Task[None] | None = None
        self._switching = False
        self._awaiting_reply_since: float | None = None
        self._last_loud_at = float("-inf")

        self._model_cancelled: set[str] = set()
        self._timed_out: set[str] = set()
        self._settled_cancels: set[str] = set()
        # Run in the same step as the cancellation (sync), so a tool-call registry can record
        # that the model asked for it before Pipecat settles the call.
        self._register_event_handler("on_tool_calls_cancelled_by_model", sync=True)

        self._mic_armed = False  # audio went out since the last audioStreamEnd
        self._stream_ended = False
        self._quiet_since = 0.0
        self._quiet_task: asyncio.Task[None] | None = None

    @property
    def session_id(self) -> str | None:
        """The id `setupComplete` gave the current Gemini session (the same across resumptions)."""
        return self._session_id

    # ----------------------------------------------------------------------------------------
    # Frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Handle mute frames, then the base class; flush events held back until the start.

        Args:
            frame: The frame to process.
            direction: The direction it travels.
        """
        if isinstance(frame, UserMuteStartedFrame):
            await self._end_audio_stream("the user is muted")
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame) and not self._started:
            # Frames pushed before StartFrame went downstream would be refused there; the socket
            # is opened in setup(), which can be earlier.
            self._started = True
            pending, self._pending_pushes = self._pending_pushes, []
            for pending_frame, pending_direction in pending:
                await self._push_now(pending_frame, pending_direction)

    async def _emit(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        if self._started:
            await self._push_now(frame, direction)
        else:
            self._pending_pushes.append((frame, direction))

    async def _push_now(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, ErrorFrame):
            await self.push_error_frame(frame)
        else:
            await self.push_frame(frame, direction)

    async def _event(self, kind: SessionEvent, detail: str) -> None:
        logger.info(f"{self}: session {kind}: {detail}")
        await self._emit(SessionEventFrame(kind=kind, detail=detail))

    async def _tell_browser(self, data: dict[str, Any]) -> None:
        await self._emit(RTVIServerMessageFrame(data=data))

    # ----------------------------------------------------------------------------------------
    # Connection lifecycle

    async def _connect(self, session_resumption_handle: str | None = None) -> None:
        """Start the supervisor unless it runs already; the handle is chosen by the supervisor."""
        if self._stopping or self._failed:
            return
        if self._connection_task is not None and not self._connection_task.done():
            return
        # The base class builds the setup config and starts `_connection_task_handler` with it,
        # but only while `self._session` is None.
        self._session = None
        await super()._connect()
        if self._connection_task is not None:
            self._session = cast("AsyncSession", self._facade)

    async def _reconnect(self) -> None:
        """Reconnect with a new setup: the base class calls this when the first context changes
        the system instruction or tools, before anything was said, so the session starts fresh."""
        logger.info(f"{self}: the context changes the setup; opening a fresh session with it")
        self._session_resumption_handle = None
        if self._connection_task is not None:
            await self.cancel_task(self._connection_task, timeout=2.0)
            self._connection_task = None
        self._raw = None
        self._gate_open = False
        await self._connect()

    async def _disconnect(self) -> None:
        """Close for good (stop, cancel, cleanup): nothing reconnects after this."""
        self._stopping = True
        self._gate_open = False
        for task in (self._goaway_task, self._quiet_task):
            if task is not None and not task.done():
                await self.cancel_task(task)
        self._goaway_task = self._quiet_task = None
        self._drop_queue("the session is ending")
        # Close the socket ourselves first, with a normal close (1000): Pipecat would cancel the
        # receive task inside `async with connect()`, and websockets then closes with 1011.
        await self._close_socket()
        await super()._disconnect()

    async def _close_socket(self) -> None:
        raw, self._raw = self._raw, None
        self._gate_open = False
        if raw is not None:
            with contextlib.suppress(Exception):
                await raw.close()

    async def _connection_task_handler(self, config: LiveConnectConfig) -> None:
        """Own the socket: connect, serve, and after every loss decide how to go on.

        Args:
            config: The setup the base class built; only its resumption handle changes here.
        """
        model = assert_given(self._settings.model)
        if model is None:
            raise ValueError("Gemini Live model must be specified")
        failures = 0
        last_error: Exception | None = None
        while not self._stopping:
            handle = self._usable_handle()
            attempt = config.model_copy(
                update={"session_resumption": SessionResumptionConfig(handle=handle)}
            )
            opened_at: float | None = None
            error: Exception | None = None
            try:
                async with contextlib.AsyncExitStack() as stack:
                    async with asyncio.timeout(self._connect_timeout):
                        session = await stack.enter_async_context(
                            self._client.aio.live.connect(model=model, config=attempt)
                        )
                    opened_at = time.monotonic()
                    await self._on_socket_open(session, resumed=handle is not None)
                    await self._receive_messages(session)
            except asyncio.CancelledError:
                await self._on_socket_closed(cancelled=True)
                raise
            except Exception as exc:
                error = exc
            await self._on_socket_closed(cancelled=False)
            if self._stopping:
                return
            if self._goaway_deadline is not None or self._switching:
                # Our own switch, or the server closing after goAway: resume at once.
                self._end_goaway()
                self._next_open_reason = self._next_open_reason or "goaway"
                failures = 0
                continue
            assert error is not None  # the receive loop only ends by raising
            last_error = error
            verdict = self._classify(error, resuming=handle is not None, opened=opened_at)
            if verdict == "handle_refused":
                logger.warning(
                    f"{self}: Gemini refused the resumption handle ({_describe(error)}); "
                    "starting a fresh session seeded with the conversation so far"
                )
                self._session_resumption_handle = None
                continue
            healthy = opened_at is not None and (
                self._socket_progress or time.monotonic() - opened_at >= _HEALTHY_SECS
            )
            if healthy:
                failures = 0
            failures += 1
            if verdict == "permanent" or failures > self._reconnect_attempts:
                await self._give_up(last_error, failures - 1, permanent=verdict == "permanent")
                return
            delay = self._retry_delay(failures, after_healthy=healthy)
            reason = _describe(error)
            logger.warning(
                f"{self}: Gemini Live connection {'lost' if opened_at else 'failed'} ({reason}); "
                f"retry {failures} of {self._reconnect_attempts} in {delay:.2f}s"
            )
            self._next_open_reason = "outage"
            self._outage_announced = True
            await self._event(
                SessionEvent.RECONNECTING,
                f"attempt {failures} of {self._reconnect_attempts}: {reason}",
            )
            await self._tell_browser(
                {
                    "type": "service-reconnecting",
                    "service": SERVICE_NAME,
                    "attempt": failures,
                    "max_attempts": self._reconnect_attempts,
                    "reason": reason,
                    "message": (
                        f"Reconnecting to {SERVICE_NAME} "
                        f"(attempt {failures} of {self._reconnect_attempts})…"
                    ),
                }
            )
            if delay > 0:
                await asyncio.sleep(delay)

    async def _receive_messages(self, session: AsyncSession) -> None:
        # `receive()` ends after each turn; the socket closing raises out of it.
        while True:
            async for message in session.receive():
                await self._handle_server_message(message)

    async def _on_socket_open(self, session: AsyncSession, *, resumed: bool) -> None:
        """Seed or resume, announce the connection, then send what was queued meanwhile."""
        self._raw = session
        self._socket_resumed = resumed
        self._socket_progress = False
        self._session_id = session.session_id or self._session_id
        first = not self._ever_connected
        if not resumed and not first:
            self._epoch += 1  # the calls of the previous session cannot be answered in this one
        self._ever_connected = True
        reason, self._next_open_reason = self._next_open_reason, None
        how = (
            "resumed the session"
            if resumed
            else (
                "started a fresh session seeded with the conversation so far"
                if self._conversation_seeded
                else "started a new session"
            )
        )
        logger.info(f"{self}: connected to Gemini Live ({how}; session {self._session_id})")
        if first:
            await self._event(SessionEvent.CONNECTED, how)
        elif reason == "goaway" and resumed:
            await self._event(SessionEvent.RESUMED, "switched connections after goAway")
        else:
            await self._event(SessionEvent.RECONNECTED, how)
        if self._outage_announced:
            self._outage_announced = False
            await self._tell_browser({"type": "service-reconnected", "service": SERVICE_NAME})
        await self._handle_session_ready(session)

    async def _on_socket_closed(self, *, cancelled: bool) -> None:
        self._raw = None
        self._gate_open = False
        if not cancelled and not self._stopping and self._bot_is_responding:
            # No turnComplete will come for an answer cut off with its socket: end the bot turn
            # here, so aggregators and a deferred EndFrame are not left waiting for it.
            logger.warning(f"{self}: the connection ended while the model was answering")
            self._discard_deferred_turn()
            self._bot_text_buffer = ""
            await self._set_bot_is_responding(False)
            if self._settings.modalities == GeminiModalities.AUDIO:
                await self.push_frame(TTSStoppedFrame())
            await self.push_frame(LLMFullResponseEndFrame())

    def _classify(self, error: Exception, *, resuming: bool, opened: float | None) -> str:
        """Say whether a failure is a refused handle, permanent, or worth retrying."""
        code = _close_code(error)
        if opened is None:
            if code == 1008 and resuming:
                return "handle_refused"
            if code in (1007, 1008):
                return "permanent"  # the setup itself is refused: a bad key, model or field
            if isinstance(error, InvalidStatus) and error.response.status_code in _PERMANENT_HTTP:
                return "permanent"
            if isinstance(error, ssl.SSLCertVerificationError):
                return "permanent"
        return "retry"

    def _retry_delay(self, attempt: int, *, after_healthy: bool) -> float:
        if attempt == 1 and after_healthy:
            return 0.0
        delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
        delay *= 1.0 + random.uniform(-self._jitter, self._jitter)
        return max(0.0, min(self._max_delay, delay))

    async def _give_up(self, error: Exception, retries: int, *, permanent: bool) -> None:
        """Tell the transcript, the pipeline and the browser, and let the worker end the session."""
        self._failed = True
        self._drop_queue("the connection could not be restored")
        why = _describe(error)
        message = (
            f"Could not connect to {SERVICE_NAME}: {why}. The session has ended."
            if permanent
            else (
                f"Lost the connection to {SERVICE_NAME} and could not restore it after "
                f"{retries} {'retry' if retries == 1 else 'retries'} (last error: {why}). "
                "The session has ended."
            )
        )
        logger.error(f"{self}: {message}")
        await self._event(SessionEvent.FAILED, message)
        frame = ErrorFrame(error=message, exception=error)
        # Set after construction, as Pipecat itself does, to skip the deprecation warning: the
        # flag is what RTVI reports to the browser as `fatal`, and what makes the worker cancel
        # the session instead of leaving a bot that can no longer answer.
        frame.fatal = True
        await self._emit(frame, FrameDirection.UPSTREAM)

    # ----------------------------------------------------------------------------------------
    # Seeding and resuming

    async def _handle_session_ready(self, session: AsyncSession) -> None:
        """Make a new socket ready: resume, seed, or wait for the first context; then flush."""
        if self._run_llm_when_session_ready:
            # The first context arrived before any socket did.
            self._run_llm_when_session_ready = False
            await self._create_initial_response()
        elif self._socket_resumed:
            self._ready_for_realtime_input = True
        elif self._conversation_seeded and self._context is not None:
            # A fresh session after the handle expired or was refused: seed it with everything
            # said so far, so the model keeps the context.
            await self._create_initial_response(for_reconnect=True)
        if self._ready_for_realtime_input:
            await self._flush_queue()

    async def _create_initial_response(self, for_reconnect: bool = False) -> None:
        """Seed on the socket directly (ahead of queued input), or defer until there is one."""
        if self._raw is None or self._switching:
            self._run_llm_when_session_ready = True
            return
        token = _DIRECT.set(True)
        try:
            await super()._create_initial_response(for_reconnect=for_reconnect)
        finally:
            _DIRECT.reset(token)
        self._conversation_seeded = True
        if self._ready_for_realtime_input:
            await self._flush_queue()

    def _usable_handle(self) -> str | None:
        handle = self._session_resumption_handle
        if not handle:
            return None
        age = time.monotonic() - self._handle_received_at
        if age >= self._handle_ttl:
            logger.warning(
                f"{self}: the resumption handle is {age:.0f}s old, past its "
                f"{self._handle_ttl:.0f}s lifetime; starting a fresh session seeded with the "
                "conversation so far"
            )
            self._session_resumption_handle = None
            return None
        return handle

    def _handle_msg_resumption_update(self, message: LiveServerMessage) -> None:
        before = self._session_resumption_handle
        super()._handle_msg_resumption_update(message)
        update = message.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self._handle_received_at = time.monotonic()
            self._handle_fresh = True
            if before is None:
                logger.debug(f"{self}: got a resumption handle")

    # ----------------------------------------------------------------------------------------
    # Server messages: goAway, tool call cancellation, interruption, turn tracking

    async def _handle_server_message(self, message: LiveServerMessage) -> None:
        if message.go_away is not None:
            self._on_go_away(message.go_away.time_left)
        if message.tool_call_cancellation is not None:
            await self._on_tool_call_cancellation(list(message.tool_call_cancellation.ids or []))
        content = message.server_content
        if content is not None and (content.model_turn or content.output_transcription):
            self._handle_fresh = False
            self._awaiting_reply_since = None
        if message.tool_call is not None:
            self._handle_fresh = False
        await super()._handle_server_message(message)
        if content is None:
            return
        if content.input_transcription:
            self._handle_fresh = False
            self._awaiting_reply_since = time.monotonic()
        if content.turn_complete:
            self._socket_progress = True
            self._awaiting_reply_since = None
        if content.interrupted:
            self._awaiting_reply_since = None
            # The base class broadcasts the interruption away from itself, so its own cleanup
            # (`_handle_interruption`: the bot is no longer responding) never runs, and the
            # interrupted answer gets no turnComplete: without this, a deferred EndFrame and the
            # goAway switch would wait for a turn that has ended.
            await self._handle_interruption()
            await self._cancel_calls_on_interruption()

    def _on_go_away(self, time_left: str | None) -> None:
        seconds = _duration_secs(time_left)
        if seconds is None:
            seconds = 2 * self._goaway_margin  # unknown: leave at the next boundary, soon
        now = time.monotonic()
        deadline = now + seconds
        if self._goaway_deadline is not None and self._goaway_deadline <= deadline:
            return
        self._goaway_deadline = deadline
        latest = deadline - min(self._goaway_margin, seconds / 2)
        logger.info(
            f"{self}: goAway with {seconds:.1f}s left; switching connections at the next turn "
            f"boundary, at the latest in {max(0.0, latest - now):.1f}s"
        )
        if self._goaway_task is not None and not self._goaway_task.done():
            self._goaway_task.cancel()
        self._goaway_task = self.create_task(self._switch_when_ready(latest), "goaway_switch")

    async def _switch_when_ready(self, latest: float) -> None:
        """The goAway timer: it runs on its own clock, so a server gone silent is still left."""
        while True:
            now = time.monotonic()
            if now >= latest:
                why = "the goAway deadline is near"
                break
            if self._raw is None:
                return  # lost already; the supervisor resumes
            if self._at_turn_boundary(now):
                why = "between turns"
                break
            await asyncio.sleep(min(_GOAWAY_POLL_SECS, latest - now))
        raw = self._raw
        if raw is None or self._switching:
            return
        self._switching = True
        self._gate_open = False
        self._next_open_reason = "goaway"
        if self._bot_is_responding:
            logger.warning(f"{self}: switching connections mid-answer: {why}")
        else:
            logger.info(f"{self}: switching connections after goAway ({why})")
        # Close the old socket before resuming: the service refuses a resume while an earlier
        # socket of the session is open. The supervisor sees the close and resumes.
        with contextlib.suppress(Exception):
            await raw.close()

    def _at_turn_boundary(self, now: float) -> bool:
        if self._bot_is_responding:
            return False
        # A BLOCKING call holds the model's turn (and no resumable handle covers it); a
        # NON_BLOCKING one does not, and its result can go to the next socket.
        if any(
            not self._function_is_async(item.function_name)
            for item in self._function_call_tasks.values()
        ):
            return False
        if self._awaiting_reply_since is not None:
            if now - self._awaiting_reply_since < _REPLY_GRACE_SECS:
                return False
        if now - self._last_loud_at < _USER_SPEECH_HOLD_SECS:
            return False
        # The handle that follows a turn carries it; switching before it arrives would resume
        # without that turn.
        return self._handle_fresh

    def _end_goaway(self) -> None:
        self._goaway_deadline = None
        self._switching = False
        task, self._goaway_task = self._goaway_task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    def _note_turn_input(self) -> None:
        """User input or a tool result went out: a reply is due, and the handle is now stale."""
        self._awaiting_reply_since = time.monotonic()
        self._handle_fresh = False

    # ----------------------------------------------------------------------------------------
    # Tool calls

    async def _handle_msg_tool_call(self, message: LiveServerMessage) -> None:
        if message.tool_call is not None:
            for call in message.tool_call.function_calls or []:
                if call.id:
                    self._call_epoch[call.id] = self._epoch
        await super()._handle_msg_tool_call(message)

    async def _on_tool_call_cancellation(self, ids: list[str]) -> None:
        """The model gave up on these calls: stop them, and send no answer for them."""
        ids = [i for i in ids if i]
        if not ids:
            return
        logger.info(f"{self}: Gemini cancelled tool call(s) {', '.join(ids)}")
        self._model_cancelled.update(ids)
        # Nor a "CANCELLED" from the context later: the model no longer waits for these.
        self._completed_tool_calls.update(ids)
        await self._call_event_handler("on_tool_calls_cancelled_by_model", ids)
        wanted = set(ids)
        await self._cancel_function_call_tasks(
            lambda item: item.tool_call_id in wanted,
            reason="cancelled by Gemini (toolCallCancellation)",
        )

    async def _cancel_calls_on_interruption(self) -> None:
        """A server `interrupted` cancels what `cancel_on_interruption=True` says it should.

        Pipecat broadcasts the interruption away from the service, so its own handler
        (`LLMService._handle_interruptions`) never sees it.
        """
        running = [
            item
            for item in self._function_call_tasks.values()
            if item.registry_item.cancel_on_interruption
        ]
        if not running:
            return
        logger.info(
            f"{self}: the user interrupted; cancelling "
            + ", ".join(f"{i.function_name} [{i.tool_call_id}]" for i in running)
        )
        await self._cancel_function_call_tasks(
            lambda item: item.registry_item.cancel_on_interruption,
            reason="interrupted (server interrupted)",
        )

    async def _timeout_function_call(self, runner_item: FunctionCallRunnerItem) -> None:
        self._timed_out.add(runner_item.tool_call_id)
        await super()._timeout_function_call(runner_item)

    async def _broadcast_function_call_cancelled(
        self, runner_item: FunctionCallRunnerItem, *, run_llm: bool = False
    ) -> FunctionCallFromLLM:
        """Settle a cancelled call downstream and, unless the model cancelled it, answer it.

        Gemini holds its turn until every BLOCKING call has an answer, so a call cancelled here
        (interruption, timeout) without one would leave the bot silent for the rest of the turn.
        """
        call_id = runner_item.tool_call_id
        if call_id in self._settled_cancels:
            # Two cancellers (say, an interruption from upstream and one from the server) can
            # both pick the call before either removed it; it is settled once.
            return FunctionCallFromLLM(
                function_name=runner_item.function_name,
                tool_call_id=call_id,
                arguments=runner_item.arguments,
                context=runner_item.context,
            )
        self._settled_cancels.add(call_id)
        answer = call_id not in self._model_cancelled and call_id not in self._completed_tool_calls
        if answer:
            # Before the broadcast: the aggregator's "CANCELLED" context update must not make the
            # base class send a second answer.
            self._completed_tool_calls.add(call_id)
        result = await super()._broadcast_function_call_cancelled(runner_item, run_llm=run_llm)
        if answer:
            if call_id in self._timed_out:
                timeout = runner_item.registry_item.timeout_secs or self._function_call_timeout_secs
                error = f"The function timed out after {timeout:g} seconds and was cancelled."
            else:
                error = "The function call was cancelled."
            logger.info(f"{self}: answering {runner_item.function_name} [{call_id}]: {error}")
            await self._tool_result(
                call_id,
                runner_item.function_name,
                {"error": error},
                is_final=True,
                spoken=run_llm,
            )
        return result

    async def _tool_result(
        self,
        tool_call_id: str,
        tool_name: str,
        tool_result_message: dict[str, Any],
        *,
        is_final: bool = True,
        spoken: bool = True,
    ) -> None:
        if tool_call_id in self._model_cancelled:
            logger.debug(f"{self}: not answering {tool_name} [{tool_call_id}]: Gemini cancelled it")
            return
        await super()._tool_result(
            tool_call_id, tool_name, tool_result_message, is_final=is_final, spoken=spoken
        )
        if is_final and not self._function_is_async(tool_name):
            self._note_turn_input()

    # ----------------------------------------------------------------------------------------
    # User input and the microphone

    async def _send_user_text(self, text: str) -> None:
        if self._disconnecting or self._session is None:
            return
        self._note_turn_input()
        try:
            await self._session.send_realtime_input(text=text)
        except Exception as exc:
            await self._handle_send_error(exc)

    async def _send_user_audio(self, frame: InputAudioRawFrame) -> None:
        if self._audio_input_paused:
            return
        if not self._vad_disabled and self._hold_back(frame):
            return
        if self._ready_for_realtime_input or self._vad_disabled:
            await super()._send_user_audio(frame)
        elif self._session is not None and not self._disconnecting:
            # Before the first seed the base class drops audio; queue it instead.
            await self._session.send_realtime_input(
                audio=Blob(data=frame.audio, mime_type=f"audio/pcm;rate={frame.sample_rate}")
            )

    def _hold_back(self, frame: InputAudioRawFrame) -> bool:
        """Track the microphone; True for digital silence after `audioStreamEnd` (not sent)."""
        samples = np.frombuffer(frame.audio, dtype=np.int16)
        if samples.size == 0:
            return False
        now = time.monotonic()
        wide = samples.astype(np.int32)
        if int(np.max(np.abs(wide))) > _DIGITAL_SILENCE_PEAK:
            self._quiet_since = now
            if float(np.sqrt(np.mean(np.square(wide, dtype=np.float64)))) > _SPEECH_RMS:
                self._last_loud_at = now
            if self._stream_ended:
                logger.debug(f"{self}: microphone audio again; the audio stream re-opens")
                self._stream_ended = False
        elif self._stream_ended:
            return True  # any audio would re-open the stream we just ended
        if not self._mic_armed:
            self._mic_armed = True
            self._quiet_since = now
        if self._quiet_task is None or self._quiet_task.done():
            self._quiet_task = self.create_task(self._watch_quiet_mic(), "quiet_mic")
        return False

    async def _watch_quiet_mic(self) -> None:
        while self._mic_armed and not self._stream_ended:
            delay = self._quiet_since + self._quiet_mic_timeout - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            await self._end_audio_stream(
                f"no microphone audio for {self._quiet_mic_timeout:g}s", from_watchdog=True
            )
            return

    async def _end_audio_stream(self, why: str, *, from_watchdog: bool = False) -> None:
        """Send `audioStreamEnd` once per pause, so Gemini flushes the audio it has cached."""
        if not self._mic_armed or self._stream_ended or self._vad_disabled:
            return
        if self._session is None or self._disconnecting or self._failed:
            return
        self._mic_armed = False
        self._stream_ended = True
        if not from_watchdog and self._quiet_task is not None and not self._quiet_task.done():
            self._quiet_task.cancel()
        logger.debug(f"{self}: sending audioStreamEnd ({why})")
        try:
            await self._session.send_realtime_input(audio_stream_end=True)
        except Exception as exc:
            await self._handle_send_error(exc)

    # ----------------------------------------------------------------------------------------
    # The outbox

    async def _submit(self, method: str, kwargs: dict[str, Any]) -> None:
        """Send one client message now if a socket is usable, else queue it in order."""
        if _DIRECT.get():
            raw = self._raw
            if raw is None:
                raise ConnectionError("no Gemini Live socket")
            await getattr(raw, method)(**kwargs)
            return
        if self._failed or self._stopping:
            logger.debug(f"{self}: dropping a {method} after the session ended")
            return
        self._seq += 1
        item = _describe_item(self._seq, method, kwargs)
        if self._gate_open and self._raw is not None:
            await self._send(item)
        else:
            self._enqueue(item)

    async def _send(self, item: _Outgoing) -> bool:
        """Send an item on the current socket; on a connection error put it back and say False."""
        raw = self._raw
        if raw is None:
            self._enqueue(item)
            return False
        if not self._sendable(item):
            return True
        try:
            await getattr(raw, item.method)(**item.kwargs)
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            logger.debug(f"{self}: {item.kind} not sent ({_describe(exc)}); queued for later")
            self._gate_open = False
            self._enqueue(item)
            return False
        return True

    def _sendable(self, item: _Outgoing) -> bool:
        stale = [c for c in item.call_ids if self._call_epoch.get(c, self._epoch) != self._epoch]
        if stale:
            logger.warning(
                f"{self}: not sending the result of tool call(s) {', '.join(stale)}: they belong "
                "to a previous Gemini session that could not be resumed (the new session was "
                "seeded with the conversation instead)"
            )
            return False
        return True

    def _enqueue(self, item: _Outgoing) -> None:
        if not self._queue:
            logger.info(f"{self}: no usable Gemini Live socket; queueing input until there is one")
        if item.kind == "video":
            # A stale frame is worth nothing once a newer one exists.
            before = len(self._queue)
            self._queue = [q for q in self._queue if q.kind != "video"]
            self._dropped_video += before - len(self._queue)
        bisect.insort(self._queue, item)
        if item.kind == "audio":
            queued = sum(q.audio_secs for q in self._queue)
            while queued > self._max_queued_audio:
                oldest = next(q for q in self._queue if q.kind == "audio")
                self._queue.remove(oldest)
                queued -= oldest.audio_secs
                self._dropped_audio_secs += oldest.audio_secs

    async def _flush_queue(self) -> None:
        """Send everything queued, oldest first, then let sends go straight to the socket."""
        if self._flushing:
            return
        self._flushing = True
        sent: Counter[str] = Counter()
        try:
            while self._queue:
                if self._raw is None or self._switching:
                    return
                item = self._queue.pop(0)
                try:
                    if not await self._send(item):
                        return
                except Exception as exc:
                    logger.error(f"{self}: could not send a queued {item.kind}: {exc}")
                    continue
                sent[item.kind] += 1
            if self._raw is not None and not self._switching:
                self._gate_open = True
        finally:
            self._flushing = False
            if sent:
                logger.info(f"{self}: sent what was queued while disconnected: {dict(sent)}")
            if self._dropped_audio_secs or self._dropped_video:
                logger.warning(
                    f"{self}: while disconnected, dropped {self._dropped_audio_secs:.1f}s of the "
                    f"oldest microphone audio (over the {self._max_queued_audio:g}s kept) and "
                    f"{self._dropped_video} stale video frame(s)"
                )
                self._dropped_audio_secs = 0.0
                self._dropped_video = 0

    def _drop_queue(self, why: str) -> None:
        if self._queue:
            kinds = Counter(q.kind for q in self._queue)
            logger.warning(f"{self}: {why}; not sending queued input {dict(kinds)}")
        self._queue.clear()

    async def _handle_send_error(self, error: Exception) -> None:
        if _is_connection_error(error):
            # The supervisor sees the same loss on the receive side and reconnects.
            logger.debug(f"{self}: send failed on a closing socket: {_describe(error)}")
            return
        await super()._handle_send_error(error)


# --------------------------------------------------------------------------------------------
# Helpers


def resilience_options(settings: BotSettings) -> dict[str, Any]:
    """Constructor arguments of `ResilientGeminiLiveLLMService` taken from the bot settings."""
    return {
        "reconnect_attempts": settings.reconnect_attempts,
        "reconnect_base_delay_secs": settings.reconnect_base_delay_secs,
        "reconnect_max_delay_secs": settings.reconnect_max_delay_secs,
        "resumption_handle_ttl_secs": settings.resumption_handle_ttl_secs,
    }


def _describe_item(seq: int, method: str, kwargs: dict[str, Any]) -> _Outgoing:
    if method == "send_tool_response":
        responses = kwargs.get("function_responses")
        items = responses if isinstance(responses, list) else [responses]
        ids = tuple(r.id for r in items if isinstance(r, FunctionResponse) and r.id)
        return _Outgoing(seq, method, kwargs, "tool_response", call_ids=ids)
    if method == "send_client_content":
        return _Outgoing(seq, method, kwargs, "client_content")
    audio = kwargs.get("audio")
    if isinstance(audio, Blob):
        rate = _rate_of(audio.mime_type)
        secs = len(audio.data or b"") / 2 / rate
        return _Outgoing(seq, method, kwargs, "audio", audio_secs=secs)
    if kwargs.get("video") is not None:
        return _Outgoing(seq, method, kwargs, "video")
    if kwargs.get("text") is not None:
        return _Outgoing(seq, method, kwargs, "text")
    if kwargs.get("audio_stream_end"):
        return _Outgoing(seq, method, kwargs, "audio_stream_end")
    return _Outgoing(seq, method, kwargs, "activity")


def _rate_of(mime_type: str | None) -> int:
    for part in (mime_type or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "rate" and value.isdigit():
            return int(value)
    return 16000


def _duration_secs(value: str | None) -> float | None:
    """Seconds of a proto `Duration` in JSON form (`"9.5s"`), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip().removesuffix("s")))
    except ValueError:
        return None


def _close_code(error: BaseException) -> int | None:
    if isinstance(error, genai_errors.APIError):
        return error.code
    if isinstance(error, ConnectionClosed) and error.rcvd is not None:
        return error.rcvd.code
    return None


def _is_connection_error(error: BaseException) -> bool:
    return isinstance(
        error, ConnectionClosed | genai_errors.APIError | OSError | ConnectionError | TimeoutError
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, genai_errors.APIError):
        return f"closed with {error.code}: {error.message or error.details or error.status}"
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code} on connect"
    if isinstance(error, TimeoutError):
        return "timed out connecting"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
