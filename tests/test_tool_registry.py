"""The tool registry: every call validated, bounded, answered exactly once, and recorded.

The wrapped functions are called the way Pipecat's `LLMService` calls a direct function (see
`testkit.tool_calls`), with a `result_callback` that records what the model would be sent.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper, tool_options
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.services.llm_service import FunctionCallParams

from bots.gemini_live.config import adapt_tools
from bots.tools import NotesStore, assistant_tools, calculate
from processors.frames import ToolCallEvent, ToolOutcome
from testkit.tool_calls import Call, call_like_pipecat, start_call
from toolcalls import BACKSTOP_GRACE_SECS, CANCELLED_RESULT, RunningCall, ToolRegistry

pytestmark = pytest.mark.unit


@pytest.fixture
def events() -> list[ToolCallEvent]:
    return []


@pytest.fixture
def registry(events: list[ToolCallEvent]) -> ToolRegistry:
    reg = ToolRegistry(timeout_secs=5.0)
    reg.add_listener(events.append)
    return reg


class Counter:
    """A tool that counts its calls and reports its arguments back."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_forecast(
        self, params: FunctionCallParams, city: str, days: int = 1, metric: bool = False
    ) -> None:
        """Get the weather forecast for a city.

        Args:
            city: The city.
            days: How many days ahead.
            metric: Whether to use Celsius.
        """
        self.calls += 1
        await params.result_callback({"city": city, "days": days, "metric": metric})


def forecast_tool(registry: ToolRegistry, counter: Counter, **options: Any) -> Any:
    async def get_forecast(
        params: FunctionCallParams, city: str, days: int = 1, metric: bool = False
    ) -> None:
        """Get the weather forecast for a city.

        Args:
            city: The city.
            days: How many days ahead.
            metric: Whether to use Celsius.
        """
        await counter.get_forecast(params, city, days, metric)

    return registry.wrap(get_forecast, **options)


# --- what Pipecat sees -------------------------------------------------------------------


def test_pipecat_derives_the_same_schema_from_every_wrapped_bot_tool(tmp_path: Path) -> None:
    with NotesStore(tmp_path / "notes.sqlite") as store:
        tools = assistant_tools(store, "ana")
        registry = ToolRegistry(timeout_secs=10)
        for tool in tools:
            wrapped = registry.wrap(tool)
            assert wrapped.__name__ == tool.__name__
            assert wrapped.__doc__ == tool.__doc__
            assert inspect.signature(wrapped) == inspect.signature(tool)
            assert inspect.iscoroutinefunction(wrapped)
            assert (
                DirectFunctionWrapper(wrapped).to_function_schema().to_default_dict()
                == DirectFunctionWrapper(tool).to_function_schema().to_default_dict()
            )


def test_a_non_blocking_tool_stays_non_blocking_for_pipecat(tmp_path: Path) -> None:
    with NotesStore(tmp_path / "notes.sqlite") as store:
        remember_note = next(
            t for t in assistant_tools(store, "ana") if t.__name__ == "remember_note"
        )
        wrapped = ToolRegistry().wrap(remember_note, scheduling="SILENT")
        assert wrapped._pipecat_cancel_on_interruption is False  # type: ignore[attr-defined]


async def test_a_wrapped_tool_still_works_when_the_bot_runs_it_as_a_blocking_tool(
    tmp_path: Path, events: list[ToolCallEvent], registry: ToolRegistry
) -> None:
    # Gemini 3.1 has no NON_BLOCKING tools: bots.gemini_live.config.adapt_tools wraps such a
    # tool again.
    with NotesStore(tmp_path / "notes.sqlite") as store:
        wrapped = registry.wrap_all(assistant_tools(store, "ana"))
        adapted = {t.__name__: t for t in adapt_tools(wrapped, "gemini-3.1-flash-live-preview")}
        remember_note = adapted["remember_note"]
        assert remember_note._pipecat_cancel_on_interruption is True  # type: ignore[attr-defined]
        assert (
            DirectFunctionWrapper(remember_note).to_function_schema().to_default_dict()
            == DirectFunctionWrapper(wrapped[2]).to_function_schema().to_default_dict()
        )
        (saved,) = await call_like_pipecat(remember_note, text="the locker code is 4711")
        assert saved.result == {"saved": "the locker code is 4711", "count": 1}
        (refused,) = await call_like_pipecat(remember_note, text=42)
        assert refused.result == {
            "error": "Invalid arguments for remember_note: text: 42 is not of type 'string'"
        }
        assert [e.outcome for e in events] == [ToolOutcome.OK, ToolOutcome.INVALID_ARGUMENTS]
        assert store.count("ana") == 1


def test_pipecats_own_deadline_is_set_after_the_registrys() -> None:
    registry = ToolRegistry(timeout_secs=10)
    wrapped = registry.wrap(calculate, timeout_secs=3)
    assert wrapped._pipecat_timeout_secs == 3 + BACKSTOP_GRACE_SECS  # type: ignore[attr-defined]
    assert not hasattr(calculate, "_pipecat_timeout_secs")
    assert registry.spec("calculate") is not None
    assert registry.spec("calculate").timeout_secs == 3  # type: ignore[union-attr]
    assert registry.spec("no_such_tool") is None


def test_a_tool_options_timeout_is_used_when_wrap_gives_none() -> None:
    @tool_options(timeout_secs=4)
    async def slow_lookup(params: FunctionCallParams) -> None:
        """Look something up slowly."""

    registry = ToolRegistry(timeout_secs=10)
    registry.wrap(slow_lookup)
    assert registry.spec("slow_lookup").timeout_secs == 4  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheduling": "SILENT"}, "NON_BLOCKING tools only"),
        ({"scheduling": "LATER"}, "scheduling must be one of"),
        ({"timeout_secs": -1}, "positive"),
    ],
)
def test_bad_tool_options_are_refused_when_the_tool_is_wrapped(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ToolRegistry().wrap(calculate, **options)


def test_a_tool_name_is_wrapped_only_once_per_registry() -> None:
    registry = ToolRegistry()
    registry.wrap(calculate)
    with pytest.raises(ValueError, match="already registered"):
        registry.wrap(calculate)


# --- the happy path ----------------------------------------------------------------------


async def test_a_valid_call_reaches_the_function_and_its_result_reaches_the_model(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    tool = registry.wrap(calculate)
    delivered = await call_like_pipecat(tool, expression="12 * 7")
    assert [d.result for d in delivered] == [{"expression": "12 * 7", "result": 84}]
    (event,) = events
    assert event.name == "calculate"
    assert event.call_id == "call-1"
    assert event.arguments == {"expression": "12 * 7"}
    assert event.outcome is ToolOutcome.OK
    assert event.result == {"expression": "12 * 7", "result": 84}
    assert event.error is None
    assert event.duration_ms >= 0
    assert event.started_at > 0
    assert registry.running() == []


async def test_a_tool_that_returns_its_result_instead_of_reporting_it_still_answers(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    async def get_answer(params: FunctionCallParams) -> dict[str, int]:
        """Get the answer."""
        return {"answer": 42}

    delivered = await call_like_pipecat(registry.wrap(get_answer))
    assert [d.result for d in delivered] == [{"answer": 42}]
    assert [e.outcome for e in events] == [ToolOutcome.OK]


async def test_a_tool_that_reports_nothing_gets_an_error_result(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    async def do_nothing(params: FunctionCallParams) -> None:
        """Do nothing at all."""

    delivered = await call_like_pipecat(registry.wrap(do_nothing))
    assert [d.result for d in delivered] == [{"error": "The tool do_nothing returned no result."}]
    assert [e.outcome for e in events] == [ToolOutcome.FAILED]


async def test_a_second_final_result_from_the_same_call_is_dropped(
    registry: ToolRegistry, events: list[ToolCallEvent], log: list[str]
) -> None:
    async def chatty(params: FunctionCallParams) -> None:
        """Report twice."""
        await params.result_callback({"n": 1})
        await params.result_callback({"n": 2})

    delivered = await call_like_pipecat(registry.wrap(chatty))
    assert [d.result for d in delivered] == [{"n": 1}]
    assert len(events) == 1
    assert any("reported after it ended" in line for line in log)


# --- invalid arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({}, "Invalid arguments for get_forecast: 'city' is a required property"),
        ({"city": 7}, "Invalid arguments for get_forecast: city: 7 is not of type 'string'"),
        (
            {"city": "Oslo", "days": "two"},
            "Invalid arguments for get_forecast: days: 'two' is not of type 'integer'",
        ),
        (
            {"city": "Oslo", "units": "metric"},
            "Invalid arguments for get_forecast: Additional properties are not allowed "
            "('units' was unexpected)",
        ),
    ],
    ids=["missing", "wrong-type", "wrong-type-optional", "extra"],
)
async def test_invalid_arguments_get_a_clear_error_and_the_function_is_not_called(
    registry: ToolRegistry,
    events: list[ToolCallEvent],
    arguments: dict[str, Any],
    error: str,
) -> None:
    counter = Counter()
    tool = forecast_tool(registry, counter)
    delivered = await call_like_pipecat(tool, **arguments)
    assert counter.calls == 0
    assert [d.result for d in delivered] == [{"error": error}]
    (event,) = events
    assert event.outcome is ToolOutcome.INVALID_ARGUMENTS
    assert event.error == error
    assert event.arguments == arguments


async def test_a_very_long_bad_argument_is_not_quoted_back_in_full(
    registry: ToolRegistry,
) -> None:
    tool = forecast_tool(registry, Counter())
    delivered = await call_like_pipecat(tool, city=["x" * 5000])
    message = delivered[0].result["error"]
    assert message.startswith("Invalid arguments for get_forecast: city: ")
    assert message.endswith("...")
    assert len(message) < 400


FORECAST_KEYS = ("city", "days", "metric", "units")
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=2),
)


def fits_forecast(arguments: dict[str, Any]) -> bool:
    """The schema of get_forecast, written out by hand: the oracle for the property test."""

    def is_integer(value: Any) -> bool:
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())

    return (
        set(arguments) <= {"city", "days", "metric"}
        and isinstance(arguments.get("city"), str)
        and ("days" not in arguments or is_integer(arguments["days"]))
        and ("metric" not in arguments or isinstance(arguments["metric"], bool))
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=st.dictionaries(st.sampled_from(FORECAST_KEYS), json_values, max_size=4))
async def test_the_function_is_called_exactly_when_the_arguments_fit_the_schema(
    arguments: dict[str, Any],
) -> None:
    registry = ToolRegistry(timeout_secs=5)
    counter = Counter()
    delivered = await call_like_pipecat(forecast_tool(registry, counter), **arguments)
    assert counter.calls == (1 if fits_forecast(arguments) else 0)
    assert len(delivered) == 1
    is_error = isinstance(delivered[0].result, dict) and "error" in delivered[0].result
    assert is_error != fits_forecast(arguments)


# --- failures ----------------------------------------------------------------------------


async def test_a_tool_that_raises_answers_briefly_and_keeps_the_secret_in_the_log(
    registry: ToolRegistry, events: list[ToolCallEvent], log: list[str]
) -> None:
    async def get_balance(params: FunctionCallParams) -> None:
        """Get the account balance."""
        raise RuntimeError("secret-token-123")

    delivered = await call_like_pipecat(registry.wrap(get_balance))
    assert [d.result for d in delivered] == [{"error": "The tool get_balance failed."}]
    (event,) = events
    assert event.outcome is ToolOutcome.FAILED
    assert event.error == "The tool get_balance failed."
    assert "secret-token-123" not in repr(delivered) + repr(event.to_json())
    logged = "\n".join(log)
    assert "secret-token-123" in logged
    assert "Traceback" in logged


async def test_a_tool_raising_its_own_timeout_error_is_a_failure_not_a_timeout(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    async def fetch_page(params: FunctionCallParams) -> None:
        """Fetch a page."""
        raise TimeoutError("upstream server slow")

    delivered = await call_like_pipecat(registry.wrap(fetch_page))
    assert [d.result for d in delivered] == [{"error": "The tool fetch_page failed."}]
    assert [e.outcome for e in events] == [ToolOutcome.FAILED]


async def test_a_failing_listener_does_not_break_the_call(
    registry: ToolRegistry, events: list[ToolCallEvent], log: list[str]
) -> None:
    def broken(event: ToolCallEvent) -> None:
        raise ValueError("listener bug")

    registry.add_listener(broken)
    delivered = await call_like_pipecat(registry.wrap(calculate), expression="1 + 1")
    assert delivered[0].result == {"expression": "1 + 1", "result": 2}
    assert len(events) == 1
    assert any("listener failed" in line for line in log)
    registry.remove_listener(broken)
    registry.remove_listener(broken)  # unknown listeners are ignored


# --- timeouts ----------------------------------------------------------------------------


async def test_a_hanging_tool_is_cancelled_at_its_timeout_and_the_model_is_told(
    events: list[ToolCallEvent],
) -> None:
    registry = ToolRegistry(timeout_secs=0.05)
    registry.add_listener(events.append)
    never = asyncio.Event()
    unwound: list[bool] = []

    async def get_stock_price(params: FunctionCallParams, symbol: str) -> None:
        """Get a stock price.

        Args:
            symbol: The ticker.
        """
        try:
            await never.wait()
        finally:
            unwound.append(True)

    delivered = await call_like_pipecat(registry.wrap(get_stock_price), symbol="ACME")
    assert unwound == [True]
    assert [d.result for d in delivered] == [
        {"error": "The tool get_stock_price timed out after 0.05 s."}
    ]
    (event,) = events
    assert event.outcome is ToolOutcome.TIMED_OUT
    assert event.duration_ms >= 50
    assert registry.running() == []


async def test_a_per_tool_timeout_overrides_the_registry_default(
    events: list[ToolCallEvent],
) -> None:
    registry = ToolRegistry(timeout_secs=0.05)
    registry.add_listener(events.append)
    # A deadline of the registry's default, run alongside: once it has passed, the patient
    # tool has outlived the default too (no sleep guesses how long that takes).
    default_deadline = ToolRegistry(timeout_secs=0.05)

    async def hangs(params: FunctionCallParams) -> None:
        """Never finish."""
        await asyncio.Event().wait()

    async def slow_but_fine(params: FunctionCallParams) -> None:
        """Take longer than the registry's default deadline."""
        (timed_out,) = await call_like_pipecat(default_deadline.wrap(hangs))
        assert "timed out" in timed_out.result["error"]
        await params.result_callback({"done": True})

    patient = registry.wrap(slow_but_fine, timeout_secs=2)
    strict = ToolRegistry(timeout_secs=30)
    strict.add_listener(events.append)
    impatient = strict.wrap(hangs, timeout_secs=0.05)
    assert [d.result for d in await call_like_pipecat(patient)] == [{"done": True}]
    async with asyncio.timeout(2):
        assert [d.result for d in await call_like_pipecat(impatient)] == [
            {"error": "The tool hangs timed out after 0.05 s."}
        ]
    assert [e.outcome for e in events] == [ToolOutcome.OK, ToolOutcome.TIMED_OUT]


async def test_a_tool_that_swallows_its_cancellation_is_still_answered_as_timed_out(
    events: list[ToolCallEvent],
) -> None:
    registry = ToolRegistry(timeout_secs=0.05)
    registry.add_listener(events.append)

    async def stubborn(params: FunctionCallParams) -> None:
        """Refuse to stop."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await params.result_callback({"too": "late"})

    delivered = await call_like_pipecat(registry.wrap(stubborn))
    assert [d.result for d in delivered] == [{"error": "The tool stubborn timed out after 0.05 s."}]
    assert [e.outcome for e in events] == [ToolOutcome.TIMED_OUT]


# --- results that cannot be sent ---------------------------------------------------------


class Opaque:
    pass


@pytest.mark.parametrize(
    "result",
    [{1, 2, 3}, Opaque(), {"value": math.nan}, {"when": asyncio.Event()}],
    ids=["set", "object", "nan", "nested-object"],
)
async def test_a_result_that_is_not_json_is_replaced_by_an_error(
    registry: ToolRegistry, events: list[ToolCallEvent], result: Any
) -> None:
    async def odd_tool(params: FunctionCallParams) -> None:
        """Return something odd."""
        await params.result_callback(result)

    delivered = await call_like_pipecat(registry.wrap(odd_tool))
    assert [d.result for d in delivered] == [
        {"error": "The tool odd_tool returned a result that is not JSON."}
    ]
    assert [e.outcome for e in events] == [ToolOutcome.FAILED]


async def test_a_result_over_the_size_limit_is_replaced_by_an_error(
    events: list[ToolCallEvent],
) -> None:
    registry = ToolRegistry(max_result_bytes=100)
    registry.add_listener(events.append)

    async def dump(params: FunctionCallParams, size: int) -> None:
        """Return a string.

        Args:
            size: Its length.
        """
        await params.result_callback("é" * size)  # 2 bytes in UTF-8, 2 quotes around it

    tool = registry.wrap(dump)
    assert [d.result for d in await call_like_pipecat(tool, size=49)] == ["é" * 49]
    (too_large,) = await call_like_pipecat(tool, size=50)
    assert too_large.result == {
        "error": "The tool dump returned a result that is too large (102 bytes; the limit is 100)."
    }
    assert [e.outcome for e in events] == [ToolOutcome.OK, ToolOutcome.FAILED]


async def test_the_default_size_limit_is_16_kib() -> None:
    registry = ToolRegistry()

    async def big(params: FunctionCallParams) -> None:
        """Return 17 KiB."""
        await params.result_callback({"blob": "x" * 17 * 1024})

    (delivered,) = await call_like_pipecat(registry.wrap(big))
    assert "too large" in delivered.result["error"]
    assert "the limit is 16384" in delivered.result["error"]


# --- loops -------------------------------------------------------------------------------


async def test_the_fourth_identical_call_in_a_turn_is_refused_until_the_next_turn(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    counter = Counter()
    tool = forecast_tool(registry, counter)
    for _ in range(3):
        delivered = await call_like_pipecat(tool, city="Oslo")
        assert delivered[0].result == {"city": "Oslo", "days": 1, "metric": False}
    (refused,) = await call_like_pipecat(tool, city="Oslo")
    assert refused.result == {
        "error": "Refusing to repeat get_forecast with the same arguments: it was already "
        "called 3 times this turn. Use the results you have, or ask the user."
    }
    assert counter.calls == 3
    assert events[-1].outcome is ToolOutcome.REFUSED_REPEAT

    other = await call_like_pipecat(tool, city="Oslo", days=2)  # other arguments: allowed
    assert other[0].result["days"] == 2

    registry.new_turn()
    again = await call_like_pipecat(tool, city="Oslo")
    assert again[0].result["city"] == "Oslo"
    assert counter.calls == 5


async def test_argument_order_does_not_hide_a_repeat(registry: ToolRegistry) -> None:
    counter = Counter()
    tool = forecast_tool(registry, counter, timeout_secs=1)
    for i in range(3):
        args: dict[str, Any] = {"city": "Oslo", "days": 2} if i % 2 else {"days": 2, "city": "Oslo"}
        await call_like_pipecat(tool, **args)
    (refused,) = await call_like_pipecat(tool, days=2, city="Oslo")
    assert refused.result["error"].startswith("Refusing to repeat get_forecast")


async def test_max_repeats_is_configurable() -> None:
    registry = ToolRegistry(max_repeats=1)
    counter = Counter()
    tool = forecast_tool(registry, counter)
    await call_like_pipecat(tool, city="Rome")
    (refused,) = await call_like_pipecat(tool, city="Rome")
    assert "Refusing to repeat" in refused.result["error"]
    assert counter.calls == 1


# --- cancellation ------------------------------------------------------------------------


class Hanging:
    """A tool that waits forever, telling the test when it started and when it unwound."""

    def __init__(self, registry: ToolRegistry, **options: Any) -> None:
        self.started = asyncio.Event()
        self.unwound: list[str] = []

        async def book_table(params: FunctionCallParams, restaurant: str) -> None:
            """Book a table.

            Args:
                restaurant: Where.
            """
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.unwound.append(params.tool_call_id)
                raise

        self.tool = registry.wrap(book_table, **options)

    async def running(self) -> None:
        await asyncio.wait_for(self.started.wait(), 1)

    async def call(self, call_id: str) -> tuple[asyncio.Task, Call]:
        """Start a call to book a table at Noma, and return once the tool is running."""
        task, call = start_call(self.tool, call_id, restaurant="Noma")
        await self.running()
        return task, call


async def cancelled_by_pipecat(task: asyncio.Task) -> None:
    """Cancel a call's task, as Pipecat does on an interruption; the cancellation goes on."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_call_cancelled_by_pipecats_interruption_is_recorded_and_the_cancel_goes_on(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    hanging = Hanging(registry)
    task, call = await hanging.call("call-7")
    (running,) = registry.running()
    assert running == RunningCall(
        call_id="call-7",
        name="book_table",
        cancel_on_interruption=True,
        started_at=running.started_at,
    )
    await cancelled_by_pipecat(task)
    assert hanging.unwound == ["call-7"]
    assert call.delivered == []  # Pipecat settles an interrupted call itself
    (event,) = events
    assert event.outcome is ToolOutcome.CANCELLED_BY_INTERRUPTION
    assert event.error == "cancelled"
    assert registry.running() == []


async def test_a_call_cancelled_by_the_model_stops_and_still_answers_once(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    hanging = Hanging(registry)
    task, call = await hanging.call("call-8")
    assert registry.cancel("call-8", by_model=True) is True
    assert registry.cancel("call-8") is False  # already being cancelled
    await asyncio.wait_for(task, 1)
    assert hanging.unwound == ["call-8"]
    assert [d.result for d in call.delivered] == [CANCELLED_RESULT]
    assert call.delivered[0].properties == FunctionCallResultProperties(run_llm=False)
    (event,) = events
    assert event.outcome is ToolOutcome.CANCELLED_BY_MODEL
    assert registry.running() == []
    assert registry.cancel("call-8") is False


async def test_a_model_cancellation_the_service_also_carries_out_is_recorded_as_the_models(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    # A service that cancels through Pipecat too (the Gemini Live stage does, on
    # toolCallCancellation) tells the registry first; Pipecat then settles the call itself.
    hanging = Hanging(registry)
    task, call = await hanging.call("call-10")
    assert registry.cancel("call-10", by_model=True)
    await cancelled_by_pipecat(task)
    assert call.delivered == []
    assert [e.outcome for e in events] == [ToolOutcome.CANCELLED_BY_MODEL]
    assert registry.running() == []


async def test_the_bot_may_cancel_a_call_for_an_interruption_and_it_is_answered_once(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    hanging = Hanging(registry)
    task, call = await hanging.call("call-9")
    assert registry.cancel("call-9", by_model=False)
    await asyncio.wait_for(task, 1)
    assert [d.result for d in call.delivered] == [CANCELLED_RESULT]
    assert [e.outcome for e in events] == [ToolOutcome.CANCELLED_BY_INTERRUPTION]


async def test_cancelling_an_unknown_call_does_nothing(registry: ToolRegistry) -> None:
    assert registry.cancel("nope") is False


async def test_running_lists_every_call_in_flight(registry: ToolRegistry) -> None:
    hanging = Hanging(registry)
    job_started = asyncio.Event()

    @tool_options(cancel_on_interruption=False)
    async def long_job(params: FunctionCallParams) -> None:
        """Run a long job."""
        job_started.set()
        await asyncio.Event().wait()

    first, _ = start_call(hanging.tool, "a", restaurant="X")
    second, _ = start_call(registry.wrap(long_job), "b")
    await hanging.running()
    await asyncio.wait_for(job_started.wait(), 1)
    assert [(r.call_id, r.name, r.cancel_on_interruption) for r in registry.running()] == [
        ("a", "book_table", True),
        ("b", "long_job", False),
    ]
    for task in (first, second):
        task.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert registry.running() == []


# --- NON_BLOCKING tools ------------------------------------------------------------------


def progress_tool(registry: ToolRegistry, **options: Any) -> Any:
    @tool_options(cancel_on_interruption=False)
    async def download_report(params: FunctionCallParams, name: str) -> None:
        """Download a report, reporting progress.

        Args:
            name: The report.
        """
        for percent in (30, 60):
            await params.result_callback(
                {"progress": percent}, properties=FunctionCallResultProperties(is_final=False)
            )
        await params.result_callback({"report": name, "pages": 3})

    return registry.wrap(download_report, **options)


async def test_intermediate_results_of_a_non_blocking_tool_pass_through(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    delivered = await call_like_pipecat(progress_tool(registry), name="q3")
    assert [d.result for d in delivered] == [
        {"progress": 30},
        {"progress": 60},
        {"report": "q3", "pages": 3},
    ]
    assert [d.properties.is_final if d.properties else True for d in delivered] == [
        False,
        False,
        True,
    ]
    (event,) = events  # one event, for the final result
    assert event.outcome is ToolOutcome.OK
    assert event.result == {"report": "q3", "pages": 3}


async def test_an_unsendable_intermediate_result_is_dropped_not_fatal(
    registry: ToolRegistry, events: list[ToolCallEvent]
) -> None:
    @tool_options(cancel_on_interruption=False)
    async def odd_progress(params: FunctionCallParams) -> None:
        """Report odd progress."""
        await params.result_callback(
            {1, 2}, properties=FunctionCallResultProperties(is_final=False)
        )
        await params.result_callback({"done": True})

    delivered = await call_like_pipecat(registry.wrap(odd_progress))
    assert [d.result for d in delivered] == [{"done": True}]
    assert [e.outcome for e in events] == [ToolOutcome.OK]


@pytest.mark.parametrize(
    ("scheduling", "run_llm", "mark"),
    [("WHEN_IDLE", True, None), ("SILENT", False, None), ("INTERRUPT", True, "INTERRUPT")],
)
async def test_a_non_blocking_tool_gets_the_scheduling_it_asks_for(
    registry: ToolRegistry, scheduling: Any, run_llm: bool, mark: str | None
) -> None:
    delivered = await call_like_pipecat(progress_tool(registry, scheduling=scheduling), name="q3")
    assert len(delivered) == 3
    for d in delivered:
        assert d.properties is not None
        assert d.properties.run_llm is run_llm
        assert d.result.get("scheduling") == mark
    assert [d.properties.is_final for d in delivered if d.properties] == [False, False, True]


async def test_a_tools_own_run_llm_choice_wins_over_its_scheduling(
    registry: ToolRegistry,
) -> None:
    @tool_options(cancel_on_interruption=False)
    async def quiet_save(params: FunctionCallParams) -> None:
        """Save quietly."""
        await params.result_callback(
            "saved", properties=FunctionCallResultProperties(run_llm=False)
        )

    (delivered,) = await call_like_pipecat(registry.wrap(quiet_save, scheduling="INTERRUPT"))
    assert delivered.result == "saved"
    assert delivered.properties == FunctionCallResultProperties(run_llm=False)


async def test_an_interrupt_tools_plain_result_is_wrapped_to_carry_the_mark(
    registry: ToolRegistry,
) -> None:
    @tool_options(cancel_on_interruption=False)
    async def ring(params: FunctionCallParams) -> None:
        """Ring the bell."""
        await params.result_callback("rang")

    (delivered,) = await call_like_pipecat(registry.wrap(ring, scheduling="INTERRUPT"))
    assert delivered.result == {"value": "rang", "scheduling": "INTERRUPT"}


async def test_errors_of_a_silent_tool_are_silent_too(registry: ToolRegistry) -> None:
    @tool_options(cancel_on_interruption=False)
    async def sync_contacts(params: FunctionCallParams) -> None:
        """Sync contacts."""
        raise OSError("disk full")

    (delivered,) = await call_like_pipecat(registry.wrap(sync_contacts, scheduling="SILENT"))
    assert delivered.result == {"error": "The tool sync_contacts failed."}
    assert delivered.properties == FunctionCallResultProperties(run_llm=False)


@pytest.mark.parametrize("limit", ["timeout_secs", "max_result_bytes", "max_repeats"])
def test_the_registry_refuses_nonsense_limits(limit: str) -> None:
    with pytest.raises(ValueError):
        ToolRegistry(**{limit: 0})  # type: ignore[arg-type]
