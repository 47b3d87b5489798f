"""Transcripts in PostgreSQL (`DATABASE_URL`), so every bot process of a fleet shares them.

The file store's promises, kept with rows instead of lines (tables in
`stores/migrations/0001_initial.sql`):

- A session is a `transcript_sessions` row, inserted when it opens (its user and conversation
  from the start's metadata, so a conversation's sessions are found by an index, not a scan) and
  given its `ended_at` and `summary` when it closes.
- Every event is one autocommitted INSERT into `transcript_events` with the next `seq` of its
  session, made on the session's writer thread, so an event is durable, and readable by every
  other replica, once its write returns; a process killed mid-session loses at most the event
  being written.
- The first database error of a session (the server gone, the pool exhausted, a row refused) is
  logged once, without any of the event's text, and the session goes on with its events kept in
  memory (`PostgresSessionWriter.events`): the table stays a clean prefix of the session.
- A session with no end row is listed from its events, as the file store lists one whose
  process died before the index's end line.
- Retention deletes whole sessions by `started_at`; their events go with them (ON DELETE
  CASCADE).

Reads raise `stores.postgres.Unavailable` when the database cannot be reached: the pages answer
that with a 503, the CLI with an error line.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Collection, Mapping
from typing import Any

import psycopg
from loguru import logger
from psycopg.types.json import Jsonb

from stores.postgres import Database, Unavailable, redacted
from transcripts.files import SECONDS_PER_DAY, check_session_id
from transcripts.reading import NoSuchSession, SessionInfo, Transcript, sorted_infos
from transcripts.store import make_event

_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""A JSON-escaped NUL character (not an escaped backslash followed by `u0000`)."""

_LEADING = ("type", "ts", "session_id")
"""The keys an event starts with in the file store; JSONB keeps keys in an order of its own."""


class PostgresTranscriptStore:
    """Transcripts in the tables of an opened `stores.postgres.Database`.

    Args:
        database: The process's pool, opened (so migrated) by the caller, who closes it.
        retention_days: Sessions that started longer ago than this are deleted by
            `purge_expired()` (the recorder has it run when a session starts); None keeps
            everything.
    """

    def __init__(self, database: Database, *, retention_days: float | None = 30) -> None:
        if retention_days is not None and retention_days <= 0:
            raise ValueError("retention_days must be positive (or None to keep everything)")
        self.database = database
        self.retention_days = retention_days

    @property
    def location(self) -> str:
        return redacted(self.database.url)

    def where(self, session_id: str) -> str:
        return f"{self.location} (session {session_id})"

    # ----------------------------------------------------------------------------------------
    # Writing

    def open_session(
        self,
        session_id: str,
        *,
        started_at: float,
        meta: Mapping[str, Any] | None = None,
    ) -> PostgresSessionWriter:
        """Start writing a session; never raises for the database (the writer falls back to
        memory)."""
        writer = PostgresSessionWriter(self, check_session_id(session_id))
        writer.open(started_at=started_at, meta=dict(meta or {}))
        return writer

    def purge_expired(self, *, now: float | None = None, keep: Collection[str] = ()) -> list[str]:
        """Delete sessions that started more than `retention_days` ago; return their ids.

        Every replica runs this as its sessions start; a DELETE by `started_at` is idempotent,
        so they need no coordination. A database error stops this round only (logged).

        Args:
            now: The current time (epoch seconds); tests pass one.
            keep: Session ids never to delete (the one being recorded).
        """
        if self.retention_days is None:
            return []
        cutoff = (time.time() if now is None else now) - self.retention_days * SECONDS_PER_DAY
        try:
            with self.database.connection() as conn:
                rows = conn.execute(
                    "DELETE FROM transcript_sessions"
                    " WHERE started_at < %s AND NOT (session_id = ANY(%s::text[]))"
                    " RETURNING session_id",
                    (cutoff, list(keep)),
                ).fetchall()
        except (psycopg.Error, Unavailable) as exc:
            logger.warning(f"transcript retention in {self.location} stopped: {_reason(exc)}")
            return []
        removed = sorted(row[0] for row in rows)
        if removed:
            logger.info(
                f"transcripts: deleted {len(removed)} session(s) older than "
                f"{self.retention_days:g} days from {self.location}"
            )
        return removed

    # ----------------------------------------------------------------------------------------
    # Reading

    def load(self, session_id: str) -> Transcript:
        """One session's events in the order they were written.

        Raises:
            NoSuchSession: The database has no session of that id.
            ValueError: The session id is not a valid one.
            Unavailable: The database cannot be reached.
        """
        check_session_id(session_id)
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT e.event FROM transcript_sessions s"
                " LEFT JOIN transcript_events e ON e.session_id = s.session_id"
                " WHERE s.session_id = %s ORDER BY e.seq",
                (session_id,),
            ).fetchall()
        if not rows:
            raise NoSuchSession(f"no session {session_id} in {self.location}")
        events = [_in_file_order(row[0]) for row in rows if row[0] is not None]
        return Transcript.from_events(session_id, events)

    def sessions(self) -> list[SessionInfo]:
        """Every session, oldest first: ended ones from their row, the others from their
        events."""
        return self._listed(None)

    def sessions_of_conversation(self, conversation_id: str) -> list[SessionInfo]:
        """The sessions of one conversation, oldest first (by the conversation's index)."""
        return self._listed(conversation_id)

    def _listed(self, conversation_id: str | None) -> list[SessionInfo]:
        with self.database.connection() as conn:
            if conversation_id is None:
                cursor = conn.execute(
                    "SELECT session_id, started_at, ended_at, summary FROM transcript_sessions"
                )
            else:
                cursor = conn.execute(
                    "SELECT session_id, started_at, ended_at, summary FROM transcript_sessions"
                    " WHERE conversation_id = %s",
                    (conversation_id,),
                )
            rows = cursor.fetchall()
            unfinished = [row[0] for row in rows if row[2] is None]
            from_events = self._from_events(conn, unfinished) if unfinished else {}
        infos = []
        for session_id, started_at, ended_at, summary in rows:
            if ended_at is None:
                infos.append(
                    from_events.get(session_id) or SessionInfo(session_id, None, None, 0, 0, False)
                )
                continue
            summary = summary if isinstance(summary, dict) else {}
            infos.append(
                SessionInfo(
                    session_id,
                    float(started_at),
                    float(ended_at),
                    int(summary.get("user_turns", 0)),
                    int(summary.get("bot_turns", 0)),
                    True,
                    str(summary.get("detail", "")),
                )
            )
        return sorted_infos(infos)

    @staticmethod
    def _from_events(conn: psycopg.Connection, session_ids: list[str]) -> dict[str, SessionInfo]:
        """The listing of sessions with no end row, summed up by the server from their events
        by the rules of `transcripts.reading.info_from_events` (a running session may hold
        thousands)."""
        rows = conn.execute(
            "SELECT session_id,"
            " (array_agg(ts ORDER BY seq) FILTER (WHERE type = 'session'"
            "   AND event->>'event' = 'started'))[1],"
            " (array_agg(ts ORDER BY seq))[1],"
            " (array_agg(ts ORDER BY seq DESC))[1],"
            " count(*) FILTER (WHERE type = 'user_turn'),"
            " count(*) FILTER (WHERE type = 'bot_turn'),"
            " (array_agg(coalesce(event->>'detail', '') ORDER BY seq DESC)"
            "   FILTER (WHERE type = 'session' AND event->>'event' = 'ended'))[1]"
            " FROM transcript_events WHERE session_id = ANY(%s::text[]) GROUP BY session_id",
            (session_ids,),
        ).fetchall()
        return {
            session_id: SessionInfo(
                session_id,
                started if started is not None else first,
                last,
                int(user_turns),
                int(bot_turns),
                end_detail is not None,
                end_detail or "",
            )
            for session_id, started, first, last, user_turns, bot_turns, end_detail in rows
        }


class PostgresSessionWriter:
    """Inserts one session's events; after the first database error it keeps them in memory.

    Its calls block on the database: a bot makes them from a writer thread
    (`transcripts.background.BackgroundSession`). Each takes a pooled connection for one
    statement only, so a session holds none while it waits for its next event.
    """

    def __init__(self, store: PostgresTranscriptStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []
        self.written = 0
        self.failed: Exception | None = None
        self._seq = 0
        self._opened = False
        self._closed = False
        self._warned = False

    @property
    def in_memory_only(self) -> bool:
        """True once a database error stopped writing to it."""
        return self.failed is not None

    def open(self, *, started_at: float, meta: dict[str, Any]) -> None:
        """Insert the session's row and continue its `seq`; a session reopened after its end
        keeps its start and is running again until it closes."""
        user, conversation = meta.get("user"), meta.get("conversation")
        try:
            with self.store.database.connection() as conn:
                conn.execute(
                    "INSERT INTO transcript_sessions"
                    " (session_id, user_id, conversation_id, started_at, meta)"
                    " VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (session_id) DO UPDATE SET ended_at = NULL, summary = NULL",
                    (
                        self.session_id,
                        None if user is None else str(user),
                        None if conversation is None else str(conversation),
                        round(started_at, 3),
                        _jsonb(meta),
                    ),
                )
                row = conn.execute(
                    "SELECT coalesce(max(seq), 0) FROM transcript_events WHERE session_id = %s",
                    (self.session_id,),
                ).fetchone()
        except (psycopg.Error, Unavailable, TypeError, ValueError) as exc:
            self._fail(exc, "cannot open the session")
            return
        self._seq = int(row[0]) if row else 0
        self._opened = True

    def write(self, kind: str, ts: float, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record one event now; return it as stored."""
        event = make_event(self.session_id, kind, ts, fields)
        self.append(event)
        return event

    def append(self, event: dict[str, Any]) -> None:
        """Record an event made by `make_event`: committed, as one row, when this returns."""
        self.events.append(event)
        if not self._opened or self.failed is not None:
            return
        try:
            with self.store.database.connection() as conn:
                conn.execute(
                    "INSERT INTO transcript_events (session_id, seq, ts, type, event)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        self.session_id,
                        self._seq + 1,
                        float(event.get("ts", 0.0)),
                        str(event.get("type", "")),
                        _jsonb(event),
                    ),
                )
        except (psycopg.Error, Unavailable, TypeError, ValueError) as exc:
            self._fail(exc, "cannot write an event")
            return
        self._seq += 1
        self.written += 1

    def close(self, *, ts: float, summary: Mapping[str, Any]) -> None:
        """Set the session's end on its row; later writes stay in memory."""
        if self._closed:
            return
        self._closed = True
        if not self._opened:
            return
        # Even after a failed event: the database may be back, and a listing then shows the
        # session as ended with the counts it really had, as the file store's index does.
        try:
            with self.store.database.connection() as conn:
                conn.execute(
                    "UPDATE transcript_sessions SET ended_at = %s, summary = %s"
                    " WHERE session_id = %s",
                    (round(ts, 3), _jsonb(dict(summary)), self.session_id),
                )
        except (psycopg.Error, Unavailable, TypeError, ValueError) as exc:
            self._warn(exc, "cannot record the session's end", "its events are kept")

    def _fail(self, exc: Exception, what: str) -> None:
        self._warn(exc, what, "the session goes on and its transcript is kept in memory only")
        self.failed = exc

    def _warn(self, exc: Exception, what: str, consequence: str) -> None:
        """Log the session's first database problem; later ones would only repeat it."""
        if self._warned:
            return
        self._warned = True
        logger.warning(
            f"transcript {self.session_id}: {what} in {self.store.location} ({_reason(exc)}); "
            f"{consequence}"
        )


def _reason(exc: Exception) -> str:
    """What went wrong, for a log line that must not carry the event's text: a server error by
    its class and SQLSTATE (its message may quote the row), a connection problem by its first
    line (which names the server, never a password)."""
    cause = exc.__cause__ if isinstance(exc, Unavailable) and exc.__cause__ else exc
    if isinstance(cause, psycopg.Error) and cause.sqlstate:
        return f"{type(cause).__name__}, SQLSTATE {cause.sqlstate}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _jsonb(value: Mapping[str, Any]) -> Jsonb:
    """A value as JSONB, as the file store would write it: anything not JSON-native as a string.

    JSONB refuses what a JSON Lines file takes, and one such event must not cost the rest of
    the session: NaN and infinities are stored as null, a NUL character as U+FFFD.
    """
    return Jsonb(value, dumps=_dumps)


def _dumps(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:
        text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, default=str)
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _in_file_order(event: dict[str, Any]) -> dict[str, Any]:
    """An event with its type, time and session first, as `make_event` made it."""
    return {
        **{key: event[key] for key in _LEADING if key in event},
        **{key: v for key, v in event.items() if key not in _LEADING},
    }
