"""What the recorder, the pages and the CLI need of a transcript store, whichever it is.

Transcripts live in a folder (`transcripts.store.TranscriptStore`, one process's default) or in
PostgreSQL (`transcripts.postgres.PostgresTranscriptStore`, shared by every replica of a fleet).
The code around them is written once against these two protocols, so choosing the store is one
line at the entry point and no caller tests which one it was given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from transcripts.reading import SessionInfo, Transcript


class TranscriptWriter(Protocol):
    """One session being written: each call stores one event before it returns, or, after the
    store's first failure, keeps it in memory only (`events` always holds all of them)."""

    events: list[dict[str, Any]]
    written: int

    @property
    def in_memory_only(self) -> bool: ...

    def write(self, kind: str, ts: float, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    def append(self, event: dict[str, Any]) -> None: ...

    def close(self, *, ts: float, summary: Mapping[str, Any]) -> None: ...


class TranscriptReader(Protocol):
    """Reading transcripts back: the operator's pages and the CLI need nothing more."""

    @property
    def location(self) -> str:
        """Where the transcripts are, for messages (a database URL without its password)."""
        ...

    def load(self, session_id: str) -> Transcript:
        """One session's events in order; `NoSuchSession` when there is none of that id,
        `ValueError` for an id no store accepts."""
        ...

    def sessions(self) -> list[SessionInfo]:
        """Every session, oldest first."""
        ...

    def sessions_of_conversation(self, conversation_id: str) -> list[SessionInfo]:
        """The sessions whose start names the conversation, oldest first."""
        ...


class TranscriptBackend(TranscriptReader, Protocol):
    """A store the recorder writes to (through `transcripts.background.BackgroundSession`)."""

    retention_days: float | None

    def where(self, session_id: str) -> str:
        """Where one session is written, for log lines."""
        ...

    def open_session(
        self, session_id: str, *, started_at: float, meta: Mapping[str, Any] | None = None
    ) -> TranscriptWriter:
        """Start writing a session; never raises for the store's failures (the writer falls
        back to memory)."""
        ...

    def purge_expired(self, *, now: float | None = None, keep: Collection[str] = ()) -> list[str]:
        """Delete whole sessions that started more than `retention_days` ago; their ids."""
        ...
