"""The stage's knobs, and the read-only status it reports (what tests and operators wait on)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bots.gemini_live.supervisor import RetryPolicy

if TYPE_CHECKING:
    from bots.gemini_live.handles import ResumptionHandles
    from bots.gemini_live.microphone import MicWatchdog
    from bots.gemini_live.outbox import Outbox
    from bots.gemini_live.recording import Recorder
    from bots.gemini_live.supervisor import Supervisor
    from bots.gemini_live.turns import TurnState


@dataclass(frozen=True)
class StageOptions:
    """How patient and how generous the Gemini Live stage is.

    Attributes:
        reconnect_attempts: Retries after a drop or failed connect before giving up. The count
            starts again after a connection that completed a turn or lived 5 s.
        reconnect_base_delay_secs: Retry n waits `base * 2**(n-1)`, capped; the first retry
            after a healthy connection drops is immediate.
        reconnect_max_delay_secs: Ceiling of the retry delay.
        reconnect_jitter: Each delay is scaled by a random factor in `1 ± jitter`.
        resumption_handle_ttl_secs: How long after it was issued a resumption handle is used
            (Gemini keeps them about 2 hours); older ones start a fresh, seeded session.
        quiet_mic_timeout_secs: Microphone silence (no frames, or digital silence) after which
            `audioStreamEnd` is sent.
        goaway_safety_margin_secs: How long before goAway's `timeLeft` runs out the switch
            happens at the latest (capped at half of `timeLeft`).
        max_queued_audio_secs: Most audio kept while no socket is usable; older is dropped.
        connect_timeout_secs: Limit for opening a socket and receiving `setupComplete`.
        finish_speaking_secs: When the session is asked to end while the model answers, how
            long the answer may go on before its turn is closed and the session ends; None
            leaves Pipecat's own limit (30 s).
        resume_handle: A handle another process received for this conversation: the first
            connection resumes the Gemini session with it (if it is young enough).
        resume_handle_age_secs: How long ago that handle was issued.
        continues_conversation: The context holds a conversation begun elsewhere: a fresh
            session is seeded with it as after a reconnect (no greeting, no reply of its own).
        recorder: Writes each connection to a cassette (`RECORD_DIR`); None records nothing.
    """

    reconnect_attempts: int = 6
    reconnect_base_delay_secs: float = 0.25
    reconnect_max_delay_secs: float = 8.0
    reconnect_jitter: float = 0.2
    resumption_handle_ttl_secs: float = 7200.0
    quiet_mic_timeout_secs: float = 1.0
    goaway_safety_margin_secs: float = 1.0
    max_queued_audio_secs: float = 10.0
    connect_timeout_secs: float = 10.0
    finish_speaking_secs: float | None = None
    resume_handle: str | None = None
    resume_handle_age_secs: float = 0.0
    continues_conversation: bool = False
    recorder: Recorder | None = None

    @classmethod
    def take(cls, base: StageOptions | None, kwargs: dict[str, Any]) -> StageOptions:
        """``base`` with every option named in ``kwargs`` applied (and removed from it)."""
        names = {f.name for f in dataclasses.fields(cls)}
        given = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        return dataclasses.replace(base or cls(), **given)

    def retry_policy(self) -> RetryPolicy:
        """The retry schedule these options describe."""
        return RetryPolicy(
            attempts=max(0, self.reconnect_attempts),
            base_delay_secs=self.reconnect_base_delay_secs,
            max_delay_secs=self.reconnect_max_delay_secs,
            jitter=self.reconnect_jitter,
        )


@dataclass(frozen=True)
class StageStatus:
    """A snapshot of the stage, for waiting on it (see `GeminiLiveStage.status`).

    Attributes:
        started: The pipeline's StartFrame has passed the stage.
        connected: A socket is open.
        ready: Sends go straight to the socket (seeded or resumed, nothing queued).
        session_id: The id `setupComplete` gave the session (the same across resumptions).
        resumption_handle: The newest handle received, or None.
        handle_covers_last_turn: A handle arrived since the model last did anything.
        bot_responding: The model's answer is in progress.
        dropped_output: The model's messages whose words and audio were dropped, since the
            pipeline had cut their answer off (a local VAD heard the user, say).
        goaway_pending: A goAway switch is due or under way.
        failed: The stage gave up; the session is ending.
        queued: The kinds of the messages waiting in the outbox, oldest first.
        dropped_audio_secs: Queued audio dropped since the last flush.
        audio_stream_ended: `audioStreamEnd` went out and no audible frame came since.
    """

    started: bool
    connected: bool
    ready: bool
    session_id: str | None
    resumption_handle: str | None
    handle_covers_last_turn: bool
    bot_responding: bool
    dropped_output: int
    goaway_pending: bool
    failed: bool
    queued: tuple[str, ...]
    dropped_audio_secs: float
    audio_stream_ended: bool

    @classmethod
    def of(
        cls,
        started: bool,
        supervisor: Supervisor,
        outbox: Outbox,
        handles: ResumptionHandles,
        turns: TurnState,
        mic: MicWatchdog,
    ) -> StageStatus:
        """The status of a stage made of these parts."""
        return cls(
            started=started,
            connected=supervisor.socket is not None,
            ready=outbox.is_open,
            session_id=supervisor.session_id,
            resumption_handle=handles.latest,
            handle_covers_last_turn=handles.covers_last_turn,
            bot_responding=turns.bot_responding,
            dropped_output=turns.dropped,
            goaway_pending=supervisor.goaway_pending,
            failed=supervisor.failed,
            queued=outbox.pending,
            dropped_audio_secs=outbox.dropped_audio_secs,
            audio_stream_ended=mic.stream_ended,
        )
