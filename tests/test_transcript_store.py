"""Transcript storage: private files, whole lines only, an index, retention, failures, the CLI.

The crash test runs a child process that logs events in a loop and acknowledges each one on
stdout once it is written; it is killed with SIGKILL mid-stream, and every acknowledged event must
load back.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from transcripts import (
    SessionWriter,
    TranscriptStore,
    list_sessions,
    load_session,
    new_session_id,
    read_index,
)
from transcripts import store as transcript_store
from transcripts.background import BackgroundSession
from transcripts.cli import default_folder

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000.0
DAY = 86400.0


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def open_session(folder: Path, session_id: str = "s1", **kwargs: Any) -> SessionWriter:
    return TranscriptStore(folder, **kwargs).open_session(session_id, started_at=T0)


def record_conversation(folder: Path, session_id: str, start: float) -> None:
    """A short finished session, as the recorder would write it."""
    writer = TranscriptStore(folder).open_session(session_id, started_at=start)
    writer.write("session", start, {"event": "started", "detail": "", "meta": {}})
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


def test_an_existing_file_is_made_private_again(tmp_path: Path) -> None:
    (tmp_path / "s1.jsonl").write_text("")
    os.chmod(tmp_path / "s1.jsonl", 0o644)
    open_session(tmp_path).close(ts=T0, summary={})
    assert mode_of(tmp_path / "s1.jsonl") == 0o600


def test_a_folder_open_to_others_is_reported_not_changed(
    tmp_path: Path, warnings: list[str]
) -> None:
    os.chmod(tmp_path, 0o755)
    open_session(tmp_path).close(ts=T0, summary={})
    assert mode_of(tmp_path) == 0o755
    assert len(warnings) == 1 and "readable by others" in warnings[0]


def test_each_event_is_on_disk_as_a_whole_line_as_soon_as_it_is_recorded(tmp_path: Path) -> None:
    writer = open_session(tmp_path)
    path = tmp_path / "s1.jsonl"
    for n in range(1, 4):
        writer.write("user_turn", T0 + n, {"turn": n, "text": f"line {n} ✓"})
        lines = path.read_bytes().split(b"\n")
        assert lines[-1] == b"" and len(lines) == n + 1  # whole lines only, nothing buffered
        assert json.loads(lines[-2]) == {
            "type": "user_turn",
            "ts": T0 + n,
            "session_id": "s1",
            "turn": n,
            "text": f"line {n} ✓",
        }


def test_fsync_mode_writes_the_same_lines(tmp_path: Path) -> None:
    writer = open_session(tmp_path, fsync=True)
    writer.write("user_turn", T0, {"turn": 1, "text": "hi"})
    writer.close(ts=T0, summary={})
    assert [e["text"] for e in load_session(tmp_path, "s1").events] == ["hi"]


@pytest.mark.parametrize("bad", ["../escape", "index", "", ".hidden", "a/b", "x" * 200])
def test_session_ids_that_could_escape_the_folder_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid session id"):
        open_session(tmp_path, bad)
    with pytest.raises(ValueError, match="invalid session id"):
        load_session(tmp_path, bad)


def test_new_session_ids_sort_by_start_time() -> None:
    ids = [new_session_id(T0), new_session_id(T0 + 1), new_session_id(T0 + 86400)]
    assert ids == sorted(ids) and ids[0].startswith("20231114-221320-")
    assert len(set(new_session_id(T0) for _ in range(50))) == 50


# ------------------------------------------------------------------------------------------------
# Reading back


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    whole = load_session(tmp_path, "s1").events
    with open(tmp_path / "s1.jsonl", "ab") as f:
        f.write(b'{"type":"user_turn","ts":1700000099.0,"session_id":"s1","turn":3,"te')
    transcript = load_session(tmp_path, "s1")
    assert transcript.events == whole and transcript.skipped_lines == 1


def test_invalid_json_at_the_end_is_skipped(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    with open(tmp_path / "s1.jsonl", "ab") as f:
        f.write(b"\x00\x00\x00garbage\n[1, 2]\n")
    transcript = load_session(tmp_path, "s1")
    assert len(transcript.events) == 8 and transcript.skipped_lines == 2


def test_a_last_line_that_only_lost_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "s1.jsonl"
    path.write_bytes(
        b'{"type":"user_turn","turn":1,"text":"a","ts":1}\n{"type":"user_turn",'
        b'"turn":2,"text":"b","ts":2}'
    )
    assert [t.text for t in load_session(tmp_path, "s1").user_turns] == ["a", "b"]


def test_a_session_reopened_after_a_crash_does_not_glue_onto_the_torn_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "s1.jsonl").write_bytes(b'{"type":"user_turn","turn":1,"text":"a","ts":1}\n{"ty')
    writer = open_session(tmp_path)
    writer.write("user_turn", T0, {"turn": 2, "text": "b"})
    transcript = load_session(tmp_path, "s1")
    assert [t.text for t in transcript.user_turns] == ["a", "b"]
    assert transcript.skipped_lines == 1


def test_turns_are_read_back_in_order_with_interruptions_applied(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    transcript = load_session(tmp_path, "s1")
    assert [(t.role, t.turn, t.interrupted) for t in transcript.turns] == [
        ("user", 1, False),
        ("bot", 1, False),
        ("user", 2, False),
        ("bot", 2, True),
    ]
    assert transcript.latencies_ms == [640.0, 580.4]
    assert transcript.duration_s == 70.0
    assert transcript.ended is not None and transcript.ended["detail"] == "client left"


def test_loading_a_session_that_does_not_exist_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_session(tmp_path, "nope")


# ------------------------------------------------------------------------------------------------
# Index and listing


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


def test_sessions_are_listed_oldest_first_with_their_turns_and_duration(tmp_path: Path) -> None:
    record_conversation(tmp_path, "b-later", T0 + 100)
    record_conversation(tmp_path, "a-earlier", T0)
    infos = list_sessions(tmp_path)
    assert [
        (i.session_id, i.started_at, i.user_turns, i.bot_turns, i.duration_s, i.ended)
        for i in infos
    ] == [
        ("a-earlier", T0, 2, 2, 70.0, True),
        ("b-later", T0 + 100, 2, 2, 70.0, True),
    ]


def test_a_session_whose_process_died_is_listed_from_its_file(tmp_path: Path) -> None:
    writer = open_session(tmp_path, "crashed")
    writer.write("session", T0, {"event": "started"})
    writer.write("user_turn", T0 + 5, {"turn": 1, "text": "hello"})
    # no close(): the index has no end line
    (info,) = list_sessions(tmp_path)
    assert (info.session_id, info.user_turns, info.duration_s, info.ended) == (
        "crashed",
        1,
        5.0,
        False,
    )


def test_a_lost_index_is_rebuilt_from_the_session_files(tmp_path: Path) -> None:
    record_conversation(tmp_path, "s1", T0)
    (tmp_path / "index.jsonl").unlink()
    (info,) = list_sessions(tmp_path)
    assert (info.session_id, info.started_at, info.bot_turns, info.ended) == ("s1", T0, 2, True)


def test_listing_a_missing_folder_lists_nothing(tmp_path: Path) -> None:
    assert list_sessions(tmp_path / "none") == []


# ------------------------------------------------------------------------------------------------
# Retention


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


def list_sessions_ids(folder: Path) -> list[str]:
    return [info.session_id for info in list_sessions(folder)]


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
    tmp_path: Path,
) -> None:
    record_conversation(tmp_path, "current", T0 - 40 * DAY)
    assert TranscriptStore(tmp_path).purge_expired(now=T0) == []
    store = TranscriptStore(tmp_path, retention_days=1)
    assert store.purge_expired(now=T0, keep={"current"}) == []
    with pytest.raises(ValueError, match="positive"):
        TranscriptStore(tmp_path, retention_days=0)


# ------------------------------------------------------------------------------------------------
# Failures: logged once, the session goes on in memory


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


def test_events_are_written_by_the_thread_in_order_each_on_its_own_line(tmp_path: Path) -> None:
    session = BackgroundSession(TranscriptStore(tmp_path), "s1")
    session.open(started_at=T0, meta={"bot": "b"})
    for n in range(1, 201):
        session.write("user_turn", T0 + n, {"turn": n, "text": f"line {n}"})
    session.close(ts=T0 + 201, summary={"user_turns": 200})
    assert session.flush(timeout=10)
    transcript = load_session(tmp_path, "s1")
    assert [e["turn"] for e in transcript.events] == list(range(1, 201))
    assert transcript.events == session.events and session.written == 200
    assert read_index(tmp_path)["s1"]["ended"]["user_turns"] == 200


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


def test_the_cli_defaults_to_the_bots_folder_from_the_environment() -> None:
    assert default_folder({"TRANSCRIPT_DIR": "/t", "DATA_DIR": "/d"}) == Path("/t")
    assert default_folder({"DATA_DIR": "/d"}) == Path("/d/transcripts")
    assert default_folder({}) == Path("data/transcripts")


# ------------------------------------------------------------------------------------------------
# Crash: SIGKILL mid-write loses at most the line being written

CHILD = """
import sys, time
from transcripts import TranscriptStore

writer = TranscriptStore(sys.argv[1]).open_session("crash", started_at=time.time())
for n in range(1, 1_000_000):
    writer.write("user_turn", time.time(), {"turn": n, "text": "word " * (n % 300)})
    print(n, flush=True)
"""


def test_a_session_killed_mid_write_loads_every_event_flushed_before_the_kill(
    tmp_path: Path,
) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    folder = tmp_path / "transcripts"
    child = subprocess.Popen(
        [sys.executable, str(script), str(folder)],
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
    transcript = load_session(folder, "crash")
    turns = [t.turn for t in transcript.user_turns]
    assert turns[:acknowledged] == list(range(1, acknowledged + 1))
    assert len(turns) <= acknowledged + 1  # at most the one written but not yet acknowledged
    assert transcript.skipped_lines <= 1
    (info,) = list_sessions(folder)
    assert not info.ended and info.user_turns == len(turns)


# ------------------------------------------------------------------------------------------------
# CLI


def cli(*args: str, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run(
        [sys.executable, "-m", "transcripts", "--folder", str(folder), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    folder = tmp_path / "transcripts"
    record_conversation(folder, "20231114-221320-abcdef", T0)
    writer = TranscriptStore(folder).open_session("20231115-221320-123456", started_at=T0 + DAY)
    writer.write("session", T0 + DAY, {"event": "started", "detail": "", "meta": {}})
    return folder


def test_cli_list_shows_each_session_with_start_turns_duration_and_status(recorded: Path) -> None:
    done = cli("list", folder=recorded)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "SESSION                 STARTED                  TURNS           DURATION    STATUS",
        "20231114-221320-abcdef  2023-11-14 22:13:20 UTC  2 user / 2 bot  1 min 10 s  "
        "ended (client left)",
        "20231115-221320-123456  2023-11-15 22:13:20 UTC  0 user / 0 bot  0 s         "
        "open or crashed",
    ]


def test_cli_show_prints_a_timeline(recorded: Path) -> None:
    done = cli("show", "20231114-221320-abcdef", folder=recorded)
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


def test_cli_exports_markdown(recorded: Path) -> None:
    done = cli("export", "20231114-221320-abcdef", "--format", "md", folder=recorded)
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


def test_cli_exports_json_to_a_private_file(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    done = cli(
        "export",
        "20231114-221320-abcdef",
        "--format",
        "json",
        "--output",
        str(out),
        folder=recorded,
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


def test_cli_reports_an_unknown_session(recorded: Path) -> None:
    done = cli("show", "nope", folder=recorded)
    assert done.returncode == 2 and "no session nope" in done.stderr
    done = cli("show", "../etc", folder=recorded)
    assert done.returncode == 2 and "invalid session id" in done.stderr


def test_cli_purge_deletes_old_sessions(recorded: Path) -> None:
    done = cli("purge", "--days", "1", folder=recorded)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "deleted 2 session(s)"
    assert list_sessions(recorded) == []
