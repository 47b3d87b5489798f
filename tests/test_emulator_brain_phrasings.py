"""The everyday ways of asking the offline brain for something, each with the call it must make.

Every expected call and argument is written out by hand. The phrasings are spelled the way
people say them and Whisper writes them: capitalised or not, with or without the final "?",
politeness in front ("could you", "I'd like to know") or behind ("please", "thanks").
"""

from __future__ import annotations

from typing import Any

import pytest
from brain_kit import BOT_TOOLS, GET_CURRENT_TIME

from emulator.brain import CallTools, Say, respond, respond_to_tool_results

pytestmark = pytest.mark.unit


def calculator_call(expression: str) -> CallTools:
    return CallTools([("calculate", {"expression": expression})])


def said(action: Any) -> str:
    assert isinstance(action, Say), action
    return action.text


# --------------------------------------------------------------------------------------------
# Arithmetic: the four operations, said with operators, verbs or nouns
# --------------------------------------------------------------------------------------------

MULTIPLICATION = [
    ("multiply 6 by 7", "6 * 7"),
    ("Multiply six by seven, please.", "6 * 7"),
    ("Can you multiply 6 by 7?", "6 * 7"),
    ("could you multiply six and seven", "6 * 7"),
    ("Multiply 6 with 7.", "6 * 7"),
    ("multiply 6 times 7", "6 * 7"),
    ("what's 6 times 7", "6 * 7"),
    ("What is six times seven?", "6 * 7"),
    ("6 x 7", "6 * 7"),
    ("6 X 7?", "6 * 7"),
    ("6 × 7", "6 * 7"),
    ("six multiplied by seven", "6 * 7"),
    ("What's the product of 6 and 7?", "6 * 7"),
    ("the product of six and seven", "6 * 7"),
    ("What do you get if you multiply twenty-one by three?", "21 * 3"),
    ("6 and 7 multiplied together", "6 * 7"),
    ("multiply 2, 3 and 4", "2 * 3 * 4"),
    ("multiply a hundred and five by 3", "105 * 3"),
    ("What is minus six times seven?", "-6 * 7"),
    ("what is 6 x -7", "6 * -7"),
    ("multiply 2.5 by 4", "2.5 * 4"),
    ("Multiply two point five by four.", "2.5 * 4"),
    ("double 21", "21 * 2"),
    ("triple four", "4 * 3"),
]
DIVISION = [
    ("divide 10 by 4", "10 / 4"),
    ("Divide ten by four, please.", "10 / 4"),
    ("Could you divide 7.5 by 2.5?", "7.5 / 2.5"),
    ("what is 10 over 4", "10 / 4"),
    ("What's ten divided by four?", "10 / 4"),
    ("10 ÷ 4", "10 / 4"),
    ("10 / 4", "10 / 4"),
    ("What is the quotient of 10 and 4?", "10 / 4"),
    ("the quotient of 10 by 4", "10 / 4"),
    ("what's the ratio of 3 to 4", "3 / 4"),
    ("divide minus 9 by 3", "-9 / 3"),
    ("divide 1,000 by 8", "1000 / 8"),
    ("What's half of 10?", "10 / 2"),
    ("halve 9", "9 / 2"),
]
ADDITION = [
    ("add 2 and 3", "2 + 3"),
    ("Add two and three.", "2 + 3"),
    ("Please add 2 and 3 together.", "2 + 3"),
    ("add 2 to 3", "3 + 2"),
    ("add five to ten", "10 + 5"),
    ("2 plus 3", "2 + 3"),
    ("What's two plus three?", "2 + 3"),
    ("2 + 3", "2 + 3"),
    ("what is the sum of 2 and 3", "2 + 3"),
    ("The sum of two, three and four?", "2 + 3 + 4"),
    ("What's the total of 10 and 15?", "10 + 15"),
    ("add up 4, 5 and 6", "4 + 5 + 6"),
    ("what do 2 and 3 add up to", "2 + 3"),
    ("2 and 3 added together", "2 + 3"),
    ("add a hundred and five", "100 + 5"),
    ("add a hundred and five and three", "105 + 3"),
    ("add minus two point five and 3", "-2.5 + 3"),
    ("increase 5 by 3", "5 + 3"),
    ("I'd like to know what twenty-one plus four is, thanks.", "21 + 4"),
]
SUBTRACTION = [
    ("subtract 3 from 10", "10 - 3"),
    ("Subtract three from ten.", "10 - 3"),
    ("take 3 away from 10", "10 - 3"),
    ("Take away three from ten.", "10 - 3"),
    ("take 3 from 10", "10 - 3"),
    ("10 take away 3", "10 - 3"),
    ("10 minus 3", "10 - 3"),
    ("What's ten minus three?", "10 - 3"),
    ("10 - 3", "10 - 3"),
    ("What's the difference between 10 and 3?", "10 - 3"),
    ("the difference of ten and three", "10 - 3"),
    ("subtract minus 3 from 10", "10 - -3"),
    ("what is 10 minus minus 3", "10 - -3"),
    ("deduct 15 from 100", "100 - 15"),
    ("decrease 10 by 4", "10 - 4"),
    ("can you tell me what a hundred and five minus five is", "105 - 5"),
]
MORE_ARITHMETIC = [
    ("multiply 2 plus 3 by 4", "(2 + 3) * 4"),
    ("what's the square of 5", "5 ** 2"),
    ("the cube of 3", "3 ** 3"),
    ("What's the square root of 16?", "16 ** 0.5"),
    ("what is two to the power of ten", "2 ** 10"),
    ("What's 20% of 50?", "20 / 100 * 50"),
]


@pytest.mark.parametrize(("text", "expression"), MULTIPLICATION)
def test_a_multiplication_asked_in_an_everyday_way_calls_the_calculator(
    text: str, expression: str
) -> None:
    assert respond(text, BOT_TOOLS) == calculator_call(expression)


@pytest.mark.parametrize(("text", "expression"), DIVISION)
def test_a_division_asked_in_an_everyday_way_calls_the_calculator(
    text: str, expression: str
) -> None:
    assert respond(text, BOT_TOOLS) == calculator_call(expression)


@pytest.mark.parametrize(("text", "expression"), ADDITION)
def test_an_addition_asked_in_an_everyday_way_calls_the_calculator(
    text: str, expression: str
) -> None:
    assert respond(text, BOT_TOOLS) == calculator_call(expression)


@pytest.mark.parametrize(("text", "expression"), SUBTRACTION)
def test_a_subtraction_asked_in_an_everyday_way_calls_the_calculator(
    text: str, expression: str
) -> None:
    assert respond(text, BOT_TOOLS) == calculator_call(expression)


@pytest.mark.parametrize(("text", "expression"), MORE_ARITHMETIC)
def test_powers_roots_percentages_and_nested_operations_call_the_calculator(
    text: str, expression: str
) -> None:
    assert respond(text, BOT_TOOLS) == calculator_call(expression)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Multiply six by seven, please.", "6 times 7 is 42."),
        ("divide 10 by 4", "10 divided by 4 is 2.5."),
        ("subtract 3 from 10", "10 minus 3 is 7."),
        ("take 3 away from 10", "10 minus 3 is 7."),
        ("What's the sum of 2, 3 and 4?", "2 plus 3 plus 4 is 9."),
        ("the difference between 3 and 10", "3 minus 10 is -7."),
        ("What is the product of twenty-one and minus three?", "21 times minus 3 is -63."),
        ("divide 5 by 0", "I can't work out 5 divided by 0, because you can't divide by zero."),
    ],
)
def test_without_a_calculator_an_operation_said_with_a_verb_is_answered_in_words(
    text: str, answer: str
) -> None:
    assert said(respond(text, [GET_CURRENT_TIME])) == answer


def test_a_bare_calculator_result_is_read_back_with_the_operation_the_user_said() -> None:
    reply = respond_to_tool_results(
        [("calculate", {"result": 7})], user_text="Subtract three from ten, please."
    )
    assert reply.text == "10 minus 3 is 7."


@pytest.mark.parametrize(
    "text",
    [
        "I have two dogs and three cats",
        "add milk and eggs to my list",
        "take 5 minutes from now",
        "divide the cake by 4",
        "increase the volume by 10",
        "half of the people left",
        "two and two",
        "multiply",
    ],
)
def test_numbers_near_an_operation_word_are_not_a_sum_unless_the_operation_takes_them(
    text: str,
) -> None:
    assert said(respond(text, BOT_TOOLS)).startswith(f'You said: "{text}".')
