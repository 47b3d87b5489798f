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


def _obj(value: Any, name: str) -> dict[str, Any]:
    """The message field `name`, which must be an object (unset reads as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WireError(f"Invalid value for {name}: expected an object.")
    return value


def _opt_obj(value: Any, name: str) -> dict[str, Any] | None:
    """An optional object field: None when unset, its value when an object."""
    return None if value is None else _obj(value, name)


def _list(value: Any, name: str) -> list[Any]:
    """The repeated field `name`, which must be a list (unset reads as empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise WireError(f"Invalid value for {name}: expected a list.")
    return value


def _str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise WireError(f"Invalid value for {name}: expected a string.")
    return value


def _ms(value: Any, name: str, default: int) -> int:
    """A duration in milliseconds: a whole number from 0 to 60,000 (unset: `default`)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WireError(f"Invalid value for {name}: expected a whole number of milliseconds.")
    try:
        ms = int(value)  # proto JSON writes int64 as a string
    except ValueError:
        raise WireError(f"Invalid value for {name}: expected a whole number.") from None
    if not 0 <= ms <= 60_000:
        raise WireError(f"Invalid value {ms} for {name}: use 0 to 60000 ms.")
    return ms


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
    def from_setup(cls, setup: dict[str, Any], *, default_silence_ms: int = 500) -> SessionConfig:
        """Read a normalised (snake_case) `setup` message, refusing what the service refuses.

        `default_silence_ms` ends a turn when the setup sets no `silenceDurationMs` (or 0).
        """
        if not isinstance(setup, dict):
            raise WireError("Invalid setup: expected an object.")
        model = setup.get("model")
        if not isinstance(model, str) or not model.strip():
            raise WireError(
                "Invalid setup: 'model' is required, e.g. 'models/gemini-3.1-flash-live-preview'."
            )
        gen = _obj(setup.get("generation_config"), "generationConfig")
        modalities = [
            str(m).upper()
            for m in _list(gen.get("response_modalities"), "responseModalities") or ["AUDIO"]
        ]
        if len(modalities) != 1 or modalities[0] not in _MODALITIES:
            raise WireError(
                f"Invalid responseModalities {modalities}: exactly one of AUDIO or TEXT is allowed."
            )
        speech = _obj(gen.get("speech_config"), "speechConfig")
        voice_config = _obj(speech.get("voice_config"), "speechConfig.voiceConfig")
        prebuilt = _obj(voice_config.get("prebuilt_voice_config"), "prebuiltVoiceConfig")
        voice = _str(prebuilt.get("voice_name"), "prebuiltVoiceConfig.voiceName")
        rt = _obj(setup.get("realtime_input_config"), "realtimeInputConfig")
        aad = _obj(rt.get("automatic_activity_detection"), "automaticActivityDetection")
        tools, behaviors = _functions(_list(setup.get("tools"), "tools"))
        resumption = setup.get("session_resumption")
        if resumption is not None:
            resumption = _obj(resumption, "sessionResumption")
            _str(resumption.get("handle"), "sessionResumption.handle")
        history_config = _obj(setup.get("history_config"), "historyConfig")
        instruction = setup.get("system_instruction")
        if isinstance(instruction, str):
            instruction = {"parts": [{"text": instruction}]}
        _check_content(_obj(instruction, "systemInstruction"), "systemInstruction")
        temperature = gen.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, int | float)
        ):
            raise WireError("Invalid value for generationConfig.temperature: expected a number.")
        return cls(
            model=model,
            modality=modalities[0],
            voice=voice,
            language=_str(speech.get("language_code"), "speechConfig.languageCode"),
            system_instruction=text_of(instruction),
            tools=tools,
            vad_disabled=bool(aad.get("disabled", False)),
            silence_ms=_ms(aad.get("silence_duration_ms"), "silenceDurationMs", 0)
            or default_silence_ms,
            prefix_padding_ms=_ms(aad.get("prefix_padding_ms"), "prefixPaddingMs", 300),
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
            compression=_opt_obj(
                setup.get("context_window_compression"), "contextWindowCompression"
            ),
            initial_history_in_client_content=bool(
                history_config.get("initial_history_in_client_content", False)
            ),
            thinking=_opt_obj(gen.get("thinking_config"), "generationConfig.thinkingConfig"),
            temperature=temperature,
            behaviors=behaviors,
            media_resolution=_enum(
                gen.get("media_resolution"),
                "MEDIA_RESOLUTION",
                ("_LOW", "_MEDIUM", "_HIGH"),
                "generationConfig.mediaResolution",
            ),
            proactivity=_opt_obj(setup.get("proactivity"), "proactivity"),
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
            # `behavior`: as declared, or the model's default where none is; `declared`: the
            # declaration's own value, "" when it has none.
            "tools": [
                {
                    "name": t.name,
                    "behavior": self.behaviors.get(t.name) or self.default_behavior,
                    "declared": self.behaviors.get(t.name, ""),
                }
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
        declared = _obj(tool, "tools[]").get("function_declarations")
        for decl in _list(declared, "functionDeclarations"):
            decl = _obj(decl, "functionDeclarations[]")
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


def _check_content(content: dict[str, Any], name: str) -> None:
    """A `Content` as the service reads one: parts that are objects with string text."""
    parts = _list(content.get("parts"), f"{name}.parts")
    for part in parts:
        if not isinstance(_obj(part, f"{name}.parts[]").get("text", ""), str):
            raise WireError(f"Invalid value for {name}.parts[].text: expected a string.")
