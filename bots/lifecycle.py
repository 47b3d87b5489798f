"""Ending sessions when the process is asked to stop: gracefully first, at once the second time.

Docker and process managers send SIGTERM and wait a few seconds before SIGKILL, so the first
signal lets each bot finish the sentence it is saying (bounded by `grace_secs`), lets the
transcript record the session as ended and closes the Gemini socket with a close frame; a second
SIGTERM or SIGINT cancels whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib

from loguru import logger
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.worker import PipelineWorker

FINISH_SPEAKING_SECS = 3.0
"""How long a stopping bot may go on speaking (the model service holds its EndFrame that long)."""
GRACE_SECS = FINISH_SPEAKING_SECS + 3.0
"""After this, a session that has not ended is cancelled."""
_workers: dict[PipelineWorker, asyncio.Event] = {}


def track(worker: PipelineWorker) -> None:
    """Remember a running session so a stop signal can end it."""
    finished = asyncio.Event()
    _workers[worker] = finished

    @worker.event_handler("on_pipeline_finished")
    async def _finished(_worker: PipelineWorker, _frame: object) -> None:
        finished.set()
        _workers.pop(worker, None)


def running() -> int:
    """How many tracked sessions are still running."""
    return len(_workers)


async def _end(worker: PipelineWorker, finished: asyncio.Event, grace_secs: float) -> None:
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
