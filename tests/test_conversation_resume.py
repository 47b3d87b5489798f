"""Conversations that outlive their process (issue 15, point 2), on both stores.

A bot keeps its conversation's latest resumption handle and history in the store; a second bot,
built afresh as another process would build it, claims the same conversation id and goes on
with it: with the handle it resumes the very Gemini session (the emulator's conversation id is
the same, nothing is seeded again, no greeting); with a handle too old to use it starts a fresh
session seeded with the stored history, and the model does not answer the seed by itself.

Every test runs twice: with the embedded SQLite store and with a real PostgreSQL server. The
first question is spoken (the emulator transcribes it), as a page's user asks: the history is
the transcript's turns, and a typed text is no turn of the transcript.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import load_wav
from resilience_harness import TIMEOUT, Bot, run_bot

from bots import lifecycle
from bots.conversations import resume
from bots.settings import Settings
from bots.storage import close_all, open_stores
from emulator.server import Running
from stores.conversations import ConversationStore
from testkit.waiting import until

pytestmark = pytest.mark.emulator

USER = "ana"
FAST = {"reconnect_base_delay_secs": 0.05, "reconnect_max_delay_secs": 0.2}


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The settings that pick the store: the data folder alone, or a database as well."""
    chosen: dict[str, Any] = {"data_dir": tmp_path / "data"}
    if request.param == "postgres":
        chosen["database_url"] = request.getfixturevalue("database_url")
    yield chosen
    close_all()


def store_of(emulator: Running, backend: dict[str, Any]) -> ConversationStore:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        emulator_url=emulator.base_url,
        emulator_ca=emulator.certs.ca,
        **backend,
    )
    return open_stores(settings).conversations


async def stored(store: ConversationStore, conversation_id: str) -> Any:
    return await asyncio.to_thread(store.get, conversation_id)


async def first_bot_answers_a_spoken_question(bot: Bot) -> None:
    """Ask "What is twelve times seven?" aloud; wait until the answer is in the transcript, and
    it and the handle that covers it are stored."""
    await bot.speak(load_wav("multiply.wav"), silence_secs=1.0)
    keeper = bot.keeper
    assert keeper is not None
    await until(
        lambda: [m["role"] for m in keeper.current()] == ["user", "assistant"],
        "the question and its answer in the transcript",
    )
    await bot.wait_idle_with_handle()
    keeper.history()
    assert await keeper.flush(TIMEOUT)


def is_the_question(text: str) -> bool:
    words = text.lower()
    return ("twelve" in words or "12" in words) and ("seven" in words or "7" in words)


@pytest.mark.speech
async def test_a_second_process_resumes_the_same_gemini_session_with_the_stored_handle(
    emulator: Running, backend: dict[str, Any]
) -> None:
    store = store_of(emulator, backend)
    first = await resume(store, None, USER, "replica-a")
    async with run_bot(emulator, options=FAST, conversation=first, **backend) as bot:
        await first_bot_answers_a_spoken_question(bot)
        gemini_session = bot.llm.session_id
        handle = bot.llm.status.resumption_handle
        kept = await stored(store, first.conversation_id)
        assert kept.handle == handle and kept.owner == "replica-a"
        assert [m["role"] for m in kept.history] == ["user", "assistant"]
        assert is_the_question(kept.history[0]["text"]), kept.history
        assert "84" in kept.history[1]["text"], kept.history
    # The first process is gone (its socket closed); another claims the conversation.
    second = await resume(store, first.conversation_id, USER, "replica-b")
    assert second.conversation is not None and second.conversation.handle == handle
    async with run_bot(emulator, options=FAST, conversation=second, **backend) as bot:
        assert bot.llm.session_id == gemini_session, "a new Gemini session instead of resuming"
        connection = bot.live()
        assert connection is not None and connection["resumed_from"] is not None
        # Resumed, not reseeded: the history holds the first question once, no greeting.
        user_turns = [t["text"] for t in bot.history() if t["role"] == "user"]
        assert len(user_turns) == 1 and is_the_question(user_turns[0]), bot.history()
        before = bot.model_turns()
        await bot.ask("what is 2 plus 2")
        await bot.wait_answered("what is 2 plus 2")
        assert bot.model_turns() == before + 1
        await bot.wait_idle_with_handle()
        assert bot.keeper is not None and await bot.keeper.flush(TIMEOUT)
        assert bot.keeper.current()[:2] == kept.history, "the stored history comes first"
    kept = await stored(store, first.conversation_id)
    assert kept.owner is None, "the second process let go of the conversation when it ended"


@pytest.mark.speech
async def test_a_handle_too_old_to_use_reseeds_a_fresh_session_with_the_stored_history(
    emulator: Running, backend: dict[str, Any]
) -> None:
    store = store_of(emulator, backend)
    first = await resume(store, None, USER, "replica-a")
    async with run_bot(emulator, options=FAST, conversation=first, **backend) as bot:
        await first_bot_answers_a_spoken_question(bot)
        gemini_session = bot.llm.session_id
    # Two hours and more later, as far as the handle's age goes.
    await asyncio.to_thread(
        store.save_handle, first.conversation_id, "stale-handle", time.time() - 3 * 3600
    )
    second = await resume(store, first.conversation_id, USER, "replica-b")
    assert second.stage_options["resume_handle_age_secs"] > 7200
    async with run_bot(emulator, options=FAST, conversation=second, **backend) as bot:
        assert bot.llm.session_id != gemini_session
        connection = bot.live()
        assert connection is not None and connection["resumed_from"] is None
        texts = [(t["role"], t["text"]) for t in bot.history()]
        assert texts[0][0] == "user" and is_the_question(texts[0][1]), texts
        assert texts[1][0] == "model" and "84" in texts[1][1], texts
        seeded = len(texts)
        # The seed asks for nothing: the model says nothing until the user does.
        await bot.view.fresh()
        assert len(bot.history()) == seeded, bot.history()
        await bot.ask("what is 3 plus 4")
        await bot.wait_answered("what is 3 plus 4")


async def test_another_users_conversation_is_never_resumed(
    emulator: Running, backend: dict[str, Any]
) -> None:
    store = store_of(emulator, backend)
    mine = await resume(store, None, USER, "replica-a")
    theirs = await resume(store, mine.conversation_id, "bob", "replica-b")
    assert theirs.conversation_id != mine.conversation_id
    assert theirs.conversation is not None and theirs.conversation.user_id == "bob"
    kept = await stored(store, mine.conversation_id)
    assert kept.user_id == USER and kept.owner == "replica-a"


async def test_a_draining_process_asks_its_client_to_move_once_the_answer_and_its_handle_are_kept(
    emulator: Running, backend: dict[str, Any]
) -> None:
    store = store_of(emulator, backend)
    first = await resume(store, None, USER, "replica-a")
    async with run_bot(emulator, options=FAST, conversation=first, **backend) as bot:
        assert bot.keeper is not None
        lifecycle.track(
            bot.worker, conversation=first.conversation_id, ready_to_move=bot.keeper.ready_to_move
        )
        await bot.ask("tell me a story about a lighthouse")
        await until(lambda: bot.llm.status.bot_responding, "the answer to begin")
        # A generous bound: the long answer is synthesized on a loaded CI machine.
        moving = asyncio.create_task(lifecycle.move_all(within=4 * TIMEOUT))

        def moved() -> list[dict[str, Any]]:
            return [
                m
                for m in bot.transport.output().rtvi("server-message")
                if m.get("data", {}).get("type") == lifecycle.MOVING
            ]

        (message,) = await until(moved, "the move message", 2 * TIMEOUT)
        # Not before the answer was over, and not before its handle was stored.
        status = bot.llm.status
        assert not status.bot_responding and status.handle_covers_last_turn
        kept = await stored(store, first.conversation_id)
        assert kept.handle == status.resumption_handle
        assert message["data"]["conversation_id"] == first.conversation_id
        # The client leaves (its page disconnects): the move is over.
        await bot.worker.cancel(reason="the client moved")
        assert await asyncio.wait_for(moving, 4 * TIMEOUT) == 0
