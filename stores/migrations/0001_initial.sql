-- Notes, transcripts and conversations, shared by every bot process that has DATABASE_URL.
-- Times are epoch seconds (double precision), as the file store writes them.

CREATE TABLE notes (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX notes_user ON notes (user_id, id);

-- One row per bot session (a connection of a conversation to one process); its events below.
CREATE TABLE transcript_sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT,
    conversation_id TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    meta JSONB NOT NULL DEFAULT '{}'::jsonb,
    ended_at DOUBLE PRECISION,
    summary JSONB
);
CREATE INDEX transcript_sessions_started ON transcript_sessions (started_at);
CREATE INDEX transcript_sessions_conversation ON transcript_sessions (conversation_id);

-- One row per event, written with one INSERT when the event happens (the file store's line).
CREATE TABLE transcript_events (
    session_id TEXT NOT NULL REFERENCES transcript_sessions (session_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    type TEXT NOT NULL,
    event JSONB NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- What another process needs to go on with a conversation: whose it is, Gemini's latest
-- resumption handle and when it was issued, the conversation so far, its Daily room.
CREATE TABLE conversations (
    conversation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    handle TEXT,
    handle_issued_at DOUBLE PRECISION,
    history JSONB NOT NULL DEFAULT '[]'::jsonb,
    room_url TEXT,
    owner TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX conversations_updated ON conversations (updated_at);
