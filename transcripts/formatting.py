"""Transcripts as people read them: the `list` table, a plain-text timeline, Markdown, JSON.

Shared by the reader CLI (`python -m transcripts`) and anything else that prints a session. Times
are shown in the local time zone (set `TZ` to change it).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from transcripts.files import FILE_MODE
from transcripts.reading import SessionInfo, Transcript


def clock_time(ts: float | None, *, date: bool = False) -> str:
    """A time of day (with the date and zone when `date`), or "?" when unknown."""
    if ts is None:
        return "?"
    moment = datetime.fromtimestamp(ts).astimezone()
    if date:
        return moment.strftime("%Y-%m-%d %H:%M:%S %Z")
    return moment.strftime("%H:%M:%S")


def duration_text(seconds: float | None) -> str:
    """A duration as people say it: `42 s`, `1 min 10 s`, `2 h 05 min`."""
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
