"""Settings are read at the edge, and a bad value names the variable to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bots.settings import DEFAULT_SYSTEM_INSTRUCTION, Settings, SettingsError, load_settings

pytestmark = pytest.mark.unit

ENV_NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def _no_leaked_settings(clean_env: None) -> None:
    """No developer `.env` or exported variable leaks into these tests (conftest's `clean_env`)."""


def test_defaults_use_the_emulator_and_the_recommended_model() -> None:
    settings = load_settings()
    assert settings.uses_emulator
    assert settings.gemini_model == "gemini-3.8-live"  # Google's GA Live model
    assert settings.response_modality == "AUDIO"
    assert settings.context_window_compression is True
    assert settings.system_instruction == DEFAULT_SYSTEM_INSTRUCTION
    assert settings.transcripts == Path("data") / "transcripts"


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "abc")
    monkeypatch.setenv("GEMINI_MODEL", "models/gemini-2.5-flash-native-audio-preview-12-2025")
    monkeypatch.setenv("RESPONSE_MODALITY", "TEXT")
    monkeypatch.setenv("VAD_SILENCE_DURATION_MS", "700")
    monkeypatch.setenv("CONTEXT_WINDOW_COMPRESSION", "false")
    settings = load_settings()
    assert not settings.uses_emulator
    assert settings.google_api_key is not None
    assert settings.google_api_key.get_secret_value() == "abc"
    assert settings.gemini_model == "gemini-2.5-flash-native-audio-preview-12-2025"
    assert settings.response_modality == "TEXT"
    assert settings.vad_silence_duration_ms == 700
    assert settings.context_window_compression is False


def test_a_dot_env_file_in_the_working_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GEMINI_VOICE=Puck\nTOOL_TIMEOUT_SECS=3.5\n")
    settings = load_settings()
    assert settings.gemini_voice == "Puck"
    assert settings.tool_timeout_secs == 3.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESPONSE_MODALITY", "VIDEO"),
        ("THINKING_LEVEL", "extreme"),
        ("VAD_SILENCE_DURATION_MS", "soon"),
        ("VAD_START_SENSITIVITY", "MEDIUM"),
        ("TOOL_TIMEOUT_SECS", "-1"),
        ("RECONNECT_ATTEMPTS", "many"),
        ("GEMINI_MODEL", "   "),
        ("CONTEXT_WINDOW_COMPRESSION", "maybe"),
    ],
)
def test_a_bad_value_gives_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert name in str(err.value)


def test_a_bad_api_key_value_is_never_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_TIMEOUT_SECS", "nope")
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-secret-value")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "AIza-secret-value" not in str(err.value)
    assert "AIza-secret-value" not in repr(err.value)


def test_the_api_key_is_hidden_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-secret-value")
    settings = load_settings()
    assert "AIza-secret-value" not in repr(settings)
    assert "AIza-secret-value" not in str(settings.model_dump())


def test_a_blank_api_key_means_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "  ")
    assert load_settings().uses_emulator


def test_the_system_instruction_file_replaces_the_text(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text("You are Ava, a pirate.\n")
    settings = load_settings(system_instruction_file=path)
    assert settings.system_instruction == "You are Ava, a pirate."


def test_a_missing_system_instruction_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(system_instruction_file=tmp_path / "missing.txt")
    assert "SYSTEM_INSTRUCTION_FILE" in str(err.value)


@given(st.integers(min_value=-10_000, max_value=20_000))
def test_silence_durations_outside_zero_to_ten_seconds_are_refused(value: int) -> None:
    if 0 <= value <= 10_000:
        assert load_settings(vad_silence_duration_ms=value).vad_silence_duration_ms == value
    else:
        with pytest.raises(SettingsError, match="VAD_SILENCE_DURATION_MS"):
            load_settings(vad_silence_duration_ms=value)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"THINKING_LEVEL": "low"},
            "THINKING_LEVEL: gemini-3.8-live takes no thinking level; unset it, or set "
            "GEMINI_MODEL=gemini-3.8-live-extended-thinking to think",
        ),
        (
            {"RESPONSE_MODALITY": "TEXT"},
            "RESPONSE_MODALITY: gemini-3.8-live answers in AUDIO only (its transcript gives the "
            "text); unset it, or set GEMINI_MODEL=gemini-3.1-flash-live-preview for TEXT spoken "
            "by Piper",
        ),
        (
            {"ENABLE_AFFECTIVE_DIALOG": "true"},
            "ENABLE_AFFECTIVE_DIALOG: gemini-3.8-live has no affective dialog (removed from its "
            "API); unset it",
        ),
        (
            {"PROACTIVE_AUDIO": "false"},
            "PROACTIVE_AUDIO: gemini-3.8-live always listens proactively and refuses false; "
            "unset it",
        ),
        (
            {"GEMINI_MODEL": "gemini-3.8-live-extended-thinking", "THINKING_LEVEL": "minimal"},
            "THINKING_LEVEL: gemini-3.8-live-extended-thinking takes high | low | medium, "
            "not minimal",
        ),
        (
            {"GEMINI_MODEL": "gemini-3.8-live-extended-thinking", "RESPONSE_MODALITY": "TEXT"},
            "RESPONSE_MODALITY: gemini-3.8-live-extended-thinking answers in AUDIO only (its "
            "transcript gives the text); unset it, or set "
            "GEMINI_MODEL=gemini-3.1-flash-live-preview for TEXT spoken by Piper",
        ),
        (
            {
                "GEMINI_MODEL": "gemini-3.8-live-extended-thinking",
                "ENABLE_AFFECTIVE_DIALOG": "true",
            },
            "ENABLE_AFFECTIVE_DIALOG: gemini-3.8-live-extended-thinking has no affective dialog "
            "(removed from its API); unset it",
        ),
        (
            {"GEMINI_MODEL": "gemini-3.8-live-extended-thinking", "PROACTIVE_AUDIO": "false"},
            "PROACTIVE_AUDIO: gemini-3.8-live-extended-thinking always listens proactively and "
            "refuses false; unset it",
        ),
    ],
    ids=[
        "thinking",
        "text",
        "affective",
        "proactive-off",
        "minimal-thinking",
        "thinking-text",
        "thinking-affective",
        "thinking-proactive-off",
    ],
)
def test_a_setting_the_model_refuses_stops_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == line


@pytest.mark.parametrize(
    "env",
    [
        {"GEMINI_MODEL": "gemini-3.1-flash-live-preview", "THINKING_LEVEL": "minimal"},
        {"GEMINI_MODEL": "gemini-3.1-flash-live-preview", "RESPONSE_MODALITY": "TEXT"},
        {"GEMINI_MODEL": "gemini-3.1-flash-live-preview", "ENABLE_AFFECTIVE_DIALOG": "true"},
        {"GEMINI_MODEL": "gemini-3.1-flash-live-preview", "PROACTIVE_AUDIO": "false"},
        {"GEMINI_MODEL": "gemini-3.8-live-extended-thinking", "THINKING_LEVEL": "high"},
        {"PROACTIVE_AUDIO": "true", "MEDIA_RESOLUTION": "LOW"},
    ],
)
def test_what_each_model_takes_is_accepted(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().gemini_model == env.get("GEMINI_MODEL", "gemini-3.8-live")
