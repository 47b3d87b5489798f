"""Number words: "one hundred and five", "three point five", "a thousand", "2 million".

Speech recognisers write numbers either way, so both spellings read as the same exact value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Final

from emulator.brain.text import token_at, utterance

_UNITS: Final = {
    w: n for n, w in enumerate("one two three four five six seven eight nine".split(), 1)
}
_TEENS: Final = {
    w: n
    for n, w in enumerate(
        "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split(),
        10,
    )
}
_TENS: Final = {
    w: 10 * n
    for n, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
}
_SCALES: Final = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_DIGIT_WORDS: Final = {"zero": 0, **_UNITS}
_NUMERAL_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+")


def _below_hundred(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """ "seven", "fifteen", "forty", "forty two" at ``i``: (value, index after)."""
    word = token_at(tokens, i)
    if word in _TENS:
        unit = _UNITS.get(token_at(tokens, i + 1))
        return (_TENS[word] + unit, i + 2) if unit else (_TENS[word], i + 1)
    if word in _TEENS:
        return _TEENS[word], i + 1
    if word in _UNITS:
        return _UNITS[word], i + 1
    return None


def _below_thousand(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """ "a hundred", "three hundred (and) six", "twelve hundred", "ninety": (value, index after)."""
    if token_at(tokens, i) == "a" and token_at(tokens, i + 1) == "hundred":
        value, j = 100, i + 2
    else:
        first = _below_hundred(tokens, i)
        if first is None:
            return None
        value, j = first
        if token_at(tokens, j) != "hundred":
            return value, j
        value, j = value * 100, j + 1
    k = j + 1 if token_at(tokens, j) == "and" else j
    rest = _below_hundred(tokens, k)
    return (value + rest[0], rest[1]) if rest else (value, j)


def _integer_words(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """A whole number in words, scales in decreasing order ("two million and five")."""
    total, last_scale, j, found = 0, 10**18, i, False
    while True:
        if token_at(tokens, j) == "a" and token_at(tokens, j + 1) in _SCALES:
            group: tuple[int, int] | None = (1, j + 1)
        else:
            group = _below_thousand(tokens, j)
        if group is None:
            break
        value, k = group
        scale = _SCALES.get(token_at(tokens, k))
        found = True
        if scale is not None and scale < last_scale:
            total, last_scale, j = total + value * scale, scale, k + 1
            if token_at(tokens, j) == "and" and _below_thousand(tokens, j + 1) is not None:
                j += 1
            continue
        total, j = total + value, k
        break
    return (total, j) if found else None


def number_at(tokens: Sequence[str], i: int) -> tuple[Fraction, int] | None:
    """An unsigned number at ``i``, in digits ("1000", "3.5", "2 million") or words."""
    word = token_at(tokens, i)
    if _NUMERAL_RE.fullmatch(word):
        value, j = Fraction(word), i + 1
        if token_at(tokens, j) in _SCALES:
            value, j = value * _SCALES[tokens[j]], j + 1
        return value, j
    if word == "zero":
        value, j = Fraction(0), i + 1
    else:
        whole = _integer_words(tokens, i)
        if whole is None:
            return None
        value, j = Fraction(whole[0]), whole[1]
    if token_at(tokens, j) == "point" and token_at(tokens, j + 1) in _DIGIT_WORDS:
        digits, k = "", j + 1
        while token_at(tokens, k) in _DIGIT_WORDS:
            digits, k = digits + str(_DIGIT_WORDS[tokens[k]]), k + 1
        value, j = value + Fraction(int(digits), 10 ** len(digits)), k
    return value, j


def to_python(value: Fraction | float) -> int | float:
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else float(value)
    return value


def parse_number(text: str) -> int | float | None:
    """Read a whole transcript as one number: "one hundred and five" -> 105.

    Args:
        text: Number words as a speech recogniser writes them ("twenty-one", "minus seven",
            "three point five", "a thousand") or digits ("1,000").

    Returns:
        The number (an ``int`` when whole), or ``None`` if the text is not exactly one number.
    """
    tokens = utterance(text).tokens
    sign, i = 1, 0
    if token_at(tokens, 0) in ("minus", "negative", "-"):
        sign, i = -1, 1
    found = number_at(tokens, i)
    if found is None or found[1] != len(tokens):
        return None
    return to_python(sign * found[0])
