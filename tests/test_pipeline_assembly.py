"""One module assembles every bot, and every stage of it is swappable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.genai import types
from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMUserAggregator,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.processors.frameworks.rtvi.processor import RTVIProcessor
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.daily.transport import DailyParams, DailyTransport
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

from bots.assistant import build_assistant, transport_params, user_id_of
from bots.gemini_live.config import (
    adapt_tools,
    endpoint_http_options,
    llm_settings,
    make_llm,
    takes_non_blocking_tools,
)
from bots.settings import Settings
from bots.tools import NotesStore, make_notes_tools
from emulator.certs import ensure_certs
from processors.tool_calls import ToolCallProcessor
from toolcalls.spec import tool_options_of

pytestmark = pytest.mark.unit


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **overrides)  # type: ignore[call-arg]


def webrtc() -> BaseTransport:
    return SmallWebRTCTransport(
        webrtc_connection=SmallWebRTCConnection(), params=transport_params(vision=False)["webrtc"]()
    )


def daily() -> BaseTransport:
    return DailyTransport(
        "https://example.invalid/room",
        None,
        "bot",
        params=transport_params(vision=False)["daily"](),
    )


def kinds(processors: list[FrameProcessor]) -> list[type]:
    return [type(p) for p in processors]


@pytest.mark.parametrize("make_transport", [webrtc, daily], ids=["webrtc", "daily"])
@pytest.mark.parametrize("modality", ["AUDIO", "TEXT"])
def test_the_assistant_pipeline_has_every_stage_in_order(
    tmp_path: Path, make_transport: Any, modality: str
) -> None:
    transport = make_transport()
    marker_user, marker_bot = FrameProcessor(name="user-side"), FrameProcessor(name="bot-side")
    # TEXT, spoken by the Piper stage, is a gemini-3.1 mode: the 3.8 family answers in audio.
    model = "gemini-3.1-flash-live-preview" if modality == "TEXT" else "gemini-3.8-live"
    assembled = build_assistant(
        settings_for(tmp_path, response_modality=modality, gemini_model=model),
        transport,
        user_processors=[marker_user],
        bot_processors=[marker_bot],
    )
    processors = assembled.pipeline.processors[1:-1]  # without the pipeline's own source/sink
    expected: list[Any] = [
        transport.input(),
        marker_user,
        LLMUserAggregator,
        GeminiLiveLLMService,
        *([PiperTTSService] if modality == "TEXT" else []),
        ToolCallProcessor,
        marker_bot,
        transport.output(),
        LLMAssistantAggregator,
    ]
    assert len(processors) == len(expected)
    for got, want in zip(processors, expected, strict=True):
        if isinstance(want, type):
            assert isinstance(got, want), (got, want)
        else:
            assert got is want


def test_the_worker_adds_rtvi_so_the_browser_gets_messages(tmp_path: Path) -> None:
    assembled = build_assistant(settings_for(tmp_path), webrtc())
    assert isinstance(assembled.worker.rtvi, RTVIProcessor)


def test_the_model_endpoint_is_the_emulator_when_configured(tmp_path: Path) -> None:

    paths = ensure_certs(tmp_path / "certs")
    options = endpoint_http_options(
        settings_for(tmp_path, emulator_url="https://127.0.0.1:9", emulator_ca=paths.ca)
    )
    assert options is not None and options.base_url == "https://127.0.0.1:9"
    assert endpoint_http_options(settings_for(tmp_path)) is None
    with pytest.raises(ValueError, match="EMULATOR_CA"):
        endpoint_http_options(settings_for(tmp_path, emulator_url="https://127.0.0.1:9"))


def test_the_service_gets_the_configured_model_voice_and_compression(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        gemini_model="gemini-3.1-flash-live-preview",
        gemini_voice="Puck",
        vad_silence_duration_ms=800,
        thinking_level="low",
        context_window_compression=True,
    )
    s = llm_settings(settings, "Be brief.")
    assert s.model == "models/gemini-3.1-flash-live-preview"
    assert s.voice == "Puck"
    assert s.system_instruction == "Be brief."
    assert s.vad is not None and s.vad.silence_duration_ms == 800
    assert s.context_window_compression is not None
    assert s.context_window_compression.enabled is True
    assert s.thinking is not None and s.thinking.thinking_level == "LOW"


@pytest.mark.parametrize(
    ("model", "thinking"),
    [("gemini-3.8-live", None), ("gemini-3.8-live-extended-thinking", "LOW")],
)
def test_a_3_8_setup_carries_only_what_the_model_takes(
    tmp_path: Path, model: str, thinking: str | None
) -> None:
    s = llm_settings(settings_for(tmp_path, gemini_model=model), "Be brief.")
    assert s.model == f"models/{model}"
    got = s.thinking if isinstance(s.thinking, types.ThinkingConfig) else None
    assert (got.thinking_level if got else None) == thinking
    assert not isinstance(s.enable_affective_dialog, bool) or s.enable_affective_dialog is False
    assert not isinstance(s.proactivity, types.ProactivityConfig)


def test_media_resolution_reaches_the_service(tmp_path: Path) -> None:
    s = llm_settings(settings_for(tmp_path, media_resolution="LOW"), "Look.")
    assert s.media_resolution == "MEDIA_RESOLUTION_LOW"


def test_the_service_class_is_swappable(tmp_path: Path) -> None:
    class Custom(GeminiLiveLLMService):
        pass

    llm = make_llm(settings_for(tmp_path), service_class=Custom)
    assert isinstance(llm, Custom)


@pytest.mark.parametrize(
    ("model", "supported"),
    [
        ("gemini-3.1-flash-live-preview", False),
        ("gemini-3.0-live", False),
        ("gemini-3.7-live", False),
        ("gemini-3.8-live", True),
        ("gemini-2.5-flash-native-audio-preview-12-2025", True),
        ("gemini-live-2.5-flash-preview", True),
        # Pipecat's own gating treats a model with no Gemini version in its name as current.
        ("not-a-gemini-model", True),
    ],
)
def test_non_blocking_support_follows_pipecats_model_gating(model: str, supported: bool) -> None:
    assert takes_non_blocking_tools(model) is supported


def test_a_non_blocking_tool_runs_blocking_on_a_model_without_it(tmp_path: Path) -> None:

    messages: list[str] = []
    sink = logger.add(messages.append, level="INFO", format="{message}")
    try:
        store = NotesStore(tmp_path / "notes.sqlite")
        tools = make_notes_tools(store, "u")
        adapted = adapt_tools(tools, "gemini-3.1-flash-live-preview")
    finally:
        logger.remove(sink)
    remember = next(t for t in adapted if t.__name__ == "remember_note")
    assert remember._pipecat_cancel_on_interruption is True  # type: ignore[attr-defined]
    assert [m for m in messages if "remember_note" in m and "blocking" in m]
    # The schema the model sees is unchanged by the wrapper.
    original = next(t for t in tools if t.__name__ == "remember_note")
    assert (
        DirectFunctionWrapper(remember).to_function_schema().to_default_dict()
        == DirectFunctionWrapper(original).to_function_schema().to_default_dict()
    )
    assert adapt_tools(tools, "gemini-2.5-flash-native-audio-preview-12-2025") == tools


def test_every_tool_runs_non_blocking_on_a_model_that_takes_no_blocking_declaration(
    tmp_path: Path, log: list[str]
) -> None:
    tools = make_notes_tools(NotesStore(tmp_path / "notes.sqlite"), "u")
    adapted = adapt_tools(tools, "gemini-3.8-live-extended-thinking")
    # Registered NON_BLOCKING, Pipecat declares each one so (the emulator test shows the wire).
    assert [tool_options_of(t).cancel_on_interruption for t in adapted] == [False] * len(tools)
    remember = next(t for t in tools if t.__name__ == "remember_note")
    assert remember in adapted, "a tool that already runs NON_BLOCKING is passed as it is"
    changed = [t.__name__ for t in tools if t is not remember]
    logged = [n for n in changed if any(f"{n} runs as a NON_BLOCKING tool" in m for m in log)]
    assert changed and logged == changed, log
    assert [t.__name__ for t in adapted] == [t.__name__ for t in tools]
    for tool, wrapped in zip(tools, adapted, strict=True):
        assert tool_options_of(wrapped).timeout_secs == tool_options_of(tool).timeout_secs
        assert (
            DirectFunctionWrapper(wrapped).to_function_schema().to_default_dict()
            == DirectFunctionWrapper(tool).to_function_schema().to_default_dict()
        )
    assert adapt_tools(tools, "gemini-3.8-live") == tools, "BLOCKING is declared there"


def test_the_vision_bot_asks_the_transport_for_camera_and_screen(tmp_path: Path) -> None:
    params = transport_params(vision=True)
    webrtc_params = params["webrtc"]()
    assert isinstance(webrtc_params, TransportParams)
    assert webrtc_params.video_in_enabled
    assert set(webrtc_params.video_in_sources) == {"camera", "screenVideo"}
    assert all(s.framerate == 1 for s in webrtc_params.video_in_sources.values())
    assert isinstance(params["daily"](), DailyParams)
    assert not transport_params(vision=False)["webrtc"]().video_in_enabled


def test_the_user_id_comes_from_the_client_body_or_defaults() -> None:
    class Args:
        body: Any = None

    args = Args()
    assert user_id_of(args) == "local-user"  # type: ignore[arg-type]
    args.body = {"user_id": "alice"}
    assert user_id_of(args) == "alice"  # type: ignore[arg-type]


def test_a_session_loads_no_turn_model_since_gemini_detects_turns_on_its_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pipecat's default stop strategy would load Smart Turn's ONNX model for every session.
    from pipecat.turns.user_start import VADUserTurnStartStrategy
    from pipecat.turns.user_stop import (
        SpeechTimeoutUserTurnStopStrategy,
        TurnAnalyzerUserTurnStopStrategy,
    )
    from pipecat.turns.user_turn_controller import UserTurnController

    # The user aggregator keeps its controller private: see it as it is built instead.
    built: list[UserTurnController] = []
    construct = UserTurnController.__init__

    def recorded(self: UserTurnController, *args: Any, **kwargs: Any) -> None:
        construct(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(UserTurnController, "__init__", recorded)
    build_assistant(settings_for(tmp_path), webrtc())
    (controller,) = built  # the session's one user aggregator
    stop = controller.user_turn_strategies.stop or []
    assert [type(s) for s in stop] == [SpeechTimeoutUserTurnStopStrategy]
    start = controller.user_turn_strategies.start or []
    assert [type(s) for s in start] == [VADUserTurnStartStrategy]
    assert not any(isinstance(s, TurnAnalyzerUserTurnStopStrategy) for s in stop)


@pytest.mark.parametrize("modality", ["AUDIO", "TEXT"])
def test_only_the_bot_whose_voice_is_piper_listens_with_a_local_vad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, modality: str
) -> None:
    # In TEXT modality Gemini's turn is over while Piper still speaks, so Gemini sends no
    # `interrupted`: Silero on the user aggregator is what stops the voice. In AUDIO modality
    # Gemini interrupts its own audio, and no VAD model is loaded for the session.
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_controller import VADController

    analyzers: list[object] = []
    construct = VADController.__init__

    def recorded(self: VADController, vad_analyzer: Any, *args: Any, **kwargs: Any) -> None:
        construct(self, vad_analyzer, *args, **kwargs)
        analyzers.append(vad_analyzer)

    monkeypatch.setattr(VADController, "__init__", recorded)
    model = "gemini-3.1-flash-live-preview" if modality == "TEXT" else "gemini-3.8-live"
    build_assistant(
        settings_for(tmp_path, response_modality=modality, gemini_model=model), webrtc()
    )
    if modality == "TEXT":
        assert [type(a) for a in analyzers] == [SileroVADAnalyzer]
    else:
        assert analyzers == []
