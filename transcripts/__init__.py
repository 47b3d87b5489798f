"""Session transcripts: the store, reading them back, the reader CLI, and the recorder.

Kept apart from the bots and from Pipecat: the store and the CLI take a folder as a plain
argument, and the recorder turns conversation events into lines without knowing the pipeline
(the Pipecat side is `observers.transcript`). The names below are what other code reads
transcripts through.
"""

from transcripts.files import check_session_id, new_session_id
from transcripts.reading import (
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
    "SessionInfo",
    "SessionWriter",
    "Transcript",
    "TranscriptRecorder",
    "TranscriptStore",
    "Turn",
    "check_session_id",
    "list_sessions",
    "load_session",
    "new_session_id",
    "read_index",
]
