"""The rows behind the notes tool: one interface, a SQLite file or the shared PostgreSQL table.

The tool (`bots.tools.notes.NotesStore`) keeps every rule about notes (cleaning, limits,
matching, what "forget" deletes) in Python so both backends answer alike; what lives here is only
storing and fetching rows, and every statement is filtered by `user_id`, so no caller can reach
another user's notes by mistake.

Notes are personal data: the SQLite file and its folder are private to the process's user from
the moment they exist (`open_private_sqlite`), and note text is never logged here.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from loguru import logger

from stores.postgres import Database

__all__ = [
    "NoteRow",
    "NoteRows",
    "PostgresNoteRows",
    "SqliteNoteRows",
    "open_private_sqlite",
]

NoteRow = tuple[int, str, str, str]
"""`(id, user_id, text, created_at)`; ids increase in insertion order."""

_DELETE_CHUNK = 500
"""Ids per SQLite DELETE: older SQLite builds allow only 999 bound parameters per statement."""


class NoteRows(Protocol):
    """Where a `NotesStore` keeps its rows; every method touches one user's rows only."""

    def insert(self, user_id: str, text: str, created_at: str) -> int:
        """Store a note; its id."""
        ...

    def count(self, user_id: str) -> int:
        """How many notes the user has."""
        ...

    def rows(self, user_id: str) -> list[NoteRow]:
        """The user's notes, oldest first."""
        ...

    def delete_all(self, user_id: str) -> int:
        """Delete every note of the user; how many went."""
        ...

    def delete_ids(self, user_id: str, ids: Sequence[int]) -> int:
        """Delete those of `ids` that are the user's; how many went."""
        ...

    def close(self) -> None:
        """Release what the rows hold."""
        ...


def open_private_sqlite(path: str | os.PathLike[str], what: str) -> sqlite3.Connection:
    """A WAL-mode connection to a SQLite file that only this user can ever read.

    The folder is created `0700` and the file `0600` by us before SQLite opens it: left to
    SQLite, the file would be created under the process umask, and for a moment (or for good)
    be readable by others; SQLite gives its `-wal`/`-shm` side files the database's mode. An
    existing folder is not re-permissioned, since it may be shared (`/tmp`, a mounted volume);
    we only warn. `check_same_thread=False` because calls come from `asyncio.to_thread`
    workers: the caller serializes them with a lock.

    Args:
        path: The `.sqlite` file.
        what: What the file holds, for the warning ("Notes").
    """
    file = Path(path)
    folder = file.parent
    try:
        folder.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            logger.warning(f"{what} folder {folder} is accessible to other users")
    else:
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(file, 0o600)
    conn = sqlite3.connect(file, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteNoteRows:
    """Notes in one SQLite file, the embedded default under DATA_DIR.

    One connection guarded by a lock: SQLite calls block, so they arrive from worker threads.

    Args:
        path: The `.sqlite` file; see `open_private_sqlite` for how it is created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_private_sqlite(self.path, "Notes")
        try:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS notes ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " user_id TEXT NOT NULL,"
                " text TEXT NOT NULL,"
                " created_at TEXT NOT NULL)"
            )
            self._conn.execute("CREATE INDEX IF NOT EXISTS notes_user ON notes (user_id, id)")
        except BaseException:
            self._conn.close()
            raise

    def insert(self, user_id: str, text: str, created_at: str) -> int:
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO notes (user_id, text, created_at) VALUES (?, ?, ?)",
                (user_id, text, created_at),
            )
        note_id = cursor.lastrowid
        assert note_id is not None  # always set after a successful INSERT
        return note_id

    def count(self, user_id: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM notes WHERE user_id = ?", (user_id,)
            ).fetchone()
        return int(row[0])

    def rows(self, user_id: str) -> list[NoteRow]:
        with self._lock:
            found = self._conn.execute(
                "SELECT id, user_id, text, created_at FROM notes WHERE user_id = ? ORDER BY id",
                (user_id,),
            ).fetchall()
        return [(int(i), str(u), str(t), str(c)) for i, u, t, c in found]

    def delete_all(self, user_id: str) -> int:
        with self._lock:
            cursor = self._conn.execute("DELETE FROM notes WHERE user_id = ?", (user_id,))
        return cursor.rowcount

    def delete_ids(self, user_id: str, ids: Sequence[int]) -> int:
        deleted = 0
        unique = sorted(set(ids))
        with self._lock:
            for start in range(0, len(unique), _DELETE_CHUNK):
                chunk = unique[start : start + _DELETE_CHUNK]
                placeholders = ",".join("?" * len(chunk))
                cursor = self._conn.execute(
                    f"DELETE FROM notes WHERE user_id = ? AND id IN ({placeholders})",
                    (user_id, *chunk),
                )
                deleted += cursor.rowcount
        return deleted

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresNoteRows:
    """Notes in the shared database's `notes` table, so every bot process sees the same notes.

    The `Database` is shared with the other stores and belongs to whoever opened it, so `close`
    leaves it open. A connection that cannot be had raises `stores.postgres.Unavailable`.

    Args:
        database: An opened (migrated) database.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def insert(self, user_id: str, text: str, created_at: str) -> int:
        with self.database.connection() as conn:
            row = conn.execute(
                "INSERT INTO notes (user_id, text, created_at) VALUES (%s, %s, %s) RETURNING id",
                (user_id, text, created_at),
            ).fetchone()
        assert row is not None  # RETURNING always yields the new row
        return int(row[0])

    def count(self, user_id: str) -> int:
        with self.database.connection() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM notes WHERE user_id = %s", (user_id,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def rows(self, user_id: str) -> list[NoteRow]:
        with self.database.connection() as conn:
            found = conn.execute(
                "SELECT id, user_id, text, created_at FROM notes WHERE user_id = %s ORDER BY id",
                (user_id,),
            ).fetchall()
        return [(int(i), str(u), str(t), str(c)) for i, u, t, c in found]

    def delete_all(self, user_id: str) -> int:
        with self.database.connection() as conn:
            return conn.execute("DELETE FROM notes WHERE user_id = %s", (user_id,)).rowcount

    def delete_ids(self, user_id: str, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        with self.database.connection() as conn:
            return conn.execute(
                "DELETE FROM notes WHERE user_id = %s AND id = ANY(%s)",
                (user_id, [int(i) for i in ids]),
            ).rowcount

    def close(self) -> None:
        """Nothing to release: the pool is the database owner's to close."""
