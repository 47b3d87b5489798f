"""Session transcripts: the stores, reading them back, the reader CLI, and the recorder.

Kept apart from the bots and from Pipecat: the stores and the CLI take a folder (or an opened
`stores.postgres.Database`, for `transcripts.postgres`) as a plain argument, and the recorder
turns conversation events into lines without knowing the pipeline (the Pipecat side is
`observers.transcript`). The names below are what other code reads transcripts through; the
PostgreSQL store is imported from `transcripts.postgres`, so a process without a database never
loads its driver through this package.
"""

from transcripts.backend import TranscriptBackend, TranscriptReader, TranscriptWriter
from transcripts.files import check_session_id, new_session_id
from transcripts.reading import (
    NoSuchSession,
    SessionInfo,
    Transcript,
    Turn,
    list_sessions,
    load_session,
    read_index,
)
from transcripts.recorder import TranscriptRecorder
from transcripts.store import SessionWriter, TranscriptStore

__all__ = [
    "NoSuchSession",
    "SessionInfo",
    "SessionWriter",
    "Transcript",
    "TranscriptBackend",
    "TranscriptReader",
    "TranscriptRecorder",
    "TranscriptStore",
    "TranscriptWriter",
    "Turn",
    "check_session_id",
    "list_sessions",
    "load_session",
    "new_session_id",
    "read_index",
]
