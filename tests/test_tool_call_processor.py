"""The tool-call processor: frames in, exact frames out; then the whole path through the emulator.

Calls are made by `ScriptedLLM`, an `LLMService` whose "model" is a frame: Pipecat's own
function-call machinery (`run_function_calls`, the broadcast of `FunctionCallsStartedFrame`,
`FunctionCallInProgressFrame`, `FunctionCallResultFrame` and `FunctionCallCancelFrame`, the
cancellation on `InterruptionFrame`) runs the registry's wrapped tools exactly as it does under
Gemini Live. The last tests put the real Gemini Live services in front of the emulator.

Nothing sleeps between the frames sent: `frame_runner.WaitFor` waits until what the test needs
to have happened has come out of the pipeline (a call announced, a frame passed on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from emulator_helpers import post, wait_session
from frame_runner import WaitFor, run_frames
from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.frames.frames import (
    DataFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
    FunctionCallsStartedFrame,
    InputTextRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMContextUserTurnFrame,
    LLMRunFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    StartFrame,
    TextFrame,
    UserTurnInferenceCompletedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.frames import RTVISendTextFrame, RTVIServerMessageFrame
from pipecat.processors.frameworks.rtvi.observer import RTVIFunctionCallReportLevel
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService, GeminiModalities
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.services.settings import LLMSettings
from pipecat.tests.utils import run_test
from pipecat.workers.runner import WorkerRunner

from bots.gemini_live.service import GeminiLiveStage
from bots.tools import calculate
from emulator.client import http_options
from emulator.server import Running
from processors.frames import ToolCallEvent, ToolCallEventFrame, ToolOutcome
from processors.tool_calls import TOOL_ACTIVITY, ToolCallProcessor, report_levels
from toolcalls import ToolRegistry

pytestmark = pytest.mark.unit

# --- a Pipecat LLM service whose "model" is a frame ---------------------------------------


@dataclass
class ModelCallsFrame(DataFrame):
    """The model asks for a function call (as Gemini's ``toolCall`` message does)."""

    tool: str = ""
    call_id: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelCancelsFrame(DataFrame):
    """The model cancels a call (Gemini's ``toolCallCancellation``), handled by the registry."""

    call_id: str = ""


@dataclass
class CallOutsidePipecatFrame(DataFrame):
    """Run a wrapped tool directly, so no Pipecat frame ever settles the call."""

    tool: str = ""
    call_id: str = ""


SCRIPTED_SETTINGS = LLMSettings(
    model="scripted",
    system_instruction=None,
    temperature=None,
    max_tokens=None,
    top_p=None,
    top_k=None,
    frequency_penalty=None,
    presence_penalty=None,
    seed=None,
    filter_incomplete_user_turns=False,
    user_turn_completion_config=None,
)


class ScriptedLLM(LLMService):
    """Pipecat's function calling, driven by frames instead of a model."""

    def __init__(self, registry: ToolRegistry, tools: Sequence[Any]) -> None:
        super().__init__(settings=SCRIPTED_SETTINGS)
        self._registry = registry
        self._tools = {tool.__name__: tool for tool in tools}
        self._context = LLMContext(tools=list(tools))

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            # The context carries the tools; Pipecat registers their handlers from it.
            await self.queue_frame(LLMContextFrame(context=self._context))
        elif isinstance(frame, LLMContextFrame):
            pass  # a model takes its context in; nothing goes on
        elif isinstance(frame, ModelCallsFrame):
            await self.run_function_calls(
                [FunctionCallFromLLM(frame.tool, frame.call_id, frame.arguments, self._context)]
            )
        elif isinstance(frame, ModelCancelsFrame):
            self._registry.cancel(frame.call_id, by_model=True)
        elif isinstance(frame, CallOutsidePipecatFrame):

            async def nowhere(result: Any, *, properties: Any = None) -> None:
                pass

            params = FunctionCallParams(
                function_name=frame.tool,
                tool_call_id=frame.call_id,
                arguments={},
                llm=self,
                pipeline_worker=self.pipeline_worker,
                context=self._context,
                result_callback=nowhere,
            )
            await self._tools[frame.tool](params)
        else:
            await self.push_frame(frame, direction)


# --- tools -------------------------------------------------------------------------------


async def get_stock_price(params: FunctionCallParams, symbol: str) -> None:
    """Get the price of a stock.

    Args:
        symbol: The ticker symbol.
    """
    await asyncio.Event().wait()


async def get_balance(params: FunctionCallParams) -> None:
    """Get the account balance."""
    raise RuntimeError("secret-token-123")


async def ping(params: FunctionCallParams) -> None:
    """Check the connection."""
    await params.result_callback({"pong": True})


@tool_options(cancel_on_interruption=False)
async def download_report(params: FunctionCallParams, name: str) -> None:
    """Download a report, reporting progress.

    Args:
        name: The report.
    """
    await params.result_callback(
        {"progress": 50}, properties=FunctionCallResultProperties(is_final=False)
    )
    await params.result_callback({"report": name})


def registry_with_tools() -> tuple[ToolRegistry, list[Any]]:
    registry = ToolRegistry(timeout_secs=0.05)
    tools = [
        registry.wrap(calculate, show_arguments=True, timeout_secs=2),
        registry.wrap(get_stock_price),
        registry.wrap(get_balance),
        registry.wrap(ping, timeout_secs=2),
        registry.wrap(download_report, timeout_secs=2),
    ]
    return registry, tools


def scripted(**options: Any) -> tuple[ToolRegistry, Pipeline]:
    registry, tools = registry_with_tools()
    return registry, Pipeline(
        [ScriptedLLM(registry, tools), ToolCallProcessor(registry, **options)]
    )


def activity(frame: Frame) -> dict[str, Any]:
    assert isinstance(frame, RTVIServerMessageFrame), frame
    assert frame.data["type"] == TOOL_ACTIVITY
    return frame.data


def event_of(frame: Frame) -> ToolCallEvent:
    assert isinstance(frame, ToolCallEventFrame) and frame.event is not None, frame
    return frame.event


def finished(frames: Sequence[Frame]) -> list[tuple[str, str, str | None]]:
    """(name, outcome, error) of every ToolCallEventFrame, in order."""
    return [
        (e.name, str(e.outcome), e.error)
        for e in (event_of(f) for f in frames if isinstance(f, ToolCallEventFrame))
    ]


def without_metadata(frames: Sequence[Frame]) -> list[Frame]:
    """Drop what any LLMService announces about itself and its turns (not about tools)."""
    return [
        f
        for f in frames
        if not isinstance(f, (LLMServiceMetadataFrame, UserTurnInferenceCompletedFrame))
    ]


async def downstream(pipeline: Pipeline, *frames: Frame | WaitFor) -> list[Frame]:
    """Send the frames (and waits) in order; what came out downstream, less the LLM's metadata."""
    down, _ = await run_frames(pipeline, frames_to_send=list(frames))
    return without_metadata(down)


def one_call(*settled_by: type[Frame]) -> list[type[Frame]]:
    """The frames one call sends downstream, in order: Pipecat's announcements, our start
    message, the frames that settled the call, then our event and our end message."""
    return [
        FunctionCallsStartedFrame,
        FunctionCallInProgressFrame,
        RTVIServerMessageFrame,
        *settled_by,
        ToolCallEventFrame,
        RTVIServerMessageFrame,
    ]


def calls_ended(count: int, *, within: float = 10.0) -> WaitFor:
    """Wait until ``count`` calls have been announced as ended (in the browser's messages)."""

    def announced(down: list[Frame]) -> bool:
        return (
            sum(
                isinstance(f, RTVIServerMessageFrame) and f.data.get("status") != "started"
                for f in down
            )
            >= count
        )

    return WaitFor(announced, f"{count} call(s) announced as ended", within)


def running(registry: ToolRegistry) -> WaitFor:
    """Wait until a call of the registry's is running."""
    return WaitFor(lambda _down: registry.running(), "the call to run")


def passed_on(frame: Frame) -> WaitFor:
    """Wait until ``frame`` has come out of the pipeline."""
    return WaitFor(lambda down: frame in down, f"the {type(frame).__name__} to pass")


# --- pass-through ------------------------------------------------------------------------


async def test_frames_that_are_not_about_tools_pass_through_in_both_directions() -> None:
    registry, _ = registry_with_tools()
    down = [
        TextFrame(text="hello"),
        FunctionCallResultFrame(
            function_name="unknown_tool", tool_call_id="x", arguments={}, result={"a": 1}
        ),
    ]
    received, _ = await run_test(
        ToolCallProcessor(registry),
        frames_to_send=down,
        expected_down_frames=[TextFrame, FunctionCallResultFrame],
    )
    assert received == down
    up = [FunctionCallCancelFrame("ping", "y"), TextFrame(text="upstream")]
    _, received_up = await run_test(
        ToolCallProcessor(registry),
        frames_to_send=up,
        frames_to_send_direction=FrameDirection.UPSTREAM,
        expected_down_frames=[],
        expected_up_frames=[FunctionCallCancelFrame, TextFrame],
    )
    assert received_up == up


async def test_calls_of_tools_the_registry_does_not_own_get_no_tool_activity() -> None:
    registry = ToolRegistry()
    frames = [
        FunctionCallInProgressFrame(function_name="other", tool_call_id="o1", arguments={}),
        FunctionCallResultFrame(function_name="other", tool_call_id="o1", arguments={}, result=1),
    ]
    received, _ = await run_test(
        ToolCallProcessor(registry),
        frames_to_send=frames,
        expected_down_frames=[FunctionCallInProgressFrame, FunctionCallResultFrame],
    )
    assert received == frames


# --- one call, start to end --------------------------------------------------------------


async def test_a_successful_call_is_announced_when_it_starts_and_when_it_ends() -> None:
    _, pipeline = scripted()
    down, up = await run_frames(
        pipeline,
        frames_to_send=[
            ModelCallsFrame("calculate", "c1", {"expression": "6 * 7"}),
            calls_ended(1),
        ],
    )
    down = without_metadata(down)
    assert [type(f) for f in down] == one_call(FunctionCallResultFrame)
    assert activity(down[2]) == {
        "type": "tool-activity",
        "tool_call_id": "c1",
        "name": "calculate",
        "status": "started",
        "arguments": {"expression": "6 * 7"},
    }
    assert isinstance(down[3], FunctionCallResultFrame)
    assert down[3].result == {"expression": "6 * 7", "result": 42}
    event = event_of(down[4])
    assert (event.name, event.call_id, event.outcome) == ("calculate", "c1", ToolOutcome.OK)
    assert event.arguments == {"expression": "6 * 7"}
    assert event.result == {"expression": "6 * 7", "result": 42}
    ended = activity(down[5])
    assert ended == {
        "type": "tool-activity",
        "tool_call_id": "c1",
        "name": "calculate",
        "status": "ok",
        "duration_ms": round(event.duration_ms, 1),
        "arguments": {"expression": "6 * 7"},
    }
    # Only Pipecat's broadcast copies go upstream; this processor adds nothing there.
    assert [type(f) for f in without_metadata(up)] == [
        FunctionCallsStartedFrame,
        FunctionCallInProgressFrame,
        FunctionCallResultFrame,
    ]


async def test_arguments_stay_out_of_the_browser_unless_the_tool_is_marked_safe() -> None:
    _, pipeline = scripted()
    down, _ = await run_frames(
        pipeline, frames_to_send=[ModelCallsFrame("ping", "p1", {}), calls_ended(1)]
    )
    messages = [activity(f) for f in down if isinstance(f, RTVIServerMessageFrame)]
    assert [m["status"] for m in messages] == ["started", "ok"]
    assert all("arguments" not in m for m in messages)


@pytest.mark.parametrize(
    ("call", "status", "error"),
    [
        (
            ModelCallsFrame("get_stock_price", "s1", {"symbol": "ACME"}),
            "timed_out",
            "The tool get_stock_price timed out after 0.05 s.",
        ),
        (ModelCallsFrame("get_balance", "b1", {}), "failed", "The tool get_balance failed."),
        (
            ModelCallsFrame("calculate", "c2", {"expr": "1+1"}),
            "invalid_arguments",
            "Invalid arguments for calculate: 'expression' is a required property",
        ),
    ],
    ids=["timed-out", "failed", "invalid-arguments"],
)
async def test_a_call_that_goes_wrong_is_answered_and_announced_with_how_it_ended(
    call: ModelCallsFrame, status: str, error: str
) -> None:
    _, pipeline = scripted()
    down = await downstream(pipeline, call, calls_ended(1))
    assert [type(f) for f in down] == one_call(FunctionCallResultFrame)
    result = down[3]
    assert isinstance(result, FunctionCallResultFrame)
    assert result.result == {"error": error}
    assert result.error is None  # the handler did not raise: the registry answered
    assert "secret-token-123" not in repr(result.result)
    assert finished(down) == [(call.tool, status, error)]
    assert activity(down[5])["status"] == status
    assert activity(down[5])["tool_call_id"] == call.call_id


def hanging() -> tuple[ToolRegistry, Pipeline]:
    """A pipeline whose only tool hangs, with a deadline far beyond the test."""
    registry = ToolRegistry(timeout_secs=5)
    tool = registry.wrap(get_stock_price)
    return registry, Pipeline([ScriptedLLM(registry, [tool]), ToolCallProcessor(registry)])


async def test_a_call_cancelled_by_an_interruption_is_announced_after_pipecat_cancels_it() -> None:
    registry, pipeline = hanging()
    interruption = InterruptionFrame()
    down = await downstream(
        pipeline,
        ModelCallsFrame("get_stock_price", "s2", {"symbol": "ACME"}),
        running(registry),
        interruption,
        calls_ended(1),
        passed_on(interruption),
    )
    assert [type(f) for f in down] == [*one_call(FunctionCallCancelFrame), InterruptionFrame]
    assert finished(down) == [("get_stock_price", "cancelled_by_interruption", "cancelled")]
    assert activity(down[5])["status"] == "cancelled_by_interruption"
    assert registry.running() == []


async def test_a_call_cancelled_by_the_model_is_answered_once_and_announced() -> None:
    registry, pipeline = hanging()
    down = await downstream(
        pipeline,
        ModelCallsFrame("get_stock_price", "s3", {"symbol": "ACME"}),
        running(registry),
        ModelCancelsFrame("s3"),
        calls_ended(1),
    )
    assert [type(f) for f in down] == one_call(FunctionCallResultFrame)
    result = down[3]
    assert isinstance(result, FunctionCallResultFrame)
    assert result.result == {"error": "cancelled"}
    assert finished(down) == [("get_stock_price", "cancelled_by_model", "cancelled")]
    assert activity(down[5])["status"] == "cancelled_by_model"
    assert registry.running() == []


async def test_a_non_blocking_tools_progress_passes_and_it_is_announced_once_at_the_end() -> None:
    _, pipeline = scripted()
    down = await downstream(
        pipeline, ModelCallsFrame("download_report", "d1", {"name": "q3"}), calls_ended(1)
    )
    assert [type(f) for f in down] == one_call(FunctionCallResultFrame, FunctionCallResultFrame)
    progress, final = down[3], down[4]
    assert isinstance(progress, FunctionCallResultFrame)
    assert isinstance(final, FunctionCallResultFrame)
    assert progress.result == {"progress": 50}
    assert progress.properties is not None and progress.properties.is_final is False
    assert final.result == {"report": "q3"}
    assert finished(down) == [("download_report", "ok", None)]


async def test_a_call_pipecat_cancels_before_the_registry_runs_it_is_still_announced() -> None:
    registry, _ = registry_with_tools()
    in_progress = FunctionCallInProgressFrame(
        function_name="calculate", tool_call_id="c9", arguments={"expression": "1"}
    )
    cancel = FunctionCallCancelFrame(function_name="calculate", tool_call_id="c9")
    started = WaitFor(
        lambda down: any(isinstance(f, RTVIServerMessageFrame) for f in down), "the start"
    )
    down, _ = await run_frames(
        ToolCallProcessor(registry),
        frames_to_send=[in_progress, started, cancel],
        expected_down_frames=[
            FunctionCallInProgressFrame,
            RTVIServerMessageFrame,
            FunctionCallCancelFrame,
            ToolCallEventFrame,
            RTVIServerMessageFrame,
        ],
    )
    event = event_of(down[3])
    assert (event.name, event.call_id, event.arguments) == ("calculate", "c9", {"expression": "1"})
    assert event.outcome is ToolOutcome.CANCELLED_BY_INTERRUPTION
    assert activity(down[4])["status"] == "cancelled_by_interruption"
    assert activity(down[4])["duration_ms"] >= 0


# --- turns and loops ---------------------------------------------------------------------


def four_pings(between: Frame | None) -> list[Frame | WaitFor]:
    """Four identical calls, each announced before the next; ``between`` before the last."""
    frames: list[Frame | WaitFor] = []
    for i in range(4):
        if i == 3 and between is not None:
            frames += [between, passed_on(between)]
        frames += [ModelCallsFrame("ping", f"p{i}", {}), calls_ended(i + 1)]
    return frames


async def test_the_fourth_identical_call_in_one_turn_is_refused_and_announced() -> None:
    _, pipeline = scripted()
    down, _ = await run_frames(pipeline, frames_to_send=four_pings(None))
    outcomes = [outcome for _, outcome, _ in finished(down)]
    assert outcomes == ["ok", "ok", "ok", "refused_repeat"]
    results = [f.result for f in down if isinstance(f, FunctionCallResultFrame)]
    assert results[-1]["error"].startswith("Refusing to repeat ping")


@pytest.mark.parametrize(
    "turn_frame",
    [
        LLMContextUserTurnFrame(text="ping again", timestamp="2026-01-01T00:00:00Z"),
        InterruptionFrame(),
        RTVISendTextFrame(msg_id="m1", text="ping again"),
        InputTextRawFrame(text="ping again"),
    ],
    ids=lambda f: type(f).__name__,
)
async def test_a_new_user_turn_lets_the_same_call_run_again(turn_frame: Frame) -> None:
    _, pipeline = scripted()
    down, _ = await run_frames(pipeline, frames_to_send=four_pings(turn_frame))
    assert [outcome for _, outcome, _ in finished(down)] == ["ok", "ok", "ok", "ok"]
    assert turn_frame in down  # passed on, not consumed


# --- announcing without a settling frame -------------------------------------------------


async def test_a_call_no_pipecat_frame_settles_is_announced_after_the_grace_period() -> None:
    _, pipeline = scripted(settle_grace_secs=0.02)
    # Announced within 5 s, or the wait fails (the grace is 0.02 s).
    down = await downstream(
        pipeline, CallOutsidePipecatFrame("ping", "q1"), calls_ended(1, within=5)
    )
    assert [type(f) for f in down] == [ToolCallEventFrame, RTVIServerMessageFrame]
    assert finished(down) == [("ping", "ok", None)]


async def test_pending_announcements_are_flushed_before_the_end_frame() -> None:
    _, pipeline = scripted(settle_grace_secs=60)
    down, _ = await run_test(pipeline, frames_to_send=[CallOutsidePipecatFrame("ping", "q2")])
    assert [type(f) for f in without_metadata(down)] == [ToolCallEventFrame, RTVIServerMessageFrame]


async def test_the_processor_stops_listening_when_it_is_cleaned_up() -> None:
    registry = ToolRegistry()
    processor = ToolCallProcessor(registry)
    assert len(registry.listeners) == 1
    await run_test(processor, frames_to_send=[])
    assert registry.listeners == ()


# --- end to end: the real Gemini Live service and the emulator ---------------------------


class Collector(FrameProcessor):
    """Keeps every downstream frame that reaches it (audio aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
        await self.push_frame(frame, direction)


@dataclass
class Live:
    """A running [user aggregator, Gemini Live, ToolCallProcessor, collector, assistant]."""

    worker: PipelineWorker
    collector: Collector
    task: asyncio.Task[None]

    async def stop(self) -> None:
        await self.worker.cancel()
        await asyncio.wait_for(self.task, 10)


async def live_pipeline(
    r: Running,
    registry: ToolRegistry,
    tools: list[Any],
    *,
    model: str = "models/gemini-3.1-flash-live-preview",
    service_class: type[GeminiLiveLLMService] = GeminiLiveLLMService,
) -> Live:
    llm = service_class(
        api_key="k",
        http_options=http_options(r.base_url, r.certs.ca),
        settings=GeminiLiveLLMService.Settings(model=model, modalities=GeminiModalities.TEXT),
        tools=tools,
    )
    aggregators = LLMContextAggregatorPair(LLMContext())
    collector = Collector()
    pipeline = Pipeline(
        [aggregators.user(), llm, ToolCallProcessor(registry), collector, aggregators.assistant()]
    )
    worker = PipelineWorker(
        pipeline, params=PipelineParams(), enable_rtvi=False, idle_timeout_secs=None
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    await worker.queue_frame(LLMRunFrame())  # the service connects and seeds on its first run
    await wait_session(r, lambda s: s["open"] and s["config"] is not None, within=10)
    return Live(worker, collector, task)


def tool_calls_of(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return summary["tool_calls"]


@pytest.mark.emulator
async def test_a_hanging_tool_times_out_through_gemini_live_and_the_next_question_is_answered(
    emulator: Running,
) -> None:
    registry = ToolRegistry(timeout_secs=0.2)
    hang = asyncio.Event()

    async def get_current_time(params: FunctionCallParams, place: str) -> None:
        """Get the current time in a city.

        Args:
            place: A city name such as "Tokyo".
        """
        await hang.wait()

    live = await live_pipeline(emulator, registry, [registry.wrap(get_current_time)])
    try:
        await live.worker.queue_frame(InputTextRawFrame(text="What time is it in Tokyo?"))
        summary = await wait_session(
            emulator,
            lambda s: any(c["status"] == "answered" for c in s["tool_calls"]),
            within=10,
        )
        (call,) = tool_calls_of(summary)
        assert (call["name"], call["args"], call["blocking"]) == (
            "get_current_time",
            {"place": "Tokyo"},
            True,
        )
        assert [r["response"] for r in call["responses"]] == [
            {"error": "The tool get_current_time timed out after 0.2 s."}
        ]
        await live.worker.queue_frame(InputTextRawFrame(text="What is 12 times 7?"))
        summary = await wait_session(
            emulator,
            lambda s: s["history"] and s["history"][-1]["text"] == "12 times 7 is 84.",
            within=10,
        )
        assert [t["role"] for t in summary["history"]] == ["user", "model", "user", "model"]
    finally:
        await live.stop()
    frames = live.collector.frames
    assert finished(frames) == [
        (
            "get_current_time",
            "timed_out",
            "The tool get_current_time timed out after 0.2 s.",
        )
    ]
    messages = [activity(f) for f in frames if isinstance(f, RTVIServerMessageFrame)]
    assert [(m["tool_call_id"], m["status"]) for m in messages] == [
        (call["id"], "started"),
        (call["id"], "timed_out"),
    ]
    assert any(isinstance(f, LLMTextFrame) and "84" in f.text for f in frames)


@pytest.mark.emulator
@pytest.mark.parametrize(
    ("service_class", "expected"),
    [
        (
            GeminiLiveStage,
            {
                "notify_interrupt": (False, "INTERRUPT"),
                "notify_when_idle": (False, "WHEN_IDLE"),
                "notify_silent": (False, "SILENT"),
            },
        ),
        # What Pipecat 1.14 does alone: the tools are declared before their handlers are
        # registered, so they run blocking, and INTERRUPT is written over with WHEN_IDLE.
        (
            GeminiLiveLLMService,
            {
                "notify_interrupt": (True, "WHEN_IDLE"),
                "notify_when_idle": (True, "WHEN_IDLE"),
                "notify_silent": (True, "SILENT"),
            },
        ),
    ],
    ids=["GeminiLiveStage", "pipecat-alone"],
)
async def test_non_blocking_results_reach_gemini_with_the_scheduling_each_tool_asks_for(
    emulator: Running,
    service_class: type[GeminiLiveLLMService],
    expected: dict[str, tuple[bool, str]],
) -> None:
    registry = ToolRegistry(timeout_secs=2)
    tools = []
    for scheduling in ("INTERRUPT", "WHEN_IDLE", "SILENT"):

        @tool_options(cancel_on_interruption=False)
        async def notify(params: FunctionCallParams) -> None:
            """Send a notification."""
            await params.result_callback({"sent": True})

        notify.__name__ = notify.__qualname__ = f"notify_{scheduling.lower()}"
        tools.append(registry.wrap(notify, scheduling=scheduling))  # type: ignore[arg-type]
    live = await live_pipeline(
        emulator,
        registry,
        tools,
        model="models/gemini-2.5-flash-native-audio-preview-12-2025",
        service_class=service_class,
    )
    try:
        session = await wait_session(emulator, lambda s: s["open"])
        for tool in tools:
            response = await post(
                emulator, f"/emulator/sessions/{session['id']}/tool_call", {"name": tool.__name__}
            )
            assert response.status_code == 200, response.text
        summary = await wait_session(
            emulator,
            lambda s: (
                len(s["tool_calls"]) == 3
                and all(c["status"] == "answered" for c in s["tool_calls"])
            ),
            within=10,
        )
    finally:
        await live.stop()
    answered = {
        c["name"]: (c["blocking"], c["responses"][-1]["scheduling"]) for c in tool_calls_of(summary)
    }
    assert answered == expected
    assert [o for _, o, _ in finished(live.collector.frames)] == ["ok", "ok", "ok"]


def test_pipecats_report_level_shows_arguments_only_for_tools_marked_safe() -> None:
    registry, _ = registry_with_tools()
    assert report_levels(registry) == {
        "*": RTVIFunctionCallReportLevel.NAME,
        "calculate": RTVIFunctionCallReportLevel.ARGUMENTS,
    }
    assert report_levels(registry, RTVIFunctionCallReportLevel.NONE)["*"] == (
        RTVIFunctionCallReportLevel.NONE
    )
