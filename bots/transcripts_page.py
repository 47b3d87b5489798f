"""`/transcripts`: the sessions the bot recorded, and one session as a timeline.

Server-rendered HTML with inline styles only, so the page works offline and needs no build step:
a list of sessions, and per session the user and bot turns, tool calls with their outcome,
interruptions, session events, and each turn's latency drawn as a bar.

The pages read from whichever store the bot writes to (the transcript folder, or PostgreSQL when
`DATABASE_URL` is set) through `transcripts.backend.TranscriptReader`, so they show the same
sessions either way; a database that cannot be reached is a 503, not a page of no sessions.

The pages read and render whole sessions, which takes hundreds of milliseconds with a few long
sessions stored, so they are rendered on a worker thread: the bot's server shares its event loop
with the audio of the sessions in progress (and a database read blocks).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from stores.postgres import Unavailable
from transcripts import check_session_id
from transcripts.backend import TranscriptReader
from transcripts.reading import NoSuchSession

PAGE_SIZE = 50
"""Sessions listed on one page of `/transcripts`."""
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;
color:#1d2330}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}
td,th{padding:.35rem .6rem;border-bottom:1px solid #e3e6ee;text-align:left}
a{color:#2456c7}.muted{color:#6b7385}.ev{display:grid;grid-template-columns:6.5rem 6rem 1fr;
gap:.6rem;padding:.45rem 0;border-bottom:1px solid #eef0f5}.who{font-weight:600}
.user .who{color:#2456c7}.bot .who{color:#1a7f4b}.tool .who{color:#8a4fd1}
.session .who,.interruption .who{color:#a3551b}.cut{color:#b3261e;font-weight:600}
.bar{height:.55rem;background:#4f7de0;border-radius:.3rem;margin-top:.3rem}
.bar.slow{background:#e0894f}.ok{color:#1a7f4b}.bad{color:#b3261e}
"""


def _time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style><body>{body}</body></html>"
    )


def render_list(store: TranscriptReader, page: int = 1, per_page: int = PAGE_SIZE) -> HTMLResponse:
    """The sessions, newest first, `per_page` to a page."""
    every = list(reversed(store.sessions()))
    pages = max(1, -(-len(every) // per_page))
    page = min(max(1, page), pages)
    rows = []
    for info in every[(page - 1) * per_page : page * per_page]:
        duration = "-" if info.duration_s is None else f"{info.duration_s:.0f} s"
        rows.append(
            f"<tr class=session-row><td><a href='/transcripts/{html.escape(info.session_id)}'>"
            f"{html.escape(info.session_id)}</a></td><td>{_time(info.started_at)}</td>"
            f"<td>{duration}</td><td>{info.user_turns}</td><td>{info.bot_turns}</td></tr>"
        )
    table = (
        "<table><tr><th>session</th><th>started</th><th>duration</th><th>user turns</th>"
        "<th>bot turns</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p class=muted>No sessions recorded yet.</p>"
    )
    links = []
    if page > 1:
        links.append(f"<a rel=prev href='/transcripts?page={page - 1}'>newer</a>")
    if page < pages:
        links.append(f"<a rel=next href='/transcripts?page={page + 1}'>older</a>")
    nav = f"<p class=muted>page {page} of {pages} · {len(every)} sessions {' · '.join(links)}</p>"
    return _page("Transcripts", f"<h1>Transcripts</h1>{table}{nav}")


def _event_row(event: dict[str, Any], started: float, worst_ms: float) -> str:
    kind = event.get("type", "")
    offset = f"+{float(event.get('ts', started)) - started:.1f} s"
    if kind == "user_turn":
        who, text = "You", html.escape(str(event.get("text", "")))
    elif kind == "bot_turn":
        who, text = "Bot", html.escape(str(event.get("text", "")))
        if event.get("interrupted"):
            text += " <span class=cut>(interrupted)</span>"
        latency = event.get("latency_ms")
        if isinstance(latency, int | float):
            width = max(2.0, 100.0 * latency / worst_ms) if worst_ms else 2.0
            slow = " slow" if latency > 1000 else ""
            text += (
                f"<div class='latency muted'>latency {latency:.0f} ms</div>"
                f"<div class='bar{slow}' style='width:{width:.1f}%'"
                f" data-latency-ms='{latency:.0f}'></div>"
            )
    elif kind == "tool_call":
        outcome = str(event.get("outcome", ""))
        css = "ok" if outcome == "ok" else "bad"
        args = html.escape(json.dumps(event.get("arguments", {}), ensure_ascii=False))
        who = "Tool"
        text = (
            f"<b>{html.escape(str(event.get('name', '')))}</b>({args}) → "
            f"<span class='outcome {css}'>{html.escape(outcome)}</span>"
            f" <span class=muted>{float(event.get('duration_ms', 0)):.0f} ms</span>"
        )
    elif kind == "interruption":
        who, text = "Cut off", f"the user interrupted bot turn {event.get('bot_turn')}"
    else:
        who = "Session"
        detail = html.escape(str(event.get("detail", "")))
        text = f"{html.escape(str(event.get('event', '')))} <span class=muted>{detail}</span>"
    css_kind = {"user_turn": "user", "bot_turn": "bot", "tool_call": "tool"}.get(kind, kind)
    return (
        f"<div class='ev {css_kind}'><span class=muted>{offset}</span>"
        f"<span class=who>{who}</span><span class=text>{text}</span></div>"
    )


def render_session(store: TranscriptReader, session_id: str) -> HTMLResponse:
    """One session as a timeline."""
    try:
        transcript = store.load(check_session_id(session_id))
    except (ValueError, NoSuchSession):
        raise HTTPException(status_code=404, detail="No such session.") from None
    started = transcript.started_at or 0.0
    latencies = transcript.latencies_ms
    worst = max(latencies, default=0.0)
    rows = "".join(_event_row(e, started, worst) for e in transcript.events)
    summary = (
        f"<p class=muted>started {_time(transcript.started_at)} · "
        f"{len(transcript.user_turns)} user turns · {len(transcript.bot_turns)} bot turns · "
        f"{len(transcript.tool_calls)} tool calls"
        + (
            f" · median latency {sorted(latencies)[len(latencies) // 2]:.0f} ms"
            if latencies
            else ""
        )
        + "</p>"
    )
    body = (
        f"<p><a href='/transcripts'>← all sessions</a></p>"
        f"<h1>Session {html.escape(session_id)}</h1>{summary}<div id=timeline>{rows}</div>"
    )
    return _page(f"Session {session_id}", body)


_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcript-pages")
"""One page at a time: each thread rendering competes with the event loop for the GIL, so more
would stretch the loop's wall-clock lag, not answer sooner on two cores."""


async def _rendered(
    render: Callable[..., HTMLResponse], store: Callable[[], TranscriptReader], *args: Any
) -> HTMLResponse:
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _RENDERER, lambda: render(store(), *args)
        )
    except Unavailable:
        # Not an empty list: the sessions are there, the database is not (for now).
        raise HTTPException(
            status_code=503,
            detail="The transcript database cannot be reached. Try again in a moment.",
            headers={"Retry-After": "5"},
        ) from None


def transcripts_router(
    store: TranscriptReader | Callable[[], TranscriptReader],
    *,
    require: Callable[..., Awaitable[None]] | None = None,
) -> APIRouter:
    """Routes for the bot's server, reading the transcripts' store from the settings (the
    folder's `transcripts.TranscriptStore`, or `transcripts.postgres.PostgresTranscriptStore`).

    `store` may be a function that opens it, called on the worker thread for each page: a
    database down when the server starts then answers the pages with a 503 until it is back,
    rather than keeping the server from starting.

    `require` is a FastAPI dependency every page runs first (the operator's token check).
    """
    router = APIRouter(dependencies=[Depends(require)] if require is not None else [])
    opened: Callable[[], TranscriptReader] = store if callable(store) else lambda: store

    @router.get("/transcripts", response_class=HTMLResponse)
    async def sessions(page: int = Query(1, ge=1, le=1_000_000)) -> HTMLResponse:
        return await _rendered(render_list, opened, page)

    @router.get("/transcripts/{session_id}", response_class=HTMLResponse)
    async def session(session_id: str) -> HTMLResponse:
        return await _rendered(render_session, opened, session_id)

    return router
