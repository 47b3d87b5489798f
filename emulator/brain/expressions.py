"""The arithmetic parser: spoken or typed sums read into a small expression tree.

The tree is parsed by recursive descent with Python's precedence and never evaluated with `eval`,
so a transcript can hold anything without reaching the interpreter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from emulator.brain.numbers import number_at
from emulator.brain.text import token_at
from emulator.brain.types import ExpressionError

MAX_ITEMS: Final = 200
_MAX_DEPTH: Final = 40


@dataclass(frozen=True)
class Num:
    value: Fraction


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "sqrt"
    operand: Node


@dataclass(frozen=True)
class Bin:
    op: str  # + - * / **
    left: Node
    right: Node


Node = Num | Unary | Bin
Item = Fraction | str

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


def _starts_operand(tokens: Sequence[str], j: int) -> bool:
    """A number, "(" or a signed number ("minus 3", "-3") begins at ``j``."""
    if token_at(tokens, j) in ("-", "minus", "negative"):
        j += 1
    return number_at(tokens, j) is not None or token_at(tokens, j) == "("


def scan_math(tokens: Sequence[str], start: int) -> tuple[list[Item], int]:
    """The longest run of numbers and operators from ``start``, as parser items."""
    items: list[Item] = []
    j = start
    while j < len(tokens):
        after_value = bool(items) and (isinstance(items[-1], Fraction) or items[-1] in _VALUE_ENDS)
        number = number_at(tokens, j)
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
        if words == ("x",) and not (after_value and _starts_operand(tokens, j + 1)):
            break  # "x" is "times" only between two numbers
        items.extend(produced)
        j += len(words)
    return items, j


class Parser:
    """Recursive descent over parser items, with Python's precedence (``-2 ** 2`` is -4).

    expr := term (("+" | "-") term)*;  term := factor (("*" | "/") factor)*;
    factor := ("-" | "+" | "sqrt") factor | power;  power := postfix ("**" factor)?;
    postfix := atom ("squared" | "cubed" | "pct")*;  atom := number | "(" expr ")".
    """

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = items
        self.pos = 0
        self.depth = 0

    def _peek(self) -> Item | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def _take(self) -> Item | None:
        item = self._peek()
        self.pos += 1
        return item

    def parse(self) -> Node:
        node = self._expr()
        if self.pos != len(self.items):
            raise ExpressionError(f"unexpected {self._peek()!s}")
        return node

    def _expr(self) -> Node:
        node = self._term()
        while self._peek() in ("+", "-"):
            node = Bin(str(self._take()), node, self._term())
        return node

    def _term(self) -> Node:
        node = self._factor()
        while self._peek() in ("*", "/"):
            node = Bin(str(self._take()), node, self._factor())
        return node

    def _factor(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExpressionError("the expression is nested too deeply")
        try:
            item = self._peek()
            if item in ("-", "+", "sqrt"):
                self._take()
                operand = self._factor()
                return operand if item == "+" else Unary(str(item), operand)
            return self._power()
        finally:
            self.depth -= 1

    def _power(self) -> Node:
        base = self._postfix()
        if self._peek() == "**":
            self._take()
            return Bin("**", base, self._factor())
        return base

    def _postfix(self) -> Node:
        node = self._atom()
        while self._peek() in ("squared", "cubed", "pct"):
            item = self._take()
            if item == "pct":
                node = Bin("/", node, Num(Fraction(100)))
            else:
                node = Bin("**", node, Num(Fraction(2 if item == "squared" else 3)))
        return node

    def _atom(self) -> Node:
        item = self._take()
        if isinstance(item, Fraction):
            return Num(item)
        if item == "(":
            node = self._expr()
            if self._take() != ")":
                raise ExpressionError("a parenthesis is not closed")
            return node
        raise ExpressionError("a number is missing" if item is None else f"unexpected {item}")


def _items_to_node(items: list[Item]) -> Node | None:
    """Parse a run of items as arithmetic, or ``None`` if it is just a number or not valid."""
    while items and items[-1] in (_BINARY | {"(", "sqrt"}):
        items = items[:-1]
    while items and items[0] in {"*", "/", "**", ")", "squared", "cubed", "pct", "+"}:
        items = items[1:]
    if not items or len(items) > MAX_ITEMS or not any(isinstance(x, Fraction) for x in items):
        return None
    try:
        node = Parser(items).parse()
    except ExpressionError:
        return None
    if isinstance(node, Num) or (
        isinstance(node, Unary) and node.op == "-" and isinstance(node.operand, Num)
    ):
        return None  # "five" or "minus five" alone is a number, not a sum to work out
    return node


def find_expression(tokens: Sequence[str]) -> Node | None:
    """The first arithmetic expression in a transcript, or ``None``."""
    i = 0
    while i < len(tokens):
        items, end = scan_math(tokens, i)
        node = _items_to_node(items)
        if node is not None:
            return node
        i = max(end, i + 1)
    return None
