"""What the registry knows about one tool, and the options Pipecat reads off a tool function.

Pipecat's `@tool_options` stores a tool's call options as attributes of the function, and
`LLMService` reads them back when it registers the tool. The registry wraps the function, so it
reads those options here (the one place in the project that does) and writes them onto the
wrapper with `tool_options` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from jsonschema import Draft202012Validator
from pipecat.adapters.llm.schemas.direct_function import DirectFunction

from processors.frames import ToolCallEvent

__all__ = [
    "BACKSTOP_GRACE_SECS",
    "CANCELLED_RESULT",
    "DEFAULT_MAX_REPEATS",
    "DEFAULT_MAX_RESULT_BYTES",
    "MAX_DETAIL_CHARS",
    "SCHEDULINGS",
    "RunningCall",
    "Scheduling",
    "ToolCallListener",
    "ToolOptions",
    "ToolSpec",
    "tool_options_of",
]

Scheduling = Literal["INTERRUPT", "WHEN_IDLE", "SILENT"]
"""How Gemini Live treats a NON_BLOCKING tool's result: cut in, wait until idle, or just take it."""

SCHEDULINGS: tuple[str, ...] = ("INTERRUPT", "WHEN_IDLE", "SILENT")

ToolCallListener = Callable[[ToolCallEvent], None]
"""Called synchronously, from the tool's own task, once per finished call."""

DEFAULT_MAX_RESULT_BYTES = 16 * 1024
"""Largest result, as UTF-8 JSON, handed to the model; more only fills its context window."""

DEFAULT_MAX_REPEATS = 3
"""Identical calls (same name and arguments) allowed per user turn before the next is refused."""

BACKSTOP_GRACE_SECS = 2.0
"""Pipecat's own per-tool deadline is set this much later than ours, so ours fires first and
answers the model; Pipecat's only catches a tool that ignores its cancellation."""

MAX_DETAIL_CHARS = 300
"""Longest validation message quoted to the model (it may quote a long argument back)."""

CANCELLED_RESULT: dict[str, str] = {"error": "cancelled"}
"""What the model is told about a call cancelled through `ToolRegistry.cancel`."""


class ToolOptions(NamedTuple):
    """A tool function's Pipecat call options, as `@tool_options` left them (or the defaults)."""

    cancel_on_interruption: bool
    timeout_secs: float | None
    cancellable_by_llm: bool


def tool_options_of(function: Callable[..., Any]) -> ToolOptions:
    """The options `@tool_options` put on ``function``, or Pipecat's defaults where it put none.

    Pipecat keeps them in ``_pipecat_*`` attributes and has no public reader; the names are on
    the Pipecat contract (`bots.gemini_live.pipecat_contract`).
    """
    cancel = getattr(function, "_pipecat_cancel_on_interruption", None)
    timeout = getattr(function, "_pipecat_timeout_secs", None)
    cancellable = getattr(function, "_pipecat_cancellable_by_llm", None)
    return ToolOptions(
        cancel_on_interruption=True if cancel is None else bool(cancel),
        timeout_secs=timeout,
        cancellable_by_llm=bool(cancellable),
    )


@dataclass(frozen=True)
class ToolSpec:
    """One wrapped tool and the options the registry and the processor act on.

    Attributes:
        name: The tool's name as the model sees it (the function's ``__name__``).
        function: The original direct function.
        timeout_secs: The registry's deadline for one call; None means no deadline.
        show_arguments: Whether the arguments may be shown in the browser.
        scheduling: For a NON_BLOCKING tool, how Gemini should treat its results; None leaves
            Pipecat's choice (WHEN_IDLE, or SILENT for a result sent with ``run_llm=False``).
        cancel_on_interruption: Pipecat's option; False makes the tool NON_BLOCKING.
        schema: The JSON schema of the arguments, as Pipecat declares them, closed to
            additional properties.
        validator: ``schema``, compiled once for every call.
    """

    name: str
    function: DirectFunction
    timeout_secs: float | None
    show_arguments: bool
    scheduling: Scheduling | None
    cancel_on_interruption: bool
    schema: dict[str, Any]
    validator: Draft202012Validator = field(repr=False, compare=False)


@dataclass(frozen=True)
class RunningCall:
    """A call whose function is running now (see `ToolRegistry.running`)."""

    call_id: str
    name: str
    cancel_on_interruption: bool
    started_at: float
