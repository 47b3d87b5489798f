"""Tool matching: which declared tool fits an intent, and which parameter takes the words.

Tools are picked by what their names and descriptions mention, never by exact name, so a test may
declare `get_time` and the bot `get_current_time` and both are called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from emulator.brain.text import word_list
from emulator.brain.types import CallTools, ToolDecl
from emulator.brain.wording import NON_BLOCKING_PREAMBLE


@dataclass(frozen=True)
class ToolKind:
    """Keywords that pick a tool for an intent ("calc*" matches any word starting "calc").

    Attributes:
        positive: Words in the tool's name (weight 3) or description (weight 1) that fit.
        negative: Words in the tool's name that mean another job ("recall" for remembering):
            a tool whose name has as many of these as of the positive words is skipped.
        required: At least one of these must appear in the name or description.
    """

    positive: tuple[str, ...]
    negative: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


TIME_TOOL: Final = ToolKind(
    positive=("time", "clock", "timezone", "timezones", "datetime", "hour", "hours"),
    negative=("weather", "forecast", "timer", "alarm", "reminder"),
)
WEATHER_TOOL: Final = ToolKind(
    positive=("weather", "forecast*", "temperature*", "climate"), negative=("time", "clock")
)
CALC_TOOL: Final = ToolKind(
    positive=("calc*", "math*", "arithmetic*", "expression*", "eval*", "comput*"),
    required=("calc*", "math*", "arithmetic*", "expression*", "eval*"),
)
REMEMBER_TOOL: Final = ToolKind(
    positive=word_list("remember save store note notes memori* memoris* add write record memory"),
    negative=word_list(
        "recall forget delete remove clear list search find get read erase lookup query retrieve "
        "fetch"
    ),
    required=word_list("remember note notes save store memori* memoris* memory record"),
)
RECALL_TOOL: Final = ToolKind(
    positive=word_list(
        "recall notes note list search retrieve read find lookup memory memories get remembered "
        "query fetch"
    ),
    negative=word_list("remember save store add forget delete remove clear erase write record"),
    required=word_list("recall note notes memory memories remember*"),
)
FORGET_TOOL: Final = ToolKind(
    positive=word_list("forget delete clear remove erase wipe reset note notes memory memories"),
    negative=word_list("remember save store add recall list search get read"),
    required=word_list("forget delete clear remove erase wipe"),
)

_IDENTIFIER_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def identifier_words(name: str) -> list[str]:
    """``get_currentTime`` -> ["get", "current", "time"]."""
    return [word.lower() for word in _IDENTIFIER_WORD_RE.findall(name)]


def _keyword_hit(word: str, keywords: Iterable[str]) -> bool:
    for keyword in keywords:
        if keyword.endswith("*"):
            if word.startswith(keyword[:-1]):
                return True
        elif word == keyword:
            return True
    return False


def find_tool(tools: Sequence[ToolDecl], kind: ToolKind) -> ToolDecl | None:
    """The declared tool that best fits, by name first and description second."""
    best: ToolDecl | None = None
    best_score = 0
    for tool in tools:
        name_words = identifier_words(tool.name)
        description_words = set(re.findall(r"[a-z]+", tool.description.lower()))
        positive = sum(_keyword_hit(w, kind.positive) for w in name_words)
        negative = sum(_keyword_hit(w, kind.negative) for w in name_words)
        if negative and positive <= negative:
            continue
        every_word = set(name_words) | description_words
        if kind.required and not any(_keyword_hit(w, kind.required) for w in every_word):
            continue
        described = sum(_keyword_hit(w, kind.positive) for w in description_words)
        score = 3 * positive + min(described, 3)
        if score > best_score:
            best, best_score = tool, score
    return best


def _properties(tool: ToolDecl) -> list[tuple[str, dict[str, Any]]]:
    schema = tool.parameters or {}
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return []
    return [(str(k), v if isinstance(v, dict) else {}) for k, v in properties.items()]


def required_params(tool: ToolDecl) -> frozenset[str]:
    schema = tool.parameters or {}
    required = schema.get("required") if isinstance(schema, dict) else None
    return frozenset(str(r) for r in required) if isinstance(required, list) else frozenset()


def _is_string(schema: dict[str, Any]) -> bool:
    """JSON-schema "string" or OpenAPI "STRING"; an untyped scalar counts as a string too."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind.lower() == "string"
    if isinstance(kind, list):
        return any(isinstance(k, str) and k.lower() == "string" for k in kind)
    return kind is None and "properties" not in schema and "items" not in schema


def name_fits(name: str, hint: str) -> bool:
    if len(hint) <= 2:  # "tz", "q": whole words only, or "q" would match "unique"
        return hint in identifier_words(name)
    return hint in name.lower()


PLACE_HINTS: Final = word_list(
    "city location place timezone zone tz town region country where area locality"
)
EXPRESSION_HINTS: Final = word_list(
    "expression expr formula equation calculation problem math input query"
)
NOTE_HINTS: Final = word_list("text note fact content memory value body message info data")
QUERY_HINTS: Final = word_list("query topic search keyword term subject about key filter q text")


def pick_param(tool: ToolDecl, hints: Sequence[str], *, any_string: bool) -> str | None:
    """The string parameter that should take the user's words.

    The first one whose name fits a hint, else the first required one, else (when
    ``any_string``) the first one at all; ``None`` if there is none.
    """
    strings = [name for name, schema in _properties(tool) if _is_string(schema)]
    for name in strings:
        if any(name_fits(name, hint) for hint in hints):
            return name
    required = required_params(tool)
    for name in strings:
        if name in required:
            return name
    return strings[0] if any_string and strings else None


def calls_to(
    tool: ToolDecl, calls: list[tuple[str, dict[str, Any]]], preamble: str = ""
) -> CallTools:
    """Calls to one tool; a non-blocking tool gets a preamble, as the model keeps talking."""
    spoken = (preamble or NON_BLOCKING_PREAMBLE) if tool.non_blocking else ""
    return CallTools(calls=calls, preamble=spoken)
