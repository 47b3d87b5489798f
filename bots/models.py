"""What each Gemini Live model takes, so the bot never sends a setup the model refuses.

Google's GA model is `gemini-3.8-live` (the default); `gemini-3.8-live-extended-thinking` is its
thinking variant; `gemini-3.1-flash-live-preview` is the legacy preview, kept for what only it
does here (TEXT responses spoken by the Piper stage, the `minimal` thinking level). The facts and
their sources are in the emulator README's model table; the emulator refuses the same setups.
A model this table does not know is passed to Gemini unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "gemini-3.8-live"
LEGACY_MODEL = "gemini-3.1-flash-live-preview"
THINKING_MODEL = "gemini-3.8-live-extended-thinking"


@dataclass(frozen=True)
class ModelRules:
    """What one model accepts of the settings the bot maps into its setup."""

    thinking_levels: frozenset[str]
    """Accepted `THINKING_LEVEL`s; empty: the model takes no thinking config at all."""
    thinking_required: bool = False
    text_modality: bool = True
    affective_dialog: bool = True
    proactive_audio_off: bool = True
    blocking_tools: bool = True
    """Whether a tool may be declared BLOCKING (the extended-thinking model runs every call
    NON_BLOCKING and, as Pipecat reads it, accepts no BLOCKING declaration)."""


RULES: dict[str, ModelRules] = {
    DEFAULT_MODEL: ModelRules(
        thinking_levels=frozenset(),
        text_modality=False,
        affective_dialog=False,
        proactive_audio_off=False,
    ),
    THINKING_MODEL: ModelRules(
        thinking_levels=frozenset({"low", "medium", "high"}),
        thinking_required=True,
        text_modality=False,
        affective_dialog=False,
        proactive_audio_off=False,
        blocking_tools=False,
    ),
    LEGACY_MODEL: ModelRules(thinking_levels=frozenset({"minimal", "low", "medium", "high"})),
}


def refusals(
    model: str,
    *,
    thinking_level: str | None,
    response_modality: str,
    enable_affective_dialog: bool,
    proactive_audio: bool | None,
) -> list[str]:
    """One line per setting `model` refuses, naming the variable and what to do instead."""
    rules = RULES.get(model)
    if rules is None:
        return []
    lines = []
    if thinking_level and not rules.thinking_levels:
        lines.append(
            f"THINKING_LEVEL: {model} takes no thinking level; unset it, or set "
            f"GEMINI_MODEL={THINKING_MODEL} to think"
        )
    elif thinking_level and thinking_level not in rules.thinking_levels:
        lines.append(
            f"THINKING_LEVEL: {model} takes {' | '.join(sorted(rules.thinking_levels))}, "
            f"not {thinking_level}"
        )
    if response_modality == "TEXT" and not rules.text_modality:
        lines.append(
            f"RESPONSE_MODALITY: {model} answers in AUDIO only (its transcript gives the text); "
            f"unset it, or set GEMINI_MODEL={LEGACY_MODEL} for TEXT spoken by Piper"
        )
    if enable_affective_dialog and not rules.affective_dialog:
        lines.append(
            f"ENABLE_AFFECTIVE_DIALOG: {model} has no affective dialog (removed from its API); "
            "unset it"
        )
    if proactive_audio is False and not rules.proactive_audio_off:
        lines.append(
            f"PROACTIVE_AUDIO: {model} always listens proactively and refuses false; unset it"
        )
    return lines


def takes_blocking_tools(model: str) -> bool:
    """Whether `model` accepts a BLOCKING declaration (an unknown model is assumed to)."""
    rules = RULES.get(model)
    return rules is None or rules.blocking_tools


def default_thinking_level(model: str) -> str | None:
    """The level to send when none is set, for models that refuse a setup without one."""
    rules = RULES.get(model)
    return "low" if rules is not None and rules.thinking_required else None
