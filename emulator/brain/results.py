"""Tool results read back in words, every value included.

A test proves that a result reached the model by finding its values in what the model says, so
nothing the client returned may be left out, and numbers are said as `str(n)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from emulator.brain.arithmetic import spoken_expression
from emulator.brain.operations import find_arithmetic
from emulator.brain.text import utterance
from emulator.brain.types import Say

_WRAPPER_KEYS: Final = frozenset({"output", "result", "response", "content", "data"})


def _scalar_text(value: Any) -> str:
    """A scalar as it is spoken; strings verbatim, numbers as ``str``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _flatten(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every scalar in a result with the keys that lead to it; list items share their key."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flatten(v, (*path, str(k)))]
    if isinstance(value, list | tuple | set | frozenset):
        return [pair for item in value for pair in _flatten(item, path)]
    return [(path, _scalar_text(value))]


def _render_pairs(pairs: Sequence[tuple[tuple[str, ...], str]]) -> str:
    """ "city Paris, temperature 21"; list items under one key: "tags a, b"."""
    groups: list[tuple[tuple[str, ...], list[str]]] = []
    for path, text in pairs:
        if groups and groups[-1][0] == path:
            groups[-1][1].append(text)
        else:
            groups.append((path, [text]))
    parts = []
    for path, texts in groups:
        label = " ".join(key.replace("_", " ") for key in path).strip()
        values = ", ".join(texts)
        parts.append(f"{label} {values}" if label else values)
    return ", ".join(parts)


def _sentence(text: str) -> str:
    """End with a full stop unless the text already ends a sentence (values stay verbatim)."""
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _unwrap(response: Any) -> Any:
    """{"output": {...}} -> {...}: Gemini clients often wrap the real result once."""
    while (
        isinstance(response, dict)
        and len(response) == 1
        and str(next(iter(response))).lower() in _WRAPPER_KEYS
        and isinstance(next(iter(response.values())), dict)
    ):
        response = next(iter(response.values()))
    return response


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _plural(count: Any, word: str) -> str:
    return f"{_scalar_text(count)} {word}" + ("" if count == 1 else "s")


class _Fields:
    """A result's keys, found case-insensitively; each value is said once, so keys get used up."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self.data = data
        self.by_lower = {str(k).lower(): k for k in data}
        self.used: list[Any] = []

    def find(self, candidates: Sequence[str], kinds: tuple[type, ...] | None = None) -> Any:
        """The first candidate key present (with a scalar of one of ``kinds``), or None."""
        for candidate in candidates:
            key = self.by_lower.get(candidate)
            if key is None or key in self.used:
                continue
            value = self.data[key]
            if kinds is None and not _is_scalar(value):
                continue
            if kinds is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
                continue
            return key
        return None

    def use(self, key: Any) -> Any:
        """The value under ``key``, which is then said."""
        self.used.append(key)
        return self.data[key]

    def take(self, *candidates: str) -> str | None:
        """The first scalar candidate present, as spoken, or None."""
        key = self.find(candidates)
        return None if key is None else _scalar_text(self.use(key))

    def unused(self) -> list[tuple[tuple[str, ...], str]]:
        return _flatten({k: v for k, v in self.data.items() if k not in self.used})


def _error(name: str, fields: _Fields, user_text: str) -> str | None:
    key = fields.by_lower.get("error")
    if key is None or fields.data[key] in (None, "", False, [], {}):
        return None
    return _sentence(f"Sorry, {name} failed: {_render_pairs(_flatten(fields.use(key)))}")


def _time(name: str, fields: _Fields, user_text: str) -> str | None:
    key = fields.find(("time", "current_time", "local_time", "datetime", "current_datetime"))
    if key is None:
        return None
    time = fields.use(key)
    place = fields.take("place", "city", "location", "name")
    zone = fields.take("timezone", "time_zone", "tz", "zone")
    if place is not None and zone is not None:
        where = f" in {place} ({zone})"
    elif place is not None or zone is not None:
        where = f" in {place if place is not None else zone}"
    else:
        where = ""
    said = f"The current time{where} is {_scalar_text(time)}."
    when = [v for v in (fields.take("weekday", "day"), fields.take("date")) if v is not None]
    if when:
        said += f" It is {', '.join(when)}."
    offset = fields.take("utc_offset", "offset")
    if offset is not None:
        said += f" The UTC offset is {offset}."
    return said


def _weather(name: str, fields: _Fields, user_text: str) -> str | None:
    temperature_key = fields.find(("temperature", "temp", "temperature_c", "temperature_f"))
    condition_key = fields.find(
        ("condition", "conditions", "description", "summary", "sky", "weather")
    )
    if temperature_key is None or condition_key is None:
        return None
    temperature = _scalar_text(fields.use(temperature_key))
    condition = _scalar_text(fields.use(condition_key))
    place, unit = fields.take("place", "city", "location"), fields.take("unit", "units")
    degrees = f"{temperature} {unit}" if unit is not None else f"{temperature} degrees"
    where = f"In {place} it is" if place is not None else "It is"
    return f"{where} {condition} and {degrees}."


def _found(name: str, fields: _Fields, user_text: str) -> str | None:
    key = next(
        (
            fields.by_lower[k]
            for k in ("notes", "items", "memories", "matches", "results")
            if k in fields.by_lower and isinstance(fields.data[fields.by_lower[k]], list)
        ),
        None,
    )
    if key is None:
        return None
    items = [_render_pairs(_flatten(item)) for item in fields.use(key)]
    said = (
        _sentence("Here is what I found: " + "; ".join(items))
        if items
        else "I found nothing that matches."
    )
    total = fields.take("total", "count")
    if total is not None:
        said += f" There are {total} in all; these are the latest."
    return said


def _calculated(name: str, fields: _Fields, user_text: str) -> str | None:
    key = fields.find(("result", "value", "answer", "total"), (int, float))
    if key is None:
        return None
    shown = _scalar_text(fields.use(key))
    expression = fields.take("expression", "expr", "formula", "equation", "calculation")
    if expression is not None:
        return f"{expression} is {shown}."
    utt = utterance(user_text)
    node = find_arithmetic(utt.tokens, utt.breaks) if user_text else None
    if node is not None:
        spoken = spoken_expression(node)
        return f"{spoken[0].upper()}{spoken[1:]} is {shown}."
    return f"The result is {shown}."


def _saved(name: str, fields: _Fields, user_text: str) -> str | None:
    key = fields.find(("saved", "note", "text", "fact"), (str,))
    if key is None:
        return None
    said = _sentence(f"Okay, I'll remember that {_scalar_text(fields.use(key))}")
    count_key = fields.find(("count", "total"), (int,))
    if count_key is not None:
        said += f" You have {_plural(fields.use(count_key), 'note')} saved now."
    return said


def _forgotten(name: str, fields: _Fields, user_text: str) -> str | None:
    key = fields.find(("forgotten", "deleted", "removed"), (int,))
    if key is None:
        return None
    count = fields.use(key)
    return (
        f"Done, I forgot {_plural(count, 'note')}."
        if count
        else ("I forgot 0 notes: none of them matched.")
    )


_READERS: Final[tuple[Callable[[str, _Fields, str], str | None], ...]] = (
    _error,
    _time,
    _weather,
    _found,
    _calculated,
    _saved,
    _forgotten,
)
"""The kinds of result that get a sentence of their own, tried in this order."""


def _describe_result(name: str, response: Any, user_text: str) -> str:
    """One tool's result in words, every value included; see :func:`respond_to_tool_results`."""
    data = _unwrap(response)
    if not isinstance(data, dict):
        pairs = _flatten(data)
        if not pairs:
            return f"The {name} tool finished without returning anything."
        return _sentence(f"Here is what {name} returned: {_render_pairs(pairs)}")
    fields = _Fields(data)
    for reader in _READERS:
        said = reader(name, fields, user_text)
        if said is not None:
            rest = fields.unused()
            return said + (" " + _sentence(f"Also: {_render_pairs(rest)}") if rest else "")
    return _sentence(f"Here is what {name} returned: {_render_pairs(_flatten(data))}")


def respond_to_tool_results(results: Sequence[tuple[str, Any]], *, user_text: str = "") -> Say:
    """What the model says once the client has answered its tool calls.

    Every scalar in the results is said, strings verbatim and numbers as ``str(n)`` (``True``
    as "yes", ``None`` as "nothing"), so a test can prove that a result reached the model.

    Args:
        results: ``(function name, response)`` pairs, the response as the client sent it:
            usually a dict such as ``{"time": "22:15", "timezone": "Asia/Tokyo"}``,
            ``{"expression": "12 * 7", "result": 84}`` or ``{"error": "..."}``.
        user_text: The question that led to the calls, if known; "What is twelve times
            seven?" makes ``{"result": 84}`` read "12 times 7 is 84."

    Returns:
        One :class:`Say` covering all results in order.
    """
    if not results:
        return Say("The tools returned nothing.")
    return Say(" ".join(_describe_result(name, response, user_text) for name, response in results))
