"""The emulator's offline "model": deterministic rules from what the user said to what it does.

The emulator has no language model, yet a voice bot built on it must be usable and its tests must
be able to rely on what the "model" answers. So this module maps a transcript to one action, a
spoken reply (:class:`Say`) or tool calls (:class:`CallTools`), with plain rules: same input, same
output, no I/O, no randomness. Tools are chosen by what their declared names and descriptions
mention, never by exact names only, so a test may declare ``get_time`` or ``get_weather`` and the
bot may declare ``get_current_time``; and tool results are read back with every value in them, so
a test can prove that a result reached the model.

What the offline brain understands
----------------------------------
Rules are tried in this order; the first that matches wins. Text is normalised first (lower
case, punctuation dropped, "what's" read as "what is"), so Whisper-style transcripts such as
"What time is it in Tokyo?" and "whats the time in new york" are understood alike.

- An empty or blank turn: the greeting (:func:`greeting`), which uses a name found in the
  system instruction ("You are Ava, ...").
- Explicit tool requests: "call the tool recall_notes", "use get current time for Tokyo"
  (Whisper's "get underscore current underscore time" too) call that declared tool, with the
  words after "for"/"in"/"with" as its string argument, or with no arguments.
- Stories: "tell me a (long) story about X" gets a long deterministic story (13 sentences,
  well over 40 seconds of speech) built around X, long enough to barge in on.
- Vision: "what do you see", "what am I holding", "describe the image/screen", "can you see
  me" (and "what is this" while an image is shared) describe the last frame's size and main
  colour ("I can see a 640 by 480 image that is mostly red."), or say that no camera or screen
  is shared.
- Remembering: "(please) remember that X", "make a note that X", "don't forget that X" call
  the tool that mentions remember / note / save / store with X in the user's own words.
- Time: "what time is it in X", "what's the time in X", "current time in X" call the tool
  that mentions time, with X title-cased ("New York") in its city / location / place /
  timezone parameter (else its first required string parameter); "X and Y" gives two calls.
  Without a place the tool is called bare if that parameter is optional, else the brain asks
  which city, and takes the next turn ("Tokyo", "in Tokyo") as the answer.
- Weather: "what is the weather like in X", "forecast for X" call the tool that mentions
  weather the same way, or say that the weather cannot be checked.
- Forgetting and recalling: "forget X", "delete my notes" call the forget / delete tool (no
  query when "everything" is to go; "forget it" is just "never mind"); "what is my X", "do you
  remember X", "recall X", "what do you remember", "what are my notes" call the recall / list
  / search tool with the topic ("favorite color") as its query.
- Arithmetic, in words or symbols: number words from zero to trillions ("one hundred and
  five", "a thousand", "three point five", "minus four"), digits ("1,000", "3.5"), and
  plus, minus, times, x, multiplied by, divided by, over, to the power of, squared, cubed,
  square root of, percent (of), parentheses. It calls the tool that mentions calc / math /
  arithmetic / expression with a Python-style expression ("12 * 7"; a square root as
  "16 ** 0.5"); without such a tool it computes the answer itself, exactly and without
  ``eval``, and says "12 times 7 is 84."
- "Stop", "wait", "hold on", "never mind" (short turns): a very short acknowledgement.
- Greetings and microphone checks ("Hello, can you hear me?"): a reply that says yes, it can
  hear you.
- Follow-ups, for a turn that no rule above matched: after a time or weather question, "what
  about London?" or "and in Paris?" asks the same for the new place.
- Anything else: an echo, 'You said: "...". I am the local Gemini Live emulator; ...'.
- Calls to a tool declared NON_BLOCKING come with a short preamble ("Let me check that for
  you."), since the model goes on talking; blocking calls come with none.
- Tool results (:func:`respond_to_tool_results`) are read back with every value they hold;
  times, calculator results, saved / recalled / forgotten notes, weather with a condition and
  errors get natural sentences, anything else "Here is what NAME returned: key value, ...".

What it does not
----------------
- Understand language: only the phrasings above are recognised; everything else is echoed.
- Do more than one thing per turn (except one call per place in "X and Y"); a turn that
  mixes two requests gets the first matching rule.
- Know anything itself: the time, the weather and notes always come from the declared tools.
- See: vision reports only the frame's size and average colour, not objects or text.
- Fill tool arguments other than strings: number, boolean and object parameters are left out.
- Follow up on anything but the place of a time or weather question.
- Understand languages other than English, ordinals, fractions in words ("a half"), or years
  read as pairs ("nineteen eighty-four").
- Vary: the same turn always gets the same answer.
"""

from __future__ import annotations

import bisect
import colorsys
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, Final

__all__ = [
    "ASK_TIME_CITY",
    "ASK_WEATHER_CITY",
    "ECHO_TAIL",
    "HEAR_YOU",
    "NO_CAMERA",
    "NO_CLOCK",
    "NO_WEATHER",
    "STOP_ACK",
    "WAIT_ACK",
    "Action",
    "CallTools",
    "ExpressionError",
    "ImageInfo",
    "Say",
    "ToolDecl",
    "colour_name",
    "evaluate_expression",
    "greeting",
    "parse_number",
    "respond",
    "respond_to_tool_results",
    "words_to_expression",
]


# --------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Fixed wording
# --------------------------------------------------------------------------------------------

HEAR_YOU: Final = "Hello! Yes, I can hear you clearly. How can I help you today?"
STOP_ACK: Final = "Okay, I'll stop."
WAIT_ACK: Final = "Sure, I'll wait."
ASK_TIME_CITY: Final = "Which city would you like the time for?"
ASK_WEATHER_CITY: Final = "Which city would you like the weather for?"
NO_CLOCK: Final = "I can't tell the time here, because no clock tool is available to me."
NO_WEATHER: Final = "I can't check the weather, because no weather tool is available to me."
NO_CAMERA: Final = "I can't see anything: no camera or screen is shared with me right now."
NON_BLOCKING_PREAMBLE: Final = "Let me check that for you."
SAVING_PREAMBLE: Final = "Sure, I'm saving that."
ECHO_TAIL: Final = (
    "I am the local Gemini Live emulator; I understand questions about the time, arithmetic, "
    "notes and what the camera sees."
)


# --------------------------------------------------------------------------------------------
# Normalisation: a transcript as lower-case tokens that remember where they came from
# --------------------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """A word list written as one string, to keep long keyword lists readable."""
    return tuple(text.split())


_TOKEN_RE = re.compile(
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)"
    r"|(?P<op>\*\*|[+\-*/×÷^()%=])"
    r"|(?P<stop>[,.;:!?…—–]+)"
)
_HYPHEN_IN_WORD_RE = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")

_CONTRACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "whats": ("what", "is"),
    "cannot": ("can", "not"),
    "can't": ("can", "not"),
    "won't": ("will", "not"),
    "dont": ("do", "not"),
    "let's": ("let", "us"),
    "i'm": ("i", "am"),
}
_IS_BEFORE_S: Final = frozenset(
    "what it that there where who how here he she when why this everything name".split()
)
_SUFFIXES: Final = (
    ("n't", "not"),
    ("'re", "are"),
    ("'ll", "will"),
    ("'ve", "have"),
    ("'d", "would"),
    ("'m", "am"),
)


def _expand(word: str) -> tuple[str, ...]:
    """Split a contraction so rules see "what is" whether Whisper wrote "what's" or "whats"."""
    if word in _CONTRACTIONS:
        return _CONTRACTIONS[word]
    if word.endswith("'s") and word[:-2] in _IS_BEFORE_S:
        return (word[:-2], "is")
    for suffix, full in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            return (word[: -len(suffix)], full)
    return (word,)


@dataclass(frozen=True)
class _Utterance:
    """A normalised transcript.

    Rules match regular expressions against ``text`` (the tokens joined by single spaces);
    ``spans`` lead back to the original wording, so a note is saved as the user said it, and
    ``breaks`` mark the ends of clauses, so a place ends at a comma or full stop.
    """

    original: str
    tokens: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    breaks: tuple[bool, ...]
    text: str
    starts: tuple[int, ...]

    def token_index(self, char: int) -> int:
        """The token that covers character ``char`` of ``text``."""
        return max(0, bisect.bisect_right(self.starts, char) - 1)

    def group_range(self, match: re.Match[str], group: str) -> tuple[int, int] | None:
        """Token range ``[i, j)`` of a named group of a match against ``text``."""
        if match.group(group) is None:
            return None
        start, end = match.span(group)
        if end <= start:
            return None
        return self.token_index(start), self.token_index(end - 1) + 1

    def clause_end(self, i: int) -> int:
        """Index just past the last token of the clause that token ``i`` is in."""
        for k in range(i, len(self.tokens)):
            if self.breaks[k]:
                return k + 1
        return len(self.tokens)

    def original_text(self, i: int, j: int) -> str:
        """The user's own wording of tokens ``[i, j)``, punctuation inside kept."""
        if j <= i:
            return ""
        return self.original[self.spans[i][0] : self.spans[j - 1][1]]


def _utterance(text: str) -> _Utterance:
    """Tokenise a transcript; see :class:`_Utterance`."""
    prepared = text.replace("’", "'").replace("‘", "'").replace("`", "'")
    prepared = _HYPHEN_IN_WORD_RE.sub(" ", prepared)  # same length: spans stay valid
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    breaks: list[bool] = []
    for match in _TOKEN_RE.finditer(prepared):
        kind = match.lastgroup
        if kind == "stop":
            if breaks:
                breaks[-1] = True
            continue
        raw = match.group()
        pieces: tuple[str, ...]
        if kind == "num":
            pieces = (raw.replace(",", ""),)
        elif kind == "word":
            pieces = _expand(raw.lower())
        else:
            pieces = (raw,)
        for piece in pieces:
            tokens.append(piece)
            spans.append(match.span())
            breaks.append(False)
    starts: list[int] = []
    position = 0
    for token in tokens:
        starts.append(position)
        position += len(token) + 1
    return _Utterance(
        original=text,
        tokens=tuple(tokens),
        spans=tuple(spans),
        breaks=tuple(breaks),
        text=" ".join(tokens),
        starts=tuple(starts),
    )


def _trim(tokens: Sequence[str], i: int, j: int, phrases: Iterable[tuple[str, ...]]) -> int:
    """Drop trailing filler phrases ("please", "thank you") from ``tokens[i:j]``; new ``j``."""
    phrases = tuple(phrases)
    changed = True
    while changed and j > i:
        changed = False
        for phrase in phrases:
            n = len(phrase)
            if j - n >= i and tuple(tokens[j - n : j]) == phrase:
                j -= n
                changed = True
                break
    return j


_POLITE_TAIL: Final = (
    ("please",),
    ("thanks",),
    ("thank", "you"),
    ("for", "me"),
    ("okay",),
    ("ok",),
)


# --------------------------------------------------------------------------------------------
# Numbers and arithmetic
# --------------------------------------------------------------------------------------------

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
_MAX_BITS: Final = 3400  # about 1000 decimal digits: enough for any spoken sum, cheap to compute
_MAX_ITEMS: Final = 200
_MAX_DEPTH: Final = 40


def _tok(tokens: Sequence[str], i: int) -> str:
    return tokens[i] if 0 <= i < len(tokens) else ""


def _below_hundred(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """ "seven", "fifteen", "forty", "forty two" at ``i``: (value, index after)."""
    word = _tok(tokens, i)
    if word in _TENS:
        unit = _UNITS.get(_tok(tokens, i + 1))
        return (_TENS[word] + unit, i + 2) if unit else (_TENS[word], i + 1)
    if word in _TEENS:
        return _TEENS[word], i + 1
    if word in _UNITS:
        return _UNITS[word], i + 1
    return None


def _below_thousand(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """ "a hundred", "three hundred (and) six", "twelve hundred", "ninety": (value, index after)."""
    if _tok(tokens, i) == "a" and _tok(tokens, i + 1) == "hundred":
        value, j = 100, i + 2
    else:
        first = _below_hundred(tokens, i)
        if first is None:
            return None
        value, j = first
        if _tok(tokens, j) != "hundred":
            return value, j
        value, j = value * 100, j + 1
    k = j + 1 if _tok(tokens, j) == "and" else j
    rest = _below_hundred(tokens, k)
    return (value + rest[0], rest[1]) if rest else (value, j)


def _integer_words(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """A whole number in words, scales in decreasing order ("two million and five")."""
    total, last_scale, j, found = 0, 10**18, i, False
    while True:
        if _tok(tokens, j) == "a" and _tok(tokens, j + 1) in _SCALES:
            group: tuple[int, int] | None = (1, j + 1)
        else:
            group = _below_thousand(tokens, j)
        if group is None:
            break
        value, k = group
        scale = _SCALES.get(_tok(tokens, k))
        found = True
        if scale is not None and scale < last_scale:
            total, last_scale, j = total + value * scale, scale, k + 1
            if _tok(tokens, j) == "and" and _below_thousand(tokens, j + 1) is not None:
                j += 1
            continue
        total, j = total + value, k
        break
    return (total, j) if found else None


def _number_at(tokens: Sequence[str], i: int) -> tuple[Fraction, int] | None:
    """An unsigned number at ``i``, in digits ("1000", "3.5", "2 million") or words."""
    word = _tok(tokens, i)
    if _NUMERAL_RE.fullmatch(word):
        value, j = Fraction(word), i + 1
        if _tok(tokens, j) in _SCALES:
            value, j = value * _SCALES[tokens[j]], j + 1
        return value, j
    if word == "zero":
        value, j = Fraction(0), i + 1
    else:
        whole = _integer_words(tokens, i)
        if whole is None:
            return None
        value, j = Fraction(whole[0]), whole[1]
    if _tok(tokens, j) == "point" and _tok(tokens, j + 1) in _DIGIT_WORDS:
        digits, k = "", j + 1
        while _tok(tokens, k) in _DIGIT_WORDS:
            digits, k = digits + str(_DIGIT_WORDS[tokens[k]]), k + 1
        value, j = value + Fraction(int(digits), 10 ** len(digits)), k
    return value, j


def _to_python(value: Fraction | float) -> int | float:
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
    tokens = _utterance(text).tokens
    sign, i = 1, 0
    if _tok(tokens, 0) in ("minus", "negative", "-"):
        sign, i = -1, 1
    found = _number_at(tokens, i)
    if found is None or found[1] != len(tokens):
        return None
    return _to_python(sign * found[0])


@dataclass(frozen=True)
class _Num:
    value: Fraction


@dataclass(frozen=True)
class _Unary:
    op: str  # "-" or "sqrt"
    operand: _Node


@dataclass(frozen=True)
class _Bin:
    op: str  # + - * / **
    left: _Node
    right: _Node


_Node = _Num | _Unary | _Bin
_Item = Fraction | str

# Spoken or typed operators, longest first, and the parser items they stand for.
_MATH_PHRASES: Final[tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = tuple(
    sorted(
        [
            (("raised", "to", "the", "power", "of"), ("**",)),
            (("to", "the", "power", "of"), ("**",)),
            (("raised", "to", "the", "power"), ("**",)),
            (("to", "the", "power"), ("**",)),
            (("raised", "to"), ("**",)),
            (("the", "square", "root", "of"), ("sqrt",)),
            (("square", "root", "of"), ("sqrt",)),
            (("square", "root"), ("sqrt",)),
            (("multiplied", "by"), ("*",)),
            (("divided", "by"), ("/",)),
            (("percent", "of"), ("pct", "*")),
            (("per", "cent", "of"), ("pct", "*")),
            (("%", "of"), ("pct", "*")),
            (("per", "cent"), ("pct",)),
            (("percent",), ("pct",)),
            (("%",), ("pct",)),
            (("times",), ("*",)),
            (("x",), ("*",)),
            (("*",), ("*",)),
            (("×",), ("*",)),
            (("over",), ("/",)),
            (("/",), ("/",)),
            (("÷",), ("/",)),
            (("plus",), ("+",)),
            (("+",), ("+",)),
            (("minus",), ("-",)),
            (("negative",), ("-",)),
            (("-",), ("-",)),
            (("**",), ("**",)),
            (("^",), ("**",)),
            (("squared",), ("squared",)),
            (("cubed",), ("cubed",)),
            (("(",), ("(",)),
            ((")",), (")",)),
        ],
        key=lambda phrase: -len(phrase[0]),
    )
)
_VALUE_ENDS: Final = frozenset({")", "squared", "cubed", "pct"})
_BINARY: Final = frozenset({"+", "-", "*", "/", "**"})


def _match_phrase(tokens: Sequence[str], j: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    for words, items in _MATH_PHRASES:
        if tuple(tokens[j : j + len(words)]) == words:
            return words, items
    return None


def _scan_math(tokens: Sequence[str], start: int) -> tuple[list[_Item], int]:
    """The longest run of numbers and operators from ``start``, as parser items."""
    items: list[_Item] = []
    j = start
    while j < len(tokens):
        after_value = bool(items) and (isinstance(items[-1], Fraction) or items[-1] in _VALUE_ENDS)
        number = _number_at(tokens, j)
        if number is not None:
            if after_value:
                break  # "nineteen eighty": two numbers in a row are not arithmetic
            items.append(number[0])
            j = number[1]
            continue
        phrase = _match_phrase(tokens, j)
        if phrase is None:
            break
        words, produced = phrase
        if words == ("x",) and not (
            after_value and (_number_at(tokens, j + 1) is not None or _tok(tokens, j + 1) == "(")
        ):
            break  # "x" is "times" only between two numbers
        items.extend(produced)
        j += len(words)
    return items, j


class _Parser:
    """Recursive descent over parser items, with Python's precedence (``-2 ** 2`` is -4).

    expr := term (("+" | "-") term)*;  term := factor (("*" | "/") factor)*;
    factor := ("-" | "+" | "sqrt") factor | power;  power := postfix ("**" factor)?;
    postfix := atom ("squared" | "cubed" | "pct")*;  atom := number | "(" expr ")".
    """

    def __init__(self, items: Sequence[_Item]) -> None:
        self.items = items
        self.pos = 0
        self.depth = 0

    def _peek(self) -> _Item | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def _take(self) -> _Item | None:
        item = self._peek()
        self.pos += 1
        return item

    def parse(self) -> _Node:
        node = self._expr()
        if self.pos != len(self.items):
            raise ExpressionError(f"unexpected {self._peek()!s}")
        return node

    def _expr(self) -> _Node:
        node = self._term()
        while self._peek() in ("+", "-"):
            node = _Bin(str(self._take()), node, self._term())
        return node

    def _term(self) -> _Node:
        node = self._factor()
        while self._peek() in ("*", "/"):
            node = _Bin(str(self._take()), node, self._factor())
        return node

    def _factor(self) -> _Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExpressionError("the expression is nested too deeply")
        try:
            item = self._peek()
            if item in ("-", "+", "sqrt"):
                self._take()
                operand = self._factor()
                return operand if item == "+" else _Unary(str(item), operand)
            return self._power()
        finally:
            self.depth -= 1

    def _power(self) -> _Node:
        base = self._postfix()
        if self._peek() == "**":
            self._take()
            return _Bin("**", base, self._factor())
        return base

    def _postfix(self) -> _Node:
        node = self._atom()
        while self._peek() in ("squared", "cubed", "pct"):
            item = self._take()
            if item == "pct":
                node = _Bin("/", node, _Num(Fraction(100)))
            else:
                node = _Bin("**", node, _Num(Fraction(2 if item == "squared" else 3)))
        return node

    def _atom(self) -> _Node:
        item = self._take()
        if isinstance(item, Fraction):
            return _Num(item)
        if item == "(":
            node = self._expr()
            if self._take() != ")":
                raise ExpressionError("a parenthesis is not closed")
            return node
        raise ExpressionError("a number is missing" if item is None else f"unexpected {item}")


def _items_to_node(items: list[_Item]) -> _Node | None:
    """Parse a run of items as arithmetic, or ``None`` if it is just a number or not valid."""
    while items and items[-1] in (_BINARY | {"(", "sqrt"}):
        items = items[:-1]
    while items and items[0] in {"*", "/", "**", ")", "squared", "cubed", "pct", "+"}:
        items = items[1:]
    if not items or len(items) > _MAX_ITEMS or not any(isinstance(x, Fraction) for x in items):
        return None
    try:
        node = _Parser(items).parse()
    except ExpressionError:
        return None
    if isinstance(node, _Num) or (
        isinstance(node, _Unary) and node.op == "-" and isinstance(node.operand, _Num)
    ):
        return None  # "five" or "minus five" alone is a number, not a sum to work out
    return node


def _find_expression(tokens: Sequence[str]) -> _Node | None:
    """The first arithmetic expression in a transcript, or ``None``."""
    i = 0
    while i < len(tokens):
        items, end = _scan_math(tokens, i)
        node = _items_to_node(items)
        if node is not None:
            return node
        i = max(end, i + 1)
    return None


_PRECEDENCE: Final = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}


def _precedence(node: _Node) -> int:
    if isinstance(node, _Num):
        return 9
    if isinstance(node, _Unary):
        return 3 if node.op == "-" else 4  # sqrt is written "x ** 0.5"
    return _PRECEDENCE[node.op]


def _literal(value: Fraction) -> str:
    """A number as Python source: "12", "3.5" (parsed numbers always end in decimal)."""
    if value.denominator == 1:
        return str(value.numerator)
    with localcontext() as context:
        context.prec = 60
        text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _code(node: _Node) -> str:
    """The expression as Python-style source with only the parentheses it needs."""
    if isinstance(node, _Num):
        return _literal(node.value)
    if isinstance(node, _Unary):
        inner = _code(node.operand)
        if node.op == "-":
            return f"-({inner})" if _precedence(node.operand) < 3 else f"-{inner}"
        return f"({inner}) ** 0.5" if _precedence(node.operand) <= 4 else f"{inner} ** 0.5"
    left, right = _code(node.left), _code(node.right)
    own = _PRECEDENCE[node.op]
    if node.op == "**":
        wrap_left = _precedence(node.left) <= 4
        wrap_right = _precedence(node.right) < 3
    else:
        wrap_left = _precedence(node.left) < own
        wrap_right = _precedence(node.right) <= own
    left = f"({left})" if wrap_left else left
    right = f"({right})" if wrap_right else right
    return f"{left} {node.op} {right}"


_SPOKEN_OPS: Final = {
    "+": "plus",
    "-": "minus",
    "*": "times",
    "/": "divided by",
    "**": "to the power of",
}


def _speak(node: _Node) -> str:
    """The expression in words for the reply ("12 times 7")."""
    if isinstance(node, _Num):
        return _literal(node.value)
    if isinstance(node, _Unary):
        prefix = "minus" if node.op == "-" else "the square root of"
        return f"{prefix} {_speak(node.operand)}"
    return f"{_speak(node.left)} {_SPOKEN_OPS[node.op]} {_speak(node.right)}"


def _checked(value: Fraction | float) -> Fraction | float:
    if isinstance(value, Fraction):
        if max(value.numerator.bit_length(), value.denominator.bit_length()) > _MAX_BITS:
            raise OverflowError("the result is too large")
    elif math.isinf(value) or math.isnan(value):
        raise OverflowError("the result is too large")
    return value


def _exact_sqrt(value: Fraction) -> Fraction | None:
    if value < 0:
        return None
    top, bottom = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if top * top == value.numerator and bottom * bottom == value.denominator:
        return Fraction(top, bottom)
    return None


def _power(base: Fraction | float, exponent: Fraction | float) -> Fraction | float:
    if isinstance(base, Fraction) and isinstance(exponent, Fraction):
        if exponent.denominator == 1:
            n = exponent.numerator
            if base == 0 and n < 0:
                raise ZeroDivisionError("zero cannot be raised to a negative power")
            size = max(base.numerator.bit_length(), base.denominator.bit_length())
            if base not in (0, 1, -1) and abs(n) * max(size - 1, 1) > _MAX_BITS:
                raise OverflowError("the result is too large")
            return base**n
        if exponent == Fraction(1, 2):
            root = _exact_sqrt(base)
            if root is not None:
                return root
    b, e = float(base), float(exponent)
    if b < 0 and not e.is_integer():
        raise ValueError("that is not a real number")
    if b == 0 and e < 0:
        raise ZeroDivisionError("zero cannot be raised to a negative power")
    try:
        return _checked(b**e)
    except OverflowError as error:
        raise OverflowError("the result is too large") from error


def _evaluate(node: _Node) -> Fraction | float:
    """Exact arithmetic (fractions) where possible, floats for roots and fractional powers."""
    if isinstance(node, _Num):
        return node.value
    if isinstance(node, _Unary):
        operand = _evaluate(node.operand)
        return -operand if node.op == "-" else _power(operand, Fraction(1, 2))
    left, right = _evaluate(node.left), _evaluate(node.right)
    if node.op == "+":
        result = left + right
    elif node.op == "-":
        result = left - right
    elif node.op == "*":
        result = left * right
    elif node.op == "/":
        if right == 0:
            raise ZeroDivisionError("division by zero")
        result = left / right
    else:
        result = _power(left, right)
    return _checked(result)


def _format_number(value: Fraction | float | int) -> str:
    """A result as the reply says it: "84", "3.5", "0.3333333333"."""
    if isinstance(value, Fraction) and value.denominator == 1:
        if abs(value.numerator) < 10**21:
            return str(value.numerator)
        value = float(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.10g}"


def words_to_expression(text: str) -> str | None:
    """The arithmetic in a transcript as a calculator expression.

    Args:
        text: A transcript such as "What is twelve times seven?" or "what's 12 x 7".

    Returns:
        Python-style source such as ``"12 * 7"`` (square roots as ``x ** 0.5``), or ``None``
        when the text holds no arithmetic.
    """
    node = _find_expression(_utterance(text).tokens)
    return None if node is None else _code(node)


def evaluate_expression(expression: str) -> int | float:
    """Compute an arithmetic expression safely, without ``eval``.

    Args:
        expression: Numbers (digits or words) with ``+ - * / **`` (or ``^``, ``x``, ``×``,
            ``÷``, "times", "squared", ...) and parentheses.

    Returns:
        The value: an ``int`` when whole, else a ``float``.

    Raises:
        ExpressionError: The text is not such an expression.
        ZeroDivisionError: It divides by zero.
        OverflowError: The result would be absurdly large (over about 1000 digits).
        ValueError: It asks for an even root of a negative number.
    """
    tokens = _utterance(expression).tokens
    if len(tokens) > _MAX_ITEMS:
        raise ExpressionError("the expression is too long")
    items, end = _scan_math(tokens, 0)
    if not items or end != len(tokens):
        raise ExpressionError(f"not an arithmetic expression: {expression!r}")
    return _to_python(_evaluate(_Parser(items).parse()))


def _answer_arithmetic(node: _Node) -> str:
    """Say the result of a sum the brain works out itself (no calculator tool declared)."""
    spoken = _speak(node)
    try:
        value = _evaluate(node)
    except ZeroDivisionError:
        return f"I can't work out {spoken}, because you can't divide by zero."
    except (OverflowError, ValueError) as error:
        return f"I can't work out {spoken}: {error}."
    return f"{spoken[0].upper()}{spoken[1:]} is {_format_number(value)}."


# --------------------------------------------------------------------------------------------
# Tools: which declared tool fits an intent, and which of its parameters takes the words
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ToolKind:
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


_TIME_TOOL: Final = _ToolKind(
    positive=("time", "clock", "timezone", "timezones", "datetime", "hour", "hours"),
    negative=("weather", "forecast", "timer", "alarm", "reminder"),
)
_WEATHER_TOOL: Final = _ToolKind(
    positive=("weather", "forecast*", "temperature*", "climate"), negative=("time", "clock")
)
_CALC_TOOL: Final = _ToolKind(
    positive=("calc*", "math*", "arithmetic*", "expression*", "eval*", "comput*"),
    required=("calc*", "math*", "arithmetic*", "expression*", "eval*"),
)
_REMEMBER_TOOL: Final = _ToolKind(
    positive=_words("remember save store note notes memori* memoris* add write record memory"),
    negative=_words(
        "recall forget delete remove clear list search find get read erase lookup query retrieve "
        "fetch"
    ),
    required=_words("remember note notes save store memori* memoris* memory record"),
)
_RECALL_TOOL: Final = _ToolKind(
    positive=_words(
        "recall notes note list search retrieve read find lookup memory memories get remembered "
        "query fetch"
    ),
    negative=_words("remember save store add forget delete remove clear erase write record"),
    required=_words("recall note notes memory memories remember*"),
)
_FORGET_TOOL: Final = _ToolKind(
    positive=_words("forget delete clear remove erase wipe reset note notes memory memories"),
    negative=_words("remember save store add recall list search get read"),
    required=_words("forget delete clear remove erase wipe"),
)

_IDENTIFIER_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _identifier_words(name: str) -> list[str]:
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


def _find_tool(tools: Sequence[ToolDecl], kind: _ToolKind) -> ToolDecl | None:
    """The declared tool that best fits, by name first and description second."""
    best: ToolDecl | None = None
    best_score = 0
    for tool in tools:
        name_words = _identifier_words(tool.name)
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


def _required(tool: ToolDecl) -> frozenset[str]:
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


def _name_fits(name: str, hint: str) -> bool:
    if len(hint) <= 2:  # "tz", "q": whole words only, or "q" would match "unique"
        return hint in _identifier_words(name)
    return hint in name.lower()


_PLACE_HINTS: Final = _words(
    "city location place timezone zone tz town region country where area locality"
)
_EXPRESSION_HINTS: Final = _words(
    "expression expr formula equation calculation problem math input query"
)
_NOTE_HINTS: Final = _words("text note fact content memory value body message info data")
_QUERY_HINTS: Final = _words("query topic search keyword term subject about key filter q text")


def _pick_param(tool: ToolDecl, hints: Sequence[str], *, any_string: bool) -> str | None:
    """The string parameter that should take the user's words.

    The first one whose name fits a hint, else the first required one, else (when
    ``any_string``) the first one at all; ``None`` if there is none.
    """
    strings = [name for name, schema in _properties(tool) if _is_string(schema)]
    for name in strings:
        if any(_name_fits(name, hint) for hint in hints):
            return name
    required = _required(tool)
    for name in strings:
        if name in required:
            return name
    return strings[0] if any_string and strings else None


def _call(tool: ToolDecl, calls: list[tuple[str, dict[str, Any]]], preamble: str = "") -> CallTools:
    """Calls to one tool; a non-blocking tool gets a preamble, as the model keeps talking."""
    spoken = (preamble or NON_BLOCKING_PREAMBLE) if tool.non_blocking else ""
    return CallTools(calls=calls, preamble=spoken)


# --------------------------------------------------------------------------------------------
# Places
# --------------------------------------------------------------------------------------------

_UPPER_WORDS: Final = frozenset(
    {"utc", "gmt", "usa", "uk", "uae", "nyc", "us", "dc", "est", "pst", "cet", "bst", "ist", "jst"}
)
_LOWER_INNER_WORDS: Final = frozenset(
    {"of", "de", "da", "do", "del", "di", "am", "upon", "on", "sur", "en", "la"}
)
# A place ends where one of these begins: "Tokyo right now", "Paris today", "London at noon".
_PLACE_STOPS: Final = frozenset(
    _words(
        "what how is are was will would could can do does right now today tonight tomorrow "
        "yesterday currently please thanks thank there then also like in for at this weather time "
        "exactly again too okay ok so but"
    )
)
_NOT_PLACES: Final = frozenset(
    {
        "the moment",
        "the minute",
        "present",
        "the same time",
        "the time",
        "it",
        "me",
        "you",
        "the world",
        "general",
    }
)
_PLACE_LEAD: Final = (
    ("the", "city", "of"),
    ("i", "mean"),
    ("it", "is"),
    ("um",),
    ("uh",),
    ("well",),
    ("ok",),
    ("okay",),
    ("in",),
    ("for",),
    ("at",),
)


def _title(words: Sequence[str]) -> str:
    out: list[str] = []
    for k, word in enumerate(words):
        if word in _UPPER_WORDS:
            out.append(word.upper())
        elif k and word in _LOWER_INNER_WORDS:
            out.append(word)
        else:
            out.append(word[:1].upper() + word[1:])
    return " ".join(out)


def _place_groups(words: Sequence[str]) -> tuple[str, ...]:
    """ "tokyo and new york right now" -> ("Tokyo", "New York")."""
    places: list[str] = []
    group: list[str] = []
    for word in [*words, "and"]:
        if word != "and":
            group.append(word)
            continue
        changed = True
        while changed:
            changed = False
            for lead in _PLACE_LEAD:
                if len(group) > len(lead) and tuple(group[: len(lead)]) == lead:
                    group = group[len(lead) :]
                    changed = True
        kept: list[str] = []
        for w in group:
            if w in _PLACE_STOPS:
                break
            kept.append(w)
        if kept and len(kept) <= 5 and " ".join(kept) not in _NOT_PLACES:
            places.append(_title(kept))
        group = []
    return tuple(dict.fromkeys(places))


def _places_near(utt: _Utterance, trigger_start: int) -> tuple[str, ...]:
    """Places named after "in"/"for"/"at" following a trigger word, else before it."""
    tokens = utt.tokens
    for k in range(trigger_start, len(tokens)):
        if tokens[k] in ("in", "for", "at"):
            places = _place_groups(tokens[k + 1 : utt.clause_end(k + 1)])
            if places:
                return places
    for k in range(trigger_start):
        if tokens[k] in ("in", "for"):
            return _place_groups(tokens[k + 1 : min(trigger_start, utt.clause_end(k + 1))])
    return ()


# --------------------------------------------------------------------------------------------
# Intents
# --------------------------------------------------------------------------------------------

_LEAD: Final = (
    r"(?:(?:please|ok|okay|hey|hi|so|and|also|now|oh|well|um|uh|gemini|can you|could you|"
    r"would you|will you|i want you to|i would like you to|i need you to)\s+)*"
)
_STORY_RE = re.compile(
    r"\b(?:tell|give|read)(?:\s+(?:me|us))?\s+(?:a|an|another|the)\s+"
    r"(?:(?:really|very|long|longer|short|little|bedtime|nice|good)\s+)*(?:story|tale)\b"
    r"(?:\s+(?:about|of|on|with)\s+(?P<topic>.+))?"
    r"|^(?:a\s+)?long\s+story(?:\s+about\s+(?P<topic2>.+))?$"
)
_VISION_RE = re.compile(
    r"\bwhat (?:do|can) you see\b|\bwhat am i (?:holding|wearing|showing you|doing)\b"
    r"|\bdescribe (?:what you see|(?:the|this|my|your) (?:image|picture|photo|screen|video|"
    r"camera|frame|view|scene|room))\b"
    r"|\bwhat is (?:on|in) (?:my|the|this) (?:screen|image|picture|photo|camera|frame|video)\b"
    r"|\bcan you see (?:me|this|it|my screen|anything)\b|\bwhat is in front of (?:me|you|the)\b"
    r"|\blook at (?:this|me|my screen|the screen)\b|\bwhat colou?r is (?:this|it|my)\b"
)
_WEAK_VISION_RE = re.compile(r"^(?:what is (?:this|that|it)|what do you think of this)$")
_REMEMBER_RE = re.compile(
    rf"^{_LEAD}(?:please\s+)?(?:remember|memori[sz]e|do not forget|make a note|take a note|"
    r"save a note|add a note|write down|keep in mind|note down|note|save|store)\b"
    r"(?:\s+(?:the fact that|that|this|of)\b)?(?:\s+(?P<fact>.+))?$"
)
_TIME_RE = re.compile(
    r"\bwhat time\b|\b(?:what is|tell me|know|check|give me|get|have) the "
    r"(?:current |local |exact )?time\b|\b(?:current|local) time\b|\btime (?:is it )?in\b"
    r"|\btime is it\b|\bwhat hour\b"
)
_WEATHER_RE = re.compile(
    r"\bweather\b|\bforecast\b|\btemperature (?:in|at|for|outside)\b"
    r"|\b(?:is it|will it) (?:be )?(?:raining|rain|snowing|snow|sunny|hot|cold|warm|windy|"
    r"cloudy)\b"
)
_FORGET_RE = re.compile(
    rf"^{_LEAD}(?:please\s+)?(?:forget|delete|erase|clear|remove|wipe)\b(?:\s+(?P<topic>.+))?$"
)
_RECALL_RES: Final = (
    re.compile(
        rf"^{_LEAD}(?:what do you (?:still )?remember|what did i (?:tell|ask) you"
        r"(?: to remember)?|what have i told you|what have you (?:saved|stored|noted|remembered))"
        r"\b(?:\s+(?:about|of|regarding)\b)?(?:\s+(?P<topic>.+))?$"
    ),
    re.compile(rf"^{_LEAD}(?:do you (?:still )?remember|recall)\b(?:\s+(?P<topic>.+))?$"),
    re.compile(
        rf"^{_LEAD}(?:what|who|when|where|which|how old) (?:is|are|was|were) my"
        r"\s+(?P<topic>.+)$"
    ),
    re.compile(r"\b(?:my|the|your|any|saved|all) notes\b|\bnotes do you have\b"),
)
_STOP_RE = re.compile(
    r"^(?:(?:ok|okay|please|no|oh)\s+)*(?:stop|wait|pause|hold on|hang on|enough|quiet|be quiet|"
    r"silence|cancel|shush|shh|halt|shut up|never mind|one (?:moment|second|sec)|"
    r"just a (?:moment|second|sec|minute))\b"
)
_GREETING_RE = re.compile(
    r"^(?:hello|hi|hey|hiya|howdy|greetings|yo|good (?:morning|afternoon|evening|day))\b"
    r"|\b(?:can|do) you hear me\b|\bare you (?:there|listening|awake)\b"
    r"|\bis this (?:thing )?(?:on|working)\b|\bhow are you\b|\btesting\b|\bmic check\b"
)
_FOLLOW_UP_RE = re.compile(
    r"^(?:(?:and|ok|okay|so|also)\s+)?(?:what|how) about\s+(?P<place>.+)$"
    r"|^and\s+(?P<place2>.+)$"
)
# Words in front of a note topic that say nothing about it: "what I told you about my dog".
_TOPIC_LEAD: Final = frozenset(
    _words(
        "about that my the all of everything notes note what i told you said saved stored "
        "remembered your memory memories regarding any a an"
    )
)
_TOPIC_TAIL: Final = (
    ("now",),
    *_POLITE_TAIL,
    ("is",),
    ("was",),
    ("are",),
    ("were",),
    ("again",),
    ("from", "memory"),
    ("from", "your", "memory"),
    ("for", "good"),
)


@dataclass(frozen=True)
class _Intent:
    kind: str
    places: tuple[str, ...] = ()
    text: str = ""
    expression: _Node | None = None


def _topic(utt: _Utterance, span: tuple[int, int] | None) -> str:
    """A note topic in lower case: "what my favorite color is" -> "favorite color"."""
    if span is None:
        return ""
    i, j = span
    j = _trim(utt.tokens, i, j, _TOPIC_TAIL)
    while i < j and utt.tokens[i] in _TOPIC_LEAD:
        i += 1
    return " ".join(utt.tokens[i:j])


def _classify(utt: _Utterance, *, has_image: bool) -> _Intent:
    """Decide what the user wants from the words alone (tools are matched later)."""
    text = utt.text
    if not utt.tokens:
        return _Intent("blank")

    match = _STORY_RE.search(text)
    if match:
        span = utt.group_range(match, "topic") or utt.group_range(match, "topic2")
        topic = ""
        if span is not None:
            end = _trim(utt.tokens, span[0], utt.clause_end(span[0]), _POLITE_TAIL)
            topic = utt.original_text(span[0], end)
        return _Intent("story", text=topic)

    if _VISION_RE.search(text) or (has_image and _WEAK_VISION_RE.search(text)):
        return _Intent("vision")

    match = _REMEMBER_RE.match(text)
    if match:
        span = utt.group_range(match, "fact")
        fact = ""
        if span is not None:
            fact = utt.original_text(span[0], _trim(utt.tokens, span[0], span[1], _POLITE_TAIL))
        return _Intent("remember", text=fact)

    match = _TIME_RE.search(text)
    if match:
        return _Intent("time", places=_places_near(utt, utt.token_index(match.start())))

    match = _WEATHER_RE.search(text)
    if match:
        return _Intent("weather", places=_places_near(utt, utt.token_index(match.start())))

    match = _FORGET_RE.match(text)
    if match:
        span = utt.group_range(match, "topic")
        if span is not None and utt.tokens[span[0] : span[1]] in (("it",), ("about", "it")):
            return _Intent("stop")  # "forget it" means never mind, not "delete all my notes"
        return _Intent("forget", text=_topic(utt, span))

    for pattern in _RECALL_RES:
        match = pattern.search(text)
        if match:
            span = utt.group_range(match, "topic") if "topic" in pattern.groupindex else None
            return _Intent("recall", text=_topic(utt, span))

    expression = _find_expression(utt.tokens)
    if expression is not None:
        return _Intent("arithmetic", expression=expression)

    if _STOP_RE.match(text) and len(utt.tokens) <= 6:
        return _Intent(
            "wait" if utt.tokens[0] in ("wait", "hold", "hang", "one", "just") else "stop"
        )

    if _GREETING_RE.search(text):
        return _Intent("greeting")
    return _Intent("unknown")


def _resolve(
    utt: _Utterance, history: Sequence[tuple[str, str]], *, has_image: bool, depth: int = 0
) -> _Intent:
    """Classify, reading an unrecognised turn as the follow-up of a time or weather question."""
    intent = _classify(utt, has_image=has_image)
    if intent.kind != "unknown" or depth > 3:
        return intent
    last_model, previous = "", None
    for k in range(len(history) - 1, -1, -1):
        role, said = history[k]
        if role == "user":
            previous = k
            break
        if not last_model:
            last_model = said
    if previous is None:
        return intent
    before = _resolve(
        _utterance(history[previous][1]), history[:previous], has_image=False, depth=depth + 1
    )
    if before.kind not in ("time", "weather"):
        return intent
    match = _FOLLOW_UP_RE.match(utt.text)
    if match:
        span = utt.group_range(match, "place") or utt.group_range(match, "place2")
        assert span is not None
        places = _place_groups(utt.tokens[span[0] : utt.clause_end(span[0])])
    elif ASK_TIME_CITY in last_model or ASK_WEATHER_CITY in last_model:
        places = _place_groups(utt.tokens[: utt.clause_end(0)])
    else:
        return intent
    return _Intent(before.kind, places=places) if places else intent


# --------------------------------------------------------------------------------------------
# Replies that need no tool
# --------------------------------------------------------------------------------------------

_NAME_RE = re.compile(
    r"\b(?:[Yy]our name is|[Yy]ou are called|[Yy]ou are named|[Cc]all yourself|[Yy]ou are|"
    r"[Yy]ou're)\s+([A-Z][\w'-]*)"
)
_NOT_NAMES: Final = frozenset(
    _words("A An The Not Now Here Always Never Very In On At To My Our Your This That")
)


def greeting(system_instruction: str = "") -> str:
    """The first words of a session, with the assistant's name if the instruction gives one.

    Args:
        system_instruction: The client's system instruction; "You are Ava, ..." or "Your name
            is Ava" make the greeting introduce Ava.

    Returns:
        A one-sentence hello and an offer to help.
    """
    for match in _NAME_RE.finditer(system_instruction):
        name = match.group(1).rstrip("'-")
        if name not in _NOT_NAMES:
            return f"Hello! I'm {name}. How can I help you today?"
    return "Hello! I'm the local Gemini Live emulator. How can I help you today?"


def colour_name(rgb: tuple[int, int, int]) -> str:
    """A plain colour word for a mean RGB value: "red", "dark gray", "brown", ...

    Args:
        rgb: Red, green and blue, 0 to 255 each (out-of-range values are clamped).

    Returns:
        One of black, white, light gray, gray, dark gray, red, pink, orange, brown, yellow,
        olive, green, cyan, teal, blue, navy or purple.
    """
    r, g, b = (max(0, min(255, int(c))) / 255 for c in rgb)
    hue, lightness, _ = colorsys.rgb_to_hls(r, g, b)
    value, chroma = max(r, g, b), max(r, g, b) - min(r, g, b)
    if value < 0.15:
        return "black"
    if chroma < 0.12:
        if lightness > 0.85:
            return "white"
        if lightness > 0.6:
            return "light gray"
        return "gray" if lightness > 0.3 else "dark gray"
    degrees = hue * 360
    if degrees < 15 or degrees >= 345:
        return "pink" if lightness > 0.75 else "red"
    if degrees < 45:
        return "brown" if value < 0.65 else "orange"
    if degrees < 70:
        return "olive" if value < 0.5 else "yellow"
    if degrees < 165:
        return "green"
    if degrees < 200:
        return "teal" if value < 0.6 else "cyan"
    if degrees < 255:
        return "navy" if value < 0.35 else "blue"
    if degrees < 315:
        return "purple"
    return "pink"


def _article(number: int) -> str:
    """ "a 640", but "an 800", "an 11" and "an 18000" (said "eighteen thousand")."""
    digits = str(number)
    if digits.startswith("8") or (len(digits) in (2, 5) and digits[:2] in ("11", "18")):
        return "an"
    return "a"


def _describe_image(image: ImageInfo | None) -> str:
    if image is None:
        return NO_CAMERA
    return (
        f"I can see {_article(image.width)} {image.width} by {image.height} image that is "
        f"mostly {colour_name(image.mean_rgb)}. Offline, I can only tell its size and main colour."
    )


def _story(topic: str) -> str:
    """A long fixed story (about 90 seconds of speech) around the user's topic."""
    topic = topic.strip() or "a curious little robot"
    first, _, rest = topic.partition(" ")
    if first.lower() in ("a", "an") and rest:
        hero, the_hero = topic, f"the {rest}"
    elif first.lower() in ("the", "my", "your", "our", "his", "her", "their") or topic[0].isupper():
        hero = the_hero = topic
    else:
        hero, the_hero = f"a young traveller who dreamed about {topic}", "the traveller"
    sentences = [
        f"Once upon a time, in a valley surrounded by tall blue mountains, there lived {hero}.",
        f"Every morning, {the_hero} watched the sun climb over the peaks and wondered what lay "
        "beyond them.",
        "The villagers said that nobody had ever crossed the mountains, and that the wind up "
        "there was far too strong for anyone.",
        f"But {the_hero} was patient, and practised a little more each day, even when it rained "
        "and even when it was cold.",
        "One spring, an old owl who lived in a crooked oak tree offered a piece of advice: start "
        "small, and never give up.",
        f"So {the_hero} began with tiny steps, then bigger ones, and slowly the impossible "
        "started to feel possible.",
        f"There were many failures along the way, and more than once {the_hero} came home tired, "
        "muddy and discouraged.",
        "Yet every failure taught something new, and the owl would nod and say that this was how "
        "all great journeys begin.",
        f"At last, on a bright and windy afternoon, {the_hero} reached the highest ridge and "
        "looked out over a land that nobody in the valley had ever seen.",
        "There were silver rivers, golden fields and cities full of music, stretching all the way "
        "to the sea.",
        f"When {the_hero} came back to the valley, the villagers gathered in the square to hear "
        "every detail of the adventure.",
        "And from that day on, whenever someone said that something could not be done, they "
        f"remembered the story of {topic}, and they kept on trying.",
        "The end.",
    ]
    return " ".join(sentences)


# --------------------------------------------------------------------------------------------
# respond()
# --------------------------------------------------------------------------------------------

_CALL_VERBS: Final = frozenset({"call", "use", "run", "invoke", "trigger", "execute"})
_CALL_FILLERS: Final = frozenset({"the", "a", "an", "tool", "function", "called", "named"})
_ARGUMENT_PREPS: Final = frozenset({"for", "in", "with", "about", "on", "to", "of", "at"})


def _explicit_call(utt: _Utterance, tools: Sequence[ToolDecl]) -> CallTools | None:
    """ "call the tool NAME" / "use NAME for X": the declared tool the user named, if any."""
    keep = [k for k, t in enumerate(utt.tokens) if t != "underscore"]
    words = [utt.tokens[k] for k in keep]
    for v, verb in enumerate(words):
        if verb not in _CALL_VERBS:
            continue
        start = v + 1
        while start < len(words) and words[start] in _CALL_FILLERS:
            start += 1
        best: tuple[ToolDecl, int] | None = None
        for tool in tools:
            name = _identifier_words(tool.name)
            if not name:
                continue
            if words[start : start + len(name)] == name:
                end = start + len(name)
            elif _tok(words, start) == "".join(name):
                end = start + 1
            else:
                continue
            if best is None or end > best[1]:
                best = (tool, end)
        if best is None:
            continue
        tool, end = best
        while end < len(words) and words[end] in ("tool", "function"):
            end += 1
        args: dict[str, Any] = {}
        if _tok(words, end) in _ARGUMENT_PREPS and end + 1 < len(words):
            first = keep[end + 1]
            last = utt.clause_end(first)
            last = _trim(utt.tokens, first, last, _POLITE_TAIL)
            param = _pick_param(
                tool, (*_PLACE_HINTS, *_EXPRESSION_HINTS, *_QUERY_HINTS), any_string=True
            )
            if param is not None and last > first:
                value = utt.original_text(first, last)
                if any(_name_fits(param, hint) for hint in _PLACE_HINTS):
                    value = _title(utt.tokens[first:last])
                elif any(_name_fits(param, hint) for hint in _EXPRESSION_HINTS):
                    node = _find_expression(utt.tokens[first:last])
                    value = _code(node) if node is not None else value
                args[param] = value
        return _call(tool, [(tool.name, args)])
    return None


def _place_call(tool: ToolDecl, places: Sequence[str], ask: str) -> Action:
    """One call per place; without a place, ask rather than send a required argument empty."""
    param = _pick_param(tool, _PLACE_HINTS, any_string=False)
    if places:
        return _call(tool, [(tool.name, {param: p} if param else {}) for p in places])
    if param is not None and param in _required(tool):
        return Say(ask)
    return _call(tool, [(tool.name, {})])


def _note_call(tool: ToolDecl, topic: str) -> CallTools:
    """Recall / forget with the topic as query; no topic means all notes (an empty query)."""
    param = _pick_param(tool, _QUERY_HINTS, any_string=True)
    if param is None:
        return _call(tool, [(tool.name, {})])
    if topic or param in _required(tool):
        return _call(tool, [(tool.name, {param: topic})])
    return _call(tool, [(tool.name, {})])


def _act(
    intent: _Intent,
    utt: _Utterance,
    tools: Sequence[ToolDecl],
    *,
    system_instruction: str,
    image: ImageInfo | None,
) -> Action:
    """Turn an intent into a reply or tool calls, given the declared tools."""
    kind = intent.kind
    if kind == "blank":
        return Say(greeting(system_instruction))
    if kind == "story":
        return Say(_story(intent.text))
    if kind == "vision":
        return Say(_describe_image(image))
    if kind == "stop":
        return Say(STOP_ACK)
    if kind == "wait":
        return Say(WAIT_ACK)
    if kind == "greeting":
        return Say(HEAR_YOU)
    if kind == "time":
        tool = _find_tool(tools, _TIME_TOOL)
        return Say(NO_CLOCK) if tool is None else _place_call(tool, intent.places, ASK_TIME_CITY)
    if kind == "weather":
        tool = _find_tool(tools, _WEATHER_TOOL)
        if tool is None:
            return Say(NO_WEATHER)
        return _place_call(tool, intent.places, ASK_WEATHER_CITY)
    if kind == "remember":
        if not intent.text:
            return Say("What would you like me to remember?")
        tool = _find_tool(tools, _REMEMBER_TOOL)
        if tool is None:
            return Say(
                f"I can't save notes in this session, so I can't remember that {intent.text}."
            )
        param = _pick_param(tool, _NOTE_HINTS, any_string=True)
        args = {param: intent.text} if param else {}
        return _call(tool, [(tool.name, args)], SAVING_PREAMBLE)
    if kind == "recall":
        tool = _find_tool(tools, _RECALL_TOOL)
        if tool is None:
            return Say("I have no notes to look in, because no notes tool is available to me.")
        return _note_call(tool, intent.text)
    if kind == "forget":
        tool = _find_tool(tools, _FORGET_TOOL)
        if tool is None:
            return Say("There is nothing for me to forget, because no notes tool is available.")
        return _note_call(tool, intent.text)
    if kind == "arithmetic" and intent.expression is not None:
        tool = _find_tool(tools, _CALC_TOOL)
        if tool is not None:
            param = _pick_param(tool, _EXPRESSION_HINTS, any_string=True)
            missing = _required(tool) - {param}
            if param is not None and not missing:
                return _call(tool, [(tool.name, {param: _code(intent.expression)})])
        return Say(_answer_arithmetic(intent.expression))
    said = " ".join(utt.original.split())
    return Say(f'You said: "{said}". {ECHO_TAIL}')


def respond(
    user_text: str,
    tools: Sequence[ToolDecl],
    *,
    history: Sequence[tuple[str, str]] = (),
    system_instruction: str = "",
    image: ImageInfo | None = None,
) -> Action:
    """Decide what the model does with a finished user turn.

    Args:
        user_text: The transcript of the turn, as typed or as Whisper wrote it.
        tools: The functions the client declared.
        history: Earlier ``(role, text)`` turns, oldest first, role "user" or "model", without
            this turn; used to read "Tokyo" as the answer to "Which city ...?" and "what about
            London?" as a follow-up.
        system_instruction: The client's system instruction (for the greeting's name).
        image: The last video frame, if the client streams one.

    Returns:
        :class:`Say` with the reply, or :class:`CallTools` with the calls to make. See the
        module docstring for the rules.
    """
    utt = _utterance(user_text)
    if utt.tokens:
        explicit = _explicit_call(utt, tools)
        if explicit is not None:
            return explicit
    intent = _resolve(utt, history, has_image=image is not None)
    return _act(intent, utt, tools, system_instruction=system_instruction, image=image)


# --------------------------------------------------------------------------------------------
# respond_to_tool_results()
# --------------------------------------------------------------------------------------------

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


def _describe_result(name: str, response: Any, user_text: str) -> str:
    """One tool's result in words, every value included; see :func:`respond_to_tool_results`."""
    data = _unwrap(response)
    if not isinstance(data, dict):
        pairs = _flatten(data)
        if not pairs:
            return f"The {name} tool finished without returning anything."
        return _sentence(f"Here is what {name} returned: {_render_pairs(pairs)}")
    by_lower = {str(k).lower(): k for k in data}
    used: list[Any] = []

    def find(candidates: Sequence[str], kinds: tuple[type, ...] | None = None) -> Any:
        """The first candidate key present (with a scalar of one of ``kinds``), or None."""
        for candidate in candidates:
            key = by_lower.get(candidate)
            if key is None or key in used:
                continue
            value = data[key]
            if kinds is None and not _is_scalar(value):
                continue
            if kinds is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
                continue
            return key
        return None

    def take(*candidates: str) -> str | None:
        key = find(candidates)
        if key is None:
            return None
        used.append(key)
        return _scalar_text(data[key])

    number = (int, float)
    main: str
    error_key = by_lower.get("error")
    time_key = find(("time", "current_time", "local_time", "datetime", "current_datetime"))
    temperature_key = find(("temperature", "temp", "temperature_c", "temperature_f"))
    condition_key = find(("condition", "conditions", "description", "summary", "sky", "weather"))
    result_key = find(("result", "value", "answer", "total"), number)
    saved_key = find(("saved", "note", "text", "fact"), (str,))
    forgotten_key = find(("forgotten", "deleted", "removed"), (int,))
    list_key = next(
        (
            by_lower[k]
            for k in ("notes", "items", "memories", "matches", "results")
            if k in by_lower and isinstance(data[by_lower[k]], list)
        ),
        None,
    )

    if error_key is not None and data[error_key] not in (None, "", False, [], {}):
        used.append(error_key)
        main = _sentence(f"Sorry, {name} failed: {_render_pairs(_flatten(data[error_key]))}")
    elif time_key is not None:
        used.append(time_key)
        place = take("place", "city", "location", "name")
        zone = take("timezone", "time_zone", "tz", "zone")
        if place is not None and zone is not None:
            where = f" in {place} ({zone})"
        elif place is not None or zone is not None:
            where = f" in {place if place is not None else zone}"
        else:
            where = ""
        main = f"The current time{where} is {_scalar_text(data[time_key])}."
        when = [v for v in (take("weekday", "day"), take("date")) if v is not None]
        if when:
            main += f" It is {', '.join(when)}."
        offset = take("utc_offset", "offset")
        if offset is not None:
            main += f" The UTC offset is {offset}."
    elif temperature_key is not None and condition_key is not None:
        used.extend((temperature_key, condition_key))
        temperature = _scalar_text(data[temperature_key])
        place, unit = take("place", "city", "location"), take("unit", "units")
        degrees = f"{temperature} {unit}" if unit is not None else f"{temperature} degrees"
        where = f"In {place} it is" if place is not None else "It is"
        main = f"{where} {_scalar_text(data[condition_key])} and {degrees}."
    elif list_key is not None:
        used.append(list_key)
        items = [_render_pairs(_flatten(item)) for item in data[list_key]]
        main = (
            _sentence("Here is what I found: " + "; ".join(items))
            if items
            else ("I found nothing that matches.")
        )
        total = take("total", "count")
        if total is not None:
            main += f" There are {total} in all; these are the latest."
    elif result_key is not None:
        used.append(result_key)
        shown = _scalar_text(data[result_key])
        expression = take("expression", "expr", "formula", "equation", "calculation")
        node = _find_expression(_utterance(user_text).tokens) if user_text else None
        if expression is not None:
            main = f"{expression} is {shown}."
        elif node is not None:
            spoken = _speak(node)
            main = f"{spoken[0].upper()}{spoken[1:]} is {shown}."
        else:
            main = f"The result is {shown}."
    elif saved_key is not None:
        used.append(saved_key)
        main = _sentence(f"Okay, I'll remember that {_scalar_text(data[saved_key])}")
        count_key = find(("count", "total"), (int,))
        if count_key is not None:
            used.append(count_key)
            main += f" You have {_plural(data[count_key], 'note')} saved now."
    elif forgotten_key is not None:
        used.append(forgotten_key)
        count = data[forgotten_key]
        main = (
            f"Done, I forgot {_plural(count, 'note')}."
            if count
            else ("I forgot 0 notes: none of them matched.")
        )
    else:
        return _sentence(f"Here is what {name} returned: {_render_pairs(_flatten(data))}")
    rest = _flatten({k: v for k, v in data.items() if k not in used})
    if rest:
        main += " " + _sentence(f"Also: {_render_pairs(rest)}")
    return main


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
