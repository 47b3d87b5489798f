"""Every private Pipecat name the project relies on, what it expects of it, and why.

Pipecat 1.14 has no public hook for several things the Gemini Live stage must do (own the
connection, see every send, cancel particular tool calls); where it has one, the stage uses
it. The names below are what is left. Any Pipecat release may rename or reshape them, so
`check()` compares each entry with the installed Pipecat, and `tests/test_pipecat_contract.py`
fails, naming the symbol, when one no longer matches; that test also scans the project for
private Pipecat names missing from this list.

Behaviour the stage relies on without a name of its own is noted where it is used (for
example, that of Pipecat's own cancellations only its deadline asks for inference).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.processors.frameworks.rtvi.processor import RTVIProcessor
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService, GeminiLiveLLMSettings
from pipecat.services.llm_service import LLMService
from pipecat.utils.base_object import BaseObject

Use = Literal["overrides", "calls", "writes", "reads"]


@dataclass(frozen=True, kw_only=True)
class _Entry:
    """How the project uses one private name, and why.

    Attributes:
        use: Overrides, calls, writes or reads it.
        reason: Why no public API does instead.
        where: The project modules that use it.
    """

    use: Use
    reason: str
    where: tuple[str, ...]


@dataclass(frozen=True)
class Method(_Entry):
    """A private method, with its parameters as `parameters()` renders them.

    Attributes:
        owner: The Pipecat class that defines it (or a subclass that inherits it).
        name: The method's name.
        parameters: Its parameters: names, ``*`` before keyword-only ones, ``name=default``.
        coroutine: Whether it is ``async``.
    """

    owner: type
    name: str
    parameters: tuple[str, ...]
    coroutine: bool

    @property
    def symbol(self) -> str:
        return f"{self.owner.__name__}.{self.name}"


@dataclass(frozen=True)
class Attribute(_Entry):
    """A private attribute of an object Pipecat builds.

    Attributes:
        subject: Builds the object to look at.
        label: How the object is named in messages, e.g. ``GeminiLiveLLMService()``.
        name: The attribute's name.
        expected: What its value must be an instance of (right after `subject` built it).
    """

    subject: Callable[[], object]
    label: str
    name: str
    expected: type | tuple[type, ...]

    @property
    def symbol(self) -> str:
        return f"{self.label}.{self.name}"


Entry = Method | Attribute


def _service() -> GeminiLiveLLMService:
    return GeminiLiveLLMService(
        api_key="contract-check",
        settings=GeminiLiveLLMSettings(model="models/gemini-3.1-flash-live-preview"),
    )


async def _tool(params: Any) -> None:
    """A tool, to see where `@tool_options` puts its options."""


def _decorated() -> object:
    return tool_options(
        _tool, cancel_on_interruption=False, timeout_secs=1.5, cancellable_by_llm=True
    )


_STAGE = ("bots.gemini_live.service",)
_TOOL_OPTIONS = (
    "Pipecat has no public reader of a tool's `@tool_options`; the registry and the model "
    "adapter read them to wrap a tool with the same options (and write them with "
    "`tool_options` itself)"
)

CONTRACT: tuple[Entry, ...] = (
    Method(
        GeminiLiveLLMService,
        "_connect",
        ("self", "session_resumption_handle=None"),
        coroutine=True,
        use="overrides",
        reason=(
            "Pipecat builds the setup message here and starts the connection task with it; "
            "the stage lets it build the setup once the tools are registered (Pipecat connects "
            "in setup(), before start() registers them, and they would be declared blocking)"
        ),
        where=_STAGE,
    ),
    Method(
        GeminiLiveLLMService,
        "_connection_task_handler",
        ("self", "config"),
        coroutine=True,
        use="overrides",
        reason=(
            "the task Pipecat runs a connection in, given the setup; the stage's supervisor "
            "runs there instead (retries with backoff, goAway switch, fresh sessions)"
        ),
        where=_STAGE,
    ),
    Method(
        GeminiLiveLLMService,
        "_create_initial_response",
        ("self", "for_reconnect=False"),
        coroutine=True,
        use="overrides",
        reason=(
            "Pipecat's seeding of the conversation; the stage defers it until a socket is "
            "usable, sends it ahead of queued input, and calls it to seed a fresh session"
        ),
        where=_STAGE,
    ),
    Method(
        GeminiLiveLLMService,
        "_tool_result",
        (
            "self",
            "tool_call_id",
            "tool_name",
            "tool_result_message",
            "*",
            "is_final=True",
            "spoken=True",
        ),
        coroutine=True,
        use="overrides",
        reason=(
            "every tool response goes out here: one answer per call, none to a call Gemini "
            "cancelled, and INTERRUPT scheduling, which Pipecat writes over with WHEN_IDLE"
        ),
        where=_STAGE,
    ),
    Method(
        GeminiLiveLLMService,
        "_handle_server_message",
        ("self", "message"),
        coroutine=True,
        use="calls",
        reason=(
            "Pipecat's handling of one server message; the stage's receive loop hands it each "
            "message, and a turnComplete for an answer cut off with its socket"
        ),
        where=("bots.gemini_live.messages", *_STAGE),
    ),
    Method(
        GeminiLiveLLMService,
        "_handle_interruption",
        ("self",),
        coroutine=True,
        use="calls",
        reason=(
            "Pipecat broadcasts a server `interrupted` away from the service, so its own "
            "end-of-answer cleanup never runs unless called"
        ),
        where=("bots.gemini_live.messages",),
    ),
    Method(
        GeminiLiveLLMService,
        "_send_user_text",
        ("self", "text"),
        coroutine=True,
        use="calls",
        reason=(
            "how Pipecat sends an `InputTextRawFrame` as realtime text; RTVI `send-text` (text "
            "typed in the page) only appends to the context, which the service does not send "
            "after its first one, so the stage sends the `RTVISendTextFrame` that follows the "
            "same way (an `InputTextRawFrame` would go on to the TTS and be spoken)"
        ),
        where=_STAGE,
    ),
    Method(
        LLMService,
        "_cancel_function_call_tasks",
        ("self", "predicate", "*", "reason", "run_llm=False"),
        coroutine=True,
        use="calls",
        reason=(
            "the only way to cancel particular running calls (Gemini's ids, or those that "
            "cancel on interruption); the public `cancel_function_calls` cancels every call"
        ),
        where=("bots.gemini_live.tool_calls",),
    ),
    Method(
        BaseObject,
        "_register_event_handler",
        ("self", "event_name", "sync=False"),
        coroutine=False,
        use="calls",
        reason=(
            "declares `on_tool_calls_cancelled_by_model`, as every Pipecat service declares "
            "its events"
        ),
        where=_STAGE,
    ),
    Method(
        BaseObject,
        "_call_event_handler",
        ("self", "event_name", "*args", "**kwargs"),
        coroutine=True,
        use="calls",
        reason="fires `on_tool_calls_cancelled_by_model`",
        where=("bots.gemini_live.tool_calls",),
    ),
    Method(
        RTVIProcessor,
        "_send_error_frame",
        ("self", "frame"),
        coroutine=True,
        use="overrides",
        reason=(
            "RTVI fills `fatal` from the deprecated `ErrorFrame.fatal` only; the bots report "
            "an error of a processor that can no longer work (which ends the session) as fatal"
        ),
        where=("processors.rtvi_errors",),
    ),
    Attribute(
        _service,
        "GeminiLiveLLMService()",
        "_session",
        type(None),
        use="writes",
        reason=(
            "every send of Pipecat's service goes through it (and is dropped while it is None); "
            "the stage puts the outbox's stand-in for the SDK session there"
        ),
        where=_STAGE,
    ),
    Attribute(
        _service,
        "GeminiLiveLLMService()",
        "_ready_for_realtime_input",
        bool,
        use="writes",
        reason=(
            "Pipecat drops microphone audio, video and text until the first seed is sent; the "
            "stage sets it so that the outbox holds them instead (the resilience benchmark "
            "reads it: Pipecat's own service has no public sign that it takes input)"
        ),
        where=(*_STAGE, "bench.resilience_bench"),
    ),
    *(
        Attribute(
            _decorated,
            "@tool_options",
            name,
            expected,
            use="reads",
            reason=_TOOL_OPTIONS,
            where=("toolcalls.spec",),
        )
        for name, expected in (
            ("_pipecat_cancel_on_interruption", bool),
            ("_pipecat_timeout_secs", float),
            ("_pipecat_cancellable_by_llm", bool),
        )
    ),
)
"""The contract: every private Pipecat name the project overrides, calls, writes or reads."""


def parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    """A function's parameters as the contract writes them: ``name``, ``*``, ``name=default``."""
    rendered: list[str] = []
    star = False
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            rendered.append(f"*{parameter.name}")
            star = True
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            rendered.append(f"**{parameter.name}")
            continue
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            rendered.append("*")
            star = True
        if parameter.default is inspect.Parameter.empty:
            rendered.append(parameter.name)
        else:
            rendered.append(f"{parameter.name}={parameter.default!r}")
    return tuple(rendered)


def _check_method(entry: Method) -> list[str]:
    function = inspect.getattr_static(entry.owner, entry.name, None)
    if function is None:
        return [f"{entry.symbol}: missing"]
    function = getattr(entry.owner, entry.name)
    problems = []
    if not callable(function):
        return [f"{entry.symbol}: not a method"]
    if inspect.iscoroutinefunction(function) != entry.coroutine:
        wanted = "a coroutine function" if entry.coroutine else "a plain function"
        problems.append(f"{entry.symbol}: expected {wanted}")
    found = parameters(function)
    if found != entry.parameters:
        problems.append(
            f"{entry.symbol}: expected ({', '.join(entry.parameters)}), found ({', '.join(found)})"
        )
    return problems


def _check_attribute(entry: Attribute) -> list[str]:
    try:
        subject = entry.subject()
    except Exception as exc:
        return [f"{entry.symbol}: could not build {entry.label}: {exc!r}"]
    if not hasattr(subject, entry.name):
        return [f"{entry.symbol}: missing"]
    value = getattr(subject, entry.name)
    if not isinstance(value, entry.expected):
        return [f"{entry.symbol}: expected {entry.expected!r}, found {type(value).__name__}"]
    return []


def check(entries: tuple[Entry, ...] = CONTRACT) -> list[str]:
    """What no longer matches the installed Pipecat, one line per problem, naming the symbol."""
    problems: list[str] = []
    for entry in entries:
        if isinstance(entry, Method):
            problems += _check_method(entry)
        else:
            problems += _check_attribute(entry)
    return problems


def names(entries: tuple[Entry, ...] = CONTRACT) -> set[str]:
    """The private names on the contract."""
    return {entry.name for entry in entries}
