"""Where transcripts live: one append-only JSON Lines file per session, plus a session index.

Layout of the folder (created 0700; every file 0600, since transcripts hold personal data):

    <folder>/<session_id>.jsonl    one event per line, in the order the events happened
    <folder>/index.jsonl           one line when a session starts, one when it ends

Every event is one JSON object on one line, written with a single `os.write` on an `O_APPEND`
descriptor (and `fsync`ed too when asked), in the order the events happened, so a crash or
`kill -9` loses at most the line being written; a torn last line is skipped when reading. A bot
hands its events to a writer thread (`transcripts.background`), which keeps that file I/O off the
event loop that carries the audio. Common fields:

    type        "session" | "user_turn" | "bot_turn" | "tool_call" | "interruption"
    ts          when the event was recorded, epoch seconds (float, ms precision)
    session_id  the session the line belongs to

and per type:

    session       event: "started" | "connected" | "resumed" | "reconnecting" | "reconnected"
                  | "failed" | "ended"; detail: str (why it ended, what failed);
                  meta: {...} on "started" only; cancelled: bool on "ended" only
    user_turn     turn: 1, 2, ...; text (the transcription chunks joined); started_at and
                  ended_at: when its first and last chunk arrived
    bot_turn      turn: 1, 2, ...; text; interrupted: bool; latency_ms: float | null, the user's
                  end of speech -> the first bot audio; reply_to: the user turn it answers, or
                  null (a greeting); started_at; first_audio_at: float | null; speech_ended_at:
                  float | null, the end of speech the latency is measured from (a VAD's, else
                  the last loud input audio, else the arrival of the last transcription chunk)
    tool_call     ToolCallEvent.to_json() (name, call_id, arguments, outcome, result, error,
                  started_at, duration_ms); reply_to: the latest user turn, or null
    interruption  bot_turn: the bot turn the user cut off

A bot turn is normally written already marked `interrupted`, followed by its `interruption` line;
when the user cuts off audio that is still playing after the turn was written, only an
`interruption` line follows, and the reader marks that bot turn interrupted.

The index is an accelerator, not the source of truth: `list_sessions` trusts a session's start and
end lines in it, and rebuilds what is missing (a crash before the end line, a lost index) from the
session files themselves. Retention deletes whole sessions older than N days by the start time in
the index, or the file's modification time when the index does not know the session.

A full disk, an unwritable folder or any other write error is logged once per session; the session
goes on with its events kept in memory (`SessionWriter.events`).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from loguru import logger

from transcripts.files import (
    FILE_MODE,
    FOLDER_MODE,
    INDEX_NAME,
    SECONDS_PER_DAY,
    SUFFIX,
    append_line,
    check_session_id,
    encode_event,
    fsync_dir,
    open_private,
)
from transcripts.reading import (
    NoSuchSession,
    SessionInfo,
    Transcript,
    list_sessions,
    load_session,
    parse_lines,
    read_index,
    session_files,
    sessions_of_conversation,
)


def make_event(session_id: str, kind: str, ts: float, fields: Mapping[str, Any]) -> dict[str, Any]:
    """One event as it is stored: its type, time and session, then its own fields."""
    return {"type": kind, "ts": round(ts, 3), "session_id": session_id, **fields}


class TranscriptStore:
    """The transcript folder: opens session writers, applies retention.

    Args:
        folder: Where session files and the index go; created 0700 on first use.
        retention_days: Sessions that started longer ago than this are deleted by
            `purge_expired()` (the transcript recorder has it run when a session starts); None
            keeps everything.
        fsync: Also `fsync` after every line. Off by default: each line already reaches the
            kernel before the next event, which survives a crash of this process; `fsync` adds
            power-loss safety at the cost of a disk flush per event (on the writer thread).
    """

    def __init__(
        self, folder: Path | str, *, retention_days: float | None = None, fsync: bool = False
    ) -> None:
        if retention_days is not None and retention_days <= 0:
            raise ValueError("retention_days must be positive (or None to keep everything)")
        self.folder = Path(folder)
        self.retention_days = retention_days
        self.fsync = fsync

    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_NAME

    def path_of(self, session_id: str) -> Path:
        return self.folder / (check_session_id(session_id) + SUFFIX)

    @property
    def location(self) -> str:
        return str(self.folder)

    def where(self, session_id: str) -> str:
        return str(self.path_of(session_id))

    def load(self, session_id: str) -> Transcript:
        """One session read back, a torn last line skipped (see `load_session`).

        Raises:
            NoSuchSession: The folder has no file for it.
            ValueError: The session id is not a valid one.
        """
        try:
            return load_session(self.folder, session_id)
        except FileNotFoundError:
            raise NoSuchSession(f"no session {session_id} in {self.folder}") from None

    def sessions(self) -> list[SessionInfo]:
        """Every session in the folder, oldest first (see `list_sessions`)."""
        return list_sessions(self.folder)

    def sessions_of_conversation(self, conversation_id: str) -> list[SessionInfo]:
        """The folder's sessions of one conversation, oldest first; a scan of every start."""
        return sessions_of_conversation(self.folder, conversation_id)

    def ensure_folder(self) -> None:
        """Create the folder private; warn (without changing it) when an existing one is not.

        Raises:
            OSError: The folder cannot be created (a parent is a file, no permission, ...).
        """
        if self.folder.is_dir():
            mode = stat.S_IMODE(self.folder.stat().st_mode)
            if mode & 0o077:
                logger.warning(
                    f"transcript folder {self.folder} is readable by others (mode {mode:o}); "
                    "transcripts hold personal data, consider chmod 700"
                )
            return
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(mode=FOLDER_MODE)
        os.chmod(self.folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask

    def open_session(
        self,
        session_id: str,
        *,
        started_at: float,
        meta: Mapping[str, Any] | None = None,
    ) -> SessionWriter:
        """Start writing a session; never raises for I/O (the writer falls back to memory)."""
        writer = SessionWriter(self, check_session_id(session_id))
        writer.open(started_at=started_at, meta=dict(meta or {}))
        return writer

    def purge_expired(self, *, now: float | None = None, keep: Collection[str] = ()) -> list[str]:
        """Delete sessions that started more than `retention_days` ago; return their ids.

        Args:
            now: The current time (epoch seconds); tests pass one.
            keep: Session ids never to delete (the one being recorded).
        """
        if self.retention_days is None or not self.folder.is_dir():
            return []
        cutoff = (time.time() if now is None else now) - self.retention_days * SECONDS_PER_DAY
        removed: list[str] = []
        try:
            index = read_index(self.folder)
            present: set[str] = set()
            for session_id, path in session_files(self.folder):
                started = index.get(session_id, {}).get("started", {}).get("ts")
                if not isinstance(started, int | float):
                    # Not in our index: a file we did not write (or whose start we never
                    # recorded), so not ours to delete.
                    present.add(session_id)
                    continue
                if session_id not in keep and started < cutoff:
                    path.unlink()
                    removed.append(session_id)
                else:
                    present.add(session_id)
            if removed or set(index) - present:
                self._rewrite_index(present)
        except OSError as exc:
            logger.warning(f"transcript retention in {self.folder} stopped: {exc}")
        if removed:
            logger.info(
                f"transcripts: deleted {len(removed)} session(s) older than "
                f"{self.retention_days:g} days from {self.folder}"
            )
        return removed

    def _rewrite_index(self, keep: set[str]) -> None:
        """Replace the index with its lines for `keep`, atomically (a crash keeps the old one)."""
        path = self.index_path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        lines = [
            line + b"\n" for line, record in parse_lines(raw)[0] if record.get("session_id") in keep
        ]
        # A name of its own, not the PID: two containers sharing a volume can both be PID 1.
        fd, tmp = tempfile.mkstemp(prefix=f".{INDEX_NAME}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, b"".join(lines))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)


class SessionWriter:
    """Appends one session's events; after the first I/O error it keeps them in memory only.

    Its calls do blocking file I/O: a bot makes them from a writer thread
    (`transcripts.background.BackgroundSession`). `events` holds every event recorded, written or
    not, so the running session can always be read back.
    """

    def __init__(self, store: TranscriptStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self.path = store.path_of(session_id)
        self.events: list[dict[str, Any]] = []
        self.written = 0
        self.failed: OSError | None = None
        self._fd: int | None = None
        self._size = 0
        self._opened = False
        self._closed = False
        self._warned = False

    @property
    def in_memory_only(self) -> bool:
        """True once an I/O error stopped writing to disk."""
        return self.failed is not None

    def open(self, *, started_at: float, meta: dict[str, Any]) -> None:
        """Create or reopen the session's file and add the index's start line."""
        try:
            self.store.ensure_folder()
            self._fd = open_private(self.path)
            self._size = os.fstat(self._fd).st_size
            self._opened = True
            if self.store.fsync:
                fsync_dir(self.store.folder)
        except OSError as exc:
            self._fail(exc, f"cannot open {self.path}")
            return
        self._index(
            {"event": "started", "ts": round(started_at, 3), "file": self.path.name, "meta": meta}
        )

    def write(self, kind: str, ts: float, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record one event now; return it as stored."""
        event = make_event(self.session_id, kind, ts, fields)
        self.append(event)
        return event

    def append(self, event: dict[str, Any]) -> None:
        """Record an event made by `make_event`: on disk, as one line, when this returns."""
        self.events.append(event)
        if self._fd is not None:
            data = encode_event(event)
            try:
                append_line(self._fd, data, self._size)
                self._size += len(data)
                if self.store.fsync:
                    os.fsync(self._fd)
                self.written += 1
            except OSError as exc:
                self._fail(exc, f"cannot write {self.path}")

    def close(self, *, ts: float, summary: Mapping[str, Any]) -> None:
        """Add the index's end line and release the file; later writes stay in memory."""
        if self._closed:
            return
        self._closed = True
        if self._opened:  # even after a write error: the index may still have room
            self._index({"event": "ended", "ts": round(ts, 3), **summary})
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _index(self, record: Mapping[str, Any]) -> None:
        data = encode_event({"session_id": self.session_id, **record})
        try:
            fd = open_private(self.store.index_path)
            try:
                append_line(fd, data)
                if self.store.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            # The session file is the source of truth; the listing rebuilds what the index lacks.
            self._warn(exc, f"cannot update {self.store.index_path}", "the session file is kept")

    def _fail(self, exc: OSError, what: str) -> None:
        self._warn(exc, what, "the session goes on and its transcript is kept in memory only")
        self.failed = exc
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _warn(self, exc: OSError, what: str, consequence: str) -> None:
        """Log the first I/O problem of the session; later ones would only repeat it."""
        if self._warned:
            return
        self._warned = True
        reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        logger.warning(f"transcript {self.session_id}: {what} ({reason}); {consequence}")
