"""Ephemeral tokens as the SDK makes and uses them (issue 3, point 8).

`client.auth_tokens.create` posts to `/v1alpha/auth_tokens`; a client holding only the token then
connects on `BidiGenerateContentConstrained`. The emulator enforces `uses` (resuming spends none),
`expire_time`, `new_session_expire_time` and the locked fields of `live_connect_constraints`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import (
    MODEL,
    close_of,
    live,
    model_text,
    raw,
    say_text,
    sdk_client,
    setup_message,
    text_config,
    wait_session,
)
from google import genai
from google.genai import errors, types

from emulator.server import Emulator, Running, running

pytestmark = [pytest.mark.emulator, pytest.mark.filterwarnings("ignore:The SDK's .*experimental")]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def make_token(r: Running, **config: Any) -> types.AuthToken:
    client = sdk_client(r, api_version="v1alpha")
    return await client.aio.auth_tokens.create(config=types.CreateAuthTokenConfig(**config))


def token_client(r: Running, token: types.AuthToken) -> genai.Client:
    assert token.name
    return sdk_client(r, api_key=token.name, api_version="v1alpha")


async def refusal(r: Running, client: genai.Client) -> errors.APIError:
    """The error a connection with `client` is refused with (failing if it is accepted)."""
    with pytest.raises(errors.APIError) as refused:
        async with live(r, client=client):
            pass
    return refused.value


async def test_the_sdk_creates_a_token_and_connects_with_it(emulator: Running) -> None:
    token = await make_token(emulator, uses=1)
    assert token.name and token.name.startswith("auth_tokens/")
    async with live(emulator, text_config(), client=token_client(emulator, token)) as (s, box):
        await say_text(s, "What is twelve times seven?")
        assert "84" in model_text(await box.turn())
        summary = await wait_session(emulator, lambda x: x["conversation_id"] == s.session_id)
    assert summary["ephemeral_token"] is True
    assert summary["api_version"] == "v1alpha"


async def test_a_token_with_one_use_opens_one_new_session(emulator: Running) -> None:
    token = await make_token(emulator, uses=1)
    client = token_client(emulator, token)
    async with live(emulator, client=client):
        pass
    refused = await refusal(emulator, client)
    assert refused.code == 1008
    assert "no uses left" in str(refused)


async def test_a_token_with_zero_uses_has_no_limit(emulator: Running) -> None:
    """The SDK documents `uses=0` as "no limit is applied"."""
    token = await make_token(emulator, uses=0)
    client = token_client(emulator, token)
    for _ in range(3):
        async with live(emulator, client=client) as (session, box):
            await say_text(session, "Hello")
            assert model_text(await box.turn())


async def test_resuming_with_a_token_does_not_spend_a_use(emulator: Running) -> None:
    token = await make_token(emulator, uses=1)
    client = token_client(emulator, token)
    resumable = text_config(session_resumption=types.SessionResumptionConfig())
    async with live(emulator, resumable, client=client) as (session, box):
        update = (await box.until(lambda m: m.session_resumption_update))[-1]
        handle = update.session_resumption_update.new_handle
        conversation = session.session_id
    assert handle
    await wait_session(emulator, lambda s: s["conversation_id"] == conversation and not s["open"])
    resume = text_config(session_resumption=types.SessionResumptionConfig(handle=handle))
    async with live(emulator, resume, client=client) as (session, _box):
        assert session.session_id == conversation
    with pytest.raises(errors.APIError, match="no uses left"):
        async with live(emulator, client=client):
            pass


async def test_an_expired_token_is_refused(emulator: Running) -> None:
    token = await make_token(emulator, expire_time=now() - dt.timedelta(seconds=1))
    refused = await refusal(emulator, token_client(emulator, token))
    assert refused.code == 1008
    assert "expired" in str(refused)


async def test_a_token_past_its_new_session_time_is_refused(emulator: Running) -> None:
    token = await make_token(
        emulator, uses=5, new_session_expire_time=now() - dt.timedelta(seconds=1)
    )
    refused = await refusal(emulator, token_client(emulator, token))
    assert refused.code == 1008
    assert "new sessions" in str(refused)


async def test_locked_fields_override_what_the_client_asks_for(emulator: Running) -> None:
    constraints = types.LiveConnectConstraints(
        model=MODEL,
        config=types.LiveConnectConfig(
            response_modalities=[types.Modality.TEXT],
            temperature=0.2,
            system_instruction="You are Locked Larry.",
        ),
    )
    token = await make_token(emulator, uses=1, live_connect_constraints=constraints)
    wanted = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO], system_instruction="You are Free Fiona."
    )
    async with live(emulator, wanted, client=token_client(emulator, token)) as (session, box):
        await say_text(session, "What is twelve times seven?")
        messages = await box.turn()
        summary = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    assert summary["config"]["modality"] == "TEXT"
    assert summary["config"]["system_instruction"] == "You are Locked Larry."
    assert "84" in model_text(messages), "the answer comes as text, the locked modality"
    assert not any(
        p.inline_data
        for m in messages
        if m.server_content and m.server_content.model_turn
        for p in m.server_content.model_turn.parts or []
    )


async def test_lock_additional_fields_locks_only_what_is_named(emulator: Running) -> None:
    constraints = types.LiveConnectConstraints(
        model=MODEL, config=types.LiveConnectConfig(response_modalities=[types.Modality.TEXT])
    )
    token = await make_token(
        emulator, uses=1, live_connect_constraints=constraints, lock_additional_fields=[]
    )
    wanted = text_config(system_instruction="You are Free Fiona.")
    async with live(emulator, wanted, client=token_client(emulator, token)) as (session, _box):
        summary = await wait_session(emulator, lambda s: s["conversation_id"] == session.session_id)
    assert summary["config"]["system_instruction"] == "You are Free Fiona."
    assert summary["config"]["modality"] == "TEXT"


async def test_a_token_on_the_unconstrained_method_is_refused(emulator: Running) -> None:
    token = await make_token(emulator, uses=1)
    assert token.name
    async with raw(emulator, key=token.name) as ws:
        await ws.send(setup_message())
        code, reason = await close_of(ws)
    assert code == 1008
    assert "Constrained" in reason


async def test_the_constrained_method_without_a_token_is_refused(emulator: Running) -> None:
    async with raw(emulator, method="BidiGenerateContentConstrained", version="v1alpha") as ws:
        await ws.send(setup_message())
        code, reason = await close_of(ws)
    assert code == 1008
    assert "token" in reason.lower()


async def test_an_unknown_token_is_refused(emulator: Running) -> None:
    headers = {"Authorization": "Token auth_tokens/made-up"}
    async with raw(
        emulator, method="BidiGenerateContentConstrained", version="v1alpha", headers=headers
    ) as ws:
        await ws.send(setup_message())
        code, reason = await close_of(ws)
    assert code == 1008
    assert "not found" in reason


async def test_creating_a_token_with_a_bad_api_key_fails(cert_dir: Path) -> None:
    async with running(Emulator(api_key="right", pace=0), cert_dir=cert_dir) as r:
        wrong = sdk_client(r, api_key="wrong", api_version="v1alpha")
        with pytest.raises(errors.ClientError) as refused:
            await wrong.aio.auth_tokens.create(config=types.CreateAuthTokenConfig(uses=1))
        right = sdk_client(r, api_key="right", api_version="v1alpha")
        token = await right.aio.auth_tokens.create(config=types.CreateAuthTokenConfig(uses=1))
    assert refused.value.code == 400
    assert "API key not valid" in str(refused.value)
    assert token.name


async def test_a_malformed_token_request_is_refused(emulator: Running) -> None:
    from emulator_helpers import control

    async with control(emulator) as http:
        bad_json = await http.post(
            "/v1alpha/auth_tokens", content=b"{", headers={"x-goog-api-key": "k"}
        )
        bad_uses = await http.post(
            "/v1alpha/auth_tokens", json={"uses": -1}, headers={"x-goog-api-key": "k"}
        )
        bad_time = await http.post(
            "/v1alpha/auth_tokens", json={"expireTime": "soon"}, headers={"x-goog-api-key": "k"}
        )
    assert [r.status_code for r in (bad_json, bad_uses, bad_time)] == [400, 400, 400]
    assert "uses" in json.dumps(bad_uses.json())
