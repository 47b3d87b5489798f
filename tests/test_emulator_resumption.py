"""Session resumption, goAway and dropped connections, through the real SDK (issue 3, points 6-7).

A Live API session outlives its sockets: handles from sessionResumptionUpdate reopen the same
conversation on a new connection. The emulator refuses what the service refuses (unknown or
expired handles, a resume while the earlier socket is still open) and can end a connection the two
ways production does: goAway then close, or an abrupt drop.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import (
    close_of,
    live,
    model_text,
    post,
    raw,
    raw_open,
    raw_setup,
    raw_turn_complete,
    recv_json,
    recv_until,
    say_text,
    text_config,
    wait_session,
)
from google.genai import errors, types

from emulator.server import Emulator, Running, running
from testkit.clock import FakeClock

pytestmark = pytest.mark.emulator


def resumable(handle: str | None = None) -> types.LiveConnectConfig:
    return text_config(session_resumption=types.SessionResumptionConfig(handle=handle))


def handles(messages: list[types.LiveServerMessage]) -> list[str]:
    return [
        m.session_resumption_update.new_handle
        for m in messages
        if m.session_resumption_update and m.session_resumption_update.new_handle
    ]


async def closed(r: Running, conversation_id: str) -> dict[str, Any]:
    """Wait until no connection of the conversation is open on the server."""
    return await wait_session(
        r,
        lambda s: s["conversation_id"] == conversation_id and not s["open"],
    )


async def first_turn(r: Running) -> tuple[str, str]:
    """Open a resumable session, have one exchange, close it; return (conversation, handle)."""
    async with live(r, resumable()) as (session, box):
        await say_text(session, "What is twelve times seven?")
        await box.turn()
        # After a turn the service sends a fresh handle covering it.
        latest = handles(await box.until(lambda m: m.session_resumption_update))[-1]
        conversation = session.session_id
    await closed(r, conversation)
    return conversation, latest


@contextlib.asynccontextmanager
async def resumed_at_setup(r: Running) -> AsyncIterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """A resumable session that had one exchange and closed, resumed with the handle it was sent
    at setup (before that exchange). Yields (conversation, the first connection's summary once
    closed, the resumed connection's summary once open) while the resumed connection is open."""
    async with live(r, resumable()) as (session, box):
        at_setup = handles(await box.until(lambda m: m.session_resumption_update))[-1]
        await say_text(session, "What is twelve times seven?")
        await box.turn()
        conversation = session.session_id
    first = await closed(r, conversation)
    async with live(r, resumable(at_setup)):
        resumed = await wait_session(r, lambda s: s["resumed_from"] == at_setup and s["open"])
        yield conversation, first, resumed


async def test_resumption_handles_are_sent_at_setup_and_after_each_turn(emulator: Running) -> None:
    async with live(emulator, resumable()) as (session, box):
        first = await box.until(lambda m: m.session_resumption_update)
        await say_text(session, "Hello")
        turn = await box.turn()
        after = await box.until(lambda m: m.session_resumption_update)
    assert handles(first) and first[-1].session_resumption_update.resumable
    assert not handles(turn)
    assert handles(after) and handles(after)[0] != handles(first)[0]


async def test_no_handles_are_sent_without_session_resumption(emulator: Running) -> None:
    async with raw(emulator) as ws:
        await raw_setup(ws)
        await ws.send(json.dumps({"realtimeInput": {"text": "Hello"}}))
        messages = await recv_until(ws, raw_turn_complete)
    assert messages and not any("sessionResumptionUpdate" in m for m in messages)


async def test_a_valid_handle_continues_the_same_conversation(emulator: Running) -> None:
    conversation, handle = await first_turn(emulator)
    async with live(emulator, resumable(handle)) as (session, box):
        assert session.session_id == conversation
        await say_text(session, "Hello")
        await box.turn()
        summary = await wait_session(emulator, lambda s: s["resumed_from"] == handle and s["open"])
    assert summary["conversation_id"] == conversation
    texts = [(t["role"], t["text"]) for t in summary["history"]]
    assert texts[0] == ("user", "What is twelve times seven?")
    assert "84" in texts[1][1]
    assert texts[2] == ("user", "Hello")
    assert len(texts) == 4


async def test_an_older_handle_restores_the_conversation_as_it_was_when_issued(
    emulator: Running,
) -> None:
    async with resumed_at_setup(emulator) as (conversation, _, summary):
        pass
    # The handle stood for an empty conversation: the turn after it is not restored.
    assert summary["conversation_id"] == conversation
    assert summary["history"] == []


async def test_an_unknown_handle_is_refused_with_1008(emulator: Running) -> None:
    with pytest.raises(errors.APIError) as refused:
        async with live(emulator, resumable("handle-that-was-never-issued")):
            pass
    assert refused.value.code == 1008
    assert "handle" in str(refused.value).lower()


async def test_a_resume_while_the_earlier_socket_is_open_is_refused_with_1011(
    emulator: Running,
) -> None:
    async with live(emulator, resumable()) as (session, box):
        handle = handles(await box.until(lambda m: m.session_resumption_update))[0]
        with pytest.raises(errors.APIError) as refused:
            async with live(emulator, resumable(handle)):
                pass
        assert refused.value.code == 1011
        assert "still open" in str(refused.value)
        # The earlier connection is unharmed.
        await say_text(session, "What is twelve times seven?")
        assert "84" in model_text(await box.turn())


async def test_go_away_from_the_control_api_arrives_and_the_socket_closes_after_it(
    emulator: Running,
) -> None:
    async with raw_open(emulator) as (ws, summary):
        sent = time.monotonic()
        response = await post(
            emulator, f"/emulator/sessions/{summary['id']}/goaway", {"time_left_s": 0.5}
        )
        assert response.status_code == 200
        assert await recv_json(ws) == {"goAway": {"timeLeft": "0.5s"}}
        code, _reason = await close_of(ws)
        waited = time.monotonic() - sent
    assert code == 1001
    assert waited >= 0.5, "the socket closed before the time it announced"


async def test_the_sdk_reads_go_away_and_then_sees_the_close(emulator: Running) -> None:
    async with live(emulator, resumable()) as (session, box):
        await box.until(lambda m: m.session_resumption_update)
        await post(emulator, f"/emulator/sessions/{session.session_id}/goaway", {"time_left_s": 0})
        message = await box.until(lambda m: m.go_away)
        error = await box.error()
    assert message[-1].go_away.time_left in ("0s", "0:00:00")
    assert error.code == 1001


async def test_drop_closes_abruptly_and_the_handle_resumes(emulator: Running) -> None:
    async with live(emulator, resumable()) as (session, box):
        await say_text(session, "What is twelve times seven?")
        await box.turn()
        handle = handles(await box.until(lambda m: m.session_resumption_update))[-1]
        response = await post(emulator, f"/emulator/sessions/{session.session_id}/drop")
        assert response.status_code == 200
        error = await box.error()
        conversation = session.session_id
    assert error.code == 1006, "a drop sends no close frame"
    dropped = await closed(emulator, conversation)
    assert dropped["close_code"] == 1006

    async with live(emulator, resumable(handle)) as (session, box):
        assert session.session_id == conversation
        await say_text(session, "Hello")
        await box.turn()
        summary = await wait_session(emulator, lambda s: s["resumed_from"] == handle)
    assert [t["role"] for t in summary["history"]] == ["user", "model", "user", "model"]


async def test_a_handle_past_its_lifetime_is_refused(cert_dir: Path) -> None:
    clock = FakeClock()
    async with running(Emulator(pace=0, handle_ttl_s=60, clock=clock), cert_dir=cert_dir) as r:
        _conversation, handle = await first_turn(r)
        async with live(r, resumable(handle)) as (session, _box):
            pass  # within its lifetime: accepted
        await closed(r, session.session_id)
        clock.advance(61.0)  # a minute later, on the emulator's clock
        with pytest.raises(errors.APIError) as refused:
            async with live(r, resumable(handle)):
                pass
    assert refused.value.code == 1008
    assert "expired" in str(refused.value)


async def test_the_session_summary_lists_the_handles_issued_on_the_connection_oldest_first(
    emulator: Running,
) -> None:
    async with live(emulator, resumable()) as (session, box):
        seen = handles(await box.until(lambda m: m.session_resumption_update))
        for question in ("Hello", "What is twelve times seven?"):
            await say_text(session, question)
            await box.turn()
            seen += handles(await box.until(lambda m: m.session_resumption_update))
        summary = await wait_session(
            emulator, lambda s: s["conversation_id"] == session.session_id and s["open"]
        )
    assert len(seen) == 3 and len(set(seen)) == 3
    assert summary["handles"] == seen


async def test_what_a_connection_said_stays_in_its_summary_after_a_resume_drops_it(
    emulator: Running,
) -> None:
    async with resumed_at_setup(emulator) as (_, first, resumed):
        earlier = await wait_session(emulator, lambda s: s["id"] == first["id"])
    assert resumed["history"] == [] and resumed["spoken"] == []
    assert earlier["history"] == [], "the resume dropped the turn from the conversation"
    (said,) = earlier["spoken"]
    assert said["role"] == "model" and "84" in said["text"]


async def test_a_connection_without_resumption_lists_no_handles(emulator: Running) -> None:
    async with live(emulator) as (session, box):
        await say_text(session, "Hello")
        await box.turn()
        summary = await wait_session(
            emulator, lambda s: s["conversation_id"] == session.session_id and s["open"]
        )
    assert summary["handles"] == []
