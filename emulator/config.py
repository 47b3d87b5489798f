"""A connection's configuration: the parts of its `setup` message that change the emulator.

The setup is checked here as the service checks it (enum values, one response modality, named
function declarations), so a client that the service would refuse is refused before any turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.brain import ToolDecl
from emulator.wire import WireError, text_of

_MODALITIES = ("AUDIO", "TEXT")


def _enum(value: Any, prefix: str, names: tuple[str, ...], name: str) -> str | None:
    """Check the enum field `name`: the full names `PREFIX+NAME` are valid, `*_UNSPECIFIED`
    means unset."""
    if value is None:
        return None
    text = str(value).upper()
    if text.endswith("UNSPECIFIED"):
        return None
    allowed = [prefix + n for n in names]
    if text not in allowed:
        raise WireError(
            f"Invalid value {value!r} for {name}: expected one of {', '.join(allowed)}."
        )
    return text


@dataclass
class SessionConfig:
    """The parts of a `setup` message that change what the emulator does."""

    model: str
    modality: str = "AUDIO"
    voice: str | None = None
    language: str | None = None
    system_instruction: str = ""
    tools: list[ToolDecl] = field(default_factory=list)
    vad_disabled: bool = False
    silence_ms: int = 500
    prefix_padding_ms: int = 300
    start_sensitivity: str | None = None
    end_sensitivity: str | None = None
    activity_handling: str = "START_OF_ACTIVITY_INTERRUPTS"
    turn_coverage: str | None = None
    input_transcription: bool = False
    output_transcription: bool = False
    resumption: bool = False
    resume_handle: str | None = None
    transparent: bool = False
    compression: dict[str, Any] | None = None
    initial_history_in_client_content: bool = False
    thinking: dict[str, Any] | None = None
    temperature: float | None = None
    behaviors: dict[str, str] = field(default_factory=dict)
    media_resolution: str | None = None
    proactivity: dict[str, Any] | None = None
    affective_dialog: bool | None = None
    default_behavior: str = "BLOCKING"
    default_turn_coverage: str | None = None

    @classmethod
    def from_setup(cls, setup: dict[str, Any]) -> SessionConfig:
        """Read a normalised (snake_case) `setup` message, refusing what the service refuses."""
        if not isinstance(setup, dict):
            raise WireError("Invalid setup: expected an object.")
        model = setup.get("model")
        if not isinstance(model, str) or not model.strip():
            raise WireError(
                "Invalid setup: 'model' is required, e.g. 'models/gemini-3.1-flash-live-preview'."
            )
        gen = setup.get("generation_config") or {}
        modalities = [str(m).upper() for m in gen.get("response_modalities") or ["AUDIO"]]
        if len(modalities) != 1 or modalities[0] not in _MODALITIES:
            raise WireError(
                f"Invalid responseModalities {modalities}: exactly one of AUDIO or TEXT is allowed."
            )
        speech = gen.get("speech_config") or {}
        voice = ((speech.get("voice_config") or {}).get("prebuilt_voice_config") or {}).get(
            "voice_name"
        )
        rt = setup.get("realtime_input_config") or {}
        aad = rt.get("automatic_activity_detection") or {}
        tools, behaviors = _functions(setup.get("tools") or [])
        resumption = setup.get("session_resumption")
        history_config = setup.get("history_config") or {}
        return cls(
            model=model,
            modality=modalities[0],
            voice=voice,
            language=speech.get("language_code"),
            system_instruction=text_of(setup.get("system_instruction")),
            tools=tools,
            vad_disabled=bool(aad.get("disabled", False)),
            silence_ms=int(aad.get("silence_duration_ms") or 500),
            prefix_padding_ms=int(aad.get("prefix_padding_ms") or 300),
            start_sensitivity=_enum(
                aad.get("start_of_speech_sensitivity"),
                "START_SENSITIVITY",
                ("_HIGH", "_LOW"),
                "startOfSpeechSensitivity",
            ),
            end_sensitivity=_enum(
                aad.get("end_of_speech_sensitivity"),
                "END_SENSITIVITY",
                ("_HIGH", "_LOW"),
                "endOfSpeechSensitivity",
            ),
            activity_handling=_enum(
                rt.get("activity_handling"),
                "",
                ("START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"),
                "activityHandling",
            )
            or "START_OF_ACTIVITY_INTERRUPTS",
            turn_coverage=_enum(
                rt.get("turn_coverage"),
                "TURN_INCLUDES",
                ("_ONLY_ACTIVITY", "_ALL_INPUT", "_AUDIO_ACTIVITY_AND_ALL_VIDEO"),
                "turnCoverage",
            ),
            input_transcription=setup.get("input_audio_transcription") is not None,
            output_transcription=setup.get("output_audio_transcription") is not None,
            resumption=resumption is not None,
            resume_handle=(resumption or {}).get("handle") or None,
            transparent=bool((resumption or {}).get("transparent", False)),
            compression=setup.get("context_window_compression"),
            initial_history_in_client_content=bool(
                history_config.get("initial_history_in_client_content", False)
            ),
            thinking=gen.get("thinking_config"),
            temperature=gen.get("temperature"),
            behaviors=behaviors,
            media_resolution=_enum(
                gen.get("media_resolution"),
                "MEDIA_RESOLUTION",
                ("_LOW", "_MEDIUM", "_HIGH"),
                "generationConfig.mediaResolution",
            ),
            proactivity=setup.get("proactivity"),
            affective_dialog=gen.get(
                "enable_affective_dialog", setup.get("enable_affective_dialog")
            ),
        )

    def summary(self) -> dict[str, Any]:
        """What `GET /emulator/sessions` shows of the configuration."""
        return {
            "modality": self.modality,
            "voice": self.voice,
            "language": self.language,
            "system_instruction": self.system_instruction[:200],
            "tools": [
                {"name": t.name, "behavior": self.behaviors.get(t.name) or self.default_behavior}
                for t in self.tools
            ],
            "automatic_activity_detection": not self.vad_disabled,
            "silence_duration_ms": self.silence_ms,
            "activity_handling": self.activity_handling,
            "turn_coverage": self.turn_coverage,
            "turn_coverage_in_effect": self.turn_coverage or self.default_turn_coverage,
            "input_transcription": self.input_transcription,
            "output_transcription": self.output_transcription,
            "session_resumption": self.resumption,
            "context_window_compression": self.compression,
            "initial_history_in_client_content": self.initial_history_in_client_content,
            "thinking": self.thinking,
            "media_resolution": self.media_resolution,
            "proactivity": self.proactivity,
        }


_BEHAVIORS = ("BLOCKING", "NON_BLOCKING")


def _functions(tools: list[Any]) -> tuple[list[ToolDecl], dict[str, str]]:
    """The declared functions, and each one's `behavior` as declared (`""` when unset)."""
    decls: list[ToolDecl] = []
    behaviors: dict[str, str] = {}
    for tool in tools:
        for decl in (tool or {}).get("function_declarations") or []:
            name = decl.get("name")
            if not isinstance(name, str) or not name:
                raise WireError("Invalid function declaration: 'name' is required.")
            behavior = _enum(decl.get("behavior"), "", _BEHAVIORS, f"{name}.behavior") or ""
            behaviors[name] = behavior
            decls.append(
                ToolDecl(
                    name=name,
                    description=str(decl.get("description") or ""),
                    parameters=decl.get("parameters") or decl.get("parameters_json_schema"),
                    non_blocking=behavior == "NON_BLOCKING",
                )
            )
    return decls, behaviors
