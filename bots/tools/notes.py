"""Notes tool: a small per-user memory the assistant can write, search and clear.

Voice sessions are stateless, so anything the user asks the assistant to remember ("my
locker code is 4711") has to live somewhere that outlasts the call. :class:`NotesStore`
keeps notes in one SQLite file, partitioned by ``user_id``; every query filters on it, so
one user can never read or delete another's notes.

Notes are personal data. The data folder is created ``0700`` and the database ``0600``
(SQLite gives its ``-wal``/``-shm`` side files the database's mode), and note text is never
logged, only lengths and counts.

SQLite calls block, so the direct functions run them through :func:`asyncio.to_thread`;
one connection guarded by a lock keeps that safe across threads.
"""

import asyncio
import builtins
import os
import re
import sqlite3
import stat
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import DirectFunction, tool_options
from pipecat.services.llm_service import FunctionCallParams

__all__ = ["MAX_NOTE_CHARS", "Note", "NotesStore", "make_notes_tools"]

MAX_NOTE_CHARS = 1000
"""Longest note kept; a spoken note is a sentence or two, not a document."""

MAX_RECALLED = 50
"""Most notes returned by one recall, newest first kept, so a result stays speakable."""

# Queries meaning "all of my notes" for forget(); anything else is a search.
_ALL_QUERIES = frozenset({"", "all", "everything", "all notes", "all my notes", "all of them"})

# Filler words a model tends to leave in a query ("what is my favorite color"). They are
# ignored only by the fallback any-word search, never by forget(), which stays strict.
_STOPWORDS = frozenset(
    {
        "a", "about", "an", "and", "are", "did", "do", "does", "for", "i", "in", "is", "it",
        "me", "my", "note", "notes", "of", "on", "said", "tell", "that", "the", "this", "to",
        "was", "what", "whats", "when", "where", "which", "who", "you", "your",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Note:
    """One stored note.

    Attributes:
        id: Row id, increasing in insertion order.
        user_id: The owner.
        text: The note as saved (whitespace collapsed).
        created_at: UTC time of saving, ISO 8601.
    """

    id: int
    user_id: str
    text: str
    created_at: str


def _fold(text: str) -> str:
    """Case- and accent-fold text for matching, so "Café" is found by "cafe"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _words(query: str) -> list[str]:
    """Split a query into folded words, dropping punctuation ("color?" -> "color")."""
    return re.findall(r"\w+", _fold(query))


def _clean_text(text: str) -> str:
    """Collapse whitespace so transcribed notes are stored in one tidy line."""
    return " ".join(text.split())


def _require_user(user_id: str) -> None:
    """Refuse an empty user id, which would silently pool everyone's notes."""
    if not user_id or not user_id.strip():
        raise ValueError("user_id must be a non-empty string")


class NotesStore:
    """Per-user notes in a SQLite database.

    Args:
        path: The ``.sqlite`` file. Its folder is created (with parents) if missing, with
            mode ``0700``; the file gets mode ``0600``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating if needed) the database at ``path``."""
        self.path = Path(path)
        self._prepare_files()
        self._lock = threading.Lock()
        # check_same_thread=False: calls arrive from asyncio.to_thread workers; the lock
        # serializes them.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
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

    def _prepare_files(self) -> None:
        """Create the folder ``0700`` and the file ``0600`` before SQLite touches them.

        Creating the file ourselves (rather than letting SQLite do it under the process
        umask) means there is no moment when the notes are readable by others. An existing
        folder is not re-permissioned, since it may be shared (``/tmp``, a mounted volume);
        we only warn.
        """
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            if stat.S_IMODE(folder.stat().st_mode) & 0o077:
                logger.warning(f"Notes folder {folder} is accessible to other users")
        else:
            os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "NotesStore":
        """Use the store as a context manager that closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()

    def add(self, user_id: str, text: str) -> int:
        """Save a note.

        Args:
            user_id: The owner.
            text: The note; whitespace is collapsed.

        Returns:
            The new note's id.

        Raises:
            ValueError: The text is empty or longer than :data:`MAX_NOTE_CHARS`.
        """
        _require_user(user_id)
        clean = _clean_text(text)
        if not clean:
            raise ValueError("A note needs some text.")
        if len(clean) > MAX_NOTE_CHARS:
            raise ValueError(f"A note can be at most {MAX_NOTE_CHARS} characters.")
        created_at = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO notes (user_id, text, created_at) VALUES (?, ?, ?)",
                (user_id, clean, created_at),
            )
        note_id = cursor.lastrowid
        assert note_id is not None  # always set after a successful INSERT
        return note_id

    def count(self, user_id: str) -> int:
        """Return how many notes ``user_id`` has."""
        _require_user(user_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM notes WHERE user_id = ?", (user_id,)
            ).fetchone()
        return int(row[0])

    # The method is called ``list``, so annotations in this class spell the builtin
    # ``builtins.list``; a bare ``list`` below this point would mean the method.
    def list(self, user_id: str) -> builtins.list[Note]:
        """Return all of ``user_id``'s notes, oldest first."""
        _require_user(user_id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, user_id, text, created_at FROM notes WHERE user_id = ? ORDER BY id",
                (user_id,),
            ).fetchall()
        return [Note(*row) for row in rows]

    def _matching(self, user_id: str, query: str, *, strict: bool) -> builtins.list[Note]:
        """Notes whose text contains every query word (case/accent-insensitive substrings).

        Matching is done in Python because SQLite's ``LIKE`` folds ASCII case only. With
        ``strict=False`` and no note containing every word, fall back to notes containing
        any non-filler word, best matches first.
        """
        words = _words(query)
        notes = self.list(user_id)
        if not words:
            return notes
        folded = [(note, _fold(note.text)) for note in notes]
        exact = [note for note, text in folded if all(word in text for word in words)]
        if exact or strict:
            return exact
        keywords = [word for word in words if word not in _STOPWORDS and len(word) > 1]
        scored = [(sum(word in text for word in keywords), note) for note, text in folded]
        ranked = sorted((pair for pair in scored if pair[0] > 0), key=lambda p: (-p[0], p[1].id))
        return [note for _, note in ranked]

    def search(self, user_id: str, query: str) -> builtins.list[Note]:
        """Find ``user_id``'s notes matching ``query``.

        A note matches when it contains every word of the query as a case- and
        accent-insensitive substring ("color" finds "my favourite Colors"). If none does,
        notes containing any meaningful word of the query are returned, most words first,
        because models often pass a whole question as the query. An empty query returns
        every note.

        Args:
            user_id: The owner.
            query: Words to look for.

        Returns:
            Matching notes.
        """
        _require_user(user_id)
        return self._matching(user_id, query, strict=False)

    def forget(self, user_id: str, query: str | None = None) -> int:
        """Delete ``user_id``'s notes matching ``query``, or all of them.

        Unlike :meth:`search` there is no any-word fallback: deleting is not undoable, so
        only notes containing every word of the query go.

        Args:
            user_id: The owner; other users' notes are never touched.
            query: ``None``, ``""``, ``"all"`` or ``"everything"`` deletes all of the user's
                notes; anything else deletes the notes containing all of its words.

        Returns:
            How many notes were deleted.
        """
        _require_user(user_id)
        if query is None or " ".join(_words(query)) in _ALL_QUERIES:
            with self._lock:
                cursor = self._conn.execute("DELETE FROM notes WHERE user_id = ?", (user_id,))
            return cursor.rowcount
        ids = [note.id for note in self._matching(user_id, query, strict=True)]
        if not ids:
            return 0
        placeholders = ",".join("?" * len(ids))
        with self._lock:
            cursor = self._conn.execute(
                f"DELETE FROM notes WHERE user_id = ? AND id IN ({placeholders})",
                (user_id, *ids),
            )
        return cursor.rowcount


async def _answer(
    params: FunctionCallParams,
    tool: str,
    work: Callable[[], dict[str, Any]],
    failure: str,
    summary: Callable[[dict[str, Any]], str],
) -> None:
    """Send the model what `work()` returns, run in a worker thread since SQLite blocks.

    A database error is logged and answered with `failure`. The debug line says only
    `summary(result)`: counts and lengths, never a note's text.
    """
    result: dict[str, Any]
    try:
        result = await asyncio.to_thread(work)
    except sqlite3.Error as error:
        logger.error(f"{tool} failed: {error}")
        result = {"error": failure}
    logger.debug(f"{tool}: {summary(result)}")
    await params.result_callback(result)


def _recalled(result: dict[str, Any]) -> str:
    return f"{len(result.get('notes', []))} notes"


def make_notes_tools(store: NotesStore, user_id: str) -> list[DirectFunction]:
    """Build the notes direct functions bound to one user.

    The user id is captured here, by the bot, rather than being a tool argument, so the
    model cannot read or delete someone else's notes whatever it is told. Build the tools
    once per session: Pipecat re-registers a tool whose function object changes.

    Args:
        store: Where notes are kept.
        user_id: Whose notes these tools see.

    Returns:
        ``[remember_note, recall_notes, forget_notes]``.
    """
    _require_user(user_id)

    # Saving need not hold the conversation: with cancel_on_interruption=False Pipecat runs
    # the call asynchronously (Gemini Live is told it is NON_BLOCKING) and an interruption
    # does not cancel a half-done save.
    @tool_options(cancel_on_interruption=False)
    async def remember_note(params: FunctionCallParams, text: str) -> None:
        """Save a note for the user so it can be recalled in later conversations.

        Call this when the user asks you to remember or note something. Save the fact
        itself in the user's words, such as "my locker code is 4711".

        Args:
            text: The note to save, as one short self-contained sentence.
        """

        def save() -> dict[str, Any]:
            try:
                store.add(user_id, text)
            except ValueError as error:
                return {"error": str(error)}
            return {"saved": _clean_text(text), "count": store.count(user_id)}

        def summary(result: dict[str, Any]) -> str:
            return f"{len(text)} chars -> {sorted(result)}"

        await _answer(params, "remember_note", save, "The note could not be saved.", summary)

    async def recall_notes(params: FunctionCallParams, query: str = "") -> None:
        """Look up notes the user asked you to remember earlier.

        Call this before saying you don't know something personal about the user.

        Args:
            query: Words to look for, such as "locker code". Leave empty to get all notes.
        """

        def read() -> dict[str, Any]:
            notes = store.search(user_id, query)
            result: dict[str, Any] = {"notes": [note.text for note in notes[-MAX_RECALLED:]]}
            if len(notes) > MAX_RECALLED:
                result["total"] = len(notes)
            return result

        await _answer(params, "recall_notes", read, "The notes could not be read.", _recalled)

    async def forget_notes(params: FunctionCallParams, query: str = "") -> None:
        """Delete notes the user no longer wants you to remember.

        Only call this when the user asks you to forget something. An empty query deletes
        ALL of the user's notes, so leave it empty only if they asked to forget everything.

        Args:
            query: Words the notes to delete contain, such as "locker code". Every note
                containing all of these words is deleted.
        """

        def forget() -> dict[str, Any]:
            return {"forgotten": store.forget(user_id, query)}

        await _answer(params, "forget_notes", forget, "The notes could not be deleted.", str)

    return [remember_note, recall_notes, forget_notes]
