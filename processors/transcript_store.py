"""Where transcripts live: one append-only JSON Lines file per session, plus a session index.

Layout of the folder (created 0700; every file 0600, since transcripts hold personal data):

    <folder>/<session_id>.jsonl    one event per line, in the order the events happened
    <folder>/index.jsonl           one line when a session starts, one when it ends

Every event is one JSON object on one line, written with a single `os.write` on an `O_APPEND`
descriptor the moment it is recorded (and `fsync`ed too when asked), so a crash or `kill -9`
loses at most the line being written; a torn last line is skipped when reading. Common fields:

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
                  the arrival of the last transcription chunk)
    tool_call     ToolCallEvent.to_json() (name, call_id, arguments, outcome, result, error,
                  started_at, duration_ms); reply_to: the latest user turn, or null
    interruption  bot_turn: the bot turn the user cut off

A bot turn is normally written already marked `interrupted`; when the user cuts off audio that is
still playing after the model finished its turn, only an `interruption` line follows, and the reader
marks that bot turn interrupted.

The index is an accelerator, not the source of truth: `list_sessions` trusts a session's start and
end lines in it, and rebuilds what is missing (a crash before the end line, a lost index) from the
session files themselves. Retention deletes whole sessions older than N days by the start time in
the index, or the file's modification time when the index does not know the session.

A full disk, an unwritable folder or any other write error is logged once per session; the session
goes on with its events kept in memory (`SessionWriter.events`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loguru import logger

INDEX_NAME = "index.jsonl"
SUFFIX = ".jsonl"
FOLDER_MODE = 0o700
FILE_MODE = 0o600
SECONDS_PER_DAY = 86400.0

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def new_session_id(now: float | None = None) -> str:
    """A session id that sorts by start time and cannot collide: `20250101-120000-3f9a1c`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def check_session_id(session_id: str) -> str:
    """Refuse ids that could escape the folder or clash with the index (they name files)."""
    if not _SESSION_ID.fullmatch(session_id) or session_id + SUFFIX == INDEX_NAME:
        raise ValueError(
            f"invalid session id {session_id!r}: use letters, digits, '.', '_' and '-' "
            "(at most 128, not starting with a dot or dash)"
        )
    return session_id


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One event as one line; anything not JSON-native (a path, an enum) is written as a string."""
    return (
        json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
    ).encode("utf-8")


def _append_line(fd: int, data: bytes, size: int | None = None) -> None:
    """Append one whole line with a single write (atomic for O_APPEND on a local disk).

    Args:
        fd: An `O_APPEND` descriptor.
        data: The line, newline included.
        size: The file's size before the write when this process is its only writer: a failed
            or short write is then cut back to it, so no torn line is left in the middle of the
            file. None for the shared index, where cutting could remove another process's line.
    """
    try:
        written = os.write(fd, data)
    except OSError:
        if size is not None:
            _truncate_quietly(fd, size)
        raise
    if written != len(data):
        if size is not None:
            _truncate_quietly(fd, size)
        raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # the reader skips a torn line anyway


def _open_private(path: Path) -> int:
    fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a file that already existed keeps no wider mode
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")  # end a torn line left by a crash, so the next line stands alone
    except OSError:
        os.close(fd)
        raise
    return fd


class TranscriptStore:
    """The transcript folder: opens session writers, applies retention.

    Args:
        folder: Where session files and the index go; created 0700 on first use.
        retention_days: Sessions that started longer ago than this are deleted by
            `purge_expired()` (the transcript logger calls it when a session starts); None keeps
            everything.
        fsync: Also `fsync` after every line. Off by default: each line already reaches the
            kernel before the next event, which survives a crash of this process; `fsync` adds
            power-loss safety at the cost of a disk flush per event on the event loop.
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
            for session_id, path in _session_files(self.folder):
                started = index.get(session_id, {}).get("started", {}).get("ts")
                if not isinstance(started, int | float):
                    started = path.stat().st_mtime
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
            line + b"\n"
            for line, record in _parse_lines(raw)[0]
            if record.get("session_id") in keep
        ]
        tmp = path.with_name(f".{INDEX_NAME}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            os.write(fd, b"".join(lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)


class SessionWriter:
    """Appends one session's events; after the first I/O error it keeps them in memory only.

    `events` holds every event recorded, written or not, so the running session can always be
    read back (`TranscriptLogger.transcript`).
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
        try:
            self.store.ensure_folder()
            self._fd = _open_private(self.path)
            self._size = os.fstat(self._fd).st_size
            self._opened = True
            if self.store.fsync:
                _fsync_dir(self.store.folder)
        except OSError as exc:
            self._fail(exc, f"cannot open {self.path}")
            return
        self._index(
            {"event": "started", "ts": round(started_at, 3), "file": self.path.name, "meta": meta}
        )

    def write(self, kind: str, ts: float, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record one event now; return it as stored."""
        event = {"type": kind, "ts": round(ts, 3), "session_id": self.session_id, **fields}
        self.events.append(event)
        if self._fd is not None:
            data = encode_event(event)
            try:
                _append_line(self._fd, data, self._size)
                self._size += len(data)
                if self.store.fsync:
                    os.fsync(self._fd)
                self.written += 1
            except OSError as exc:
                self._fail(exc, f"cannot write {self.path}")
        return event

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
            fd = _open_private(self.store.index_path)
            try:
                _append_line(fd, data)
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


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Reading


@dataclass
class Turn:
    """One user or bot turn as read back."""

    role: Literal["user", "bot"]
    turn: int
    text: str
    ts: float
    started_at: float | None = None
    interrupted: bool = False
    latency_ms: float | None = None
    reply_to: int | None = None


@dataclass
class Transcript:
    """A session read back: its events in order, and the turns built from them."""

    session_id: str
    events: list[dict[str, Any]]
    skipped_lines: int = 0
    user_turns: list[Turn] = field(default_factory=list)
    bot_turns: list[Turn] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    """User and bot turns in the order they were recorded."""

    @classmethod
    def from_events(
        cls, session_id: str, events: list[dict[str, Any]], skipped_lines: int = 0
    ) -> Transcript:
        transcript = cls(session_id, events, skipped_lines)
        bots: dict[int, Turn] = {}
        for event in events:
            kind = event.get("type")
            if kind == "user_turn":
                turn = _turn("user", event)
                transcript.user_turns.append(turn)
                transcript.turns.append(turn)
            elif kind == "bot_turn":
                turn = _turn("bot", event)
                transcript.bot_turns.append(turn)
                transcript.turns.append(turn)
                bots[turn.turn] = turn
            elif kind == "interruption" and event.get("bot_turn") in bots:
                bots[event["bot_turn"]].interrupted = True
        return transcript

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "tool_call"]

    @property
    def interruptions(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "interruption"]

    @property
    def session_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "session"]

    @property
    def started_at(self) -> float | None:
        for event in self.session_events:
            if event.get("event") == "started":
                return float(event["ts"])
        return float(self.events[0]["ts"]) if self.events else None

    @property
    def ended(self) -> dict[str, Any] | None:
        """The session's `ended` event; None if it is still running or its process died."""
        for event in reversed(self.session_events):
            if event.get("event") == "ended":
                return event
        return None

    @property
    def last_ts(self) -> float | None:
        return float(self.events[-1]["ts"]) if self.events else None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.last_ts is None:
            return None
        return max(0.0, self.last_ts - self.started_at)

    @property
    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.bot_turns if t.latency_ms is not None]


def _turn(role: Literal["user", "bot"], event: dict[str, Any]) -> Turn:
    return Turn(
        role=role,
        turn=int(event.get("turn", 0)),
        text=str(event.get("text", "")),
        ts=float(event.get("ts", 0.0)),
        started_at=event.get("started_at"),
        interrupted=bool(event.get("interrupted", False)),
        latency_ms=event.get("latency_ms"),
        reply_to=event.get("reply_to"),
    )


def _parse_lines(raw: bytes) -> tuple[list[tuple[bytes, dict[str, Any]]], int]:
    """Complete, valid JSON-object lines of a file, and how many lines were skipped.

    The last line may lack its newline when the writer died mid-write: it is kept only if it is a
    whole JSON object (then only the newline was lost). An invalid line elsewhere (a disk that
    filled mid-line, a hand edit) is skipped too, rather than making the whole file unreadable.
    """
    good: list[tuple[bytes, dict[str, Any]]] = []
    skipped = 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(record, dict):
            good.append((line, record))
        else:
            skipped += 1
    return good, skipped


def load_session(folder: Path | str, session_id: str) -> Transcript:
    """Read one session's file, skipping a torn last line.

    Raises:
        FileNotFoundError: There is no such session in the folder.
        ValueError: The session id is not a valid one.
    """
    path = Path(folder) / (check_session_id(session_id) + SUFFIX)
    lines, skipped = _parse_lines(path.read_bytes())
    if skipped:
        logger.debug(f"transcript {session_id}: skipped {skipped} unreadable line(s)")
    return Transcript.from_events(session_id, [record for _, record in lines], skipped)


def read_index(folder: Path | str) -> dict[str, dict[str, dict[str, Any]]]:
    """The index as {session_id: {"started": line, "ended": line}}; empty if there is none."""
    try:
        raw = (Path(folder) / INDEX_NAME).read_bytes()
    except FileNotFoundError:
        return {}
    index: dict[str, dict[str, dict[str, Any]]] = {}
    for _, record in _parse_lines(raw)[0]:
        session_id, event = record.get("session_id"), record.get("event")
        if isinstance(session_id, str) and event in ("started", "ended"):
            index.setdefault(session_id, {})[event] = record
    return index


def _session_files(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.glob("*" + SUFFIX)):
        if path.name != INDEX_NAME and _SESSION_ID.fullmatch(path.stem):
            yield path.stem, path


@dataclass
class SessionInfo:
    """One line of `list_sessions`."""

    session_id: str
    started_at: float | None
    last_ts: float | None
    user_turns: int
    bot_turns: int
    ended: bool
    end_detail: str = ""

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.last_ts is None:
            return None
        return max(0.0, self.last_ts - self.started_at)


def list_sessions(folder: Path | str) -> list[SessionInfo]:
    """Every session in the folder, oldest first.

    Sessions the index shows as started and ended are listed from the index alone; the others
    (still running, killed, or missing from a lost index) are read from their files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    index = read_index(folder)
    infos: list[SessionInfo] = []
    for session_id, _path in _session_files(folder):
        entry = index.get(session_id, {})
        started, ended = entry.get("started"), entry.get("ended")
        if started is not None and ended is not None:
            infos.append(
                SessionInfo(
                    session_id,
                    float(started["ts"]),
                    float(ended["ts"]),
                    int(ended.get("user_turns", 0)),
                    int(ended.get("bot_turns", 0)),
                    True,
                    str(ended.get("detail", "")),
                )
            )
            continue
        transcript = load_session(folder, session_id)
        end = transcript.ended
        infos.append(
            SessionInfo(
                session_id,
                transcript.started_at,
                transcript.last_ts,
                len(transcript.user_turns),
                len(transcript.bot_turns),
                end is not None,
                str(end.get("detail", "")) if end else "",
            )
        )
    infos.sort(key=lambda i: (i.started_at is None, i.started_at or 0.0, i.session_id))
    return infos
