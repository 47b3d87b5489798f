"""Where state that outlives one process is kept: notes, transcripts' rows, conversations.

Two backends with one interface each: the embedded default under DATA_DIR (SQLite files; the
transcripts' JSON Lines live in `transcripts/`) and PostgreSQL when DATABASE_URL is set, shared
by every replica of a fleet (`stores.postgres`). Nothing here imports the bots or Pipecat.
"""
