"""Sums said as verbs or nouns: "multiply 6 by 7", "subtract 3 from 10", "the sum of 2 and 3".

`emulator.brain.expressions` reads operators written between numbers ("6 times 7"); people also
name the operation first and the numbers after it, in an order that is not always the order of
the sum ("subtract 3 from 10" is 10 - 3). Each such form is one line in `_FORMS`, read into the
same expression tree, so the calculator call and the spoken answer are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from typing import Final

from emulator.brain.expressions import Bin, Node, Num, Parser, find_expression, scan_math
from emulator.brain.types import ExpressionError

Build = Callable[[Sequence[Node]], Node]

_ONE: Final = frozenset({"A", "B"})
"""Slots for one operand each: a number, or a sum written with operators ("2 plus 3")."""
_MANY: Final = "LIST"
"""A slot for two or more operands joined by "and" or commas ("2, 3 and 4")."""
_MAX_STEPS: Final = 300
"""Matching backtracks over the ways to split "a hundred and five"; this bounds the operands read
for one form at one word, far above the few dozen any spoken sum needs."""
_MAX_TOTAL_STEPS: Final = 20_000
"""The same bound for a whole turn, so that a transcript of a thousand numbers stays fast."""
_OPERAND_TOKENS: Final = 40
"""The most words one operand may take ("minus seven hundred and seventy-seven thousand, ...
point five" is 14); a longer run of numbers and operators is no operand, and reading stays
linear in the length of the turn."""
_MAX_OPERANDS: Final = 20
"""The longest list read ("the sum of 1, 2, ..."); it also bounds the depth of the recursion."""


class _OutOfSteps(Exception):
    """The turn has cost more than `_MAX_TOTAL_STEPS`: read no operation in it."""


def _fold(op: str) -> Build:
    return lambda nodes: reduce(lambda left, right: Bin(op, left, right), nodes)


def _swapped(op: str) -> Build:
    return lambda nodes: Bin(op, nodes[1], nodes[0])


def _by(op: str, value: int) -> Build:
    return lambda nodes: Bin(op, nodes[0], Num(Fraction(value)))


@dataclass(frozen=True)
class _Part:
    """A slot (`_ONE` or `_MANY`), or one of ``words``, which may be left out if ``optional``."""

    slot: str = ""
    words: frozenset[str] = frozenset()
    optional: bool = False


@dataclass(frozen=True)
class _Form:
    """One way of saying an operation, and how the operands, in the order said, make the sum.

    Attributes:
        parts: Written as words and slots, "a|b" for either word, "word?" when it may be left
            out: "subtract|deduct A from B".
        build: The sum from the operands.
        needs: The words of which one each must be in a turn for the form to fit it, so most
            turns skip most forms without reading a number.
    """

    parts: tuple[_Part, ...]
    build: Build
    needs: tuple[frozenset[str], ...]


def _form(pattern: str, build: Build) -> _Form:
    parts = tuple(
        _Part(slot=word)
        if word in _ONE or word == _MANY
        else _Part(words=frozenset(word.rstrip("?").split("|")), optional=word.endswith("?"))
        for word in pattern.split()
    )
    needs = tuple(part.words for part in parts if part.words and not part.optional)
    return _Form(parts, build, needs)


_FORMS: Final = (
    # Addition.
    _form("add|added A to B", _swapped("+")),
    _form("add|added up|together? LIST", _fold("+")),
    _form("sum|total up? LIST", _fold("+")),
    _form("sum|total of LIST", _fold("+")),
    _form("LIST added|summed together?", _fold("+")),
    _form("LIST add up", _fold("+")),
    _form("increase|increased A by B", _fold("+")),
    # Subtraction.
    _form("subtract|subtracted|deduct|deducted A from B", _swapped("-")),
    _form("take|took away? A away? from B", _swapped("-")),
    _form("A take away B", _fold("-")),
    _form("difference between|of A and B", _fold("-")),
    _form("decrease|decreased|reduce|reduced A by B", _fold("-")),
    # Multiplication.
    _form("multiply|multiplied A by|with|times B", _fold("*")),
    _form("multiply|multiplied together? LIST", _fold("*")),
    _form("product of LIST", _fold("*")),
    _form("LIST multiplied together?", _fold("*")),
    _form("double|doubled A", _by("*", 2)),
    _form("triple|tripled A", _by("*", 3)),
    _form("square of A", _by("**", 2)),
    _form("cube of A", _by("**", 3)),
    # Division.
    _form("divide|divided A by B", _fold("/")),
    _form("quotient of A and|by B", _fold("/")),
    _form("ratio of|between A to|and B", _fold("/")),
    _form("half of A", _by("/", 2)),
    _form("halve|halved A", _by("/", 2)),
)
"""Tried in this order at each word, leftmost match first; forms whose numbers are written with
operators alone ("6 times 7") are left to `find_expression`."""


class _Matcher:
    """Matches forms against one transcript's tokens, within a step budget."""

    def __init__(self, tokens: Sequence[str], breaks: Sequence[bool]) -> None:
        self.tokens = tokens
        self.breaks = breaks
        self.steps = 0
        self.total = 0
        self.read: dict[tuple[int, int], tuple[Node, int] | None] = {}

    def _spend(self) -> None:
        self.steps += 1
        self.total += 1
        if self.total > _MAX_TOTAL_STEPS:
            raise _OutOfSteps
        if self.steps > _MAX_STEPS:
            raise ExpressionError("too many ways to read the sum")

    def _parse(self, i: int, stop: int) -> tuple[Node, int] | None:
        """The operand in ``tokens[i:stop]`` from ``i`` on, remembered, as every form asks."""
        key = (i, stop)
        if key not in self.read:
            window = self.tokens[i : min(stop, i + _OPERAND_TOKENS + 1)]
            items, end = scan_math(window, 0)
            try:
                fits = 0 < end <= _OPERAND_TOKENS
                self.read[key] = (Parser(items).parse(), i + end) if fits else None
            except ExpressionError:
                self.read[key] = None
        return self.read[key]

    def operands(self, i: int) -> Iterator[tuple[Node, int]]:
        """An operand at ``i``, longest reading first: "a hundred and five" is 105, then 100."""
        self._spend()
        found = self._parse(i, len(self.tokens))
        if found is None:
            return
        yield found
        for k in range(found[1] - 1, i, -1):
            if self.tokens[k] == "and":
                shorter = self._parse(i, k)
                if shorter is not None:
                    yield shorter

    def _next_in_list(self, j: int) -> int | None:
        """Where the next operand of a list starts after token ``j - 1``: after "and", or right
        away when a comma ended that token ("2, 3 and 4")."""
        if j < len(self.tokens) and self.tokens[j] == "and":
            return j + 1
        if 0 < j < len(self.tokens) and self.breaks[j - 1]:
            return j
        return None

    def chains(self, i: int, depth: int = 1) -> Iterator[tuple[list[Node], int]]:
        """Operands joined by "and" or commas from ``i``, the longest chains first."""
        for node, j in self.operands(i):
            after = self._next_in_list(j)
            if after is not None and depth < _MAX_OPERANDS:
                for rest, end in self.chains(after, depth + 1):
                    yield [node, *rest], end
            yield [node], j

    def match(self, parts: Sequence[_Part], i: int, got: list[Node]) -> list[Node] | None:
        """The operands if ``parts`` match from token ``i`` on (the rest of the turn is free)."""
        if not parts:
            return got
        part, rest = parts[0], parts[1:]
        if part.slot in _ONE:
            for node, j in self.operands(i):
                done = self.match(rest, j, [*got, node])
                if done is not None:
                    return done
            return None
        if part.slot == _MANY:
            for nodes, j in self.chains(i):
                done = self.match(rest, j, [*got, *nodes]) if len(nodes) >= 2 else None
                if done is not None:
                    return done
            return None
        if i < len(self.tokens) and self.tokens[i] in part.words:
            done = self.match(rest, i + 1, got)
            if done is not None:
                return done
        return self.match(rest, i, got) if part.optional else None


def find_operation(tokens: Sequence[str], breaks: Sequence[bool] = ()) -> Node | None:
    """The first sum said as a verb or noun ("divide 10 by 4"), or ``None``.

    Args:
        tokens: Normalised tokens (see `emulator.brain.text`).
        breaks: Whether a clause ends after each token (a comma lets "2, 3 and 4" be a list);
            empty when unknown.
    """
    present = set(tokens)
    forms = [form for form in _FORMS if all(words & present for words in form.needs)]
    matcher = _Matcher(tokens, list(breaks) or [False] * len(tokens))
    for i in range(len(tokens) if forms else 0):
        for form in forms:
            first = form.parts[0]
            if first.words and not first.optional and tokens[i] not in first.words:
                continue
            matcher.steps = 0
            try:
                operands = matcher.match(form.parts, i, [])
            except ExpressionError:
                continue
            except _OutOfSteps:
                return None
            if operands is not None:
                return form.build(operands)
    return None


def find_arithmetic(tokens: Sequence[str], breaks: Sequence[bool] = ()) -> Node | None:
    """The sum a turn asks for, said as an operation ("multiply 6 by 7") or with operators."""
    found = find_operation(tokens, breaks)
    return found if found is not None else find_expression(tokens)
