"""Working out a parsed sum: exactly, in fractions, and written back as code or words.

A calculator tool gets the sum as Python-style source ("12 * 7"); without one the brain answers
itself ("12 times 7 is 84."), so both need the same tree written two ways.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Final

from emulator.brain.expressions import (
    MAX_ITEMS,
    Node,
    Num,
    Parser,
    Unary,
    scan_math,
)
from emulator.brain.numbers import to_python
from emulator.brain.operations import find_arithmetic
from emulator.brain.text import utterance
from emulator.brain.types import ExpressionError

_MAX_BITS: Final = 3400  # about 1000 decimal digits: enough for any spoken sum, cheap to compute

_PRECEDENCE: Final = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}


def _precedence(node: Node) -> int:
    if isinstance(node, Num):
        return 9
    if isinstance(node, Unary):
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


def to_code(node: Node) -> str:
    """The expression as Python-style source with only the parentheses it needs."""
    if isinstance(node, Num):
        return _literal(node.value)
    if isinstance(node, Unary):
        inner = to_code(node.operand)
        if node.op == "-":
            return f"-({inner})" if _precedence(node.operand) < 3 else f"-{inner}"
        return f"({inner}) ** 0.5" if _precedence(node.operand) <= 4 else f"{inner} ** 0.5"
    left, right = to_code(node.left), to_code(node.right)
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


def spoken_expression(node: Node) -> str:
    """The expression in words for the reply ("12 times 7")."""
    if isinstance(node, Num):
        return _literal(node.value)
    if isinstance(node, Unary):
        prefix = "minus" if node.op == "-" else "the square root of"
        return f"{prefix} {spoken_expression(node.operand)}"
    return f"{spoken_expression(node.left)} {_SPOKEN_OPS[node.op]} {spoken_expression(node.right)}"


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


def evaluate(node: Node) -> Fraction | float:
    """Exact arithmetic (fractions) where possible, floats for roots and fractional powers."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Unary):
        operand = evaluate(node.operand)
        return -operand if node.op == "-" else _power(operand, Fraction(1, 2))
    left, right = evaluate(node.left), evaluate(node.right)
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
        text: A transcript such as "What is twelve times seven?", "what's 12 x 7" or
            "multiply 12 by 7".

    Returns:
        Python-style source such as ``"12 * 7"`` (square roots as ``x ** 0.5``), or ``None``
        when the text holds no arithmetic.
    """
    utt = utterance(text)
    node = find_arithmetic(utt.tokens, utt.breaks)
    return None if node is None else to_code(node)


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
    tokens = utterance(expression).tokens
    if len(tokens) > MAX_ITEMS:
        raise ExpressionError("the expression is too long")
    items, end = scan_math(tokens, 0)
    if not items or end != len(tokens):
        raise ExpressionError(f"not an arithmetic expression: {expression!r}")
    return to_python(evaluate(Parser(items).parse()))


def answer_arithmetic(node: Node) -> str:
    """Say the result of a sum the brain works out itself (no calculator tool declared)."""
    spoken = spoken_expression(node)
    try:
        value = evaluate(node)
    except ZeroDivisionError:
        return f"I can't work out {spoken}, because you can't divide by zero."
    except (OverflowError, ValueError) as error:
        return f"I can't work out {spoken}: {error}."
    return f"{spoken[0].upper()}{spoken[1:]} is {_format_number(value)}."
