"""The calculator tool: safe parsing, limits, and exactness against an independent oracle."""

import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper

from bots.tools.calculator import CalculatorError, calculate, evaluate
from testkit.tool_calls import result_of

pytestmark = pytest.mark.unit

DISALLOWED = "Only numbers and + - * / ** ( ) are allowed."


def refusal(expression: str) -> str:
    """The calculator's message for an expression it must refuse."""
    with pytest.raises(CalculatorError) as caught:
        evaluate(expression)
    return str(caught.value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2**10", 1024),
        ("(1+2)*3", 9),
        ("12 * 7", 84),
        ("12 x 7", 84),
        ("12x7", 84),
        ("3 × 4", 12),
        ("8 ÷ 2", 4),
        ("2 ^ 10", 1024),
        ("-5 + 3", -2),
        ("-(2 + 3) * -2", 10),
        ("+7", 7),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** -2", 0.25),
        ("10 / 4", 2.5),
        ("sqrt(144)", 12),
        ("abs(-4.5)", 4.5),
        ("round(3.14159, 2)", 3.14),
        ("12 * 7 =", 84),
    ],
)
def test_the_calculator_computes_ordinary_arithmetic(expression: str, expected: Any) -> None:
    assert evaluate(expression) == expected


def test_integer_arithmetic_stays_exact_and_integral() -> None:
    result = evaluate("123456789 * 987654321")
    assert result == 121932631112635269
    assert isinstance(result, int)


def test_a_whole_quotient_comes_back_as_an_int() -> None:
    result = evaluate("10 / 2")
    assert result == 5
    assert isinstance(result, int)


def test_floats_are_rounded_to_ten_significant_digits() -> None:
    assert evaluate("0.1 + 0.2") == 0.3
    assert evaluate("1 / 3") == 0.3333333333
    assert evaluate("sqrt(2)") == 1.414213562


def test_the_calculator_refuses_dunder_import_without_evaluating_it() -> None:
    assert refusal("__import__('os')") == DISALLOWED


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('echo hi')",
        "().__class__.__bases__",
        "open('/etc/passwd')",
        "[1, 2]",
        "'a' * 3",
        "True + 1",
        "lambda: 1",
        "x",
        "pow(2, 3)",
        "round(2.5, ndigits=1)",
        "1 if 1 else 2",
        "2 < 3",
        "3 & 1",
    ],
)
def test_anything_that_is_not_arithmetic_is_refused(expression: str) -> None:
    assert refusal(expression) == DISALLOWED


def timed_refusal(expression: str) -> tuple[str, float]:
    """The refusal's message, and the CPU time this thread spent on it: a busy machine slows the
    refusal down, but cannot add to that time."""
    started = time.thread_time()
    message = refusal(expression)
    return message, time.thread_time() - started


def test_a_power_tower_is_refused_fast_instead_of_hanging() -> None:
    message, cpu_seconds = timed_refusal("9**9**9")
    assert cpu_seconds < 0.1
    assert "too large" in message


@pytest.mark.parametrize(
    "expression", ["10**10**10", "2**2**2**2**2", "9^9^9", "(10**60) * (10**60)", "10 ** 101"]
)
def test_results_beyond_a_googol_are_refused_fast(expression: str) -> None:
    message, cpu_seconds = timed_refusal(expression)
    assert "too large" in message
    assert cpu_seconds < 0.1


def test_powers_of_one_and_zero_are_fine_whatever_the_exponent() -> None:
    assert evaluate("1 ** 100000") == 1
    assert evaluate("(-1) ** 100001") == -1
    assert evaluate("0 ** 5000") == 0


@pytest.mark.parametrize("expression", ["1/0", "1 // 0", "5 % 0", "0 ** -1", "1 / (2 - 2)"])
def test_division_by_zero_is_reported_in_plain_words(expression: str) -> None:
    assert refusal(expression) == "Division by zero."


def test_an_expression_longer_than_two_hundred_characters_is_refused() -> None:
    assert "too long" in refusal("1+" * 100 + "1")


def test_deep_nesting_is_refused_before_it_can_exhaust_the_stack() -> None:
    assert "nested too deeply" in refusal("-" * 150 + "1")


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("12 +", "could not read"),
        ("100!", "could not read"),
        ("sqrt(-1)", "negative"),
        ("(-8) ** 0.5", "no real-number result"),
        ("1e999", "too large"),
        ("sqrt(1, 2)", "wrong number of arguments"),
    ],
)
def test_malformed_or_impossible_input_gets_a_clear_message(expression: str, fragment: str) -> None:
    assert fragment in refusal(expression).lower()


def test_calculator_error_is_a_value_error() -> None:
    assert issubclass(CalculatorError, ValueError)


# An independent oracle: random +, -, * trees over small ints, rendered to text by the test
# and valued by walking the tree here, never by eval().


@dataclass(frozen=True)
class Leaf:
    value: int


@dataclass(frozen=True)
class Op:
    symbol: str
    left: "Tree"
    right: "Tree"


Tree = Leaf | Op


def render(tree: Tree) -> str:
    if isinstance(tree, Leaf):
        return f"({tree.value})" if tree.value < 0 else str(tree.value)
    return f"({render(tree.left)} {tree.symbol} {render(tree.right)})"


def value_of(tree: Tree) -> int:
    if isinstance(tree, Leaf):
        return tree.value
    left, right = value_of(tree.left), value_of(tree.right)
    if tree.symbol == "+":
        return left + right
    if tree.symbol == "-":
        return left - right
    return left * right


trees = st.recursive(
    st.integers(min_value=-999, max_value=999).map(Leaf),
    lambda children: st.builds(Op, st.sampled_from(["+", "-", "*"]), children, children),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_random_integer_expressions_match_exact_integer_arithmetic(tree: Tree) -> None:
    text = render(tree)
    assert len(text) <= 200  # 12 leaves of at most 6 characters plus 5 per operator
    result = evaluate(text)
    assert result == value_of(tree)
    assert isinstance(result, int)


def test_the_schema_pipecat_derives_names_the_tool_and_requires_an_expression() -> None:
    schema = DirectFunctionWrapper(calculate).to_function_schema()
    assert schema.name == "calculate"
    assert schema.required == ["expression"]
    assert schema.properties["expression"]["type"] == "string"
    assert "12 * 7" in schema.properties["expression"]["description"]
    assert schema.description.startswith("Calculate the exact result")


def test_calculate_is_a_blocking_tool() -> None:
    assert not hasattr(calculate, "_pipecat_cancel_on_interruption")


async def test_the_direct_function_delivers_the_result_through_the_result_callback() -> None:
    assert await result_of(calculate, expression="12 * 7") == {
        "expression": "12 * 7",
        "result": 84,
    }


async def test_the_direct_function_reports_refusals_as_error_results() -> None:
    assert await result_of(calculate, expression="1/0") == {"error": "Division by zero."}
    assert await result_of(calculate, expression="__import__('os')") == {"error": DISALLOWED}
