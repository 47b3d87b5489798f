"""Read recorded transcripts: `python -m processors.transcripts list | show SESSION | export ...`.

    python -m processors.transcripts list
    python -m processors.transcripts show 20250101-120000-3f9a1c
    python -m processors.transcripts export 20250101-120000-3f9a1c --format md --output call.md
    python -m processors.transcripts purge --days 30

The folder is `--folder`, else the bots' setting (`TRANSCRIPT_DIR`, default `DATA_DIR/transcripts`).
Times are shown in the local time zone (set `TZ` to change it). Exported files are created 0600,
like the transcripts themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from processors.transcript_store import (
    FILE_MODE,
    SessionInfo,
    Transcript,
    TranscriptStore,
    list_sessions,
    load_session,
)


def default_folder() -> Path:
    """The bots' transcript folder, read from the environment and `.env` like the bots do."""
    try:
        from bots.settings import load_settings

        return load_settings().transcripts
    except Exception:  # a setting the bots need but this reader does not, e.g. a bad key
        return Path(os.environ.get("TRANSCRIPT_DIR") or Path("data") / "transcripts")


def clock_time(ts: float | None, *, date: bool = False) -> str:
    if ts is None:
        return "?"
    moment = datetime.fromtimestamp(ts).astimezone()
    if date:
        return moment.strftime("%Y-%m-%d %H:%M:%S %Z")
    return moment.strftime("%H:%M:%S")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_list(infos: Sequence[SessionInfo]) -> str:
    """The `list` table: one session a line, oldest first."""
    if not infos:
        return "no sessions"
    rows = [("SESSION", "STARTED", "TURNS", "DURATION", "STATUS")]
    for info in infos:
        status = "ended" if info.ended else "open or crashed"
        if info.ended and info.end_detail:
            status += f" ({info.end_detail})"
        rows.append(
            (
                info.session_id,
                clock_time(info.started_at, date=True),
                f"{info.user_turns} user / {info.bot_turns} bot",
                duration_text(info.duration_s),
                status,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _tool_line(event: dict[str, Any]) -> str:
    args = json.dumps(event.get("arguments", {}), ensure_ascii=False, separators=(", ", ": "))
    outcome = event.get("outcome", "?")
    tail = f"{outcome} in {event.get('duration_ms', 0):g} ms"
    if event.get("error"):
        tail += f": {event['error']}"
    elif event.get("result") is not None:
        tail += f": {json.dumps(event['result'], ensure_ascii=False)}"
    return f"{event.get('name', '?')}({args}) → {tail}"


def _session_line(event: dict[str, Any]) -> str:
    text = f"session {event.get('event', '?')}"
    detail = event.get("detail")
    if event.get("event") == "ended" and event.get("cancelled"):
        detail = f"cancelled{': ' + detail if detail else ''}"
    return f"{text} ({detail})" if detail else text


def _bot_notes(event: dict[str, Any], interrupted: set[int]) -> list[str]:
    notes = []
    if event.get("latency_ms") is not None:
        notes.append(f"latency {event['latency_ms']:.0f} ms")
    if event.get("interrupted") or event.get("turn") in interrupted:
        notes.append("interrupted")
    return notes


def _interrupted_turns(transcript: Transcript) -> set[int]:
    return {t.turn for t in transcript.bot_turns if t.interrupted}


def format_show(transcript: Transcript) -> str:
    """A plain-text timeline: one event a line."""
    lines = [
        f"Session {transcript.session_id} · started {clock_time(transcript.started_at, date=True)}"
        f" · {duration_text(transcript.duration_s)}"
    ]
    interrupted = _interrupted_turns(transcript)
    for event in transcript.events:
        kind, when = event.get("type"), clock_time(event.get("ts"))
        if kind == "user_turn":
            label, text = f"user #{event.get('turn')}", str(event.get("text", ""))
        elif kind == "bot_turn":
            notes = _bot_notes(event, interrupted)
            suffix = f"  [{', '.join(notes)}]" if notes else ""
            label, text = f"bot #{event.get('turn')}", f"{event.get('text', '')}{suffix}"
        elif kind == "tool_call":
            label, text = "tool", _tool_line(event)
        elif kind == "interruption":
            label, text = "---", f"user cut off bot #{event.get('bot_turn')}"
        elif kind == "session":
            label, text = "---", _session_line(event)
        else:
            continue
        lines.append(f"{when}  {label:<9}  {text}")
    if transcript.skipped_lines:
        lines.append(f"({transcript.skipped_lines} unreadable line(s) skipped)")
    return "\n".join(lines)


def format_markdown(transcript: Transcript) -> str:
    """A Markdown transcript: header with the figures, then the conversation."""
    latencies = transcript.latencies_ms
    end = transcript.ended
    if end is None:
        ended = "not recorded (still running, or the process died)"
    else:
        ended = str(end.get("detail") or "normally")
        if end.get("cancelled"):
            ended = f"cancelled ({ended})"
    lines = [
        f"# Transcript {transcript.session_id}",
        "",
        f"- Started: {clock_time(transcript.started_at, date=True)}",
        f"- Duration: {duration_text(transcript.duration_s)}",
        f"- Ended: {ended}",
        f"- Turns: {len(transcript.user_turns)} user, {len(transcript.bot_turns)} bot; "
        f"{len(transcript.tool_calls)} tool call(s); "
        f"{len(transcript.interruptions)} interruption(s)",
    ]
    if latencies:
        lines.append(
            f"- Latency (end of speech → first bot audio): median "
            f"{statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
        )
    lines.append("")
    interrupted = _interrupted_turns(transcript)
    for event in transcript.events:
        kind, when = event.get("type"), clock_time(event.get("ts"))
        if kind == "user_turn":
            lines += [f"**User** · {when}", f"> {event.get('text', '')}", ""]
        elif kind == "bot_turn":
            notes = _bot_notes(event, interrupted)
            suffix = f" · _{', '.join(notes)}_" if notes else ""
            lines += [f"**Assistant** · {when}{suffix}", f"> {event.get('text', '')}", ""]
        elif kind == "tool_call":
            lines += [f"_Tool call · {when}:_ `{_tool_line(event)}`", ""]
        elif kind == "interruption":
            lines += [f"_Interruption · {when}: the user cut off the assistant._", ""]
        elif kind == "session" and event.get("event") not in ("started", "ended"):
            lines += [f"_{when}: {_session_line(event)}_", ""]
    return "\n".join(lines).rstrip() + "\n"


def export_json(transcript: Transcript) -> str:
    """The whole session as one JSON document: summary, turns, and every event."""
    document = {
        "session_id": transcript.session_id,
        "started_at": transcript.started_at,
        "duration_s": transcript.duration_s,
        "ended": transcript.ended,
        "user_turns": [vars(t) for t in transcript.user_turns],
        "bot_turns": [vars(t) for t in transcript.bot_turns],
        "tool_calls": transcript.tool_calls,
        "events": transcript.events,
        "skipped_lines": transcript.skipped_lines,
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write an export 0600: it holds the same personal data as the transcript."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processors.transcripts", description=__doc__)
    parser.add_argument("--folder", type=Path, help="transcript folder (default: from settings)")
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
    folder: Path = args.folder or default_folder()

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


if __name__ == "__main__":
    raise SystemExit(main())
