"""Small rules of the emulator that need no server: token locks and scenario checks."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import httpx
import pytest
from conftest import imported_modules

import emulator
from emulator import actions
from emulator.client import client_ssl_context
from emulator.models import MODELS, lookup
from emulator.scenario import ScenarioError, parse_scenario
from emulator.server import Running
from emulator.tokens import TokenStore, apply_constraints

pytestmark = pytest.mark.unit


def ssl_context(emulator: Running) -> ssl.SSLContext:
    return client_ssl_context(emulator.certs.ca)


CONSTRAINED = {
    "bidiGenerateContentSetup": {
        "model": "models/gemini-3.1-flash-live-preview",
        "generationConfig": {"responseModalities": ["TEXT"], "temperature": 0.5},
    }
}


def test_a_token_without_a_field_mask_locks_the_whole_setup() -> None:
    token = TokenStore().create(CONSTRAINED)
    client = {
        "model": "models/gemini-2.0-flash-live-001",
        "generation_config": {"response_modalities": ["AUDIO"]},
        "output_audio_transcription": {},
        "session_resumption": {"handle": "h-1"},
    }
    merged = apply_constraints(client, token)
    assert merged == {
        "model": "models/gemini-3.1-flash-live-preview",
        "generation_config": {"response_modalities": ["TEXT"], "temperature": 0.5},
        "session_resumption": {"handle": "h-1"},
    }


def test_a_token_with_a_field_mask_locks_only_those_fields() -> None:
    token = TokenStore().create(
        {**CONSTRAINED, "fieldMask": "model,generationConfig.responseModalities"}
    )
    client = {
        "model": "models/gemini-2.0-flash-live-001",
        "generation_config": {"response_modalities": ["AUDIO"], "temperature": 0.9},
        "output_audio_transcription": {},
    }
    merged = apply_constraints(client, token)
    assert merged == {
        "model": "models/gemini-3.1-flash-live-preview",
        "generation_config": {"response_modalities": ["TEXT"], "temperature": 0.9},
        "output_audio_transcription": {},
    }


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"close": "now"}, "close takes a mapping"),
        ({"goaway": {"time_left_s": "soon"}}, "goaway.time_left_s must be a non-negative number"),
        ({"goaway": 2}, "goaway takes a mapping"),
        ({"latency": None}, "latency needs"),
        ({"latency": {"first_audio_ms": -5}}, "latency.first_audio_ms"),
        ({"wait_ms": "a bit"}, "wait_ms takes a number"),
    ],
)
def test_scenario_actions_with_bad_values_are_refused_at_load_time(
    action: dict[str, object], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario({"rules": [{"when": "x", "do": [action]}]})


def test_bare_drop_and_close_and_goaway_are_accepted() -> None:
    scenario = parse_scenario(
        {"rules": [{"do": [{"drop": None}, {"goaway": None}, {"close": None}]}]}
    )
    assert [list(a) for a in scenario.rules[0].actions] == [["drop"], ["goaway"], ["close"]]


def test_actions_written_bare_get_their_defaults() -> None:
    scenario = parse_scenario(
        {"rules": [{"do": [{"drop": True}, {"goaway": None}, {"close": {}}, {"latency": {}}]}]}
    )
    assert scenario.rules[0].steps == (
        actions.Drop(),
        actions.GoAway(time_left_s=1),
        actions.Close(code=1011, reason=""),
        actions.Latency(first_audio_ms=0),
    )


def test_a_scenario_reads_its_actions_into_the_same_models_as_the_control_api() -> None:
    scenario = parse_scenario(
        {
            "on_connect": [{"say": "Hi."}],
            "rules": [{"do": [{"tool_call": {"name": "f", "args": None}}, {"wait_ms": 5}]}],
        }
    )
    assert scenario.on_connect == (actions.parse_action("say", {"text": "Hi."}),)
    assert scenario.rules[0].steps == (
        actions.parse_action("tool_call", {"name": "f", "args": {}}),
        actions.WaitMs(ms=5),
    )


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("say", {"text": 3}, "say takes the text to speak."),
        ("tool_call", {"args": {}}, "tool_call needs a name (and args)."),
        ("goaway", {"time_left_s": True}, "goaway.time_left_s must be a non-negative number."),
        ("latency", {"first_audio_ms": "400"}, "latency.first_audio_ms must be"),
        ("close", {"code": -1}, "close.code must be a non-negative number."),
        ("dance", {}, "unknown action 'dance'; known: say, tool_call"),
    ],
)
def test_a_bad_action_is_refused_with_a_reason_that_names_it(
    kind: str, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(actions.ActionError, match=re.escape(message)):
        actions.parse_action(kind, fields)


def test_the_session_reaches_the_server_only_through_the_registry() -> None:
    package = Path(emulator.__file__).parent
    for path in sorted((package / "session").glob("*.py")):
        assert not any(m.startswith("emulator.server") for m in imported_modules(path)), path.name
    assert not any(
        m.startswith("emulator.session") for m in imported_modules(package / "registry.py")
    )
    assert not any(m.startswith("emulator.brain") for m in imported_modules(package / "state.py"))


def test_the_emulator_imports_nothing_from_pipecat_or_the_bots() -> None:
    package = Path(emulator.__file__).parent
    for path in sorted(package.rglob("*.py")):
        imported = imported_modules(path)
        assert not any(m.split(".")[0] in ("pipecat", "bots") for m in imported), path


@pytest.mark.emulator
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/emulator/latency", "5"),
        ("/emulator/latency", '{"first_audio_ms": "x"}'),
        ("/emulator/faults", '{"refuse_for_s": "later"}'),
        ("/emulator/faults", "not json"),
        ("/emulator/options", '{"polite_interrupt": "yes"}'),
        ("/emulator/options", '{"be_polite": true}'),
        ("/emulator/options", '{"pace": -1}'),
        ("/emulator/options", '{"pace": true}'),
        ("/emulator/scenario", '{"rules": [{"when": "(", "do": [{"say": "hi"}]}]}'),
        ("/emulator/scenario", '{"rules": [{"do": [{"sing": "la"}]}]}'),
        ("/emulator/scenario", "[1]"),
    ],
)
async def test_control_requests_with_bad_values_get_400_not_500(
    emulator: Running, path: str, body: str
) -> None:
    async with httpx.AsyncClient(verify=ssl_context(emulator)) as client:
        response = await client.post(emulator.base_url + path, content=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("model", "unset", "blocking", "non_blocking"),
    [
        # How a call runs for a declaration without behavior, with BLOCKING, with NON_BLOCKING
        # (True: it lets the model go on), as the emulator README's model table says.
        ("gemini-3.8-live", True, False, True),
        ("gemini-3.8-live-extended-thinking", True, False, True),
        ("gemini-3.1-flash-live-preview", False, False, False),
        ("gemini-2.5-flash-native-audio-preview-12-2025", False, False, True),
        ("gemini-live-2.5-flash-preview", False, False, True),
        ("gemini-2.0-flash-live-001", False, False, False),
    ],
)
def test_each_model_runs_a_declared_behavior_as_its_table_row_says(
    model: str, unset: bool, blocking: bool, non_blocking: bool
) -> None:
    live_model = lookup(f"models/{model}")
    assert live_model is not None
    assert live_model.runs_non_blocking("") is unset
    assert live_model.runs_non_blocking("BLOCKING") is blocking
    assert live_model.runs_non_blocking("NON_BLOCKING") is non_blocking
    assert live_model.default_behavior == ("NON_BLOCKING" if unset else "BLOCKING")


def test_only_the_extended_thinking_model_refuses_blocking_and_reports_interaction_status() -> None:
    refusing = {name for name, m in MODELS.items() if not m.blocking_tools}
    reporting = {name for name, m in MODELS.items() if m.reports_interaction_status}
    assert refusing == reporting == {"gemini-3.8-live-extended-thinking"}
