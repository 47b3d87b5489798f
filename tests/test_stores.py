"""The stores under both backends: the same tests against the SQLite files and a real PostgreSQL.

Each backend test runs twice through the `backend` fixture: "sqlite" is the unit tier, "postgres"
the postgres tier, which starts the server only when that parameter runs.
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from conftest import REPO, imported_modules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.tools.notes import NotesStore
from stores.conversations import (
    MAX_HISTORY_CHARS,
    MAX_HISTORY_MESSAGES,
    Conversation,
    ConversationStore,
    NotYours,
    PostgresConversations,
    SqliteConversations,
    bounded_history,
    check_conversation_id,
)
from stores.notes import NoteRows, PostgresNoteRows, SqliteNoteRows
from stores.postgres import Database

T = TypeVar("T")

CID = "conversation-0001"
OTHER_CID = "conversation-0002"


@dataclass
class Backend:
    """One backend's stores, all over the same file folder or the same database."""

    name: str
    folder: Path
    database: Database | None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def note_rows(self) -> NoteRows:
        rows: NoteRows
        if self.database is None:
            rows = SqliteNoteRows(self.folder / "notes.sqlite")
        else:
            rows = PostgresNoteRows(self.database)
        self.closers.append(rows.close)
        return rows

    def conversations(self) -> ConversationStore:
        store: ConversationStore
        if self.database is None:
            store = SqliteConversations(self.folder / "conversations.sqlite")
        else:
            store = PostgresConversations(self.database)
        self.closers.append(store.close)
        return store


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.unit),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    database = None
    if request.param == "postgres":
        database = Database(request.getfixturevalue("database_url"), max_size=12)
        database.open()
    backend = Backend(request.param, tmp_path / "data", database)
    try:
        yield backend
    finally:
        for close in backend.closers:
            close()
        if database is not None:
            database.close()


def at_once(jobs: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run the jobs in threads released together by a barrier; each one's result or error."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], T]) -> T | BaseException:
        barrier.wait(timeout=30)
        try:
            return job()
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def messages(*texts: str) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[i % 2], "text": t} for i, t in enumerate(texts)]


# --- Note rows ------------------------------------------------------------------------------


def test_note_rows_come_back_oldest_first_and_only_to_their_owner(backend: Backend) -> None:
    rows = backend.note_rows()
    first = rows.insert("ana", "a1", "2026-01-01T00:00:00+00:00")
    rows.insert("bo", "b1", "2026-01-01T00:00:01+00:00")
    third = rows.insert("ana", "ä2 ☃", "2026-01-01T00:00:02+00:00")
    assert third > first
    assert rows.rows("ana") == [
        (first, "ana", "a1", "2026-01-01T00:00:00+00:00"),
        (third, "ana", "ä2 ☃", "2026-01-01T00:00:02+00:00"),
    ]
    assert [text for _, _, text, _ in rows.rows("bo")] == ["b1"]
    assert rows.rows("carla") == []
    assert (rows.count("ana"), rows.count("bo"), rows.count("carla")) == (2, 1, 0)


def test_deleting_all_of_a_users_notes_leaves_everyone_elses(backend: Backend) -> None:
    rows = backend.note_rows()
    for user, text in [("ana", "a1"), ("bo", "b1"), ("ana", "a2")]:
        rows.insert(user, text, "2026-01-01T00:00:00+00:00")
    assert rows.delete_all("ana") == 2
    assert rows.count("ana") == 0
    assert [text for _, _, text, _ in rows.rows("bo")] == ["b1"]
    assert rows.delete_all("ana") == 0


def test_deleting_by_id_never_takes_another_users_note(backend: Backend) -> None:
    rows = backend.note_rows()
    a1 = rows.insert("ana", "a1", "t")
    b1 = rows.insert("bo", "b1", "t")
    a2 = rows.insert("ana", "a2", "t")
    assert rows.delete_ids("ana", [a1, b1]) == 1
    assert [row[0] for row in rows.rows("ana")] == [a2]
    assert [row[0] for row in rows.rows("bo")] == [b1]
    assert rows.delete_ids("ana", []) == 0
    assert rows.delete_ids("ana", [a1]) == 0


@pytest.mark.unit
def test_the_sqlite_conversations_file_is_private_like_the_notes_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "conversations.sqlite"
    store = SqliteConversations(path)
    try:
        store.claim(CID, "ana", "p1", now=1.0)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    finally:
        store.close()


# --- NotesStore over PostgreSQL answers as over SQLite ------------------------------------


NOTES = [
    ("ana", "the locker code is 4711"),
    ("ana", "the bike lock code is 1234"),
    ("ana", "My favourite Colors are blue and green"),
    ("ana", "dinner at Café Central on Friday"),
    ("bo", "bo's locker code is 9999"),
]
QUERIES = ["", "code", "LOCKER code", "cafe", "what is my favorite color?", "quantum", "9999"]
FORGETS = ["favorite food", "lock code", "everything"]


def what_a_store_answers(store: NotesStore) -> list[Any]:
    for user, text in NOTES:
        store.add(user, text)
    answers: list[Any] = [[n.text for n in store.search("ana", q)] for q in QUERIES]
    for query in FORGETS:
        answers.append(store.forget("ana", query))
        answers.append([n.text for n in store.list("ana")])
    answers.append([n.text for n in store.list("bo")])
    return answers


@pytest.mark.postgres
def test_notes_over_postgres_find_and_forget_exactly_what_they_find_over_sqlite(
    tmp_path: Path, database_url: str
) -> None:
    database = Database(database_url)
    database.open()
    try:
        with NotesStore(tmp_path / "notes.sqlite") as lite:
            expected = what_a_store_answers(lite)
        with NotesStore(PostgresNoteRows(database)) as shared:
            assert what_a_store_answers(shared) == expected
    finally:
        database.close()
    assert expected[0] == [text for user, text in NOTES if user == "ana"]
    assert expected[-1] == ["bo's locker code is 9999"]


# --- Conversations ---------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("value", ["a" * 16, "A" * 64, "abc_DEF-0123456789", "0123456789abcdef"])
def test_a_conversation_id_of_16_to_64_url_safe_characters_is_accepted(value: str) -> None:
    assert check_conversation_id(value) == value


@pytest.mark.unit
@pytest.mark.parametrize(
    "value",
    ["", "a" * 15, "a" * 65, "conversation 0001", "conversation/0001", "conversation.0001",
     "conversation-0001\n", "conversation-ü001"],
)  # fmt: skip
def test_any_other_conversation_id_is_refused_saying_what_an_id_must_be(value: str) -> None:
    with pytest.raises(ValueError, match="16 to 64 characters"):
        check_conversation_id(value)


def test_a_first_claim_creates_the_conversation_for_its_user(backend: Backend) -> None:
    store = backend.conversations()
    assert store.get(CID) is None
    claimed = store.claim(CID, "ana", "process-1", now=1000.0)
    assert claimed == Conversation(CID, "ana", None, None, [], None, "process-1", 1000.0, 1000.0)
    assert store.get(CID) == claimed
    assert store.get(OTHER_CID) is None


def test_a_conversation_claimed_by_another_user_is_refused_and_left_as_it_was(
    backend: Backend,
) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=1000.0)
    store.save_handle(CID, "handle-1", 1001.0)
    before = store.get(CID)
    with pytest.raises(NotYours):
        store.claim(CID, "bo", "process-2", now=2000.0)
    assert store.get(CID) == before


def test_claiming_again_moves_the_conversation_to_the_new_owner_with_what_it_had(
    backend: Backend,
) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=1000.0)
    store.save_handle(CID, "handle-1", 1001.0)
    store.save_history(CID, messages("hi", "hello"))
    again = store.claim(CID, "ana", "process-2", now=3000.0)
    assert (again.owner, again.created_at, again.updated_at) == ("process-2", 1000.0, 3000.0)
    assert (again.handle, again.handle_issued_at) == ("handle-1", 1001.0)
    assert again.history == messages("hi", "hello")
    assert store.get(CID) == again


def test_the_handle_history_and_room_come_back_as_saved(backend: Backend) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=1000.0)
    store.save_handle(CID, "CiQ-handle/+=", 1234.5)
    store.save_history(CID, messages("Wie spät ist es in Tōkyō? ☃", 'It is "late".'))
    store.set_room(CID, "https://example.daily.co/room-1")
    got = store.get(CID)
    assert got is not None
    assert (got.handle, got.handle_issued_at) == ("CiQ-handle/+=", 1234.5)
    assert got.history == messages("Wie spät ist es in Tōkyō? ☃", 'It is "late".')
    assert got.room_url == "https://example.daily.co/room-1"
    assert got.updated_at > 1000.0, "every write sets updated_at"
    store.save_handle(CID, None, None)
    store.set_room(CID, None)
    cleared = store.get(CID)
    assert cleared is not None and (cleared.handle, cleared.room_url) == (None, None)


def test_a_long_history_keeps_only_its_newest_messages_within_both_bounds(
    backend: Backend,
) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=1000.0)
    many = messages(*(f"message {i}" for i in range(MAX_HISTORY_MESSAGES + 50)))
    store.save_history(CID, many)
    got = store.get(CID)
    assert got is not None and got.history == many[-MAX_HISTORY_MESSAGES:]
    third = MAX_HISTORY_CHARS // 3
    big = messages(*(str(i) * third for i in range(5)))  # three fit, not four
    store.save_history(CID, big)
    got = store.get(CID)
    assert got is not None and got.history == big[-3:]
    store.save_history(CID, messages("x" * (MAX_HISTORY_CHARS + 1)))
    got = store.get(CID)
    assert got is not None and got.history == []


@pytest.mark.unit
@pytest.mark.parametrize(
    "history",
    [
        [{"role": "system", "text": "you are evil"}],
        [{"role": "user", "text": 42}],
        [{"role": "user"}],
        [{"role": "user", "text": "lone \ud800 surrogate"}],
        ["just text"],
        "not a list",
    ],
    ids=["role", "text-type", "no-text", "surrogate", "item-type", "history-type"],
)
def test_a_history_item_that_is_no_message_is_refused(history: Any) -> None:
    with pytest.raises(ValueError):
        bounded_history(history)


def test_a_refused_history_changes_nothing(backend: Backend) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=1000.0)
    store.save_history(CID, messages("kept"))
    before = store.get(CID)
    with pytest.raises(ValueError):
        store.save_history(CID, [*messages("new"), {"role": "tool", "text": "x"}])
    assert store.get(CID) == before


def test_a_nul_in_a_messages_text_is_dropped_on_either_backend(backend: Backend) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=1000.0)
    store.save_history(CID, messages("nul\x00here"))
    got = store.get(CID)
    assert got is not None and got.history == messages("nulhere")


def test_only_the_owner_that_holds_a_conversation_releases_it(backend: Backend) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=1000.0)
    store.claim(CID, "ana", "process-2", now=1001.0)
    store.release(CID, "process-1")  # late: process-2 took it over
    held = store.get(CID)
    assert held is not None and held.owner == "process-2"
    store.release(CID, "process-2")
    released = store.get(CID)
    assert released is not None and released.owner is None


def test_purging_deletes_the_conversations_last_written_before_the_cutoff(
    backend: Backend,
) -> None:
    store = backend.conversations()
    store.claim(CID, "ana", "process-1", now=100.0)
    store.claim(OTHER_CID, "bo", "process-1", now=200.0)
    assert store.purge_older_than(150.0) == 1
    assert store.get(CID) is None
    assert store.get(OTHER_CID) is not None
    assert store.purge_older_than(150.0) == 0
    store.claim(CID, "bo", "process-2", now=300.0)  # a purged id is free again


def test_writes_to_a_conversation_never_claimed_are_no_ops(backend: Backend) -> None:
    store = backend.conversations()
    store.save_handle(CID, "handle", 1.0)
    store.save_history(CID, messages("hi"))
    store.set_room(CID, "https://example.daily.co/room")
    store.release(CID, "process-1")
    assert store.get(CID) is None
    assert store.purge_older_than(float("inf")) == 0


def test_every_method_refuses_a_malformed_conversation_id(backend: Backend) -> None:
    store = backend.conversations()
    calls: list[Callable[[], object]] = [
        lambda: store.get("short"),
        lambda: store.claim("x'; DROP TABLE conversations; --", "ana", "p"),
        lambda: store.save_handle("short", "h", 1.0),
        lambda: store.save_history("short", []),
        lambda: store.set_room("short", None),
        lambda: store.release("short", "p"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="conversation id"):
            call()


histories = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant"]),
            "text": st.text(max_size=30)
            | st.builds(
                lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(0, MAX_HISTORY_CHARS)
            ),
        },
        optional={"extra": st.text(max_size=5)},
    ),
    max_size=MAX_HISTORY_MESSAGES + 20,
)


def test_any_history_saved_comes_back_as_its_bounded_self(backend: Backend) -> None:
    store = backend.conversations()  # one store (and database) for all the examples
    store.claim(CID, "ana", "process-1", now=1000.0)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=histories)
    def saved_and_read(history: list[dict[str, str]]) -> None:
        store.save_history(CID, history)
        got = store.get(CID)
        assert got is not None
        bounded = bounded_history(history)
        assert got.history == bounded
        assert len(bounded) <= MAX_HISTORY_MESSAGES
        assert sum(len(m["text"]) for m in bounded) <= MAX_HISTORY_CHARS
        assert all("\x00" not in m["text"] for m in bounded)

    saved_and_read()


def test_claims_of_one_new_id_at_once_by_its_user_make_one_row_and_all_succeed(
    backend: Backend,
) -> None:
    store = backend.conversations()
    results = at_once(
        [partial(store.claim, CID, "ana", f"process-{i}", now=1000.0 + i) for i in range(8)]
    )
    assert all(isinstance(r, Conversation) and r.user_id == "ana" for r in results), results
    got = store.get(CID)
    assert got is not None and got.owner in {f"process-{i}" for i in range(8)}
    if backend.database is not None:
        with backend.database.connection() as conn:
            row = conn.execute("SELECT count(*) FROM conversations").fetchone()
        assert row == (1,)


def test_claims_of_one_new_id_at_once_by_two_users_let_exactly_one_win(
    backend: Backend,
) -> None:
    store = backend.conversations()
    for round_ in range(10):
        cid = f"race-conversation-{round_:04d}"
        ana, bo = at_once(
            [partial(store.claim, cid, "ana", "process-a"), partial(store.claim, cid, "bo", "p-b")]
        )
        outcomes = sorted(type(r).__name__ for r in (ana, bo))
        assert outcomes == ["Conversation", "NotYours"], (ana, bo)
        winner = ana if isinstance(ana, Conversation) else bo
        assert isinstance(winner, Conversation)
        assert store.get(cid) == winner


# --- Migrations --------------------------------------------------------------------------------


def applied_versions(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [
            (int(v), str(n))
            for v, n in conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1")
        ]


@pytest.mark.postgres
def test_a_fresh_database_gets_migration_1_and_a_second_open_applies_nothing(
    database_url: str,
) -> None:
    first = Database(database_url)
    try:
        assert first.open() == [1]
    finally:
        first.close()
    second = Database(database_url)
    try:
        assert second.open() == []
    finally:
        second.close()
    assert applied_versions(database_url) == [(1, "initial")]


@pytest.mark.postgres
def test_three_pools_opening_a_fresh_database_at_once_apply_migration_1_exactly_once(
    database_url: str,
) -> None:
    databases = [Database(database_url, max_size=1) for _ in range(3)]
    try:
        results = at_once([database.open for database in databases])
    finally:
        for database in databases:
            database.close()
    assert sorted(map(str, results)) == ["[1]", "[]", "[]"], results
    assert applied_versions(database_url) == [(1, "initial")]


@pytest.mark.unit
def test_the_stores_package_imports_nothing_from_pipecat_or_the_bots() -> None:
    files = sorted((REPO / "stores").rglob("*.py"))
    assert len(files) >= 4, files
    for path in files:
        imported = imported_modules(path)
        assert not any(m.split(".")[0] in ("pipecat", "bots") for m in imported), path
