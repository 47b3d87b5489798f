"""The models the emulator answers for, and what each one supports.

Only names the real service serves for the Live API are accepted; an unknown model closes the socket
the way the service does, so a typo is caught here before it costs a deploy. What a model refuses in
a setup is checked in `emulator.setup_rules`; what it does with function calls and turn ends is read
from here by the session.

Sources (read 2026-12-02; the emulator README's model table gives each cell its source):
- Gemini 3.8 Live: https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live#migrating
- Gemini 3.1 Flash Live: https://ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview
- Pipecat 1.14, `services/google/gemini_live/llm.py`: `_supports_non_blocking_tools`,
  `_tools_default_to_non_blocking`, `_supports_blocking_tools`, `_expects_interaction_status`,
  `_resolved_thinking_config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

ALL_VIDEO = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO"
ONLY_ACTIVITY = "TURN_INCLUDES_ONLY_ACTIVITY"


class Thinking(Enum):
    """What a model does with `generationConfig.thinkingConfig`."""

    RECORDED = "recorded"
    """Accepted as sent and shown in the session summary; levels are not checked."""
    REFUSED = "refused"
    """Any thinking config closes the setup (gemini-3.8-live: "omit thinking_config")."""
    REQUIRED = "required"
    """A `thinkingLevel` out of the model's levels is required (the extended-thinking model)."""


@dataclass(frozen=True)
class LiveModel:
    """What a Live model supports that changes the emulator's behaviour.

    Attributes:
        name: The model id, without `models/`.
        non_blocking_tools: `behavior: NON_BLOCKING` is honoured at all.
        non_blocking_by_default: A function declared without `behavior` runs NON_BLOCKING.
        blocking_tools: A function declared `behavior: BLOCKING` is accepted (and blocks).
        deprecated: Google has announced the model's shutdown.
        thinking: What a thinking config does.
        thinking_levels: The levels accepted when `thinking` is REQUIRED.
        audio_only: A TEXT response modality is refused.
        proactive_audio_always_on: `proactivity.proactiveAudio: false` is refused.
        affective_dialog_removed: Any `enableAffectiveDialog` is refused.
        reports_interaction_status: `turnComplete` carries `interactionStatus`.
        default_turn_coverage: What a turn includes when the setup does not say.
        vertex_variants: The Vertex-guide behaviours (`cancel_blocking_on_input`,
            `polite_interrupt`) apply when the emulator is started with them.
    """

    name: str
    non_blocking_tools: bool
    non_blocking_by_default: bool = False
    blocking_tools: bool = True
    deprecated: bool = False
    thinking: Thinking = Thinking.RECORDED
    thinking_levels: tuple[str, ...] = ()
    audio_only: bool = False
    proactive_audio_always_on: bool = False
    affective_dialog_removed: bool = False
    reports_interaction_status: bool = False
    default_turn_coverage: str = ALL_VIDEO
    vertex_variants: bool = False

    def runs_non_blocking(self, behavior: str) -> bool:
        """Whether a function declared with `behavior` (`""` when unset) lets the model go on."""
        if not self.non_blocking_tools:
            return False
        if behavior == "NON_BLOCKING":
            return True
        if behavior == "BLOCKING":
            return False
        return self.non_blocking_by_default

    @property
    def default_behavior(self) -> str:
        """How a function declared without `behavior` runs."""
        return "NON_BLOCKING" if self.runs_non_blocking("") else "BLOCKING"


# Google's 3.8 page: NON_BLOCKING is the default, BLOCKING still declarable; no thinking_level on
# gemini-3.8-live; proactive audio permanently on (false is an error); affective dialog removed;
# AUDIO the response modality.
GEMINI_38 = LiveModel(
    "gemini-3.8-live",
    non_blocking_tools=True,
    non_blocking_by_default=True,
    thinking=Thinking.REFUSED,
    audio_only=True,
    proactive_audio_always_on=True,
    affective_dialog_removed=True,
    vertex_variants=True,
)

# Pipecat: thinking models (>= 3.8, "thinking" in the id) run every call NON_BLOCKING and do not
# accept a BLOCKING declaration, report interaction_status, and need a thinking_level ("the API has
# no default and rejects a setup without one"; MINIMAL is rejected). The emulator refuses a BLOCKING
# declaration there rather than running it NON_BLOCKING, so a client the service would refuse is
# refused here first.
GEMINI_38_EXTENDED_THINKING = dataclasses.replace(
    GEMINI_38,
    name="gemini-3.8-live-extended-thinking",
    blocking_tools=False,
    thinking=Thinking.REQUIRED,
    thinking_levels=("LOW", "MEDIUM", "HIGH"),
    reports_interaction_status=True,
)

MODELS: dict[str, LiveModel] = {
    m.name: m
    for m in (
        GEMINI_38,
        GEMINI_38_EXTENDED_THINKING,
        # NON_BLOCKING: Google documents asynchronous function calling for the 2.5 native-audio
        # and half-cascade models only; 3.1 is "synchronous only" (Google's 3.1 page and tools
        # page; Pipecat treats 3.0-3.7 the same), so its behaviour is ignored and the call
        # blocks.
        LiveModel("gemini-3.1-flash-live-preview", non_blocking_tools=False),
        LiveModel(
            "gemini-2.5-flash-native-audio-preview-12-2025",
            non_blocking_tools=True,
            deprecated=True,
            default_turn_coverage=ONLY_ACTIVITY,
        ),
        LiveModel(
            "gemini-live-2.5-flash-preview",
            non_blocking_tools=True,
            deprecated=True,
            default_turn_coverage=ONLY_ACTIVITY,
        ),
        LiveModel(
            "gemini-2.0-flash-live-001",
            non_blocking_tools=False,
            deprecated=True,
            default_turn_coverage=ONLY_ACTIVITY,
        ),
    )
}

DEFAULT_MODEL = "gemini-3.8-live"
"""The model Google names the default for voice agents (and Pipecat 1.14's default)."""


def lookup(model: str) -> LiveModel | None:
    """Return the model for `models/NAME` or `NAME`, or None when the service would refuse it."""
    name = model.removeprefix("models/").strip()
    return MODELS.get(name)
