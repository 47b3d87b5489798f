"""Transcript storage: private files, whole lines only, an index, retention, failures, the CLI.

The tests of what every store promises (each event stored by a write of its own, read back in
order by another reader, listed, purged, found by conversation, kept after a SIGKILL) run on both
stores through the `backend` fixture: the folder ("files", a unit test) and PostgreSQL
("postgres", a real server; see tests/conftest.py). What only a folder has (modes, torn lines,
fsync, the index) is tested on files alone, and what only a database does (its connections going
away, rows it refuses) on PostgreSQL alone.

The crash test runs a child process that logs events in a loop and acknowledges each one on
stdout once it is written; it is killed with SIGKILL mid-stream, and every acknowledged event must
load back.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stores.postgres import Database
from transcripts import (
    NoSuchSession,
    SessionWriter,
    TranscriptBackend,
    TranscriptStore,
    list_sessions,
    load_session,
    new_session_id,
    read_index,
)
from transcripts import store as transcript_store
from transcripts.background import BackgroundSession
from transcripts.cli import default_folder
from transcripts.postgres import PostgresTranscriptStore

unit = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000.0
DAY = 86400.0


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@dataclass
class Backend:
    """One kind of store under test: stores on the same storage, and a look at what it holds."""

    kind: str
    folder: Path
    database_url: str | None = None
    database: Database | None = None
    _opened: list[Database] = field(default_factory=list)

    def store(self, *, retention_days: float | None = None) -> TranscriptBackend:
        if self.database is None:
            return TranscriptStore(self.folder, retention_days=retention_days)
        return PostgresTranscriptStore(self.database, retention_days=retention_days)

    def reader(self) -> TranscriptBackend:
        """A store as another process sees the same transcripts: a pool of its own, or the
        folder read afresh."""
        if self.database_url is None:
            return TranscriptStore(self.folder)
        database = Database(self.database_url, max_size=1)
        database.open()
        self._opened.append(database)
        return PostgresTranscriptStore(database, retention_days=None)

    def stored(self, session_id: str) -> list[dict[str, Any]]:
        """What the storage itself holds for the session, one record per write: its file's
        lines (each one whole), or its rows (numbered 1, 2, ... in order)."""
        if self.database_url is None:
            path = self.folder / f"{session_id}.jsonl"
            raw = path.read_bytes() if path.exists() else b""
            assert raw == b"" or raw.endswith(b"\n"), "a line is not whole"
            return [json.loads(line) for line in raw.split(b"\n")[:-1]]
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT seq, event FROM transcript_events WHERE session_id = %s ORDER BY seq",
                (session_id,),
            ).fetchall()
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))
        return [event for _, event in rows]

    def close(self) -> None:
        for database in [*self._opened, *([self.database] if self.database else [])]:
            database.close()


@pytest.fixture(
    params=[
        pytest.param("files", marks=pytest.mark.unit),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each store in turn; PostgreSQL is started only for its own parameter."""
    folder = tmp_path / "transcripts"
    if request.param == "files":
        yield Backend("files", folder)
        return
    yield from postgres_backend(request.getfixturevalue("database_url"), folder)


def postgres_backend(url: str, folder: Path) -> Iterator[Backend]:
    database = Database(url)
    database.open()
    chosen = Backend("postgres", folder, url, database)
    try:
        yield chosen
    finally:
        chosen.close()


@pytest.fixture
def postgres(database_url: str, tmp_path: Path) -> Iterator[Backend]:
    """PostgreSQL alone, for what only a database does."""
    yield from postgres_backend(database_url, tmp_path / "transcripts")


def open_session(folder: Path, session_id: str = "s1", **kwargs: Any) -> SessionWriter:
    return TranscriptStore(folder, **kwargs).open_session(session_id, started_at=T0)


def record_conversation(
    where: Path | TranscriptBackend, session_id: str, start: float, **meta: Any
) -> None:
    """A short finished session, as the recorder would write it."""
    store = TranscriptStore(where) if isinstance(where, Path) else where
    writer = store.open_session(session_id, started_at=start, meta=meta)
    writer.write("session", start, {"event": "started", "detail": "", "meta": meta})
    writer.write("user_turn", start + 1, {"turn": 1, "text": "What is twelve times seven?"})
    writer.write(
        "tool_call",
        start + 1.5,
        {
            "name": "calculate",
            "call_id": "c1",
            "arguments": {"expression": "12*7"},
            "outcome": "ok",
            "result": 84,
            "error": None,
            "started_at": start + 1.4,
            "duration_ms": 3.0,
            "reply_to": 1,
        },
    )
    writer.write(
        "bot_turn",
        start + 3,
        {
            "turn": 1,
            "text": "Twelve times seven is 84.",
            "interrupted": False,
            "latency_ms": 640.0,
            "reply_to": 1,
        },
    )
    writer.write("user_turn", start + 4, {"turn": 2, "text": "And a story?"})
    writer.write(
        "bot_turn",
        start + 6,
        {
            "turn": 2,
            "text": "Once upon a time",
            "interrupted": True,
            "latency_ms": 580.4,
            "reply_to": 2,
        },
    )
    writer.write("interruption", start + 6, {"bot_turn": 2})
    writer.write(
        "session", start + 70, {"event": "ended", "detail": "client left", "cancelled": False}
    )
    writer.close(ts=start + 70, summary={"user_turns": 2, "bot_turns": 2, "detail": "client left"})


# ------------------------------------------------------------------------------------------------
# Files and permissions


@unit
def test_the_folder_is_created_0700_and_the_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "transcripts"
    old = os.umask(0)
    try:
        writer = open_session(folder)
        writer.write("session", T0, {"event": "started"})
        writer.close(ts=T0, summary={})
    finally:
        os.umask(old)
    assert mode_of(folder) == 0o700
    assert mode_of(folder / "s1.jsonl") == 0o600
    assert mode_of(folder / "index.jsonl") == 0o600


@unit
def test_an_existing_file_is_made_private_again(tmp_path: Path) -> None:
    (tmp_path / "s1.jsonl").write_text("")
    os.chmod(tmp_path / "s1.jsonl", 0o644)
    open_session(tmp_path).close(ts=T0, summary={})
    assert mode_of(tmp_path / "s1.jsonl") == 0o600


@unit
def test_a_folder_open_to_others_is_reported_not_changed(
    tmp_path: Path, warnings: list[str]
) -> None:
    os.chmod(tmp_path, 0o755)
    open_session(tmp_path).close(ts=T0, summary={})
    assert mode_of(tmp_path) == 0o755
    assert len(warnings) == 1 and "readable by others" in warnings[0]


def test_each_event_is_stored_whole_by_a_write_of_its_own_as_soon_as_it_is_recorded(
    backend: Backend,
) -> None:
    writer = backend.store().open_session("s1", started_at=T0)
    for n in range(1, 4):
        writer.write("user_turn", T0 + n, {"turn": n, "text": f"line {n} ✓"})
        # One more whole line, or one more row, per event; nothing buffered.
        assert backend.stored("s1") == [
            {
                "type": "user_turn",
                "ts": T0 + k,
                "session_id": "s1",
                "turn": k,
                "text": f"line {k} ✓",
            }
            for k in range(1, n + 1)
        ]
    assert writer.written == 3 and not writer.in_memory_only


@unit
def test_fsync_mode_writes_the_same_lines(tmp_path: Path) -> None:
    writer = open_session(tmp_path, fsync=True)
    writer.write("user_turn", T0, {"turn": 1, "text": "hi"})
    writer.close(ts=T0, summary={})
    assert [e["text"] for e in load_session(tmp_path, "s1").events] == ["hi"]


@pytest.mark.parametrize("bad", ["../escape", "index", "", ".hidden", "a/b", "x" * 200])
def test_session_ids_that_could_escape_the_folder_are_refused(backend: Backend, bad: str) -> None:
    store = backend.store()
    with pytest.raises(ValueError, match="invalid session id"):
        store.open_session(bad, started_at=T0)
    with pytest.raises(ValueError, match="invalid session id"):
        store.load(bad)


@unit
def test_new_session_ids_sort_by_start_time() -> None:
    ids = [new_session_id(T0), new_session_id(T0 + 1), new_session_id(T0 + 86400)]
    assert ids == sorted(ids) and ids[0].startswith("20231114-221320-")
    assert len(set(new_session_id(T0) for _ in range(50))) == 50


# ------------------------------------------------------------------------------------------------
# Reading back


@unit
def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    whole = load_session(tmp_path, "s1").events
    with open(tmp_path / "s1.jsonl", "ab") as f:
        f.write(b'{"type":"user_turn","ts":1700000099.0,"session_id":"s1","turn":3,"te')
    transcript = load_session(tmp_path, "s1")
    assert transcript.events == whole and transcript.skipped_lines == 1


@unit
def test_invalid_json_at_the_end_is_skipped(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    with open(tmp_path / "s1.jsonl", "ab") as f:
        f.write(b"\x00\x00\x00garbage\n[1, 2]\n")
    transcript = load_session(tmp_path, "s1")
    assert len(transcript.events) == 8 and transcript.skipped_lines == 2


@unit
def test_a_last_line_that_only_lost_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "s1.jsonl"
    path.write_bytes(
        b'{"type":"user_turn","turn":1,"text":"a","ts":1}\n{"type":"user_turn",'
        b'"turn":2,"text":"b","ts":2}'
    )
    assert [t.text for t in load_session(tmp_path, "s1").user_turns] == ["a", "b"]


@unit
def test_a_session_reopened_after_a_crash_does_not_glue_onto_the_torn_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "s1.jsonl").write_bytes(b'{"type":"user_turn","turn":1,"text":"a","ts":1}\n{"ty')
    writer = open_session(tmp_path)
    writer.write("user_turn", T0, {"turn": 2, "text": "b"})
    transcript = load_session(tmp_path, "s1")
    assert [t.text for t in transcript.user_turns] == ["a", "b"]
    assert transcript.skipped_lines == 1


def test_turns_are_read_back_in_order_with_interruptions_applied(backend: Backend) -> None:
    record_conversation(backend.store(), "s1", T0)
    transcript = backend.reader().load("s1")
    assert [(t.role, t.turn, t.interrupted) for t in transcript.turns] == [
        ("user", 1, False),
        ("bot", 1, False),
        ("user", 2, False),
        ("bot", 2, True),
    ]
    assert transcript.latencies_ms == [640.0, 580.4]
    assert transcript.duration_s == 70.0
    assert transcript.ended is not None and transcript.ended["detail"] == "client left"


def test_loading_a_session_that_does_not_exist_says_so(backend: Backend) -> None:
    record_conversation(backend.store(), "s1", T0)
    with pytest.raises(NoSuchSession, match="no session nope"):
        backend.reader().load("nope")


@unit
def test_the_folder_functions_still_say_a_missing_session_is_a_missing_file(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError):
        load_session(tmp_path, "nope")


# ------------------------------------------------------------------------------------------------
# Index and listing


@unit
def test_the_index_has_a_line_when_a_session_starts_and_one_when_it_ends(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    assert read_index(tmp_path) == {
        "s1": {
            "started": {
                "session_id": "s1",
                "event": "started",
                "ts": T0,
                "file": "s1.jsonl",
                "meta": {},
            },
            "ended": {
                "session_id": "s1",
                "event": "ended",
                "ts": T0 + 70,
                "user_turns": 2,
                "bot_turns": 2,
                "detail": "client left",
            },
        }
    }


def test_sessions_are_listed_oldest_first_with_their_turns_and_duration(backend: Backend) -> None:
    record_conversation(backend.store(), "b-later", T0 + 100)
    record_conversation(backend.store(), "a-earlier", T0)
    infos = backend.reader().sessions()
    assert [
        (i.session_id, i.started_at, i.user_turns, i.bot_turns, i.duration_s, i.ended)
        for i in infos
    ] == [
        ("a-earlier", T0, 2, 2, 70.0, True),
        ("b-later", T0 + 100, 2, 2, 70.0, True),
    ]


def test_a_session_whose_process_died_is_listed_from_its_events(backend: Backend) -> None:
    writer = backend.store().open_session("crashed", started_at=T0)
    writer.write("session", T0, {"event": "started"})
    writer.write("user_turn", T0 + 5, {"turn": 1, "text": "hello"})
    # no close(): the index has no end line, the row no end
    (info,) = backend.reader().sessions()
    assert (info.session_id, info.user_turns, info.duration_s, info.ended) == (
        "crashed",
        1,
        5.0,
        False,
    )


@unit
def test_a_lost_index_is_rebuilt_from_the_session_files(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    (tmp_path / "index.jsonl").unlink()
    (info,) = list_sessions(tmp_path)
    assert (info.session_id, info.started_at, info.bot_turns, info.ended) == ("s1", T0, 2, True)


def test_a_session_whose_end_event_was_written_but_not_its_end_record_is_listed_as_ended(
    backend: Backend,
) -> None:
    writer = backend.store().open_session("s1", started_at=T0)
    writer.write("user_turn", T0 + 1, {"turn": 1, "text": "hello"})
    writer.write("bot_turn", T0 + 2, {"turn": 1, "text": "hi"})
    writer.write("session", T0 + 3, {"event": "ended", "detail": "client left"})
    # no close(): the process died between the event and the index line (or the row's end)
    (info,) = backend.reader().sessions()
    assert (info.started_at, info.last_ts, info.user_turns, info.bot_turns) == (
        T0 + 1,
        T0 + 3,
        1,
        1,
    )
    assert info.ended and info.end_detail == "client left"


def test_a_store_nothing_was_written_to_lists_nothing(backend: Backend) -> None:
    # For files: the folder does not even exist yet.
    assert backend.reader().sessions() == []
    assert backend.reader().sessions_of_conversation("c1") == []


def test_the_sessions_of_a_conversation_are_those_its_starts_name_oldest_first(
    backend: Backend,
) -> None:
    store = backend.store()
    record_conversation(store, "second", T0 + 100, conversation="c1", user="ann")
    record_conversation(store, "first", T0, conversation="c1", user="ann")
    record_conversation(store, "other", T0 + 50, conversation="c2", user="bob")
    record_conversation(store, "none", T0 + 60, user="ann")
    running = store.open_session(
        "running", started_at=T0 + 200, meta={"conversation": "c1", "user": "ann"}
    )
    running.write("user_turn", T0 + 201, {"turn": 1, "text": "still talking"})
    reader = backend.reader()
    assert [(i.session_id, i.ended) for i in reader.sessions_of_conversation("c1")] == [
        ("first", True),
        ("second", True),
        ("running", False),
    ]
    assert [i.session_id for i in reader.sessions_of_conversation("c2")] == ["other"]
    assert reader.sessions_of_conversation("c3") == []


@unit
def test_a_conversations_sessions_are_found_from_their_files_when_the_index_is_lost(
    tmp_path: Path,
) -> None:
    record_conversation(tmp_path, "s1", T0, conversation="c1")
    record_conversation(tmp_path, "s2", T0 + 1, conversation="c2")
    (tmp_path / "index.jsonl").unlink()
    assert [i.session_id for i in TranscriptStore(tmp_path).sessions_of_conversation("c1")] == [
        "s1"
    ]


# ------------------------------------------------------------------------------------------------
# Retention


@unit
def test_sessions_older_than_the_retention_are_deleted_with_their_index_lines(
    tmp_path: Path,
) -> None:
    record_conversation(tmp_path, "old", T0 - 40 * DAY)
    record_conversation(tmp_path, "recent", T0 - 2 * DAY)
    removed = TranscriptStore(tmp_path, retention_days=30).purge_expired(now=T0)
    assert removed == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.jsonl", "recent.jsonl"]
    assert list(read_index(tmp_path)) == ["recent"]
    assert mode_of(tmp_path / "index.jsonl") == 0o600


def test_sessions_older_than_the_retention_are_deleted_whole_and_the_rest_kept(
    backend: Backend,
) -> None:
    record_conversation(backend.store(), "old", T0 - 40 * DAY)
    record_conversation(backend.store(), "recent", T0 - 2 * DAY)
    assert backend.store(retention_days=30).purge_expired(now=T0) == ["old"]
    reader = backend.reader()
    assert [i.session_id for i in reader.sessions()] == ["recent"]
    assert backend.stored("old") == [] and len(backend.stored("recent")) == 8
    with pytest.raises(NoSuchSession):
        reader.load("old")


def list_sessions_ids(folder: Path) -> list[str]:
    return [info.session_id for info in list_sessions(folder)]


@unit
def test_retention_deletes_only_the_sessions_its_index_lists_never_other_files(
    tmp_path: Path,
) -> None:
    record_conversation(tmp_path, "ours-old", T0 - 31 * DAY)
    strays = {"someone-elses": 400, "backup": 31, "stray-new": 29}
    for name, age in strays.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("{}\n")
        os.utime(path, (T0 - age * DAY, T0 - age * DAY))
    assert TranscriptStore(tmp_path, retention_days=30).purge_expired(now=T0) == ["ours-old"]
    assert {p.stem for p in tmp_path.glob("*.jsonl")} == {*strays, "index"}


@unit
def test_the_index_is_rewritten_through_a_file_of_its_own_never_a_pid_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_conversation(tmp_path, "old", T0 - 40 * DAY)
    record_conversation(tmp_path, "new", T0)
    # Another process (say, PID 1 in another container on the same volume) mid-rewrite:
    squatter = tmp_path / f".index.jsonl.{os.getpid()}.tmp"
    squatter.write_text("another writer's half-written index\n")
    assert TranscriptStore(tmp_path, retention_days=30).purge_expired(now=T0) == ["old"]
    assert squatter.read_text() == "another writer's half-written index\n"
    assert set(list_sessions_ids(tmp_path)) == {"new"}
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp" and p != squatter]


def test_retention_keeps_the_session_being_recorded_and_everything_when_unset(
    backend: Backend,
) -> None:
    record_conversation(backend.store(), "current", T0 - 40 * DAY)
    record_conversation(backend.store(), "older", T0 - 50 * DAY)
    assert backend.store(retention_days=None).purge_expired(now=T0) == []
    store = backend.store(retention_days=1)
    assert store.purge_expired(now=T0, keep={"current"}) == ["older"]
    assert [i.session_id for i in backend.reader().sessions()] == ["current"]
    with pytest.raises(ValueError, match="positive"):
        backend.store(retention_days=0)


# ------------------------------------------------------------------------------------------------
# Failures: logged once, the session goes on in memory


@unit
def test_an_unwritable_folder_is_logged_once_and_events_kept_in_memory(
    tmp_path: Path, warnings: list[str]
) -> None:
    (tmp_path / "file").write_text("")
    writer = open_session(tmp_path / "file" / "transcripts")  # a parent is a file: ENOTDIR
    for n in range(5):
        writer.write("user_turn", T0 + n, {"turn": n + 1, "text": "hi"})
    writer.close(ts=T0 + 5, summary={})
    assert len(warnings) == 1 and "kept in memory only" in warnings[0]
    assert writer.in_memory_only and writer.written == 0 and len(writer.events) == 5


@unit
def test_a_read_only_folder_is_logged_once_and_events_kept_in_memory(
    tmp_path: Path, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root ignores a 0500 folder's permissions; os.open answers EACCES here as it would for
    # anyone else.
    real_open = os.open

    def deny(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if str(path).startswith(str(tmp_path)) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(transcript_store.os, "open", deny)
    writer = open_session(tmp_path)
    writer.write("user_turn", T0, {"turn": 1, "text": "hi"})
    monkeypatch.undo()
    assert len(warnings) == 1 and "Permission denied" in warnings[0]
    assert writer.in_memory_only and [e["text"] for e in writer.events] == ["hi"]


@unit
def test_a_short_write_is_cut_back_so_no_torn_line_is_left(
    tmp_path: Path, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = open_session(tmp_path)
    writer.write("user_turn", T0, {"turn": 1, "text": "kept"})
    real_write = os.write
    monkeypatch.setattr(transcript_store.os, "write", lambda fd, data: real_write(fd, data[:10]))
    writer.write("user_turn", T0, {"turn": 2, "text": "lost to a full disk"})
    monkeypatch.undo()
    writer.write("user_turn", T0, {"turn": 3, "text": "kept in memory"})
    assert (tmp_path / "s1.jsonl").read_bytes().count(b"\n") == 1
    transcript = load_session(tmp_path, "s1")
    assert [t.text for t in transcript.user_turns] == ["kept"] and transcript.skipped_lines == 0
    assert len(warnings) == 1 and "disk full" in warnings[0]
    assert [e["turn"] for e in writer.events] == [1, 2, 3]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 64 KiB tmpfs when we may mount one (root in a container that allows it), else None."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if os.geteuid() != 0 or not mount or not umount:
        yield None
        return
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount_point
    finally:
        subprocess.run([umount, str(mount_point)], check=False)


@unit
def test_a_full_disk_is_logged_once_and_the_session_goes_on_in_memory(
    tmp_path: Path,
    tiny_disk: Path | None,
    warnings: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if tiny_disk is None:  # no tmpfs: a disk that fills after 3 lines
        tiny_disk = tmp_path
        real_write, count = os.write, [0]

        def write(fd: int, data: bytes) -> int:
            count[0] += 1
            if count[0] > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(transcript_store.os, "write", write)
    folder = tiny_disk / "transcripts"
    writer = open_session(folder)
    text = "x" * 1500
    for n in range(1, 101):  # 150 KB: more than the disk holds
        writer.write("user_turn", T0 + n, {"turn": n, "text": text})
    writer.close(ts=T0 + 101, summary={})
    monkeypatch.undo()
    assert len(writer.events) == 100 and writer.in_memory_only
    assert len(warnings) == 1 and "disk full" in warnings[0]
    transcript = load_session(folder, "s1")
    assert transcript.skipped_lines == 0  # whole lines only, even at the moment the disk filled
    assert [t.turn for t in transcript.user_turns] == list(range(1, writer.written + 1))
    assert 0 < writer.written < 100


# ------------------------------------------------------------------------------------------------
# The writer thread: the event loop hands events over and never waits for the disk


@pytest.fixture
def stalled_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Session-file writes block until the event is set (the index and retention do not)."""
    go = threading.Event()
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if data.startswith(b'{"type"'):
            assert go.wait(30), "the test never let the disk go"
        return real_write(fd, data)

    monkeypatch.setattr(transcript_store.os, "write", write)
    yield go
    go.set()


def test_events_are_written_by_the_thread_in_order_each_on_its_own_line(backend: Backend) -> None:
    session = BackgroundSession(backend.store(), "s1")
    session.open(started_at=T0, meta={"bot": "b"})
    for n in range(1, 201):
        session.write("user_turn", T0 + n, {"turn": n, "text": f"line {n}"})
    session.close(ts=T0 + 201, summary={"user_turns": 200})
    assert session.flush(timeout=10)
    reader = backend.reader()
    transcript = reader.load("s1")
    assert [e["turn"] for e in transcript.events] == list(range(1, 201))
    assert transcript.events == session.events and session.written == 200
    (info,) = reader.sessions()
    assert info.ended and info.user_turns == 200 and info.last_ts == T0 + 201


@unit
def test_recording_does_not_wait_for_a_stalled_disk(
    tmp_path: Path, stalled_disk: threading.Event
) -> None:
    session = BackgroundSession(TranscriptStore(tmp_path), "s1")
    session.open(started_at=T0, meta={})
    for n in range(1, 51):
        session.write("user_turn", T0 + n, {"turn": n, "text": "hi"})  # returns at once
    assert len(session.events) == 50 and not session.flush(timeout=0.05)
    stalled_disk.set()
    assert session.flush(timeout=10)
    assert [t.turn for t in load_session(tmp_path, "s1").user_turns] == list(range(1, 51))


@unit
def test_a_disk_too_far_behind_is_logged_once_and_the_rest_kept_in_memory(
    tmp_path: Path, stalled_disk: threading.Event, warnings: list[str]
) -> None:
    session = BackgroundSession(TranscriptStore(tmp_path), "s1", max_pending=5)
    session.open(started_at=T0, meta={})
    for n in range(1, 21):
        session.write("user_turn", T0 + n, {"turn": n, "text": "hi"})
    assert session.in_memory_only and len(session.events) == 20
    stalled_disk.set()
    session.close(ts=T0 + 21, summary={})
    assert session.flush(timeout=10)
    assert len(warnings) == 1 and "kept in memory only" in warnings[0]
    transcript = load_session(tmp_path, "s1")
    assert [t.turn for t in transcript.user_turns] == [1, 2, 3, 4, 5]  # a clean prefix
    assert transcript.skipped_lines == 0 and "ended" in read_index(tmp_path)["s1"]


@unit
async def test_waiting_for_the_writer_leaves_the_loop_free(
    tmp_path: Path, stalled_disk: threading.Event
) -> None:
    session = BackgroundSession(TranscriptStore(tmp_path), "s1")
    session.open(started_at=T0, meta={})
    session.write("user_turn", T0, {"turn": 1, "text": "hi"})
    drained = asyncio.ensure_future(session.drained())
    ticks = 0
    while ticks < 5:  # the loop runs on while the writer waits for the disk
        await asyncio.sleep(0)
        ticks += 1
    assert not drained.done()
    stalled_disk.set()
    await asyncio.wait_for(drained, 10)
    assert session.written == 1


@unit
def test_the_cli_defaults_to_the_bots_folder_from_the_environment() -> None:
    assert default_folder({"TRANSCRIPT_DIR": "/t", "DATA_DIR": "/d"}) == Path("/t")
    assert default_folder({"DATA_DIR": "/d"}) == Path("/d/transcripts")
    assert default_folder({}) == Path("data/transcripts")


# ------------------------------------------------------------------------------------------------
# PostgreSQL failures: logged once, without the event's words; the session goes on in memory

SECRET_WORDS = "my card number is 4111"


def terminate_connections(url: str) -> None:
    """Drop every other connection to the test's database, as a server restart or a failover
    would, and wait until they are gone."""
    with psycopg.connect(url, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert ended and all(row[0] for row in ended)


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["its connections are terminated", "the pool is closed"])
def test_a_database_that_goes_away_mid_session_is_logged_once_and_the_session_goes_on_in_memory(
    database_url: str, warnings: list[str], how: str
) -> None:
    database = Database(database_url)
    database.open()
    try:
        session = BackgroundSession(PostgresTranscriptStore(database), "s1")
        session.open(started_at=T0, meta={"user": "ann"})
        for n in (1, 2):
            session.write("user_turn", T0 + n, {"turn": n, "text": f"{SECRET_WORDS} ({n})"})
        assert session.flush(timeout=10) and session.written == 2
        if how == "the pool is closed":
            database.close()
        else:
            terminate_connections(database_url)
        for n in (3, 4, 5):  # returns at once, raises nothing
            session.write("user_turn", T0 + n, {"turn": n, "text": f"{SECRET_WORDS} ({n})"})
        session.close(ts=T0 + 6, summary={"user_turns": 5})
        assert session.flush(timeout=30)
    finally:
        database.close()
    # One warning, no traceback from the writer thread (an ERROR would be listed here too).
    assert len(warnings) == 1, warnings
    assert "kept in memory only" in warnings[0] and SECRET_WORDS not in warnings[0]
    assert session.in_memory_only and session.written == 2
    assert [e["turn"] for e in session.events] == [1, 2, 3, 4, 5]
    reader = Database(database_url, max_size=1)
    reader.open()
    try:
        stored = PostgresTranscriptStore(reader).load("s1")
    finally:
        reader.close()
    assert [t.turn for t in stored.user_turns] == [1, 2]  # a clean prefix


@pytest.mark.postgres
def test_a_row_the_database_refuses_is_logged_by_its_sqlstate_never_by_its_words(
    postgres: Backend, warnings: list[str]
) -> None:
    writer = postgres.store().open_session("s1", started_at=T0)
    writer.write("user_turn", T0 + 1, {"turn": 1, "text": SECRET_WORDS})
    assert postgres.database_url is not None
    with psycopg.connect(postgres.database_url, autocommit=True) as conn:  # another replica's purge
        conn.execute("DELETE FROM transcript_sessions WHERE session_id = 's1'")
    writer.write("user_turn", T0 + 2, {"turn": 2, "text": SECRET_WORDS})
    writer.write("user_turn", T0 + 3, {"turn": 3, "text": SECRET_WORDS})
    writer.close(ts=T0 + 4, summary={})
    assert len(warnings) == 1 and "SQLSTATE 23503" in warnings[0]
    assert SECRET_WORDS not in warnings[0] and "4111" not in warnings[0]
    assert writer.in_memory_only and writer.written == 1 and len(writer.events) == 3


@unit
def test_a_database_unreachable_when_the_session_opens_leaves_it_in_memory(
    warnings: list[str],
) -> None:
    # Never opened: every connection is refused at once, and no socket is needed to see it.
    database = Database("postgresql://bot:hunter2-password@db.invalid:5432/bots")
    store = PostgresTranscriptStore(database)
    writer = store.open_session("s1", started_at=T0, meta={"user": "ann"})
    writer.write("user_turn", T0 + 1, {"turn": 1, "text": SECRET_WORDS})
    writer.close(ts=T0 + 2, summary={})
    assert len(warnings) == 1 and "kept in memory only" in warnings[0]
    assert "hunter2-password" not in warnings[0] and "bot:***@db.invalid" in warnings[0]
    assert writer.in_memory_only and writer.written == 0 and len(writer.events) == 1
    assert store.purge_expired(now=T0) == []  # retention stops for the round, logged
    assert len(warnings) == 2 and "retention" in warnings[1]


@pytest.mark.postgres
def test_what_jsonb_cannot_hold_is_stored_as_null_and_a_replacement_character(
    postgres: Backend, warnings: list[str]
) -> None:
    writer = postgres.store().open_session("s1", started_at=T0)
    writer.write("bot_turn", T0, {"turn": 1, "text": "a\x00b, not \\u0000", "latency_ms": math.nan})
    writer.write("user_turn", T0 + 1, {"turn": 1, "text": "next"})
    (bot, user) = postgres.reader().load("s1").events
    assert bot["text"] == "a\ufffdb, not \\u0000" and bot["latency_ms"] is None
    assert user["text"] == "next" and warnings == [] and writer.written == 2


@pytest.mark.postgres
def test_a_session_reopened_after_its_end_goes_on_numbering_its_events_and_is_running_again(
    postgres: Backend, warnings: list[str]
) -> None:
    store = postgres.store()
    first = store.open_session("s1", started_at=T0, meta={"user": "ann"})
    first.write("user_turn", T0 + 1, {"turn": 1, "text": "before"})
    first.close(ts=T0 + 2, summary={"user_turns": 1})
    again = store.open_session("s1", started_at=T0 + 10, meta={"user": "ann"})
    again.write("user_turn", T0 + 11, {"turn": 2, "text": "after"})
    assert [e["text"] for e in postgres.stored("s1")] == ["before", "after"]  # seq 1, 2
    assert again.written == 1 and not again.in_memory_only and warnings == []
    (info,) = postgres.reader().sessions()
    assert not info.ended and info.started_at == T0 + 1 and info.user_turns == 2


# ------------------------------------------------------------------------------------------------
# Crash: SIGKILL mid-write loses at most the event being written

CHILD = """
import sys, time
from transcripts import TranscriptStore

if sys.argv[1] == "postgres":
    from stores.postgres import Database
    from transcripts.postgres import PostgresTranscriptStore

    database = Database(sys.argv[2])
    database.open()
    store = PostgresTranscriptStore(database)
else:
    store = TranscriptStore(sys.argv[2])
writer = store.open_session("crash", started_at=time.time())
for n in range(1, 1_000_000):
    writer.write("user_turn", time.time(), {"turn": n, "text": "word " * (n % 300)})
    print(n, flush=True)
"""


def test_a_session_killed_mid_write_loads_every_event_flushed_before_the_kill(
    backend: Backend, tmp_path: Path
) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    where = backend.database_url or str(backend.folder)
    child = subprocess.Popen(
        [sys.executable, str(script), backend.kind, where],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    acknowledged = 0
    try:
        for line in child.stdout:
            acknowledged = int(line)
            if acknowledged >= 2000:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)  # by PID: only the child this test started
        child.wait(timeout=10)
    rest = child.stdout.read()  # acknowledgements already in the pipe when it died
    acknowledged = max([acknowledged, *(int(n) for n in rest.split())])
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    reader = backend.reader()
    transcript = reader.load("crash")
    turns = [t.turn for t in transcript.user_turns]
    assert acknowledged >= 2000
    assert turns[:acknowledged] == list(range(1, acknowledged + 1))
    assert len(turns) <= acknowledged + 1  # at most the one written but not yet acknowledged
    assert transcript.skipped_lines <= 1
    (info,) = reader.sessions()
    assert not info.ended and info.user_turns == len(turns)


# ------------------------------------------------------------------------------------------------
# CLI


def cli(*args: str, source: list[str], **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "transcripts", *source, *args],
        cwd=REPO,
        env={**env, "TZ": "UTC", **environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@dataclass
class Recorded:
    """Two sessions in a store, and the CLI's options that read it."""

    backend: Backend
    source: list[str]


@pytest.fixture
def recorded(backend: Backend) -> Recorded:
    store = backend.store()
    record_conversation(store, "20231114-221320-abcdef", T0)
    writer = store.open_session("20231115-221320-123456", started_at=T0 + DAY)
    writer.write("session", T0 + DAY, {"event": "started", "detail": "", "meta": {}})
    if backend.database_url is None:
        return Recorded(backend, ["--folder", str(backend.folder)])
    return Recorded(backend, ["--database-url", backend.database_url])


def test_cli_list_shows_each_session_with_start_turns_duration_and_status(
    recorded: Recorded,
) -> None:
    done = cli("list", source=recorded.source)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "SESSION                 STARTED                  TURNS           DURATION    STATUS",
        "20231114-221320-abcdef  2023-11-14 22:13:20 UTC  2 user / 2 bot  1 min 10 s  "
        "ended (client left)",
        "20231115-221320-123456  2023-11-15 22:13:20 UTC  0 user / 0 bot  0 s         "
        "open or crashed",
    ]


def test_cli_show_prints_a_timeline(recorded: Recorded) -> None:
    done = cli("show", "20231114-221320-abcdef", source=recorded.source)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Session 20231114-221320-abcdef · started 2023-11-14 22:13:20 UTC · 1 min 10 s",
        "22:13:20  ---        session started",
        "22:13:21  user #1    What is twelve times seven?",
        '22:13:21  tool       calculate({"expression": "12*7"}) → ok in 3 ms: 84',
        "22:13:23  bot #1     Twelve times seven is 84.  [latency 640 ms]",
        "22:13:24  user #2    And a story?",
        "22:13:26  bot #2     Once upon a time  [latency 580 ms, interrupted]",
        "22:13:26  ---        user cut off bot #2",
        "22:14:30  ---        session ended (client left)",
    ]


def test_cli_exports_markdown(recorded: Recorded) -> None:
    done = cli("export", "20231114-221320-abcdef", "--format", "md", source=recorded.source)
    assert done.returncode == 0, done.stderr
    assert done.stdout == textwrap.dedent(
        """\
        # Transcript 20231114-221320-abcdef

        - Started: 2023-11-14 22:13:20 UTC
        - Duration: 1 min 10 s
        - Ended: client left
        - Turns: 2 user, 2 bot; 1 tool call(s); 1 interruption(s)
        - Latency (end of speech → first bot audio): median 610 ms, max 640 ms

        **User** · 22:13:21
        > What is twelve times seven?

        _Tool call · 22:13:21:_ `calculate({"expression": "12*7"}) → ok in 3 ms: 84`

        **Assistant** · 22:13:23 · _latency 640 ms_
        > Twelve times seven is 84.

        **User** · 22:13:24
        > And a story?

        **Assistant** · 22:13:26 · _latency 580 ms, interrupted_
        > Once upon a time

        _Interruption · 22:13:26: the user cut off the assistant._
        """
    )


def test_cli_exports_json_to_a_private_file(recorded: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    done = cli(
        "export",
        "20231114-221320-abcdef",
        "--format",
        "json",
        "--output",
        str(out),
        source=recorded.source,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and mode_of(out) == 0o600
    document = json.loads(out.read_text())
    assert document["session_id"] == "20231114-221320-abcdef"
    assert [t["text"] for t in document["bot_turns"]] == [
        "Twelve times seven is 84.",
        "Once upon a time",
    ]
    assert document["bot_turns"][1]["interrupted"] is True
    assert len(document["events"]) == 8 and document["tool_calls"][0]["result"] == 84
    assert list(document["events"][0])[:3] == ["type", "ts", "session_id"]


def test_cli_reports_an_unknown_session(recorded: Recorded) -> None:
    done = cli("show", "nope", source=recorded.source)
    assert done.returncode == 2 and "no session nope" in done.stderr
    done = cli("show", "../etc", source=recorded.source)
    assert done.returncode == 2 and "invalid session id" in done.stderr


def test_cli_purge_deletes_old_sessions(recorded: Recorded) -> None:
    done = cli("purge", "--days", "1", source=recorded.source)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "deleted 2 session(s)"
    assert recorded.backend.reader().sessions() == []


def with_password(url: str, password: str) -> str:
    """The URL with a password (the test server trusts local connections, so it is ignored)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


@pytest.mark.postgres
def test_cli_reads_database_url_from_the_environment_and_never_prints_its_password(
    postgres: Backend, tmp_path: Path
) -> None:
    assert postgres.database_url is not None
    record_conversation(postgres.store(), "20231114-221320-abcdef", T0)
    url = with_password(postgres.database_url, "hunter2-password")
    listed = cli("list", source=[], DATABASE_URL=url, DATA_DIR=str(tmp_path / "empty"))
    assert listed.returncode == 0, listed.stderr
    assert "20231114-221320-abcdef" in listed.stdout
    gone = with_password(
        postgres.database_url.rsplit("/", 1)[0] + "/no_such_db", "hunter2-password"
    )
    failed = cli("list", source=["--database-url", gone])
    assert failed.returncode == 1 and "cannot reach" in failed.stderr
    assert ":***@" in failed.stderr and "no_such_db" in failed.stderr
    for done in (listed, failed):
        assert "hunter2-password" not in done.stdout + done.stderr


@unit
def test_cli_reads_the_folder_when_it_is_given_even_with_database_url_set(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "transcripts"
    record_conversation(folder, "20231114-221320-abcdef", T0)
    done = cli(
        "list", source=["--folder", str(folder)], DATABASE_URL="postgresql://x:y@db.invalid/z"
    )
    assert done.returncode == 0, done.stderr
    assert "20231114-221320-abcdef" in done.stdout
