"""Read recorded transcripts: `python -m transcripts list | show SESSION | export ... | purge`.

    python -m transcripts list
    python -m transcripts show 20250101-120000-3f9a1c
    python -m transcripts export 20250101-120000-3f9a1c --format md --output call.md
    python -m transcripts purge --days 30

The folder is `--folder`, else the bots' default: `TRANSCRIPT_DIR`, else `DATA_DIR/transcripts`,
else `data/transcripts` (read from the environment here, at the entry point, and nowhere below).
Times are shown in the local time zone (set `TZ` to change it). Exported files are created 0600,
like the transcripts themselves.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from transcripts.formatting import (
    export_json,
    format_list,
    format_markdown,
    format_show,
    write_private,
)
from transcripts.reading import list_sessions, load_session
from transcripts.store import TranscriptStore


def default_folder(environ: Mapping[str, str]) -> Path:
    """The bots' transcript folder, from the same variables the bots read."""
    if environ.get("TRANSCRIPT_DIR"):
        return Path(environ["TRANSCRIPT_DIR"])
    return Path(environ.get("DATA_DIR") or "data") / "transcripts"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status (2 for an unknown or invalid session)."""
    parser = argparse.ArgumentParser(prog="python -m transcripts", description=__doc__)
    parser.add_argument(
        "--folder",
        type=Path,
        help="transcript folder (default: TRANSCRIPT_DIR, else DATA_DIR/transcripts)",
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
    folder: Path = args.folder or default_folder(os.environ)

    if args.command == "list":
        print(format_list(list_sessions(folder)))
        return 0
    if args.command == "purge":
        removed = TranscriptStore(folder, retention_days=args.days).purge_expired()
        print(f"deleted {len(removed)} session(s)" + "".join(f"\n  {s}" for s in removed))
        return 0
    try:
        transcript = load_session(folder, args.session)
    except (FileNotFoundError, ValueError) as exc:
        message = exc if isinstance(exc, ValueError) else f"no session {args.session} in {folder}"
        print(f"error: {message}", file=sys.stderr)
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
