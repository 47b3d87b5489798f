"""What another process needs to go on with a conversation: whose it is, Gemini's latest
resumption handle, the conversation so far, its Daily room, and which process holds it now.

A conversation outlives the bot session serving it: a dropped client reconnects, maybe to another
replica, and that replica must find the handle (or, when the handle is stale, the history to seed
a fresh Live session with) and must refuse a conversation id that belongs to someone else. So the
rows are keyed by a client-chosen id (`check_conversation_id`), `claim` binds the id to its user
for good, and `owner` says which process serves it at the moment.

Two backends with one `ConversationStore` interface: `SqliteConversations` (a private file under
DATA_DIR, for one process) and `PostgresConversations` (the shared `conversations` table, for a
fleet, where two replicas may claim the same new id at the same instant). The history is bounded
(`bounded_history`) on every save, so a long conversation cannot grow a row without limit.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from psycopg.types.json import Jsonb

from stores.notes import open_private_sqlite
from stores.postgres import Database

__all__ = [
    "MAX_HISTORY_CHARS",
    "MAX_HISTORY_MESSAGES",
    "Conversation",
    "ConversationStore",
    "NotYours",
    "PostgresConversations",
    "SqliteConversations",
    "bounded_history",
    "check_conversation_id",
]

MAX_HISTORY_MESSAGES = 200
"""Most messages kept; enough context to seed a fresh Live session, not a whole day's talk."""

MAX_HISTORY_CHARS = 100_000
"""Most characters of text kept over all messages, so one row stays small to read and write."""

ROLES = frozenset({"user", "assistant"})

_CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")

_COLUMNS = (
    "conversation_id, user_id, handle, handle_issued_at, history, room_url, owner,"
    " created_at, updated_at"
)


def check_conversation_id(value: str) -> str:
    """The id itself, if it is one a client may choose; else ValueError.

    Ids arrive from clients and end up in URLs, logs and keys: 16 to 64 URL-safe characters are
    long enough to be unguessable when random and leave nothing to escape.
    """
    if not isinstance(value, str) or not _CONVERSATION_ID.fullmatch(value):
        raise ValueError(
            "a conversation id must be 16 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"
        )
    return value


class NotYours(Exception):
    """The conversation belongs to another user."""


@dataclass
class Conversation:
    """One conversation as stored.

    Attributes:
        conversation_id: The client's id for it.
        user_id: Whose it is, from the first claim on.
        handle: Gemini's latest session resumption handle, if any.
        handle_issued_at: When that handle was issued (epoch seconds): handles expire.
        history: The conversation so far, ``{"role": "user" | "assistant", "text": ...}``,
            oldest first, within `bounded_history`'s bounds.
        room_url: Its Daily room, if it has one.
        owner: The process serving it now, if any.
        created_at: Epoch seconds of the first claim.
        updated_at: Epoch seconds of the latest write (what `purge_older_than` looks at).
    """

    conversation_id: str
    user_id: str
    handle: str | None
    handle_issued_at: float | None
    history: list[dict[str, str]]
    room_url: str | None
    owner: str | None
    created_at: float
    updated_at: float


def _message(item: object) -> dict[str, str]:
    """One history item checked and copied: only `role` and `text` are kept."""
    if not isinstance(item, Mapping):
        raise ValueError(f"a history item must be a mapping, not {type(item).__name__}")
    role, text = item.get("role"), item.get("text")
    if role not in ROLES:
        raise ValueError(f"a history item's role must be 'user' or 'assistant', not {role!r}")
    if not isinstance(text, str):
        raise ValueError(f"a history item's text must be a string, not {type(text).__name__}")
    # PostgreSQL's JSONB cannot hold NUL; it is transcription junk, so it goes on both backends.
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a history item's text must be valid Unicode") from None
    return {"role": str(role), "text": text}


def bounded_history(history: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The newest messages of `history` that fit both bounds, oldest first; ValueError for an
    item that is not a message.

    The oldest messages go first because the latest turns are what a resumed conversation needs.
    Whole messages only: the kept ones are the longest run of newest messages within
    `MAX_HISTORY_MESSAGES` and `MAX_HISTORY_CHARS` (so a single message longer than the
    character bound leaves nothing before it, and is dropped itself).
    """
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise ValueError(f"history must be a list of messages, not {type(history).__name__}")
    messages = [_message(item) for item in history]
    kept: list[dict[str, str]] = []
    chars = 0
    for message in reversed(messages):
        if len(kept) == MAX_HISTORY_MESSAGES or chars + len(message["text"]) > MAX_HISTORY_CHARS:
            break
        kept.append(message)
        chars += len(message["text"])
    kept.reverse()
    return kept


def _require(value: str, what: str) -> str:
    """Refuse an empty user or owner, which would make "whose" or "who holds it" meaningless."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value


class ConversationStore(Protocol):
    """Where conversations are kept. Writes to an id never claimed are no-ops; every write sets
    `updated_at`. Methods block: call them from `asyncio.to_thread`."""

    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None if it was never claimed (or was purged)."""
        ...

    def claim(
        self, conversation_id: str, user_id: str, owner: str, *, now: float | None = None
    ) -> Conversation:
        """Create the conversation for `user_id` if new, and make `owner` its holder; the
        stored conversation (handle and history included). NotYours, changing nothing, if it
        is another user's."""
        ...

    def save_handle(
        self, conversation_id: str, handle: str | None, issued_at: float | None
    ) -> None:
        """Keep Gemini's latest resumption handle and when it was issued."""
        ...

    def save_history(self, conversation_id: str, history: Sequence[Mapping[str, Any]]) -> None:
        """Keep the conversation so far, bounded by `bounded_history`."""
        ...

    def set_room(self, conversation_id: str, room_url: str | None) -> None:
        """Keep the conversation's Daily room."""
        ...

    def release(self, conversation_id: str, owner: str) -> None:
        """Clear the holder, if it is still `owner` (another process may have claimed it)."""
        ...

    def purge_older_than(self, cutoff_epoch: float) -> int:
        """Delete conversations last written before `cutoff_epoch`; how many went."""
        ...

    def close(self) -> None:
        """Release what the store holds."""
        ...


def _conversation(row: Sequence[Any], history: list[dict[str, str]]) -> Conversation:
    """A row in `_COLUMNS` order, its history already decoded."""
    return Conversation(
        conversation_id=row[0],
        user_id=row[1],
        handle=row[2],
        handle_issued_at=None if row[3] is None else float(row[3]),
        history=history,
        room_url=row[5],
        owner=row[6],
        created_at=float(row[7]),
        updated_at=float(row[8]),
    )


class _Writes:
    """The updates both stores make, in SQL whose placeholders (`{p}`) each store spells its
    own way; every one also sets `updated_at`, and one of an unknown id changes nothing."""

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        raise NotImplementedError

    def _history_value(self, history: list[dict[str, str]]) -> Any:
        raise NotImplementedError

    def save_handle(
        self, conversation_id: str, handle: str | None, issued_at: float | None
    ) -> None:
        check_conversation_id(conversation_id)
        self._write(
            "UPDATE conversations SET handle = {p}, handle_issued_at = {p}, updated_at = {p}"
            " WHERE conversation_id = {p}",
            (handle, issued_at, time.time(), conversation_id),
        )

    def save_history(self, conversation_id: str, history: Sequence[Mapping[str, Any]]) -> None:
        check_conversation_id(conversation_id)
        self._write(
            "UPDATE conversations SET history = {p}, updated_at = {p} WHERE conversation_id = {p}",
            (self._history_value(bounded_history(history)), time.time(), conversation_id),
        )

    def set_room(self, conversation_id: str, room_url: str | None) -> None:
        check_conversation_id(conversation_id)
        self._write(
            "UPDATE conversations SET room_url = {p}, updated_at = {p} WHERE conversation_id = {p}",
            (room_url, time.time(), conversation_id),
        )

    def release(self, conversation_id: str, owner: str) -> None:
        check_conversation_id(conversation_id)
        self._write(
            "UPDATE conversations SET owner = NULL, updated_at = {p}"
            " WHERE conversation_id = {p} AND owner = {p}",
            (time.time(), conversation_id, owner),
        )

    def purge_older_than(self, cutoff_epoch: float) -> int:
        return self._write("DELETE FROM conversations WHERE updated_at < {p}", (cutoff_epoch,))


class SqliteConversations(_Writes):
    """Conversations in one private SQLite file, for a single bot process.

    One connection guarded by a lock, since calls come from worker threads; `claim` runs in a
    `BEGIN IMMEDIATE` transaction, so even two processes sharing the file cannot both create
    the same conversation. The history is stored as JSON text.

    Args:
        path: The file, such as ``data_dir / "conversations.sqlite"``; created like the notes
            file (folder ``0700``, file ``0600``, WAL).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_private_sqlite(self.path, "Conversations")
        try:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS conversations ("
                " conversation_id TEXT PRIMARY KEY,"
                " user_id TEXT NOT NULL,"
                " handle TEXT,"
                " handle_issued_at REAL,"
                " history TEXT NOT NULL DEFAULT '[]',"
                " room_url TEXT,"
                " owner TEXT,"
                " created_at REAL NOT NULL,"
                " updated_at REAL NOT NULL)"
            )
            self._conn.execute(
                "CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at)"
            )
        except BaseException:
            self._conn.close()
            raise

    def _select(self, conversation_id: str) -> Conversation | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM conversations WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        return None if row is None else _conversation(row, json.loads(row[4]))

    def get(self, conversation_id: str) -> Conversation | None:
        check_conversation_id(conversation_id)
        with self._lock:
            return self._select(conversation_id)

    def claim(
        self, conversation_id: str, user_id: str, owner: str, *, now: float | None = None
    ) -> Conversation:
        check_conversation_id(conversation_id)
        _require(user_id, "user_id")
        _require(owner, "owner")
        at = time.time() if now is None else now
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                found = self._select(conversation_id)
                if found is None:
                    self._conn.execute(
                        "INSERT INTO conversations"
                        " (conversation_id, user_id, owner, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (conversation_id, user_id, owner, at, at),
                    )
                elif found.user_id != user_id:
                    raise NotYours(f"conversation {conversation_id} belongs to another user")
                else:
                    self._conn.execute(
                        "UPDATE conversations SET owner = ?, updated_at = ?"
                        " WHERE conversation_id = ?",
                        (owner, at, conversation_id),
                    )
                claimed = self._select(conversation_id)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        assert claimed is not None  # inserted or found in this transaction
        return claimed

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            return self._conn.execute(sql.replace("{p}", "?"), params).rowcount

    def _history_value(self, history: list[dict[str, str]]) -> Any:
        return json.dumps(history, ensure_ascii=False)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresConversations(_Writes):
    """Conversations in the shared database's `conversations` table, for a fleet of bots.

    `claim` inserts with ``ON CONFLICT DO NOTHING`` and then locks the row with ``SELECT ... FOR
    UPDATE`` in one transaction: when two replicas claim the same new id at once, the second
    insert waits for the first to commit and then does nothing, so exactly one row is created
    and both see the same user in it. The history is JSONB.

    The `Database` is shared with the other stores and belongs to whoever opened it, so `close`
    leaves it open. A connection that cannot be had raises `stores.postgres.Unavailable`.

    Args:
        database: An opened (migrated) database.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def get(self, conversation_id: str) -> Conversation | None:
        check_conversation_id(conversation_id)
        with self.database.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations WHERE conversation_id = %s",
                (conversation_id,),
            ).fetchone()
        return None if row is None else _conversation(row, list(row[4]))

    def claim(
        self, conversation_id: str, user_id: str, owner: str, *, now: float | None = None
    ) -> Conversation:
        check_conversation_id(conversation_id)
        _require(user_id, "user_id")
        _require(owner, "owner")
        at = time.time() if now is None else now
        with self.database.connection() as conn, conn.transaction():
            created = conn.execute(
                "INSERT INTO conversations"
                " (conversation_id, user_id, owner, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (conversation_id) DO NOTHING",
                (conversation_id, user_id, owner, at, at),
            ).rowcount
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations WHERE conversation_id = %s FOR UPDATE",
                (conversation_id,),
            ).fetchone()
            assert row is not None  # inserted now, or there already (and locked until commit)
            if row[1] != user_id:
                raise NotYours(f"conversation {conversation_id} belongs to another user")
            if not created:
                row = conn.execute(
                    "UPDATE conversations SET owner = %s, updated_at = %s"
                    f" WHERE conversation_id = %s RETURNING {_COLUMNS}",
                    (owner, at, conversation_id),
                ).fetchone()
                assert row is not None
        return _conversation(row, list(row[4]))

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self.database.connection() as conn:
            return conn.execute(sql.replace("{p}", "%s"), params).rowcount

    def _history_value(self, history: list[dict[str, str]]) -> Any:
        return Jsonb(history)

    def close(self) -> None:
        """Nothing to release: the pool is the database owner's to close."""
