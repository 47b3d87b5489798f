"""What a test can make the model do, read the same way from a scenario file and the control API.

A scenario writes `- goaway: {time_left_s: 2}`; a test posts `{"time_left_s": 2}` to
`/emulator/sessions/ID/goaway`. Both name one action, so both are read into the models here and a
bad value is refused in the same words wherever it was written, before it can fail mid-session.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

NonNegative = Annotated[StrictInt | StrictFloat, Field(ge=0, allow_inf_nan=False)]
"""A finite JSON number at least 0; `true`, `"5"`, NaN and infinity are refused rather than read
as 1, 5, or a wait that never ends."""


class ActionError(ValueError):
    """An action that cannot be carried out as written, with the reason in the user's terms."""


class _Action(BaseModel):
    # Unknown keys are ignored, as they always were: a scenario file that names an extra key
    # still loads.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Say(_Action):
    """The model speaks (in TEXT mode, writes) `text` as a model turn of its own."""

    kind: Literal["say"] = "say"
    text: StrictStr


class ToolCall(_Action):
    """The model calls the function `name` with `args`."""

    kind: Literal["tool_call"] = "tool_call"
    name: StrictStr
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("args", mode="before")
    @classmethod
    def _no_args(cls, value: Any) -> Any:
        return value or {}


class CancelToolCalls(_Action):
    """The model gives up on calls it made: `toolCallCancellation` for the `ids` still
    unanswered (all of them when `ids` is omitted); their late answers are ignored."""

    kind: Literal["cancel_tool_calls"] = "cancel_tool_calls"
    ids: list[StrictStr] | None = None


class GoAway(_Action):
    """Send `goAway` with `time_left_s`, then close with 1001 when that time is up."""

    kind: Literal["goaway"] = "goaway"
    time_left_s: NonNegative = 1.0


class Drop(_Action):
    """Cut the TCP connection with no close frame, as a network failure would."""

    kind: Literal["drop"] = "drop"


class Latency(_Action):
    """Delay every later answer of the connection by `first_audio_ms`."""

    kind: Literal["latency"] = "latency"
    first_audio_ms: NonNegative = 0


class Close(_Action):
    """Close the WebSocket with `code` and `reason`."""

    kind: Literal["close"] = "close"
    code: NonNegative = 1011
    reason: StrictStr = ""


class WaitMs(_Action):
    """Pause the scripted actions for `ms` milliseconds."""

    kind: Literal["wait_ms"] = "wait_ms"
    ms: NonNegative


Action = Annotated[
    Say | ToolCall | CancelToolCalls | GoAway | Drop | Latency | Close | WaitMs,
    Field(discriminator="kind"),
]
"""One action, told apart by its `kind`."""

KINDS: Final = (
    "say",
    "tool_call",
    "cancel_tool_calls",
    "goaway",
    "drop",
    "latency",
    "close",
    "wait_ms",
)
"""Every action's name, in the order the documentation lists them."""

_ACTION: Final[TypeAdapter[Action]] = TypeAdapter(Action)

_PROBLEMS: Final = {
    ("say", "text"): "say takes the text to speak.",
    ("tool_call", "name"): "tool_call needs a name (and args).",
    ("tool_call", "args"): "tool_call needs a name (and args).",
    ("cancel_tool_calls", "ids"): "cancel_tool_calls.ids must be a list of call ids.",
    ("close", "reason"): "close.reason must be a string.",
    ("wait_ms", "ms"): "wait_ms takes a number of milliseconds.",
}
"""What to say about a field that is missing or of the wrong kind; other fields are numbers."""


def parse_action(kind: str, fields: Mapping[str, Any]) -> Action:
    """Read one action.

    Args:
        kind: The action's name, one of `KINDS`.
        fields: Its arguments by name, e.g. ``{"time_left_s": 2}`` for ``goaway``.

    Returns:
        The action, its defaults filled in.

    Raises:
        ActionError: The kind is unknown or an argument is missing or out of range; the message
            names the argument, e.g. "goaway.time_left_s must be a non-negative number.".
    """
    if kind not in KINDS:
        raise ActionError(f"unknown action {kind!r}; known: {', '.join(KINDS)}.")
    try:
        return _ACTION.validate_python({**fields, "kind": kind})
    except ValidationError as exc:
        location = exc.errors()[0]["loc"]
        field = str(location[1]) if len(location) > 1 else ""
        problem = _PROBLEMS.get((kind, field), f"{kind}.{field} must be a non-negative number.")
        raise ActionError(problem) from None


@dataclass
class Faults:
    """Connection faults injected through `POST /emulator/faults`."""

    refuse_connections: int = 0
    refuse_until: float = 0.0

    def refusing(self) -> bool:
        if self.refuse_connections > 0:
            self.refuse_connections -= 1
            return True
        return time.monotonic() < self.refuse_until


class FaultsRequest(BaseModel):
    """The body of `POST /emulator/faults`: refuse the next connections, or for a while."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    refuse_connections: NonNegative | None = None
    refuse_for_s: NonNegative | None = None
    reset: StrictBool = False


def parse_faults(body: Mapping[str, Any]) -> FaultsRequest:
    """Read a faults request.

    Raises:
        ActionError: A count or duration is not a non-negative number, or reset not a boolean.
    """
    try:
        return FaultsRequest.model_validate(dict(body))
    except ValidationError:
        raise ActionError(
            "refuse_connections and refuse_for_s must be non-negative numbers, reset true or false."
        ) from None


def finite_non_negative(value: Any) -> bool:
    """A JSON number, finite and at least 0 (`true` is not a number here)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
