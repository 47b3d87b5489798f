"""The notes tools: per-user storage, privacy, and what Pipecat sees of the tools.

The behaviours that must not depend on where notes live (who sees what, search, forget, the
tools' answers) run on both backends through `any_store`: the SQLite file (unit tier) and
PostgreSQL (postgres tier, started only when that parameter runs).
"""

import asyncio
import contextlib
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import wait_session
from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMSettings
from pipecat.workers.runner import WorkerRunner

from bots.gemini_live.service import GeminiLiveStage
from bots.tools import assistant_tools, calculate, get_current_time
from bots.tools.notes import MAX_NOTE_CHARS, UNAVAILABLE, NotesStore, make_notes_tools
from emulator.client import http_options
from emulator.server import Running
from stores.notes import PostgresNoteRows
from stores.postgres import Database
from testkit.tool_calls import result_of

pytestmark = pytest.mark.unit


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "private" / "notes.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[NotesStore]:
    with NotesStore(db_path) as notes_store:
        yield notes_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[NotesStore]:
    if request.param == "sqlite":
        with NotesStore(db_path) as notes_store:
            yield notes_store
        return
    database = Database(request.getfixturevalue("database_url"))
    database.open()
    try:
        with NotesStore(PostgresNoteRows(database)) as notes_store:
            yield notes_store
    finally:
        database.close()


@pytest.fixture
def shared(database_url: str) -> Iterator[tuple[Database, NotesStore]]:
    database = Database(database_url)
    database.open()
    try:
        with NotesStore(PostgresNoteRows(database)) as notes_store:
            yield database, notes_store
    finally:
        database.close()


def tools_by_name(store: NotesStore, user_id: str) -> dict[str, Any]:
    return {tool.__name__: tool for tool in make_notes_tools(store, user_id)}


def texts(notes: list[Any]) -> list[str]:
    return [note.text for note in notes]


# --- NotesStore ------------------------------------------------------------------------


def test_notes_are_listed_oldest_first_with_increasing_ids(any_store: NotesStore) -> None:
    first = any_store.add("ana", "my favorite color is blue")
    second = any_store.add("ana", "the locker code is 4711")
    assert second > first
    assert texts(any_store.list("ana")) == ["my favorite color is blue", "the locker code is 4711"]
    assert any_store.list("ana")[0].user_id == "ana"


def test_notes_for_two_users_are_kept_apart(any_store: NotesStore) -> None:
    any_store.add("ana", "ana's secret")
    any_store.add("bo", "bo's secret")
    assert texts(any_store.list("ana")) == ["ana's secret"]
    assert texts(any_store.list("bo")) == ["bo's secret"]
    assert texts(any_store.search("ana", "secret")) == ["ana's secret"]
    assert any_store.list("carla") == []


def test_whitespace_in_a_note_is_collapsed(any_store: NotesStore) -> None:
    any_store.add("ana", "  buy\n milk   and\teggs ")
    assert texts(any_store.list("ana")) == ["buy milk and eggs"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_note_is_refused(store: NotesStore, text: str) -> None:
    with pytest.raises(ValueError, match="needs some text"):
        store.add("ana", text)


def test_an_overlong_note_is_refused(store: NotesStore) -> None:
    with pytest.raises(ValueError, match="at most"):
        store.add("ana", "x" * (MAX_NOTE_CHARS + 1))


async def test_a_note_that_is_not_valid_unicode_is_refused_as_an_error_result(
    any_store: NotesStore,
) -> None:
    # JSON may carry a lone surrogate ("\\ud800"); neither backend can store one.
    with pytest.raises(ValueError, match="plain text"):
        any_store.add("ana", "pin \ud800")
    result = await result_of(tools_by_name(any_store, "ana")["remember_note"], text="x \udc00")
    assert set(result) == {"error"}
    assert any_store.list("ana") == []


def test_an_empty_user_id_is_refused_rather_than_pooling_everyone(store: NotesStore) -> None:
    with pytest.raises(ValueError):
        store.add("", "orphan")
    with pytest.raises(ValueError):
        make_notes_tools(store, " ")


def test_search_is_a_case_and_accent_insensitive_substring_match(any_store: NotesStore) -> None:
    any_store.add("ana", "My favourite Colors are blue and green")
    any_store.add("ana", "dinner at Café Central on Friday")
    any_store.add("ana", "dentist on Monday")
    assert texts(any_store.search("ana", "COLOR")) == ["My favourite Colors are blue and green"]
    assert texts(any_store.search("ana", "cafe")) == ["dinner at Café Central on Friday"]
    assert texts(any_store.search("ana", "on friday")) == ["dinner at Café Central on Friday"]


def test_search_falls_back_to_any_meaningful_word_when_no_note_has_them_all(
    any_store: NotesStore,
) -> None:
    any_store.add("ana", "my favorite color is blue")
    any_store.add("ana", "the locker code is 4711")
    assert texts(any_store.search("ana", "what is my favorite color?")) == [
        "my favorite color is blue"
    ]
    assert any_store.search("ana", "quantum chromodynamics") == []


def test_an_empty_search_returns_every_note(any_store: NotesStore) -> None:
    any_store.add("ana", "one")
    any_store.add("ana", "two")
    assert texts(any_store.search("ana", "")) == ["one", "two"]


def test_forget_with_a_query_only_removes_notes_containing_every_word(
    any_store: NotesStore,
) -> None:
    any_store.add("ana", "the locker code is 4711")
    any_store.add("ana", "the bike lock code is 1234")
    any_store.add("ana", "my favorite color is blue")
    assert any_store.forget("ana", "locker code") == 1
    assert texts(any_store.list("ana")) == [
        "the bike lock code is 1234",
        "my favorite color is blue",
    ]
    # No any-word fallback when deleting: "favorite food" must not take "favorite color".
    assert any_store.forget("ana", "favorite food") == 0
    assert len(any_store.list("ana")) == 2


@pytest.mark.parametrize("query", [None, "", "all", "everything", "Everything!", "all my notes"])
def test_forget_all_removes_only_that_users_notes(any_store: NotesStore, query: str | None) -> None:
    any_store.add("ana", "a1")
    any_store.add("ana", "a2")
    any_store.add("bo", "b1")
    assert any_store.forget("ana", query) == 2
    assert any_store.list("ana") == []
    assert texts(any_store.list("bo")) == ["b1"]


def test_forget_with_a_query_never_touches_another_user(any_store: NotesStore) -> None:
    any_store.add("ana", "shared word")
    any_store.add("bo", "shared word")
    assert any_store.forget("ana", "shared") == 1
    assert texts(any_store.list("bo")) == ["shared word"]


def test_the_store_survives_reopening(db_path: Path) -> None:
    with NotesStore(db_path) as first:
        first.add("ana", "persist me")
    with NotesStore(db_path) as second:
        assert texts(second.list("ana")) == ["persist me"]
        second.add("ana", "and me")
    with NotesStore(db_path) as third:
        assert texts(third.list("ana")) == ["persist me", "and me"]


def test_the_data_folder_is_0700_and_the_database_files_are_0600(
    store: NotesStore, db_path: Path
) -> None:
    store.add("ana", "private")
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    # SQLite creates the WAL side files while the store is open; they hold note text too.
    for side_file in (Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        assert side_file.exists(), side_file.name
        assert stat.S_IMODE(side_file.stat().st_mode) == 0o600, side_file.name


def test_the_database_uses_write_ahead_logging(store: NotesStore, db_path: Path) -> None:
    # The journal mode is the file's: a connection of our own sees what the store set.
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


# --- Direct functions --------------------------------------------------------------------


async def test_remember_note_saves_and_reports_the_users_note_count(any_store: NotesStore) -> None:
    tools = tools_by_name(any_store, "ana")
    assert await result_of(tools["remember_note"], text="the locker code is 4711") == {
        "saved": "the locker code is 4711",
        "count": 1,
    }
    assert await result_of(tools["remember_note"], text="my favorite color is blue") == {
        "saved": "my favorite color is blue",
        "count": 2,
    }


async def test_remember_note_with_empty_text_returns_an_error_result(store: NotesStore) -> None:
    result = await result_of(tools_by_name(store, "ana")["remember_note"], text="  ")
    assert set(result) == {"error"}
    assert store.list("ana") == []


async def test_recall_notes_returns_all_notes_or_the_matching_ones(any_store: NotesStore) -> None:
    any_store.add("ana", "my favorite color is blue")
    any_store.add("ana", "the locker code is 4711")
    recall = tools_by_name(any_store, "ana")["recall_notes"]
    assert await result_of(recall) == {
        "notes": ["my favorite color is blue", "the locker code is 4711"]
    }
    assert await result_of(recall, query="Color") == {"notes": ["my favorite color is blue"]}
    assert await result_of(recall, query="passport") == {"notes": []}


async def test_forget_notes_reports_how_many_notes_it_deleted(any_store: NotesStore) -> None:
    any_store.add("ana", "my favorite color is blue")
    any_store.add("ana", "the locker code is 4711")
    forget = tools_by_name(any_store, "ana")["forget_notes"]
    assert await result_of(forget, query="locker") == {"forgotten": 1}
    assert await result_of(forget) == {"forgotten": 1}
    assert any_store.list("ana") == []


async def test_the_tools_only_ever_see_the_user_they_were_made_for(any_store: NotesStore) -> None:
    ana, bo = tools_by_name(any_store, "ana"), tools_by_name(any_store, "bo")
    await result_of(ana["remember_note"], text="ana's diary")
    await result_of(bo["remember_note"], text="bo's diary")
    assert await result_of(bo["recall_notes"], query="diary") == {"notes": ["bo's diary"]}
    assert await result_of(bo["forget_notes"], query="all") == {"forgotten": 1}
    assert texts(any_store.list("ana")) == ["ana's diary"]


@pytest.mark.parametrize(
    ("tool", "arguments", "answer"),
    [
        ("remember_note", {"text": "my pin is 1234"}, "The note could not be saved."),
        ("recall_notes", {"query": "pin"}, "The notes could not be read."),
        ("forget_notes", {"query": "pin"}, "The notes could not be deleted."),
    ],
    ids=["remember", "recall", "forget"],
)
async def test_a_database_failure_is_answered_and_logged_without_the_notes_text(
    store: NotesStore, warnings: list[str], tool: str, arguments: dict[str, str], answer: str
) -> None:
    store.close()  # every query now fails with sqlite3.ProgrammingError
    assert await result_of(tools_by_name(store, "ana")[tool], **arguments) == {"error": answer}
    assert [m.split(":")[0] for m in warnings] == [f"{tool} failed"]
    assert not any("pin" in m for m in warnings)


@pytest.mark.postgres
async def test_an_unreachable_database_is_answered_as_unavailable_without_the_notes_text(
    shared: tuple[Database, NotesStore], warnings: list[str]
) -> None:
    database, store = shared
    database.close()  # every query now fails to get a connection
    for tool, arguments, answer in [
        ("remember_note", {"text": "my pin is 1234"}, "The note could not be saved."),
        ("recall_notes", {"query": "pin"}, "The notes could not be read."),
        ("forget_notes", {"query": "pin"}, "The notes could not be deleted."),
    ]:
        result = await result_of(tools_by_name(store, "ana")[tool], **arguments)
        assert result == {"error": f"{answer} {UNAVAILABLE}"}
    assert [m.split(":")[0] for m in warnings] == [
        "remember_note failed", "recall_notes failed", "forget_notes failed"
    ]  # fmt: skip
    assert not any("pin" in m for m in warnings)


@pytest.mark.postgres
async def test_a_postgresql_error_is_answered_and_logged_by_its_class_and_sqlstate_only(
    shared: tuple[Database, NotesStore], warnings: list[str]
) -> None:
    database, store = shared
    with database.connection() as conn:
        conn.execute("DROP TABLE notes")
    result = await result_of(tools_by_name(store, "ana")["remember_note"], text="my pin is 1234")
    assert result == {"error": "The note could not be saved."}
    assert warnings == ["remember_note failed: UndefinedTable (SQLSTATE 42P01)"]


def test_a_nul_in_a_note_is_whitespace_on_either_backend(any_store: NotesStore) -> None:
    any_store.add("ana", "locker\x00code 4711\x00")
    assert texts(any_store.list("ana")) == ["locker code 4711"]


async def test_concurrent_saves_from_worker_threads_are_all_kept(any_store: NotesStore) -> None:
    remember = tools_by_name(any_store, "ana")["remember_note"]
    await asyncio.gather(*(result_of(remember, text=f"note {i}") for i in range(40)))
    assert sorted(texts(any_store.list("ana"))) == sorted(f"note {i}" for i in range(40))


# --- What Pipecat and Gemini Live see -------------------------------------------------------


def test_the_notes_tools_have_the_names_the_model_must_see(store: NotesStore) -> None:
    names = [tool.__name__ for tool in make_notes_tools(store, "ana")]
    assert names == ["remember_note", "recall_notes", "forget_notes"]


def test_the_schemas_pipecat_derives_have_the_expected_params_and_descriptions(
    store: NotesStore,
) -> None:
    schemas = {
        schema.name: schema
        for schema in (
            DirectFunctionWrapper(tool).to_function_schema()
            for tool in make_notes_tools(store, "ana")
        )
    }
    remember, recall, forget = (
        schemas["remember_note"],
        schemas["recall_notes"],
        schemas["forget_notes"],
    )
    assert remember.required == ["text"]
    assert remember.properties == {
        "text": {
            "type": "string",
            "description": "The note to save, as one short self-contained sentence.",
        }
    }
    assert recall.required == []
    assert recall.properties["query"]["type"] == "string"
    assert "empty" in recall.properties["query"]["description"]
    assert forget.required == []
    assert forget.properties["query"]["type"] == "string"
    assert remember.description.startswith("Save a note for the user")
    assert recall.description.startswith("Look up notes")
    assert forget.description.startswith("Delete notes")
    assert "ALL" in forget.description
    # The user id is bound by the bot, never a parameter the model could set.
    for schema in schemas.values():
        assert "user_id" not in schema.properties


def test_remember_note_is_flagged_not_to_be_cancelled_on_interruption(
    store: NotesStore,
) -> None:
    remember, recall, forget = make_notes_tools(store, "ana")
    assert getattr(remember, "_pipecat_cancel_on_interruption", None) is False
    assert not hasattr(recall, "_pipecat_cancel_on_interruption")
    assert not hasattr(forget, "_pipecat_cancel_on_interruption")


def test_assistant_tools_come_in_a_stable_order(store: NotesStore) -> None:
    names = [tool.__name__ for tool in assistant_tools(store, "ana")]
    assert names == ["get_current_time", "calculate", "remember_note", "recall_notes",
                     "forget_notes"]  # fmt: skip
    assert assistant_tools(store, "ana")[:2] == [get_current_time, calculate]


@pytest.mark.emulator
async def test_gemini_live_registers_the_tools_and_declares_only_remember_note_non_blocking(
    store: NotesStore, emulator: Running
) -> None:
    # What the stage declares in the Live setup message, as the emulator received it: the
    # handlers are registered before the stage connects, so `remember_note`
    # (`cancel_on_interruption=False`) is NON_BLOCKING on a model that has NON_BLOCKING tools.
    llm = GeminiLiveStage(
        api_key="test-key",
        tools=assistant_tools(store, "ana"),
        http_options=http_options(emulator.base_url, emulator.certs.ca),
        settings=GeminiLiveLLMSettings(
            model="models/gemini-2.5-flash-native-audio-preview-12-2025"
        ),
    )
    worker = PipelineWorker(Pipeline([llm]), enable_rtvi=False, idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        session = await wait_session(emulator, lambda s: s["config"] is not None)
    finally:
        await worker.cancel()
        await asyncio.wait_for(task, 10)
    behaviors = {tool["name"]: tool["behavior"] for tool in session["config"]["tools"]}
    # The emulator reports an untagged declaration as BLOCKING (what Gemini 2.5 does with it).
    assert behaviors == {
        "get_current_time": "BLOCKING",
        "calculate": "BLOCKING",
        "remember_note": "NON_BLOCKING",
        "recall_notes": "BLOCKING",
        "forget_notes": "BLOCKING",
    }
