"""The checks a call passes before its function runs and before its result reaches the model.

Each is a plain function of its inputs, so the registry's bookkeeping stays apart from what it
refuses and why; every message here is written for the model to read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from loguru import logger
from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper

from toolcalls.spec import MAX_DETAIL_CHARS, ToolSpec

__all__ = ["RepeatCounter", "arguments_schema", "invalid_arguments", "unsendable_result"]


def arguments_schema(wrapper: DirectFunctionWrapper) -> dict[str, Any]:
    """The JSON schema Pipecat declares for the function, closed to additional properties."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": wrapper.properties,
        "required": wrapper.required,
        "additionalProperties": False,
    }
    Draft202012Validator.check_schema(schema)
    return schema


def invalid_arguments(spec: ToolSpec, arguments: Mapping[str, Any]) -> str | None:
    """A message for the model when the arguments do not fit the declared schema."""
    error = best_match(spec.validator.iter_errors(dict(arguments)))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    detail = f"{where}: {error.message}" if where else error.message
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 3] + "..."
    return f"Invalid arguments for {spec.name}: {detail}"


def unsendable_result(name: str, result: Any, max_bytes: int) -> str | None:
    """Why ``result`` cannot go to the model (not JSON, or too large), or None."""
    try:
        encoded = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return f"The tool {name} returned a result that is not JSON."
    size = len(encoded.encode("utf-8"))
    if size > max_bytes:
        return (
            f"The tool {name} returned a result that is too large "
            f"({size} bytes; the limit is {max_bytes})."
        )
    return None


class RepeatCounter:
    """Counts identical calls (same name and arguments) within one user turn.

    Args:
        max_repeats: Identical calls allowed in one turn; the next one is refused.
    """

    def __init__(self, max_repeats: int) -> None:
        self._max = max_repeats
        # Emptied at every user turn, so it holds at most one turn's calls.
        self._counts: Counter[tuple[str, str]] = Counter()

    def clear(self) -> None:
        """Start a new user turn."""
        self._counts.clear()

    def refusal(self, name: str, arguments: Mapping[str, Any]) -> str | None:
        """Count this call; a message for the model when it is one repeat too many."""
        key = (name, json.dumps(arguments, sort_keys=True, default=repr))
        self._counts[key] += 1
        count = self._counts[key]
        if count <= self._max:
            return None
        logger.warning(f"Refusing call #{count} of {name} with the same arguments this turn")
        return (
            f"Refusing to repeat {name} with the same arguments: it was already called "
            f"{count - 1} times this turn. Use the results you have, or ask the user."
        )
