"""The models the emulator answers for, and what each one supports.

Only names the real service serves for the Live API are accepted; an unknown model closes the socket
the way the service does, so a typo is caught here before it costs a deploy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveModel:
    """What a Live model supports that changes the emulator's behaviour."""

    name: str
    non_blocking_tools: bool
    deprecated: bool = False
    thinking_levels: bool = False


# NON_BLOCKING: Google documents asynchronous function calling for the 2.5 native-audio and
# half-cascade models. Pipecat 1.14 treats Gemini 3.0-3.7 as not supporting it, and the emulator
# follows that reading for gemini-3.1-flash-live-preview: the behaviour is ignored and the call
# blocks (see emulator/README.md).
MODELS: dict[str, LiveModel] = {
    m.name: m
    for m in (
        LiveModel("gemini-3.1-flash-live-preview", non_blocking_tools=False, thinking_levels=True),
        LiveModel(
            "gemini-2.5-flash-native-audio-preview-12-2025",
            non_blocking_tools=True,
            deprecated=True,
        ),
        LiveModel("gemini-live-2.5-flash-preview", non_blocking_tools=True, deprecated=True),
        LiveModel("gemini-2.0-flash-live-001", non_blocking_tools=False, deprecated=True),
    )
}

DEFAULT_MODEL = "gemini-3.1-flash-live-preview"


def lookup(model: str) -> LiveModel | None:
    """Return the model for `models/NAME` or `NAME`, or None when the service would refuse it."""
    name = model.removeprefix("models/").strip()
    return MODELS.get(name)
