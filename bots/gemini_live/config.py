"""From the bot's settings to a Gemini Live stage, pointed at Gemini or at the emulator.

The emulator and Gemini are the same stage with other `http_options`, so everything downstream
is identical in tests, offline development and production.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

from google.genai import types
from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.services.google.gemini_live.llm import (
    ContextWindowCompressionParams,
    GeminiLiveLLMService,
    GeminiLiveLLMSettings,
    GeminiMediaResolution,
    GeminiModalities,
    GeminiVADParams,
)

from bots.gemini_live.options import StageOptions
from bots.gemini_live.recording import Recorder
from bots.gemini_live.service import GeminiLiveStage
from bots.models import default_thinking_level, takes_blocking_tools
from bots.settings import Settings
from emulator.client import http_options as emulator_http_options
from toolcalls.spec import tool_options_of

EMULATOR_PLACEHOLDER_KEY = "local-emulator"


def endpoint_http_options(settings: Settings) -> types.HttpOptions | None:
    """`HttpOptions` for the emulator when one is configured; None means Google's endpoint."""
    if settings.emulator_url:
        if settings.emulator_ca is None:
            raise ValueError("EMULATOR_CA must name the emulator's CA PEM when EMULATOR_URL is set")
        return emulator_http_options(settings.emulator_url, settings.emulator_ca)
    return None


class _ModelProbe(GeminiLiveLLMService):
    """A service that is only asked about its model (it builds no client)."""

    def create_client(self) -> None:
        pass


@functools.cache
def takes_non_blocking_tools(model: str) -> bool:
    """Whether Pipecat declares NON_BLOCKING tools for this model (Pipecat's own answer).

    The service's public `accepts_intermediate_function_call_results` follows the same model
    gating as its NON_BLOCKING declarations and scheduling.
    """
    probe = _ModelProbe(api_key="unused", settings=GeminiLiveLLMSettings(model=f"models/{model}"))
    return probe.accepts_intermediate_function_call_results


def adapt_tools(tools: Sequence[Callable[..., Any]], model: str) -> list[Callable[..., Any]]:
    """Register each tool the way the model runs it, so its declaration says so; one log line
    for each tool changed.

    Pipecat declares a `cancel_on_interruption=False` tool NON_BLOCKING and, where NON_BLOCKING
    is the default and BLOCKING is accepted (gemini-3.8-live), every other tool BLOCKING.

    - On a model without NON_BLOCKING (Gemini 3.0-3.7) Pipecat 1.14 pushes an error for a
      NON_BLOCKING tool, which a user would see in the browser; the tool works fine as a
      blocking call, so it runs as one.
    - On a model that accepts no BLOCKING declaration (the extended-thinking model) Pipecat
      leaves the other tools untagged (and warns that they will not pause the conversation).
      Here we differ: they run NON_BLOCKING, as the model runs every call, so each declaration
      says NON_BLOCKING; their calls are then not cancelled by an interruption and their
      results are spoken WHEN_IDLE, as for any NON_BLOCKING tool.
    """
    if not takes_non_blocking_tools(model):
        why = f"{model} has no NON_BLOCKING tools"
        return [_registered(tool, non_blocking=False, why=why) for tool in tools]
    if not takes_blocking_tools(model):
        why = f"{model} accepts no BLOCKING declaration"
        return [_registered(tool, non_blocking=True, why=why) for tool in tools]
    return list(tools)


def _registered(tool: Callable[..., Any], *, non_blocking: bool, why: str) -> Callable[..., Any]:
    """``tool`` itself when it already runs as asked; else a wrapper with the other option."""
    declared = tool_options_of(tool)
    if declared.cancel_on_interruption is not non_blocking:
        return tool
    kind = "NON_BLOCKING" if non_blocking else "blocking"
    logger.info(f"{why}: {tool.__name__} runs as a {kind} tool")

    @functools.wraps(tool)
    async def adapted(*args: Any, __tool: Any = tool, **kwargs: Any) -> Any:
        return await __tool(*args, **kwargs)

    return tool_options(
        adapted, cancel_on_interruption=not non_blocking, timeout_secs=declared.timeout_secs
    )


def _vad_params(settings: Settings) -> GeminiVADParams | None:
    tuned = (
        settings.vad_start_sensitivity,
        settings.vad_end_sensitivity,
        settings.vad_prefix_padding_ms,
        settings.vad_silence_duration_ms,
    )
    if not settings.vad_disabled and all(v is None for v in tuned):
        return None
    return GeminiVADParams(
        disabled=settings.vad_disabled or None,
        start_sensitivity=(
            types.StartSensitivity(f"START_SENSITIVITY_{settings.vad_start_sensitivity}")
            if settings.vad_start_sensitivity
            else None
        ),
        end_sensitivity=(
            types.EndSensitivity(f"END_SENSITIVITY_{settings.vad_end_sensitivity}")
            if settings.vad_end_sensitivity
            else None
        ),
        prefix_padding_ms=settings.vad_prefix_padding_ms,
        silence_duration_ms=settings.vad_silence_duration_ms,
    )


def llm_settings(settings: Settings, system_instruction: str) -> GeminiLiveLLMSettings:
    """Map our settings onto the service's own `Settings`."""
    kwargs: dict[str, Any] = {}
    # Only what the model takes is sent (`bots.models` refused the rest at start): a 3.8 setup
    # carries no thinking config, no affective dialog and no `proactive_audio: false`.
    thinking = settings.thinking_level or default_thinking_level(settings.gemini_model)
    if thinking:
        kwargs["thinking"] = types.ThinkingConfig(thinking_level=thinking.upper())  # type: ignore[arg-type]
    if settings.enable_affective_dialog:
        kwargs["enable_affective_dialog"] = True
    if settings.proactive_audio is not None:
        kwargs["proactivity"] = types.ProactivityConfig(proactive_audio=settings.proactive_audio)
    if settings.media_resolution:
        kwargs["media_resolution"] = GeminiMediaResolution[settings.media_resolution]
    return GeminiLiveLLMSettings(
        model=f"models/{settings.gemini_model}",
        voice=settings.gemini_voice,
        language=settings.gemini_language,
        system_instruction=system_instruction,
        modalities=GeminiModalities(settings.response_modality),
        vad=_vad_params(settings),
        context_window_compression=ContextWindowCompressionParams(
            enabled=settings.context_window_compression,
            trigger_tokens=settings.compression_trigger_tokens,
        ),
        **kwargs,
    )


def stage_options(settings: Settings) -> StageOptions:
    """The stage's options that the bot settings set (the rest keep their defaults)."""
    return StageOptions(
        reconnect_attempts=settings.reconnect_attempts,
        reconnect_base_delay_secs=settings.reconnect_base_delay_secs,
        reconnect_max_delay_secs=settings.reconnect_max_delay_secs,
        resumption_handle_ttl_secs=settings.resumption_handle_ttl_secs,
        recorder=recorder_for(settings),
    )


def recorder_for(settings: Settings) -> Recorder | None:
    """`RECORD_DIR`'s recorder, scrubbing the key this process holds; None when unset."""
    if settings.record_dir is None:
        return None
    key = settings.google_api_key.get_secret_value() if settings.google_api_key else ""
    return Recorder(settings.record_dir, secrets=[key], audio=settings.record_audio)


def make_llm(
    settings: Settings,
    *,
    tools: Sequence[Callable[..., Any]] = (),
    service_class: type[GeminiLiveLLMService] = GeminiLiveStage,
    **kwargs: Any,
) -> GeminiLiveLLMService:
    """Build the Gemini Live stage from settings; extra keyword arguments go to the service.

    The default class is `GeminiLiveStage` (goAway, reconnects, tool cancellation), which also
    takes any `StageOptions` field by name; any `GeminiLiveLLMService` subclass can stand in,
    Pipecat's own included.
    """
    if issubclass(service_class, GeminiLiveStage):
        kwargs.setdefault("options", stage_options(settings))
    key = (
        settings.google_api_key.get_secret_value()
        if settings.google_api_key
        else EMULATOR_PLACEHOLDER_KEY
    )
    return service_class(
        api_key=key,
        settings=llm_settings(settings, settings.system_instruction),
        tools=cast(Any, adapt_tools(tools, settings.gemini_model)) or None,
        http_options=endpoint_http_options(settings),
        function_call_timeout_secs=settings.tool_timeout_secs,
        **kwargs,
    )
