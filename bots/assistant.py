"""The assistant: a voice bot with real offline tools (time, calculator, notes).

Start it with `make run` (`python -m bots`). Pipecat's way, `python -m bots.assistant
[-t webrtc|daily] [--host H] [--port P]`, does the same (`bots.pipecat_runner`): the local
emulator when there is no `GOOGLE_API_KEY`, and our page at `/client/`. `bot` is the entry point
the server calls for each session.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loguru import logger
from pipecat.observers.base_observer import BaseObserver
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.processors.frameworks.rtvi.observer import RTVIObserverParams
from pipecat.runner.types import RunnerArguments, SmallWebRTCRunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.transports.base_transport import BaseTransport, TransportParams, VideoInSourceParams
from pipecat.workers.runner import WorkerRunner

from bots import lifecycle, metrics
from bots.conversations import ConversationKeeper, Resumed, conversation_id_in, resume
from bots.gemini_live.config import make_llm, takes_non_blocking_tools
from bots.models import takes_blocking_tools
from bots.pipeline import Assembled, Stages, assemble, local_vad, piper_tts
from bots.settings import Settings, load_settings
from bots.storage import open_stores
from bots.tools import NotesStore, assistant_tools
from observers.bot_metrics import BotMetricsObserver
from observers.transcript import TranscriptObserver
from processors.tool_calls import ToolCallProcessor, report_levels
from toolcalls.registry import ToolRegistry
from toolcalls.spec import Scheduling
from transcripts import TranscriptRecorder

DEFAULT_USER = "local-user"
SAFE_TO_SHOW = {"get_current_time", "calculate"}  # notes are personal: the browser sees names only
SCHEDULING: dict[str, Scheduling] = {"remember_note": "WHEN_IDLE"}
"""How Gemini treats the result of each NON_BLOCKING tool: a saved note is confirmed once the
current sentence is over. Every other assistant tool is BLOCKING: the reply needs its answer."""


def transport_params(*, vision: bool) -> dict[str, Callable[[], Any]]:
    """Transport parameters for each transport the runner may hand us."""
    video: dict[str, Any] = (
        {
            "video_in_enabled": True,
            "video_in_sources": {
                "camera": VideoInSourceParams(framerate=1),
                "screenVideo": VideoInSourceParams(framerate=1),
            },
        }
        if vision
        else {}
    )

    def webrtc() -> TransportParams:
        return TransportParams(audio_in_enabled=True, audio_out_enabled=True, **video)

    def daily() -> Any:
        from pipecat.transports.daily.transport import DailyParams

        return DailyParams(audio_in_enabled=True, audio_out_enabled=True, **video)

    return {"webrtc": webrtc, "daily": daily}


def user_id_of(runner_args: RunnerArguments) -> str:
    """Whose notes this session sees: `body.user_id` from the client, or the local user."""
    body = getattr(runner_args, "body", None) or {}
    user = body.get("user_id") if isinstance(body, dict) else None
    return str(user) if user else DEFAULT_USER


def owner_name(settings: Settings) -> str:
    """This process's name in the conversation store: its replica id, or its host name."""
    return settings.replica_id or socket.gethostname()


def assistant_llm(
    settings: Settings,
    *,
    user_id: str = DEFAULT_USER,
    extra_tools: Sequence[Callable[..., Any]] = (),
    stage_options: Mapping[str, Any] | None = None,
    notes: NotesStore | None = None,
) -> tuple[GeminiLiveLLMService, ToolRegistry]:
    """The assistant's Gemini Live stage with its tools, each wrapped by the session's registry.

    ``stage_options`` are `bots.gemini_live.options.StageOptions` fields by name (tests pass
    short retry delays); the settings and the defaults give the rest. ``notes`` defaults to
    the process's store for these settings (`bots.storage`).
    """
    store = notes if notes is not None else open_stores(settings).notes
    registry = ToolRegistry(timeout_secs=settings.tool_timeout_secs)
    tools = [
        registry.wrap(
            tool,
            show_arguments=tool.__name__ in SAFE_TO_SHOW,
            scheduling=SCHEDULING.get(tool.__name__),
        )
        for tool in [*assistant_tools(store, user_id), *extra_tools]
    ]
    metrics.declare_tools(registry.names())
    # On a stop, the bot finishes what it is saying for at most this long, then the stage
    # ends its turn, the session ends and the Gemini socket closes with a normal close.
    options = {"finish_speaking_secs": lifecycle.FINISH_SPEAKING_SECS, **(stage_options or {})}
    llm = make_llm(settings, tools=tools, **options)

    @llm.event_handler("on_tool_calls_cancelled_by_model")
    def _cancelled_by_model(_llm: object, call_ids: Sequence[str]) -> None:
        for call_id in call_ids:
            registry.cancel(call_id, by_model=True)

    return llm, registry


def build_assistant(
    settings: Settings,
    transport: BaseTransport,
    *,
    user_id: str = DEFAULT_USER,
    user_processors: Sequence[FrameProcessor] = (),
    bot_processors: Sequence[FrameProcessor] = (),
    extra_tools: Sequence[Callable[..., Any]] = (),
    idle_timeout_secs: float | None = 300,
    bot_name: str = "assistant",
    stage_options: Mapping[str, Any] | None = None,
    conversation: Resumed | None = None,
    observers: Sequence[BaseObserver] = (),
) -> Assembled:
    """Assemble the assistant's pipeline on any transport (tests pass their own); see
    `assistant_llm` for the stage and its tools. ``observers`` watch the pipeline beside the
    transcript's and the metrics' (a benchmark's timing, say).

    ``conversation`` (from `bots.conversations.resume`) continues a stored conversation: its
    history seeds the context, its handle resumes the Gemini session, and a keeper stores what
    changes (`Assembled.keeper`, closed by the caller when the session ends).
    """
    stores = open_stores(settings)
    options = {**(conversation.stage_options if conversation else {}), **(stage_options or {})}
    llm, registry = assistant_llm(
        settings,
        user_id=user_id,
        extra_tools=extra_tools,
        stage_options=options,
        notes=stores.notes,
    )
    # In TEXT modality Gemini's turn is long complete while Piper still speaks it, so no
    # `interrupted` comes from the server: a local VAD is what stops the voice (bots.pipeline).
    speaks_text = settings.response_modality == "TEXT"
    tts = piper_tts() if speaks_text else None
    metadata: dict[str, Any] = {
        "bot": bot_name,
        "user": user_id,  # the session token's user (or the local one), never the client's
        "model": settings.gemini_model,
        "modality": settings.response_modality,
        "endpoint": "emulator" if settings.emulator_url else "gemini",
    }
    if conversation is not None:
        metadata["conversation"] = conversation.conversation_id
    transcript = TranscriptRecorder(stores.transcripts, metadata=metadata)
    transcript_observer = TranscriptObserver(transcript, on_latency=metrics.TURN_LATENCY.observe)
    metrics_observer = BotMetricsObserver(
        on_tool_call=metrics.tool_call, on_output_gap=metrics.output_gap
    )
    assembled = assemble(
        Stages(
            transport=transport,
            llm=llm,
            context=LLMContext(messages=conversation.messages if conversation else None),
            user_processors=user_processors,
            bot_processors=[
                ToolCallProcessor(
                    registry,
                    non_blocking_tools=takes_non_blocking_tools(settings.gemini_model),
                    every_call_non_blocking=not takes_blocking_tools(settings.gemini_model),
                ),
                *bot_processors,
            ],
            tts=tts,
            vad=local_vad() if speaks_text else None,
        ),
        observers=[transcript_observer, metrics_observer, *observers],
        rtvi_observer_params=RTVIObserverParams(function_call_report_level=report_levels(registry)),
        idle_timeout_secs=idle_timeout_secs,
        enable_tracing=settings.enable_tracing,
    )
    transcript_observer.attach(assembled.aggregators)
    if conversation is not None and conversation.conversation is not None:
        assembled.keeper = ConversationKeeper(
            stores.conversations,
            conversation.conversation_id,
            conversation.owner or owner_name(settings),
        )
        assembled.keeper.attach(
            llm, assembled.aggregators, transcript, earlier=conversation.conversation.history
        )
    return assembled


class NoModelEndpoint(RuntimeError):
    """Neither a `GOOGLE_API_KEY` nor an emulator: the stage would dial Google with no key."""


def check_endpoint(settings: Settings) -> None:
    """Refuse to run a session that has no model to talk to.

    `python -m bots` starts an emulator when there is no key; a bot started some other way (by
    Pipecat's own runner, say) has none, and Gemini would refuse it only after DNS and retries.

    Raises:
        NoModelEndpoint: no `GOOGLE_API_KEY` and no `EMULATOR_URL`.
    """
    if settings.uses_emulator and not settings.emulator_url:
        raise NoModelEndpoint(
            "GOOGLE_API_KEY is not set and no emulator is running: start the bot with "
            "`make run` (or `python -m bots`), which starts the local emulator, or set "
            "GOOGLE_API_KEY in .env"
        )


async def run(
    runner_args: RunnerArguments,
    *,
    vision: bool = False,
    user_processors: Sequence[FrameProcessor] = (),
    observers: Sequence[BaseObserver] = (),
) -> None:
    """Create the transport the runner chose, assemble, and run until the client leaves."""
    settings = load_settings()
    check_endpoint(settings)
    user_id = user_id_of(runner_args)
    try:
        requested = conversation_id_in(getattr(runner_args, "body", None))
    except ValueError as exc:  # the server refuses such ids; the dev runner does not
        logger.warning(f"ignoring the client's conversation id: {exc}")
        requested = None
    conversation = await resume(
        open_stores(settings).conversations, requested, user_id, owner_name(settings)
    )
    transport = await create_transport(runner_args, transport_params(vision=vision))
    assembled = build_assistant(
        settings,
        transport,
        user_id=user_id,
        user_processors=user_processors,
        idle_timeout_secs=runner_args.pipeline_idle_timeout_secs,
        bot_name="vision" if vision else "assistant",
        conversation=conversation,
        observers=observers,
    )
    logger.info(
        f"{'vision' if vision else 'assistant'} bot: model {settings.gemini_model} via "
        f"{'the local emulator' if settings.uses_emulator else 'Gemini'}"
    )
    # A page that named its conversation reconnects when asked to move to another replica; a
    # client that did not would only be kept waiting, and a Daily room is handed over instead.
    movable = requested is not None and isinstance(runner_args, SmallWebRTCRunnerArguments)
    keeper = assembled.keeper if movable else None
    lifecycle.track(
        assembled.worker,
        conversation=keeper.conversation_id if keeper is not None else None,
        ready_to_move=keeper.ready_to_move if keeper is not None else None,
    )
    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.add_workers(assembled.worker)
    try:
        await runner.run()
    finally:
        if assembled.keeper is not None:
            await assembled.keeper.close()


async def bot(runner_args: RunnerArguments) -> None:
    """One session: what our server (and Pipecat's runner, given a key or an emulator) calls."""
    await run(runner_args)


if __name__ == "__main__":
    from bots.pipecat_runner import main

    sys.exit(main("assistant"))
