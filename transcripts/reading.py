"""Reading transcripts back: a session's events and turns, and the listing of a folder.

Readers never trust a file to be whole: a session may still be running, or its process may have
died mid-line, so every line is parsed on its own and a torn or invalid one is skipped and
counted rather than making the session unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from transcripts.files import INDEX_NAME, SESSION_ID, SUFFIX, check_session_id


class NoSuchSession(LookupError):
    """The store holds no session of that id: one reading interface for every store, so a page
    or the CLI answers "not found" the same way whether the session was a file or rows."""


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


def parse_lines(raw: bytes) -> tuple[list[tuple[bytes, dict[str, Any]]], int]:
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
    lines, skipped = parse_lines(path.read_bytes())
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
    for _, record in parse_lines(raw)[0]:
        session_id, event = record.get("session_id"), record.get("event")
        if isinstance(session_id, str) and event in ("started", "ended"):
            index.setdefault(session_id, {})[event] = record
    return index


def session_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(session id, path) of each session file in the folder, by name."""
    for path in sorted(folder.glob("*" + SUFFIX)):
        if path.name != INDEX_NAME and SESSION_ID.fullmatch(path.stem):
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


def list_sessions(folder: Path | str, *, only: Collection[str] | None = None) -> list[SessionInfo]:
    """Every session in the folder (or those of `only`), oldest first.

    Sessions the index shows as started and ended are listed from the index alone; the others
    (still running, killed, or missing from a lost index) are read from their files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    index = read_index(folder)
    infos: list[SessionInfo] = []
    for session_id, _path in session_files(folder):
        if only is not None and session_id not in only:
            continue
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
        infos.append(info_from_events(load_session(folder, session_id)))
    return sorted_infos(infos)


def info_from_events(transcript: Transcript) -> SessionInfo:
    """A session's listing line from its events, for one whose end was never recorded."""
    end = transcript.ended
    return SessionInfo(
        transcript.session_id,
        transcript.started_at,
        transcript.last_ts,
        len(transcript.user_turns),
        len(transcript.bot_turns),
        end is not None,
        str(end.get("detail", "")) if end else "",
    )


def sorted_infos(infos: list[SessionInfo]) -> list[SessionInfo]:
    """Oldest first, whichever store listed them; a session with no known start goes last."""
    return sorted(infos, key=lambda i: (i.started_at is None, i.started_at or 0.0, i.session_id))


def sessions_of_conversation(folder: Path | str, conversation_id: str) -> list[SessionInfo]:
    """The sessions in the folder whose start says they belong to the conversation, oldest
    first.

    A conversation is kept across processes and reconnections, so its sessions are found by the
    `conversation` of their start's metadata: the index's start line, else (a lost index) the
    session file's own `started` event.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    index = read_index(folder)
    ids = {
        session_id
        for session_id, _path in session_files(folder)
        if _conversation_of(folder, session_id, index) == conversation_id
    }
    return list_sessions(folder, only=ids) if ids else []


def _conversation_of(
    folder: Path, session_id: str, index: dict[str, dict[str, dict[str, Any]]]
) -> str | None:
    meta = index.get(session_id, {}).get("started", {}).get("meta")
    if not isinstance(meta, dict):
        started = [
            e
            for e in load_session(folder, session_id).session_events
            if e.get("event") == "started"
        ]
        meta = started[0].get("meta") if started else None
    if not isinstance(meta, dict) or meta.get("conversation") is None:
        return None
    return str(meta["conversation"])
