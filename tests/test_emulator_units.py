"""Small rules of the emulator that need no server: token locks and scenario checks."""

from __future__ import annotations

import ssl

import httpx
import pytest

from emulator.client import client_ssl_context
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


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/emulator/latency", "5"),
        ("/emulator/latency", '{"first_audio_ms": "x"}'),
        ("/emulator/faults", '{"refuse_for_s": "later"}'),
        ("/emulator/faults", "not json"),
    ],
)
async def test_control_requests_with_bad_values_get_400_not_500(
    emulator: Running, path: str, body: str
) -> None:
    async with httpx.AsyncClient(verify=ssl_context(emulator)) as client:
        response = await client.post(emulator.base_url + path, content=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
