"""Read recorded transcripts: `python -m transcripts list | show SESSION | export ... | purge`.

    python -m transcripts list
    python -m transcripts show 20250101-120000-3f9a1c
    python -m transcripts export 20250101-120000-3f9a1c --format md --output call.md
    python -m transcripts purge --days 30

The transcripts are read where the bots write them: PostgreSQL when `--database-url` is given,
else the folder `--folder`, else PostgreSQL when `DATABASE_URL` is set, else the bots' folder:
`TRANSCRIPT_DIR`, else `DATA_DIR/transcripts`, else `data/transcripts` (read from the environment
here, at the entry point, and nowhere below). A database URL's password is never printed. Times
are shown in the local time zone (set `TZ` to change it). Exported files are created 0600, like
the transcripts themselves.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from stores.postgres import Database, Unavailable, redacted
from transcripts.backend import TranscriptBackend
from transcripts.formatting import (
    export_json,
    format_list,
    format_markdown,
    format_show,
    write_private,
)
from transcripts.postgres import PostgresTranscriptStore
from transcripts.reading import NoSuchSession
from transcripts.store import TranscriptStore

CONNECT_TIMEOUT_S = 5
"""How long the CLI waits for the database before saying it cannot reach it."""


def default_folder(environ: Mapping[str, str]) -> Path:
    """The bots' transcript folder, from the same variables the bots read."""
    if environ.get("TRANSCRIPT_DIR"):
        return Path(environ["TRANSCRIPT_DIR"])
    return Path(environ.get("DATA_DIR") or "data") / "transcripts"


def without_password(text: str, url: str) -> str:
    """`text` with the URL's password starred out, wherever a library's message quoted it."""
    password = urlsplit(url).password
    for form in {password, unquote(password)} if password else ():
        text = text.replace(form, "***")
    return text


@contextmanager
def opened_store(
    folder: Path, database_url: str | None, *, retention_days: float | None = None
) -> Iterator[TranscriptBackend]:
    """The store to read: PostgreSQL at `database_url`, else the folder.

    Raises:
        Unavailable: The database cannot be reached; the message shows no password.
    """
    if not database_url:
        yield TranscriptStore(folder, retention_days=retention_days)
        return
    try:
        # One plain connection first: its error says why (no such database, refused, bad
        # password) within seconds, where the pool would retry until its timeout.
        psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        reason = without_password(str(exc).strip() or type(exc).__name__, database_url)
        raise Unavailable(f"cannot reach {redacted(database_url)}: {reason}") from None
    database = Database(database_url, max_size=1, timeout=CONNECT_TIMEOUT_S)
    try:
        database.open()
        yield PostgresTranscriptStore(database, retention_days=retention_days)
    finally:
        database.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status (2 for an unknown or invalid session, 1 for a
    database that cannot be reached)."""
    parser = argparse.ArgumentParser(prog="python -m transcripts", description=__doc__)
    parser.add_argument(
        "--folder",
        type=Path,
        help="transcript folder (default: TRANSCRIPT_DIR, else DATA_DIR/transcripts)",
    )
    parser.add_argument(
        "--database-url",
        help="read the transcripts from PostgreSQL (default: DATABASE_URL, unless --folder; "
        "prefer the variable for a URL with a password, which ps shows on a command line)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list sessions")
    show = commands.add_parser("show", help="print a session's timeline")
    show.add_argument("session")
    export = commands.add_parser("export", help="export a session as Markdown or JSON")
    export.add_argument("session")
    export.add_argument("--format", choices=("md", "json"), default="md")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    purge = commands.add_parser("purge", help="delete sessions older than N days")
    purge.add_argument("--days", type=float, required=True)
    args = parser.parse_args(argv)
    database_url = args.database_url or (None if args.folder else os.environ.get("DATABASE_URL"))
    folder: Path = args.folder or default_folder(os.environ)
    retention = args.days if args.command == "purge" else None
    try:
        with opened_store(folder, database_url, retention_days=retention) as store:
            return _run(args, store)
    except Unavailable as exc:
        message = without_password(str(exc), database_url) if database_url else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, store: TranscriptBackend) -> int:
    if args.command == "list":
        print(format_list(store.sessions()))
        return 0
    if args.command == "purge":
        removed = store.purge_expired()
        print(f"deleted {len(removed)} session(s)" + "".join(f"\n  {s}" for s in removed))
        return 0
    try:
        transcript = store.load(args.session)
    except (NoSuchSession, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "show":
        print(format_show(transcript))
        return 0
    text = format_markdown(transcript) if args.format == "md" else export_json(transcript)
    if args.output:
        write_private(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
