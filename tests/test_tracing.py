"""Tracing (issue 14, point 7): with `ENABLE_TRACING` one conversation of the assistant bot
produces Pipecat's spans for the conversation, its turns, its tool calls and its Gemini
connection, exported through the tracer provider that `bots.tracing` installs.

The bot is the whole assistant (real Gemini Live stage, tools, registry) against the emulator;
the exporter is the OpenTelemetry SDK's in-memory one, installed once for this test process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from resilience_harness import run_bot

from bots.settings import Settings
from bots.tracing import configure_tracing
from emulator.server import Running
from testkit.waiting import until

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120)]

QUESTION = "What time is it in Tokyo?"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    settings = Settings(_env_file=None, enable_tracing=True)  # type: ignore[call-arg]
    assert configure_tracing(settings, exporter=spans)
    yield spans


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    provider = trace.get_tracer_provider()
    provider.force_flush()  # type: ignore[attr-defined]
    return list(exporter.get_finished_spans())


def test_tracing_is_off_unless_asked_for() -> None:
    assert configure_tracing(Settings(_env_file=None)) is False  # type: ignore[call-arg]


async def test_one_conversation_has_spans_for_its_turns_tool_call_and_gemini_connection(
    emulator: Running, tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with run_bot(emulator, tmp_path, enable_tracing=True) as bot:
        await bot.ask(QUESTION)
        await bot.wait_answered(QUESTION)
    spans = await until(
        lambda: (got := finished(exporter)) and "conversation" in {s.name for s in got} and got,
        "the conversation span to end with the pipeline",
    )
    names = [s.name for s in spans]
    assert {"conversation", "turn", "llm_setup", "llm_tool_call"} <= set(names), names
    (conversation,) = [s for s in spans if s.name == "conversation"]
    trace_id = conversation.context.trace_id
    turns = [s for s in spans if s.name == "turn"]
    assert all(t.context.trace_id == trace_id for t in turns), "turns belong to the conversation"
    tool_calls = [s for s in spans if s.name == "llm_tool_call"]
    called = [(s.attributes or {}).get("tool.function_name") for s in tool_calls]
    assert called == ["get_current_time"], [sorted(dict(s.attributes or {})) for s in tool_calls]


async def test_without_tracing_a_conversation_makes_no_spans(
    emulator: Running, tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with run_bot(emulator, tmp_path) as bot:
        await bot.ask(QUESTION)
        await bot.wait_answered(QUESTION)
    assert finished(exporter) == []
