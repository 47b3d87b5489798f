"""What the brain reads and what it decides, as plain frozen data.

The session turns wire messages into these and these back into wire messages, so the brain's rules
can be tested without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolDecl:
    """A function the client declared in its setup, as far as the brain needs to know it.

    Attributes:
        name: The function name the model must call.
        description: Free text; searched for keywords such as "time" or "note".
        parameters: The JSON schema of the arguments (an object with ``properties`` and
            ``required``), in JSON-schema or OpenAPI spelling ("string" or "STRING").
        non_blocking: Declared with ``behavior: NON_BLOCKING``: the model keeps talking while
            the call runs, so the brain says a short preamble.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    non_blocking: bool = False


@dataclass(frozen=True)
class Say:
    """Speak this text as the model's reply."""

    text: str


@dataclass(frozen=True)
class CallTools:
    """Call these functions, in order, instead of (or after) speaking.

    Attributes:
        calls: ``(function name, arguments)`` pairs.
        preamble: Words to say before or while calling; empty for blocking tools, where the
            model stays silent until the results come back.
    """

    calls: list[tuple[str, dict[str, Any]]]
    preamble: str = ""


@dataclass(frozen=True)
class ImageInfo:
    """What the brain knows of the last video frame: its size and mean colour."""

    width: int
    height: int
    mean_rgb: tuple[int, int, int]


Action = Say | CallTools


class ExpressionError(ValueError):
    """The text is not an arithmetic expression the brain can read."""
