"""The stores a bot process uses, chosen once from the settings and shared by its sessions.

Without `DATABASE_URL` everything stays under `DATA_DIR` as before (notes and conversations in
SQLite files, transcripts in JSON Lines), so `make run` needs no server. With it, notes,
transcripts and conversations live in PostgreSQL, shared by every replica; the schema is
migrated when the process opens the database (`stores.postgres`).

One set of stores per process and configuration: a session opens no connection of its own, and
the pool's bound holds however many sessions run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from bots.settings import Settings
from bots.tools.notes import NotesStore
from stores.conversations import ConversationStore, PostgresConversations, SqliteConversations
from stores.notes import PostgresNoteRows
from stores.postgres import Database, redacted
from transcripts import TranscriptStore
from transcripts.postgres import PostgresTranscriptStore

AnyTranscriptStore = TranscriptStore | PostgresTranscriptStore


@dataclass
class Stores:
    """Where this process keeps notes, transcripts and conversations."""

    notes: NotesStore
    transcripts: AnyTranscriptStore
    conversations: ConversationStore
    database: Database | None = None

    @property
    def backend(self) -> str:
        return "postgres" if self.database is not None else "files"

    def close(self) -> None:
        self.notes.close()
        self.conversations.close()
        if self.database is not None:
            self.database.close()


_lock = threading.Lock()
_open: dict[tuple[str, ...], Stores] = {}


def _key(settings: Settings) -> tuple[str, ...]:
    url = settings.database_url.get_secret_value() if settings.database_url else ""
    return (url, str(settings.data_dir.resolve()), str(settings.transcripts.resolve()),
            str(settings.transcript_retention_days))  # fmt: skip


def open_stores(settings: Settings) -> Stores:
    """This process's stores for these settings, opened on first use (and migrated).

    Raises:
        stores.postgres.Unavailable: `DATABASE_URL` is set and the server cannot be reached.
    """
    key = _key(settings)
    with _lock:
        found = _open.get(key)
        if found is not None:
            return found
        stores = _make(settings)
        _open[key] = stores
        return stores


def _make(settings: Settings) -> Stores:
    retention = settings.transcript_retention_days
    if settings.database_url is None:
        return Stores(
            notes=NotesStore(settings.data_dir / "notes.sqlite"),
            transcripts=TranscriptStore(settings.transcripts, retention_days=retention),
            conversations=SqliteConversations(Path(settings.data_dir) / "conversations.sqlite"),
        )
    url = settings.database_url.get_secret_value()
    database = Database(url, max_size=settings.database_pool_size)
    database.open()
    logger.info(f"stores: PostgreSQL at {redacted(url)}")
    return Stores(
        notes=NotesStore(PostgresNoteRows(database)),
        transcripts=PostgresTranscriptStore(database, retention_days=retention),
        conversations=PostgresConversations(database),
        database=database,
    )


def close_all() -> None:
    """Close every store this process opened (tests, and the end of the process)."""
    with _lock:
        for stores in _open.values():
            try:
                stores.close()
            except Exception as exc:  # closing is best effort: the process is ending
                logger.debug(f"closing stores: {exc}")
        _open.clear()
