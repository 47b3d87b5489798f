"""Calculator tool: exact arithmetic for the voice assistant, without ``eval``.

Language models are unreliable at multi-digit arithmetic, so the assistant hands sums to
this tool. The expression comes from the model, which may have copied it from the user, so
it is untrusted input: it is parsed with :func:`ast.parse` and interpreted by walking an
allow-list of node types. ``eval``/``exec`` are never used, names resolve only to a few
math functions, and sizes are bounded so that inputs like ``9**9**9`` are refused at once
instead of tying up the event loop (and the conversation) for minutes.

The pure logic is :func:`evaluate`; :func:`calculate` is the Pipecat direct function.
"""

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any, TypeAlias

from loguru import logger
from pipecat.services.llm_service import FunctionCallParams

__all__ = ["CalculatorError", "calculate", "evaluate"]

Number: TypeAlias = int | float

MAX_EXPRESSION_CHARS = 200
"""Longest expression accepted; a spoken calculation is never longer."""

MAX_DEPTH = 100
"""Deepest syntax tree walked, so pathological nesting fails fast instead of recursing."""

MAX_EXPONENT = 1000
"""Largest exponent magnitude allowed for ``**`` (unless the base is 0, 1 or -1)."""

MAX_MAGNITUDE = 1e100
"""Largest absolute value of any intermediate or final result."""

SIGNIFICANT_DIGITS = 10
"""Floats are rounded to this many significant digits; more is noise when spoken."""

DISALLOWED_MESSAGE = "Only numbers and + - * / ** ( ) are allowed."


class CalculatorError(ValueError):
    """An expression the calculator refuses or cannot compute; the message is user-facing."""


def _checked(value: Number) -> Number:
    """Refuse values that are not finite or not within :data:`MAX_MAGNITUDE`.

    Applied after every operation, so no intermediate result can grow without bound.
    """
    if isinstance(value, complex):
        raise CalculatorError("That has no real-number result.")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("The result is too large to calculate.")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("The result is too large to calculate.")
    return value


def _power(base: Number, exponent: Number) -> Number:
    """Raise ``base`` to ``exponent`` after checking the result's size by logarithm.

    The check runs before the power is computed: ``9 ** 387420489`` would take minutes
    and gigabytes, so it is rejected from ``exponent * log10(|base|)`` instead.
    """
    if abs(base) in (0, 1):
        if base == 0 and exponent < 0:
            raise CalculatorError("Division by zero.")
        return _checked(base**exponent)
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError("That exponent is too large to calculate.")
    if exponent * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise CalculatorError("The result is too large to calculate.")
    return _checked(base**exponent)


def _divide(left: Number, right: Number, op: Callable[[Any, Any], Number]) -> Number:
    """Apply a division-like operator, reporting division by zero in plain words."""
    if right == 0:
        raise CalculatorError("Division by zero.")
    return _checked(op(left, right))


def _sqrt(value: Number) -> Number:
    """Square root, exact for perfect-square integers so ``sqrt(144)`` stays ``12``."""
    if value < 0:
        raise CalculatorError("Cannot take the square root of a negative number.")
    if isinstance(value, int):
        root = math.isqrt(value)
        if root * root == value:
            return root
    return math.sqrt(value)


def _round(value: Number, ndigits: Number | None = None) -> Number:
    """Round half to even like Python's ``round``, with a bounded digit count."""
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int) or abs(ndigits) > 15:
        raise CalculatorError("round() takes a whole number of digits between -15 and 15.")
    return round(value, ndigits)


_BINARY_OPS: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: lambda a, b: _checked(a + b),
    ast.Sub: lambda a, b: _checked(a - b),
    ast.Mult: lambda a, b: _checked(a * b),
    ast.Div: lambda a, b: _divide(a, b, operator.truediv),
    ast.FloorDiv: lambda a, b: _divide(a, b, operator.floordiv),
    ast.Mod: lambda a, b: _divide(a, b, operator.mod),
    ast.Pow: _power,
}

_UNARY_OPS: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}

# name -> (function, minimum arguments, maximum arguments)
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (_sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
}

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

# "12 x 7" / "3x4" / "(2)x(3)": an x between two operands means times. Anywhere else it is
# left alone, so it fails as an unknown name rather than being silently reinterpreted.
_TIMES_X = re.compile(r"(?<=[\d.)\s])[xX](?=\s*[\w.(])")


def _normalize(expression: str) -> str:
    """Map the spoken/typed symbols a model may pass (×, ÷, x, ^, −) to Python operators."""
    text = expression.strip().rstrip("=?").strip()
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    return _TIMES_X.sub("*", text)


def _walk(node: ast.AST, depth: int = 0) -> Number:
    """Interpret one allow-listed node; anything else is refused before it can run."""
    if depth > MAX_DEPTH:
        raise CalculatorError("That expression is nested too deeply.")
    if isinstance(node, ast.Expression):
        return _walk(node.body, depth + 1)
    # bool is an int subclass, but True is not a number here.
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return _checked(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        left = _walk(node.left, depth + 1)
        right = _walk(node.right, depth + 1)
        return _BINARY_OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_walk(node.operand, depth + 1))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        function, min_args, max_args = _FUNCTIONS[node.func.id]
        if not min_args <= len(node.args) <= max_args:
            raise CalculatorError(f"{node.func.id}() got the wrong number of arguments.")
        args = [_walk(arg, depth + 1) for arg in node.args]
        return _checked(function(*args))
    raise CalculatorError(DISALLOWED_MESSAGE)


def _tidy(value: Number) -> Number:
    """Round floats to :data:`SIGNIFICANT_DIGITS` and turn whole floats into ints.

    ``0.1 + 0.2`` should be spoken as 0.3 and ``10 / 2`` as 5, not 0.30000000000000004
    and 5.0. Integers are exact and returned untouched.
    """
    if isinstance(value, int):
        return value
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if rounded.is_integer() and abs(rounded) < 1e15:
        return int(rounded)
    return rounded


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression safely.

    Args:
        expression: Numbers with ``+ - * / // % **`` (also ``x``/``×`` for times, ``÷`` for
            divide and ``^`` for power), unary signs, parentheses, ``sqrt``, ``abs``,
            ``round`` and the constants ``pi`` and ``e``.

    Returns:
        The value: an ``int`` when the arithmetic is exact, else a float rounded to
        :data:`SIGNIFICANT_DIGITS` significant digits.

    Raises:
        CalculatorError: The expression is empty, too long, not arithmetic, divides by zero,
            or its result would be too large. The message is meant to be read to the user.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(
            f"That expression is too long (the limit is {MAX_EXPRESSION_CHARS} characters)."
        )
    text = _normalize(expression)
    if not text:
        raise CalculatorError("The expression is empty.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(
            f"That expression is too long (the limit is {MAX_EXPRESSION_CHARS} characters)."
        )
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise CalculatorError(f"I could not read {expression.strip()!r} as arithmetic.") from error
    try:
        value = _walk(tree)
    except ZeroDivisionError as error:  # backstop; the operators check for zero themselves
        raise CalculatorError("Division by zero.") from error
    except (OverflowError, RecursionError) as error:
        raise CalculatorError("The result is too large to calculate.") from error
    return _tidy(value)


async def calculate(params: FunctionCallParams, expression: str) -> None:
    """Calculate the exact result of an arithmetic expression.

    Use this for any arithmetic beyond the trivial instead of computing it yourself.

    Args:
        expression: The arithmetic to compute, using numbers, + - * / // % ** and
            parentheses, for example "12 * 7" or "(1 + 2) ** 3". sqrt(), abs() and
            round() are also available.
    """
    try:
        result: dict[str, Any] = {"expression": expression, "result": evaluate(expression)}
    except CalculatorError as error:
        result = {"error": str(error)}
    logger.debug(f"calculate({expression!r}) -> {result}")
    await params.result_callback(result)
