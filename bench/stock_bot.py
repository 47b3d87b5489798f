"""The baseline of `bench.load`: a bot made only of stock Pipecat, as Pipecat's examples make one.

Pipecat's own `GeminiLiveLLMService` (no supervisor, no tools, none of our processors, observers
or RTVI subclass) between the same SmallWebRTC transport and aggregators, with the same settings
(model, voice, system instruction, endpoint) and pipeline parameters as the assistant. What the
assistant costs beyond this is what our code costs.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipecat.frames.frames import LLMRunFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.transports.base_transport import BaseTransport
from pipecat.workers.runner import WorkerRunner

from bots.assistant import transport_params
from bots.gemini_live.config import make_llm
from bots.pipeline import pipeline_params
from bots.settings import load_settings


async def bot(runner_args: RunnerArguments, *, observers: Sequence[BaseObserver] = ()) -> None:
    """Entry point for the runner: one stock session, until the client leaves.

    ``observers`` only watch (a benchmark's timing); the pipeline is stock either way.
    """
    settings = load_settings()
    transport = await create_transport(runner_args, transport_params(vision=False))
    llm = make_llm(settings, service_class=GeminiLiveLLMService)
    aggregators = LLMContextAggregatorPair(LLMContext())
    pipeline = Pipeline(
        [
            transport.input(),
            aggregators.user(),
            llm,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=pipeline_params(),
        observers=list(observers),
        idle_timeout_secs=runner_args.pipeline_idle_timeout_secs,
    )

    @transport.event_handler("on_client_connected")
    async def _on_connected(_transport: BaseTransport, _client: object) -> None:
        await worker.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def _on_disconnected(_transport: BaseTransport, _client: object) -> None:
        await worker.cancel(reason="client disconnected")

    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.add_workers(worker)
    await runner.run()
