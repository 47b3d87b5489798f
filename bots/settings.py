"""The one typed settings object, read from the environment and `.env` at the edge.

Everything below the bot entry points takes plain arguments; only `load_settings()` looks at the
environment, so tests and embedders can build a `Settings` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bots.models import DEFAULT_MODEL, refusals

DEFAULT_SYSTEM_INSTRUCTION = (
    "You are a friendly, concise voice assistant. Answer in one or two short sentences. "
    "Use your tools for the time, arithmetic and the user's notes."
)


class SettingsError(ValueError):
    """A setting that cannot be used, with the environment variable to fix."""


class Settings(BaseSettings):
    """Every knob of the bots. Environment variable = field name in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    google_api_key: SecretStr | None = Field(
        None, description="Gemini API key; unset means the local emulator is used"
    )
    gemini_model: str = Field(DEFAULT_MODEL, description="Live model name")
    gemini_voice: str = Field("Charon", description="prebuilt voice name")
    gemini_language: str = Field("en-US", description="BCP-47 language of speech")
    system_instruction: str = Field(DEFAULT_SYSTEM_INSTRUCTION, description="system instruction")
    system_instruction_file: Path | None = Field(
        None, description="file whose text replaces SYSTEM_INSTRUCTION"
    )
    response_modality: Literal["AUDIO", "TEXT"] = Field(
        "AUDIO", description="AUDIO: Gemini speaks; TEXT: Gemini writes and a TTS stage speaks"
    )
    thinking_level: Literal["minimal", "low", "medium", "high"] | None = Field(
        None,
        description="thinking level (gemini-3.8-live-extended-thinking: low | medium | high, "
        "default low; gemini-3.1-flash-live-preview: minimal too; gemini-3.8-live: none)",
    )
    enable_affective_dialog: bool = Field(
        False, description="affective dialog (gemini-3.1 only: the 3.8 family removed it)"
    )
    proactive_audio: bool | None = Field(
        None, description="proactive audio (the 3.8 family has it always on and refuses false)"
    )
    media_resolution: Literal["LOW", "MEDIUM", "HIGH"] | None = Field(
        None, description="resolution the model reads camera and screen frames at (vision bot)"
    )
    vad_disabled: bool = Field(False, description="turn off Gemini's automatic activity detection")
    vad_start_sensitivity: Literal["HIGH", "LOW"] | None = Field(None, description="VAD start")
    vad_end_sensitivity: Literal["HIGH", "LOW"] | None = Field(None, description="VAD end")
    vad_prefix_padding_ms: int | None = Field(None, ge=0, le=5000, description="VAD padding")
    vad_silence_duration_ms: int | None = Field(
        None, ge=0, le=10000, description="silence that ends a user turn"
    )
    context_window_compression: bool = Field(True, description="sliding-window compression")
    compression_trigger_tokens: int | None = Field(None, gt=0, description="compress above this")
    tool_timeout_secs: float = Field(10.0, gt=0, le=600, description="default tool timeout")
    reconnect_attempts: int = Field(6, ge=0, le=100, description="retries after a drop or failure")
    reconnect_base_delay_secs: float = Field(0.25, gt=0, le=60, description="first retry delay")
    reconnect_max_delay_secs: float = Field(8.0, gt=0, le=600, description="retry delay ceiling")
    resumption_handle_ttl_secs: float = Field(
        7200.0, gt=0, description="how long a resumption handle is used (Gemini keeps ~2 h)"
    )
    transcript_retention_days: int | None = Field(
        30, ge=1, description="delete transcripts older than this; empty keeps them"
    )
    data_dir: Path = Field(Path("data"), description="folder for notes and transcripts")
    transcript_dir: Path | None = Field(
        None, description="transcripts (default DATA_DIR/transcripts)"
    )
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://USER:PASSWORD@HOST/DB: notes, transcripts and conversations in "
        "PostgreSQL, shared by every replica; unset keeps them under DATA_DIR",
    )
    database_pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections this process opens at most"
    )
    replica_id: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        description="this process's name in a fleet: its session ids start with it, which is "
        "how the load balancer sends a session's requests to it",
    )
    daily_api_key: SecretStr | None = Field(None, description="Daily REST API key")
    daily_api_url: str = Field("https://api.daily.co/v1", description="Daily REST base URL")
    daily_room_url: str | None = Field(None, description="reuse this Daily room")
    daily_room_expiry_minutes: int = Field(
        60,
        ge=1,
        le=7 * 24 * 60,
        description="a room made for -t daily expires, ejecting everyone, this long after creation",
    )
    daily_token_expiry_minutes: int = Field(
        60,
        ge=1,
        le=7 * 24 * 60,
        description="meeting tokens (bot's and browser's) expire after this; never past the room",
    )
    daily_api_timeout_secs: float = Field(
        15.0, gt=0, le=120, description="give up on one Daily REST call after this long"
    )
    session_secret: SecretStr | None = Field(
        None,
        description="signs session tokens; when set, sessions need one (python -m bots token)",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="the operator's token for the transcript pages and /metrics; unset serves "
        "them only on a loopback bind",
    )
    allow_open_access: bool = Field(
        False, description="serve a non-loopback address without SESSION_SECRET (not advised)"
    )
    exposed_host: str | None = Field(
        None,
        description="the address clients reach the server on, when not --host (a container's "
        "published port: docker-compose sets it)",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names accepted besides the loopback names and the bind host (commas)",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="other sites whose pages may call the bot, e.g. https://app.example (commas)",
    )
    max_sessions: int | None = Field(
        None, ge=1, le=10000, description="conversations at once (default: usable CPU cores x 2)"
    )
    max_sessions_per_client: int = Field(
        3, ge=1, le=1000, description="conversations at once per user (or per address)"
    )
    fleet_url: str | None = Field(
        None,
        description="the fleet's load balancer, e.g. http://haproxy:8080: a stopping Daily "
        "replica asks it for a bot in each of its rooms",
    )
    drain_move_secs: float = Field(
        15.0,
        ge=0,
        le=3600,
        description="on SIGTERM, how long to wait for clients to move to another replica before "
        "their sessions are ended (Kubernetes: terminationGracePeriodSeconds must exceed it)",
    )
    ice_timeout_secs: float = Field(
        30.0, gt=0, le=600, description="end a session whose media has not connected by then"
    )
    enable_tracing: bool = Field(
        False, description="OpenTelemetry spans for conversations, turns, tool calls and Gemini"
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector for the spans, e.g. http://collector:4318"
    )
    otel_service_name: str = Field("gemini-live-agent", description="service.name of the spans")
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "DEBUG", description="the bot's log level"
    )
    record_dir: Path | None = Field(
        None,
        description="write each Gemini Live connection to a cassette here (JSON Lines, secrets "
        "scrubbed), for the emulator to replay with --replay",
    )
    record_audio: Literal["hash", "keep"] = Field(
        "hash",
        description="in cassettes, keep the audio and images or replace them by their SHA-256 "
        "and length (a replay then plays silence of that length)",
    )
    emulator_url: str | None = Field(None, description="https://HOST:PORT of a running emulator")
    emulator_ca: Path | None = Field(None, description="the emulator's CA PEM")
    default_emulator_url: str | None = Field(
        None,
        description="EMULATOR_URL used only while GOOGLE_API_KEY is unset (docker-compose.yml)",
    )

    @field_validator("gemini_model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError(f"must name a Gemini Live model, e.g. {DEFAULT_MODEL}")
        return value.removeprefix("models/")

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator(
        "google_api_key",
        "daily_api_key",
        "session_secret",
        "admin_token",
        "database_url",
        "replica_id",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("session_secret", "admin_token")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(
                "must be at least 16 characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("must be a PostgreSQL URL: postgresql://USER:PASSWORD@HOST:PORT/DB")
        return value

    @model_validator(mode="after")
    def _the_model_takes_these_settings(self) -> Settings:
        problems = refusals(
            self.gemini_model,
            thinking_level=self.thinking_level,
            response_modality=self.response_modality,
            enable_affective_dialog=self.enable_affective_dialog,
            proactive_audio=self.proactive_audio,
        )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _instruction_file(self) -> Settings:
        if self.system_instruction_file is not None:
            try:
                text = self.system_instruction_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"SYSTEM_INSTRUCTION_FILE {self.system_instruction_file}: {exc.strerror}"
                ) from exc
            if not text:
                raise ValueError(f"SYSTEM_INSTRUCTION_FILE {self.system_instruction_file} is empty")
            self.system_instruction = text
        return self

    @model_validator(mode="after")
    def _default_emulator(self) -> Settings:
        # docker-compose.yml cannot set EMULATOR_URL only when .env has no key (Compose 1.29 has
        # no ${VAR:+...}), so it sets this instead: a key set in .env then wins.
        default = (self.default_emulator_url or "").strip()
        if default and self.google_api_key is None and not self.emulator_url:
            self.emulator_url = default
        return self

    @property
    def uses_emulator(self) -> bool:
        """No key means the local emulator; the banner says so."""
        return self.google_api_key is None

    @property
    def transcripts(self) -> Path:
        return self.transcript_dir or self.data_dir / "transcripts"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`, naming the variable of any bad value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if not loc:  # a check across settings: its message names the variables itself
                lines.append(message)
                continue
            name = loc[0].upper()
            secret = name.endswith(("_KEY", "_SECRET", "_TOKEN")) or name == "DATABASE_URL"
            shown = "" if secret else f" (got {err.get('input')!r})"
            lines.append(f"{name}: {message}{shown}")
        # One line per problem, each naming its variable: a bot stopped by one bad setting
        # says so in one line.
        raise SettingsError("\n".join(lines)) from None
