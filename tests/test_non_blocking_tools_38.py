"""The tool registry's guarantees for NON_BLOCKING calls on gemini-3.8-live, end to end (issue 12).

On 3.8 a call runs NON_BLOCKING unless it is declared BLOCKING: the model ends its turn at once
and takes the result whenever it comes, by its `scheduling`. Every test runs the whole assistant
bot (`resilience_harness.run_bot`: the Gemini stage, the tool registry, the tool-call processor,
the transcript) against the emulator over a real socket. The model calls a tool through the
emulator's control API; what Gemini received is read back from the emulator, what the browser
and the transcript were told from the pipeline and the transcript on disk.

The model's cancellation (`toolCallCancellation`) is shown twice: on a BLOCKING call a barge-in
releases, and on a running NON_BLOCKING call the test makes the model give up on through the
emulator's `cancel_tool_calls` control route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import load_wav
from emulator_helpers import post
from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.frames.frames import (
    ErrorFrame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallResultProperties,
)
from pipecat.services.llm_service import FunctionCallParams
from resilience_harness import Bot, GateTool, run_bot

from emulator.server import Running
from processors.frames import SessionEvent
from processors.tool_calls import TOOL_ACTIVITY
from testkit.waiting import until
from transcripts import list_sessions, load_session

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

MODEL = "gemini-3.8-live"
WHEN_IDLE = "WHEN_IDLE"  # Pipecat's scheduling for a result the model should speak about


@contextlib.asynccontextmanager
async def bot_on_38(
    emulator: Running, data_dir: Path, *tools: Callable[..., Any], **kwargs: Any
) -> AsyncIterator[Bot]:
    """The assistant bot on gemini-3.8-live with `tools` added to its own."""
    async with run_bot(emulator, data_dir, extra_tools=tools, gemini_model=MODEL, **kwargs) as bot:
        yield bot


def responses(bot: Bot, call_id: str) -> list[dict[str, Any]]:
    """Every `FunctionResponse` Gemini received for the call, in order."""
    return list(bot.tool_call(call_id).get("responses", []))


def activity(bot: Bot, call_id: str) -> list[str]:
    """The statuses the browser was told for the call (`started`, then how it ended)."""
    return [
        m["status"]
        for m in bot.log.server_messages(TOOL_ACTIVITY)
        if m.get("tool_call_id") == call_id
    ]


def recorded(data_dir: Path, call_id: str) -> list[dict[str, Any]]:
    """The transcript's records of the call."""
    folder = data_dir / "transcripts"
    return [
        record
        for session in list_sessions(folder)
        for record in load_session(folder, session.session_id).tool_calls
        if record.get("call_id") == call_id
    ]


async def settled(bot: Bot, data_dir: Path, call_id: str) -> dict[str, Any]:
    """Wait until the call's end is announced to the browser and written to the transcript;
    return its one transcript record."""
    await until(lambda: len(activity(bot, call_id)) >= 2, "the call's end in the browser")
    await until(lambda: recorded(data_dir, call_id), "the call in the transcript")
    assert len(activity(bot, call_id)) == 2, activity(bot, call_id)
    (record,) = recorded(data_dir, call_id)
    return record


async def answered(bot: Bot, call_id: str) -> list[dict[str, Any]]:
    """Wait until Gemini has the call's final response; return every response it received."""
    await until(lambda: bot.tool_call(call_id).get("status") == "answered", "the final result")
    return responses(bot, call_id)


def spoken_after(bot: Bot, count: int) -> list[str]:
    """What the model said in its turns after the first `count` model turns."""
    return [t["text"] for t in bot.history() if t["role"] == "model"][count:]


async def model_says(bot: Bot, words: str, after: int) -> None:
    """Wait until a model turn after the first `after` says `words`."""
    await until(
        lambda: any(words in text for text in spoken_after(bot, after)), f"the model to say {words}"
    )


def order_tool() -> tuple[Callable[..., Any], list[int]]:
    """A NON_BLOCKING tool with a typed argument, and the order numbers it ran with."""
    ran: list[int] = []

    @tool_options(cancel_on_interruption=False)
    async def look_up_order(params: FunctionCallParams, order_id: int) -> None:
        """Look up an order.

        Args:
            order_id: The order's number.
        """
        ran.append(order_id)
        await params.result_callback({"order": order_id, "status": "shipped"})

    return look_up_order, ran


def final(result: dict[str, Any]) -> dict[str, Any]:
    """A NON_BLOCKING call's final response as the emulator records it (Pipecat puts the
    scheduling both in the response and beside it)."""
    return {
        "response": {**result, "scheduling": WHEN_IDLE},
        "scheduling": WHEN_IDLE,
        "will_continue": False,
    }


# --------------------------------------------------------------------------------------------
# (a) schema check


async def test_a_non_blocking_call_with_invalid_arguments_gets_a_clear_error_and_never_runs(
    emulator: Running, tmp_path: Path
) -> None:
    look_up_order, ran = order_tool()
    async with bot_on_38(emulator, tmp_path, look_up_order) as bot:
        spoken = bot.model_turns()
        bad = await bot.call_tool("look_up_order", {"order_id": "twelve"})
        error = "Invalid arguments for look_up_order: order_id: 'twelve' is not of type 'integer'"
        assert await answered(bot, bad) == [final({"error": error})]
        assert bot.tool_call(bad)["blocking"] is False, "a NON_BLOCKING call"
        record = await settled(bot, tmp_path, bad)
        assert (record["outcome"], record["error"]) == ("invalid_arguments", error)
        assert activity(bot, bad) == ["started", "invalid_arguments"]
        await model_says(bot, "Invalid arguments for look_up_order", after=spoken)

        # The same tool with arguments that fit: it runs, so the refusal above was the check's.
        good = await bot.call_tool("look_up_order", {"order_id": 12})
        assert await answered(bot, good) == [final({"order": 12, "status": "shipped"})]
        assert ran == [12], "the function ran only for the valid call"


# --------------------------------------------------------------------------------------------
# (b) timeout


async def test_a_hanging_non_blocking_tool_is_cancelled_at_its_timeout_and_the_model_is_told(
    emulator: Running, tmp_path: Path
) -> None:
    started = asyncio.Event()
    stopped: list[str] = []

    @tool_options(cancel_on_interruption=False, timeout_secs=0.5)
    async def fetch_report(params: FunctionCallParams) -> None:
        """Fetch the monthly report, which never comes."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(params.tool_call_id)
            raise

    async with bot_on_38(emulator, tmp_path, fetch_report) as bot:
        spoken = bot.model_turns()
        call_id = await bot.call_tool("fetch_report")
        await until(started.is_set, "the tool to start")
        error = "The tool fetch_report timed out after 0.5 s."
        assert await answered(bot, call_id) == [final({"error": error})]
        assert stopped == [call_id], "the function itself was cancelled"
        record = await settled(bot, tmp_path, call_id)
        assert record["outcome"] == "timed_out" and record["duration_ms"] >= 500
        assert not bot.log.of(FunctionCallCancelFrame), "the registry answered, not the backstop"
        await model_says(bot, "timed out after 0.5 s", after=spoken)


# --------------------------------------------------------------------------------------------
# (c) safe error


async def test_a_non_blocking_tool_that_raises_answers_briefly_and_its_secret_stays_here(
    emulator: Running, tmp_path: Path
) -> None:
    secret = "sk-live-4f9a1c-db-password"

    @tool_options(cancel_on_interruption=False)
    async def check_balance(params: FunctionCallParams) -> None:
        """Check the account balance."""
        raise RuntimeError(f"could not reach postgres://bank:{secret}@db")

    logged: list[str] = []
    sink = logger.add(lambda message: logged.append(str(message)), level="ERROR")
    try:
        async with bot_on_38(emulator, tmp_path, check_balance) as bot:
            spoken = bot.model_turns()
            call_id = await bot.call_tool("check_balance")
            assert await answered(bot, call_id) == [
                final({"error": "The tool check_balance failed."})
            ]
            record = await settled(bot, tmp_path, call_id)
            await model_says(bot, "check_balance failed", after=spoken)
            await bot.view.fresh()
            told_gemini = json.dumps(bot.connections())
            told_browser = json.dumps(bot.transport.output().messages, default=repr)
            context = json.dumps(bot.context.get_messages(), default=repr)
    finally:
        logger.remove(sink)
    assert record["outcome"] == "failed" and record["error"] == "The tool check_balance failed."
    on_disk = "".join(p.read_text() for p in (tmp_path / "transcripts").glob("*.jsonl"))
    for where, text in [
        ("Gemini", told_gemini),
        ("the browser", told_browser),
        ("the context", context),
        ("the transcript", on_disk),
    ]:
        assert secret not in text, f"the exception's text reached {where}"
    assert not bot.log.of(ErrorFrame), "a failed tool is answered, not a pipeline error"
    assert any(secret in line and "RuntimeError" in line for line in logged), (
        "the operator's log keeps the exception"
    )


# --------------------------------------------------------------------------------------------
# (d) repeat refusal


async def test_the_fourth_identical_non_blocking_call_in_a_turn_is_refused_until_the_next_turn(
    emulator: Running, tmp_path: Path
) -> None:
    look_up_order, ran = order_tool()
    async with bot_on_38(emulator, tmp_path, look_up_order) as bot:
        ids = []
        for _ in range(4):
            call_id = await bot.call_tool("look_up_order", {"order_id": 7})
            await answered(bot, call_id)
            ids.append(call_id)
        assert ran == [7, 7, 7], "three identical calls ran; the fourth did not"
        refusal = (
            "Refusing to repeat look_up_order with the same arguments: it was already called 3 "
            "times this turn. Use the results you have, or ask the user."
        )
        assert responses(bot, ids[3]) == [final({"error": refusal})]
        assert all(len(responses(bot, i)) == 1 for i in ids), "each call answered once"
        outcomes = [(await settled(bot, tmp_path, i))["outcome"] for i in ids]
        assert outcomes == ["ok", "ok", "ok", "refused_repeat"]

        await bot.ask("Thanks, that is all.")
        await bot.wait_answered("Thanks, that is all.")
        again = await bot.call_tool("look_up_order", {"order_id": 7})
        await answered(bot, again)
        assert ran == [7, 7, 7, 7], "a new user turn counts afresh"


# --------------------------------------------------------------------------------------------
# (e) cancellation by the model and by the user's barge-in


@pytest.mark.speech
async def test_a_barge_in_cancels_the_blocking_call_and_the_non_blocking_one_answers_once(
    emulator: Running, tmp_path: Path
) -> None:
    """On a voice barge-in the model drops its BLOCKING call (`toolCallCancellation`) and the
    server interrupts; a NON_BLOCKING call is neither: it runs on and is answered once."""
    blocking = GateTool(name="wait_for_approval")
    background = GateTool(name="wait_for_upload", non_blocking=True)
    async with bot_on_38(emulator, tmp_path, blocking.function(), background.function()) as bot:
        told: list[list[str]] = []
        bot.llm.add_event_handler(
            "on_tool_calls_cancelled_by_model", lambda _, ids: told.append(ids)
        )
        running = await bot.call_tool(background.name)
        await until(background.started.is_set, "the NON_BLOCKING tool to start")
        held = await bot.call_tool(blocking.name)
        await until(blocking.started.is_set, "the BLOCKING tool to start")
        assert (bot.tool_call(running)["blocking"], bot.tool_call(held)["blocking"]) == (
            False,
            True,
        )

        await bot.speak(load_wav("stop.wav"), silence_secs=1.0)
        await until(lambda: blocking.cancelled, "the BLOCKING call to be cancelled")
        assert told == [[held]], "the model cancelled the BLOCKING call only"
        await until(
            lambda: any(t.get("source") == "audio" for t in bot.history()), "the barge-in turn"
        )
        assert background.cancelled == [], "the interruption left the NON_BLOCKING call running"

        background.opened.set()
        assert await answered(bot, running) == [final({"gate": "open"})]
        assert (await settled(bot, tmp_path, running))["outcome"] == "ok"
        assert (await settled(bot, tmp_path, held))["outcome"] == "cancelled_by_model"
        call = bot.tool_call(held)
        assert call["status"] == "cancelled" and call["responses"] == [], "no answer to a drop"
        assert [f.tool_call_id for f in bot.log.of(FunctionCallCancelFrame)] == [held]
        finals = [
            f.tool_call_id
            for f in bot.log.of(FunctionCallResultFrame)
            if f.properties is None or f.properties.is_final
        ]
        assert finals.count(running) == 1, "the NON_BLOCKING call was settled once"


async def test_the_model_cancels_a_running_non_blocking_call_which_stops_and_goes_unanswered(
    emulator: Running, tmp_path: Path
) -> None:
    """The model gives up on a NON_BLOCKING call still running: the function is cancelled, the
    call is settled once as cancelled by the model, Gemini gets no answer for it (the stage sends
    none to a call the model cancelled), and the next user turn is answered."""
    gate = GateTool(name="wait_for_upload", non_blocking=True)
    async with bot_on_38(emulator, tmp_path, gate.function()) as bot:
        told: list[list[str]] = []
        bot.llm.add_event_handler(
            "on_tool_calls_cancelled_by_model", lambda _, ids: told.append(ids)
        )
        call_id = await bot.call_tool(gate.name)
        await until(gate.started.is_set, "the NON_BLOCKING tool to start")
        assert bot.tool_call(call_id)["blocking"] is False, "a NON_BLOCKING call"

        await bot.control("cancel_tool_calls", {"ids": [call_id]})
        await until(lambda: gate.cancelled, "the function to be cancelled")
        assert (gate.cancelled, gate.finished) == ([call_id], []), "it stopped, unfinished"
        assert told == [[call_id]], "the stage heard the model's cancellation once"
        assert (await settled(bot, tmp_path, call_id))["outcome"] == "cancelled_by_model"
        assert activity(bot, call_id) == ["started", "cancelled_by_model"]
        gate.opened.set()  # too late: the function has stopped and answers nothing

        await bot.ask("Is the upload still going?")
        await bot.wait_answered("Is the upload still going?")
        await bot.view.fresh()
        call = bot.tool_call(call_id)
        assert call["status"] == "cancelled" and call["responses"] == [], "no answer to a drop"
        assert all(c["frames"].get("tool_response", 0) == 0 for c in bot.connections())
        assert [f.tool_call_id for f in bot.log.of(FunctionCallCancelFrame)] == [call_id]
        assert not [f for f in bot.log.of(FunctionCallResultFrame) if f.tool_call_id == call_id]
        assert gate.finished == [] and len(recorded(tmp_path, call_id)) == 1
        assert not bot.log.of(ErrorFrame)


# --------------------------------------------------------------------------------------------
# (f) a result produced while the stage reconnects


@pytest.mark.parametrize("fault", ["drop", "goaway"])
async def test_a_non_blocking_result_produced_while_reconnecting_reaches_the_next_socket_once(
    emulator: Running, tmp_path: Path, fault: str
) -> None:
    """The emulator drops the socket, or sends goAway (the stage switches at once: a NON_BLOCKING
    call does not hold the turn); new connections are refused for a while, so the result comes
    while there is no socket, and waits in the outbox for the resumed one."""
    gate = GateTool(non_blocking=True)
    options = {"reconnect_base_delay_secs": 0.2, "reconnect_jitter": 0.0}
    async with bot_on_38(emulator, tmp_path, gate.function(), options=options) as bot:
        call_id = await bot.call_tool(gate.name)
        await until(gate.started.is_set, "the tool to start")
        old = bot.live()
        assert old is not None and bot.tool_call(call_id)["blocking"] is False
        await post(emulator, "/emulator/faults", {"refuse_for_s": 1.5})
        if fault == "drop":
            await bot.control("drop")
        else:
            await bot.control("goaway", {"time_left_s": 10.0})
        await until(lambda: bot.log.events(SessionEvent.RECONNECTING), "the outage")
        gate.opened.set()
        await until(lambda: "tool_response" in bot.llm.status.queued, "the result to be queued")

        assert await answered(bot, call_id) == [final({"gate": "open"})]
        await bot.ask("Did the upload finish?")
        await bot.wait_answered("Did the upload finish?")
        await bot.view.fresh()
        assert len(responses(bot, call_id)) == 1, "delivered once, also after the next turn"
        connections = bot.connections()
        assert connections[0]["id"] == old["id"]
        assert all(c["resumed_from"] for c in connections[1:]), "every reconnect resumed"
        delivered = [c["frames"].get("tool_response", 0) for c in connections]
        assert delivered == [0] * (len(connections) - 1) + [1], "on the next socket only"
        assert bot.connection(old["id"])["close_code"] == (1006 if fault == "drop" else 1000)
        assert (await settled(bot, tmp_path, call_id))["outcome"] == "ok"
        assert not bot.log.of(ErrorFrame)


# --------------------------------------------------------------------------------------------
# (g) intermediate results


async def test_intermediate_results_of_a_non_blocking_tool_reach_gemini_then_the_final_one(
    emulator: Running, tmp_path: Path
) -> None:
    steps = [asyncio.Event(), asyncio.Event()]
    more = FunctionCallResultProperties(is_final=False)

    @tool_options(cancel_on_interruption=False)
    async def track_parcel(params: FunctionCallParams) -> None:
        """Follow the user's parcel until it is delivered."""
        await params.result_callback({"parcel": "packed"}, properties=more)
        await steps[0].wait()
        await params.result_callback({"parcel": "shipped"}, properties=more)
        await steps[1].wait()
        await params.result_callback({"parcel": "delivered"})

    def statuses(call_id: str) -> list[tuple[str | None, bool]]:
        return [(r["response"].get("parcel"), r["will_continue"]) for r in responses(bot, call_id)]

    async with bot_on_38(emulator, tmp_path, track_parcel) as bot:
        spoken = bot.model_turns()
        call_id = await bot.call_tool("track_parcel")
        await until(lambda: statuses(call_id) == [("packed", True)], "the first update")
        await model_says(bot, "packed", after=spoken)
        steps[0].set()
        await until(lambda: len(statuses(call_id)) == 2, "the second update")
        assert bot.tool_call(call_id)["status"] == "pending", "an update keeps the call open"
        await model_says(bot, "shipped", after=spoken)
        steps[1].set()
        await answered(bot, call_id)
        assert statuses(call_id) == [("packed", True), ("shipped", True), ("delivered", False)]
        assert {r["scheduling"] for r in responses(bot, call_id)} == {WHEN_IDLE}
        await model_says(bot, "delivered", after=spoken)
        record = await settled(bot, tmp_path, call_id)
        assert record["outcome"] == "ok" and record["result"] == {"parcel": "delivered"}
        assert activity(bot, call_id) == ["started", "ok"], "announced once, at the end"
