"""Notes tool: a small per-user memory the assistant can write, search and clear.

Voice sessions are stateless, so anything the user asks the assistant to remember ("my
locker code is 4711") has to live somewhere that outlasts the call. :class:`NotesStore`
keeps notes partitioned by ``user_id`` in a ``stores.notes.NoteRows``: one SQLite file by
default, or the shared PostgreSQL ``notes`` table when several bot processes must see the same
notes. Every query filters on the user, so one user can never read or delete another's notes;
the matching is done here, in Python, so both backends find and forget the same notes.

Notes are personal data. The SQLite data folder is created ``0700`` and the database ``0600``
(SQLite gives its ``-wal``/``-shm`` side files the database's mode), and note text is never
logged, only lengths and counts.

Both backends block, so the direct functions run them through :func:`asyncio.to_thread`;
the rows keep that safe across threads (a lock around SQLite's one connection, a pool for
PostgreSQL).
"""

import asyncio
import builtins
import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import DirectFunction, tool_options
from pipecat.services.llm_service import FunctionCallParams

from stores.notes import NoteRows, SqliteNoteRows
from stores.postgres import Unavailable

__all__ = ["MAX_NOTE_CHARS", "Note", "NotesStore", "make_notes_tools"]

MAX_NOTE_CHARS = 1000
"""Longest note kept; a spoken note is a sentence or two, not a document."""

UNAVAILABLE = "The notes storage cannot be reached right now; it may work again in a minute."
"""Added to a tool's failure when the shared database is unreachable or busy."""

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
    """Collapse whitespace so transcribed notes are stored in one tidy line.

    A NUL counts as whitespace: it is transcription junk, and PostgreSQL's text cannot hold it,
    so dropping it keeps the backends alike.
    """
    return " ".join(text.replace("\x00", " ").split())


def _require_user(user_id: str) -> None:
    """Refuse an empty user id, which would silently pool everyone's notes."""
    if not user_id or not user_id.strip():
        raise ValueError("user_id must be a non-empty string")


class NotesStore:
    """Per-user notes over a `stores.notes.NoteRows`: a SQLite file, or the shared database.

    Every rule lives here, above the rows, so both backends clean, limit, match and forget
    alike; the rows only store and fetch.

    Args:
        rows: A path (``str`` or path-like) means a SQLite file: its folder is created (with
            parents) if missing, with mode ``0700``; the file gets mode ``0600``. Anything
            else is a ``NoteRows`` used as is (``stores.notes.PostgresNoteRows``).
    """

    def __init__(self, rows: "str | os.PathLike[str] | NoteRows") -> None:
        """Open (creating if needed) the SQLite file at ``rows``, or adopt the rows given."""
        self.rows: NoteRows
        if isinstance(rows, str | os.PathLike):
            self.path: Path | None = Path(rows)
            self.rows = SqliteNoteRows(self.path)
        else:
            self.path = None
            self.rows = rows

    def close(self) -> None:
        """Close the rows (a shared database's pool stays open: it is its owner's)."""
        self.rows.close()

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
        try:
            clean.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("A note must be plain text.") from None
        created_at = datetime.now(UTC).isoformat(timespec="seconds")
        return self.rows.insert(user_id, clean, created_at)

    def count(self, user_id: str) -> int:
        """Return how many notes ``user_id`` has."""
        _require_user(user_id)
        return self.rows.count(user_id)

    # The method is called ``list``, so annotations in this class spell the builtin
    # ``builtins.list``; a bare ``list`` below this point would mean the method.
    def list(self, user_id: str) -> builtins.list[Note]:
        """Return all of ``user_id``'s notes, oldest first."""
        _require_user(user_id)
        return [Note(*row) for row in self.rows.rows(user_id)]

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
            return self.rows.delete_all(user_id)
        ids = [note.id for note in self._matching(user_id, query, strict=True)]
        if not ids:
            return 0
        return self.rows.delete_ids(user_id, ids)


async def _answer(
    params: FunctionCallParams,
    tool: str,
    work: Callable[[], dict[str, Any]],
    failure: str,
    summary: Callable[[dict[str, Any]], str],
) -> None:
    """Send the model what `work()` returns, run in a worker thread since the rows block.

    A storage error is logged and answered with `failure`, so the model can tell the user the
    notes did not work rather than the call going unanswered; an unreachable database says so,
    so the model may suggest trying again. The log lines never carry a note's text: SQLite's
    and the pool's messages do not, PostgreSQL's may quote values in their detail, so for those
    only the error's class and SQLSTATE are logged. The debug line says only `summary(result)`:
    counts and lengths.
    """
    result: dict[str, Any]
    try:
        result = await asyncio.to_thread(work)
    except Unavailable as error:
        logger.error(f"{tool} failed: {error}")
        result = {"error": f"{failure} {UNAVAILABLE}"}
    except psycopg.Error as error:
        logger.error(f"{tool} failed: {type(error).__name__} (SQLSTATE {error.sqlstate})")
        result = {"error": failure}
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
