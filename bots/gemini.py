"""The Gemini Live stage: one service class, pointed at Gemini or at the emulator by `http_options`.

The emulator and Gemini are the same stage with other `http_options`, so everything downstream is
identical in tests, offline development and production.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, cast

from google.genai import types
from loguru import logger
from pipecat.services.google.gemini_live.llm import (
    ContextWindowCompressionParams,
    GeminiLiveLLMService,
    GeminiLiveLLMSettings,
    GeminiModalities,
    GeminiVADParams,
)

from bots.resilient_gemini import ResilientGeminiLiveLLMService, resilience_options
from bots.settings import Settings
from emulator.client import http_options as emulator_http_options

EMULATOR_PLACEHOLDER_KEY = "local-emulator"


def endpoint_http_options(settings: Settings) -> types.HttpOptions | None:
    """`HttpOptions` for the emulator when one is configured; None means Google's endpoint."""
    if settings.emulator_url:
        if settings.emulator_ca is None:
            raise ValueError("EMULATOR_CA must name the emulator's CA PEM when EMULATOR_URL is set")
        return emulator_http_options(settings.emulator_url, settings.emulator_ca)
    return None


def supports_non_blocking(model: str) -> bool:
    """Whether Pipecat 1.14 declares NON_BLOCKING tools for this model (2.x, or 3.8 and later)."""
    match = re.search(r"gemini(?:-[a-z]+)*-(\d+)(?:\.(\d+))?", model)
    if not match:
        return False
    version = (int(match.group(1)), int(match.group(2) or 0))
    return version < (3, 0) or version >= (3, 8)


def adapt_tools(tools: Sequence[Callable[..., Any]], model: str) -> list[Callable[..., Any]]:
    """Run NON_BLOCKING tools as blocking ones on models without NON_BLOCKING, with one log line.

    Pipecat 1.14 pushes an error for a `cancel_on_interruption=False` tool on Gemini 3.0-3.7, which
    a user would see in the browser; the tool works fine as a blocking call, so it runs as one.
    """
    if supports_non_blocking(model):
        return list(tools)
    adapted: list[Callable[..., Any]] = []
    for tool in tools:
        if getattr(tool, "_pipecat_cancel_on_interruption", True) is False:
            logger.info(
                f"{model} has no NON_BLOCKING tools: {tool.__name__} runs as a blocking tool"
            )

            @functools.wraps(tool)
            async def blocking(*args: Any, __tool: Any = tool, **kwargs: Any) -> Any:
                return await __tool(*args, **kwargs)

            blocking._pipecat_cancel_on_interruption = True  # type: ignore[attr-defined]
            adapted.append(blocking)
        else:
            adapted.append(tool)
    return adapted


def llm_settings(settings: Settings, system_instruction: str) -> GeminiLiveLLMSettings:
    """Map our settings onto the service's own `Settings`."""
    vad = None
    if settings.vad_disabled or any(
        v is not None
        for v in (
            settings.vad_start_sensitivity,
            settings.vad_end_sensitivity,
            settings.vad_prefix_padding_ms,
            settings.vad_silence_duration_ms,
        )
    ):
        vad = GeminiVADParams(
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
    kwargs: dict[str, Any] = {}
    if settings.thinking_level:
        kwargs["thinking"] = types.ThinkingConfig(thinking_level=settings.thinking_level.upper())  # type: ignore[arg-type]
    return GeminiLiveLLMSettings(
        model=f"models/{settings.gemini_model}",
        voice=settings.gemini_voice,
        language=settings.gemini_language,
        system_instruction=system_instruction,
        modalities=GeminiModalities(settings.response_modality),
        vad=vad,
        context_window_compression=ContextWindowCompressionParams(
            enabled=settings.context_window_compression,
            trigger_tokens=settings.compression_trigger_tokens,
        ),
        **kwargs,
    )


def make_llm(
    settings: Settings,
    *,
    tools: Sequence[Callable[..., Any]] = (),
    service_class: type[GeminiLiveLLMService] = ResilientGeminiLiveLLMService,
    **kwargs: Any,
) -> GeminiLiveLLMService:
    """Build the Gemini Live stage from settings; extra keyword arguments go to the service.

    The default class is our resilient subclass (goAway, reconnects, tool cancellation); any
    `GeminiLiveLLMService` subclass can stand in, Pipecat's own included.
    """
    if issubclass(service_class, ResilientGeminiLiveLLMService):
        kwargs = {**resilience_options(settings), **kwargs}
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
