"""Ending sessions when the process is asked to stop: moved, then ended, at once the second time.

Docker, Kubernetes and process managers send SIGTERM and wait before SIGKILL. The first signal
asks each session's client to move (`move_all`): once the bot has finished what it is saying and
the conversation's latest resumption handle is stored, the page gets an RTVI server message
`{"type": "session-moving"}`, leaves, and starts again on another replica, which resumes the
conversation. A client that does not move within the drain period is ended as before
(`end_all`): the bot finishes its sentence (bounded by `grace_secs`), the transcript records the
end and the Gemini socket closes with a close frame. A second SIGTERM or SIGINT cancels
whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from loguru import logger
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frameworks.rtvi.frames import RTVIServerMessageFrame

FINISH_SPEAKING_SECS = 3.0
"""How long a stopping bot may go on speaking (the model service holds its EndFrame that long)."""
GRACE_SECS = FINISH_SPEAKING_SECS + 3.0
"""After this, a session that has not ended is cancelled."""
MOVE_SECS = 15.0
"""How long a draining process waits for its clients to move before it ends their sessions."""
MOVING = "session-moving"
"""The RTVI server message type that tells a page to reconnect elsewhere."""


@dataclass
class _Session:
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    conversation: str | None = None
    ready_to_move: Callable[[], Awaitable[None]] | None = None


_workers: dict[PipelineWorker, _Session] = {}


def track(
    worker: PipelineWorker,
    *,
    conversation: str | None = None,
    ready_to_move: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Remember a running session so a stop signal can move or end it.

    Args:
        worker: The session's worker.
        conversation: Its conversation id; a session without one is not moved, only ended.
        ready_to_move: Waits until the client can leave without losing anything (the bot's
            answer finished, the handle that covers it stored); bounded by the caller.
    """
    session = _Session(conversation=conversation, ready_to_move=ready_to_move)
    _workers[worker] = session

    @worker.event_handler("on_pipeline_finished")
    async def _finished(_worker: PipelineWorker, _frame: object) -> None:
        session.finished.set()
        _workers.pop(worker, None)


def running() -> int:
    """How many tracked sessions are still running."""
    return len(_workers)


async def _move(worker: PipelineWorker, session: _Session, within: float) -> None:
    try:
        if session.ready_to_move is not None:
            await asyncio.wait_for(session.ready_to_move(), within / 2)
    except TimeoutError:
        logger.warning(f"{worker}: not at a turn boundary in time; asking its client to move")
    except Exception as exc:
        logger.warning(f"{worker}: could not prepare the move ({exc}); asking all the same")
    message = {
        "type": MOVING,
        "conversation_id": session.conversation,
        "message": "This server is restarting; moving your conversation to another one.",
    }
    await worker.queue_frame(RTVIServerMessageFrame(data=message))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.finished.wait(), within)


async def move_all(within: float = MOVE_SECS) -> int:
    """Ask every client with a conversation to move; wait up to `within` for them to leave.

    Returns how many sessions are still running after it (they are for `end_all`).
    """
    movable = [(w, s) for w, s in _workers.items() if s.conversation is not None]
    if movable:
        logger.info(f"stopping: asking {len(movable)} client(s) to move to another replica")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        await asyncio.gather(*(_move(w, s, max(0.1, deadline - loop.time())) for w, s in movable))
    return running()


async def _end(worker: PipelineWorker, session: _Session, grace_secs: float) -> None:
    finished = session.finished

    async def end_and_wait() -> None:
        # An EndFrame, not `worker.end()`: in Pipecat 1.14 that asks the runner to end, which
        # cancels the pipeline; the EndFrame lets the model service finish its turn first.
        await worker.queue_frame(EndFrame(reason="the server is stopping"))
        await finished.wait()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(end_and_wait(), grace_secs)
    if not finished.is_set():
        logger.warning(f"{worker}: did not end within {grace_secs:.0f} s; cancelling it")
        with contextlib.suppress(Exception):
            await worker.cancel(reason="the server is stopping")


async def end_all(grace_secs: float = GRACE_SECS) -> None:
    """End every tracked session gracefully, cancelling those that take longer than the grace."""
    workers = list(_workers.items())
    if workers:
        logger.info(f"stopping: ending {len(workers)} session(s) gracefully")
    await asyncio.gather(*(_end(w, done, grace_secs) for w, done in workers))


async def cancel_all() -> None:
    """Cancel every tracked session now (the second stop signal)."""
    await asyncio.gather(
        *(w.cancel(reason="stopped") for w in list(_workers)), return_exceptions=True
    )
