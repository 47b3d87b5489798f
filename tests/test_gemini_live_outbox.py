"""The outbox alone: order, bounds, and what it never drops; no socket, no Pipecat."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from bots.gemini_live.outbox import (
    AUDIO,
    CLIENT_CONTENT,
    TEXT,
    TOOL_RESPONSE,
    VIDEO,
    Outbox,
    Outgoing,
)

pytestmark = pytest.mark.unit


class Socket:
    """What the outbox sends on: it takes messages while `up`, and records them."""

    def __init__(self, *, up: bool = True) -> None:
        self.up = up
        self.sent: list[Any] = []

    async def send(self, item: Outgoing) -> bool:
        if not self.up:
            return False
        self.sent.append(item.payload)
        return True


def box(socket: Socket, **options: Any) -> Outbox:
    return Outbox(socket.send, usable=lambda: socket.up, **options)


async def put(outbox: Outbox, kind: str, payload: Any, secs: float = 0.0, **extra: Any) -> None:
    await outbox.submit(outbox.item(kind, payload, audio_secs=secs, **extra))


def test_the_outbox_imports_nothing_from_pipecat() -> None:
    code = (
        "import sys, bots.gemini_live.outbox; "
        "print(any(m.startswith('pipecat') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


async def test_while_closed_everything_is_queued_in_order_and_flushed_in_that_order() -> None:
    socket = Socket(up=False)
    outbox = box(socket)
    for i, kind in enumerate([TEXT, AUDIO, TOOL_RESPONSE, CLIENT_CONTENT]):
        await put(outbox, kind, i, secs=0.1 if kind == AUDIO else 0.0)
    assert outbox.pending == (TEXT, AUDIO, TOOL_RESPONSE, CLIENT_CONTENT)
    assert not outbox.is_open and socket.sent == []
    socket.up = True
    assert await outbox.flush()
    assert socket.sent == [0, 1, 2, 3] and outbox.pending == () and outbox.is_open
    await put(outbox, TEXT, "now")
    assert socket.sent[-1] == "now", "an open outbox sends at once"


async def test_a_failed_send_keeps_the_message_in_its_place_and_closes_the_gate() -> None:
    socket = Socket(up=False)
    outbox = box(socket)
    await put(outbox, TEXT, "a")
    await put(outbox, TEXT, "b")
    socket.up = True
    assert await outbox.flush()
    socket.up = False  # the socket went away without the owner noticing yet
    await put(outbox, TEXT, "c")
    assert not outbox.is_open and outbox.pending == (TEXT,)
    await put(outbox, TEXT, "d")
    socket.up = True
    assert await outbox.flush()
    assert socket.sent == ["a", "b", "c", "d"]


async def test_queued_audio_is_capped_by_dropping_the_oldest_first() -> None:
    outbox = box(Socket(up=False), max_audio_secs=1.0)
    for i in range(5):
        await put(outbox, AUDIO, i, secs=0.4)
    assert [q.payload for q in outbox.queued()] == [3, 4]
    assert outbox.dropped_audio_secs == pytest.approx(1.2)


async def test_only_the_newest_video_frame_is_kept() -> None:
    outbox = box(Socket(up=False))
    await put(outbox, VIDEO, "old")
    await put(outbox, TEXT, "hi")
    await put(outbox, VIDEO, "new")
    assert [(q.kind, q.payload) for q in outbox.queued()] == [(TEXT, "hi"), (VIDEO, "new")]
    assert outbox.dropped_video == 1


async def test_results_of_calls_of_an_unresumable_session_are_not_sent() -> None:
    socket = Socket(up=False)
    stale = {"call-old"}
    outbox = Outbox(
        socket.send, usable=lambda: socket.up, stale=lambda ids: [i for i in ids if i in stale]
    )
    await put(outbox, TOOL_RESPONSE, "old result", call_ids=("call-old",))
    await put(outbox, TOOL_RESPONSE, "new result", call_ids=("call-new",))
    socket.up = True
    assert await outbox.flush()
    assert socket.sent == ["new result"]


async def test_an_ended_outbox_drops_what_it_held_and_what_comes_later() -> None:
    socket = Socket(up=False)
    outbox = box(socket)
    await put(outbox, TEXT, "queued")
    outbox.end("the session is ending")
    await put(outbox, TEXT, "late")
    socket.up = True
    assert not await outbox.flush()
    assert socket.sent == [] and outbox.pending == ()


async def test_past_the_item_limit_new_messages_are_refused_but_queued_ones_kept() -> None:
    outbox = box(Socket(up=False), max_items=3)
    for text in "abcd":
        await put(outbox, TEXT, text)
    assert [q.payload for q in outbox.queued()] == ["a", "b", "c"]


async def test_flushing_onto_a_socket_that_goes_away_mid_way_keeps_the_rest() -> None:
    socket = Socket(up=False)

    async def send_then_fail(item: Outgoing) -> bool:
        if socket.sent:
            socket.up = False
            return False
        socket.sent.append(item.payload)
        return True

    outbox = Outbox(send_then_fail, usable=lambda: socket.up)
    for text in "abc":
        await put(outbox, TEXT, text)
    socket.up = True
    assert not await outbox.flush()
    assert socket.sent == ["a"] and [q.payload for q in outbox.queued()] == ["b", "c"]


KINDS = st.sampled_from([AUDIO, VIDEO, TEXT, TOOL_RESPONSE, CLIENT_CONTENT])


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(st.tuples(KINDS, st.floats(min_value=0.0, max_value=0.5)), max_size=60),
    cap=st.floats(min_value=0.0, max_value=3.0),
)
async def test_whatever_is_submitted_the_bounds_hold_and_the_order_is_kept(
    messages: list[tuple[str, float]], cap: float
) -> None:
    socket = Socket(up=False)
    outbox = box(socket, max_audio_secs=cap)
    for i, (kind, secs) in enumerate(messages):
        await put(outbox, kind, i, secs=secs if kind == AUDIO else 0.0)
    queued = outbox.queued()
    assert [q.seq for q in queued] == sorted(q.seq for q in queued), "in submission order"
    assert sum(q.audio_secs for q in queued) <= cap + 1e-9
    videos = [i for i, (kind, _) in enumerate(messages) if kind == VIDEO]
    assert [q.payload for q in queued if q.kind == VIDEO] == videos[-1:], "the newest frame"
    kept = [i for i, (kind, _) in enumerate(messages) if kind not in (AUDIO, VIDEO)]
    assert [q.payload for q in queued if q.kind not in (AUDIO, VIDEO)] == kept, "never dropped"
    socket.up = True
    assert await outbox.flush()
    assert socket.sent == [q.payload for q in queued]
