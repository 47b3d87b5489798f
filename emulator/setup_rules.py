"""What each model refuses in a `setup`, refused as the service refuses it: 1007 and the field.

The 3.8 family dropped or fixed settings that earlier models took (thinking on gemini-3.8-live,
proactive audio off, affective dialog, TEXT responses). A client that still sends them is closed
by the service before any turn, so it is closed here the same way, with a reason that names the
field and says what to do instead. The reasons are the emulator's words; the service's own
wording is not documented.
"""

from __future__ import annotations

import dataclasses

from emulator.config import SessionConfig
from emulator.models import LiveModel, Thinking
from emulator.wire import WireError


def check_setup(config: SessionConfig, model: LiveModel) -> SessionConfig:
    """Refuse what `model` refuses; return the config with the model's defaults filled in.

    Raises:
        WireError: A setting the model does not accept, naming the field.
    """
    name = f"models/{model.name}"
    _check_modality(config, model, name)
    _check_thinking(config, model, name)
    _check_proactivity(config, model, name)
    if model.affective_dialog_removed and config.affective_dialog is not None:
        raise WireError(
            f"generationConfig.enableAffectiveDialog is not supported by {name}: "
            "affective dialog was removed."
        )
    _check_behaviors(config, model, name)
    return dataclasses.replace(
        config,
        default_behavior=model.default_behavior,
        default_turn_coverage=model.default_turn_coverage,
    )


def _check_modality(config: SessionConfig, model: LiveModel, name: str) -> None:
    if model.audio_only and config.modality != "AUDIO":
        raise WireError(
            f"responseModalities TEXT is not supported by {name}: use AUDIO + transcription."
        )


def _check_thinking(config: SessionConfig, model: LiveModel, name: str) -> None:
    thinking = config.thinking
    if model.thinking is Thinking.REFUSED and thinking is not None:
        raise WireError(f"generationConfig.thinkingConfig is not supported by {name}: omit it.")
    if model.thinking is not Thinking.REQUIRED:
        return
    levels = ", ".join(model.thinking_levels)
    level = str((thinking or {}).get("thinking_level") or "").upper()
    if not level or level.endswith("UNSPECIFIED"):
        raise WireError(f"thinkingConfig.thinkingLevel is required by {name}: set {levels}.")
    if level not in model.thinking_levels:
        raise WireError(
            f"thinkingConfig.thinkingLevel {level} is not supported by {name}: use {levels}."
        )


def _check_proactivity(config: SessionConfig, model: LiveModel, name: str) -> None:
    proactive = (config.proactivity or {}).get("proactive_audio")
    if model.proactive_audio_always_on and proactive is False:
        raise WireError(
            f"proactivity.proactiveAudio false is not supported by {name}: it is always on."
        )


def _check_behaviors(config: SessionConfig, model: LiveModel, name: str) -> None:
    if model.blocking_tools:
        return
    for function, behavior in config.behaviors.items():
        if behavior == "BLOCKING":
            raise WireError(
                f"behavior BLOCKING is not supported by {name}: every call is NON_BLOCKING "
                f"({function})."
            )
