"""The brain's phrasings combined at random: politeness, verb or operator, numbers in words or
digits, punctuation and capitalisation.

The table-driven tests (`test_emulator_brain_phrasings.py`) pin single sentences; these check that
the parts combine. Each strategy returns the sentence with the call it must produce, built by the
test from the numbers it drew, never by the brain's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from brain_kit import BOT_TOOLS, GET_CURRENT_TIME, SMALL, american_words
from hypothesis import given
from hypothesis import strategies as st
from num2words import num2words

from emulator.brain import CallTools, Say, respond

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Number:
    """A number as the user says it and as the calculator must receive it."""

    spoken: str
    code: str


@st.composite
def numbers(draw: st.DrawFn) -> Number:
    """Whole or with one decimal, signed or not, in digits ("1,234", "-5") or words ("a hundred
    and five", "minus two point five"), British or American."""
    whole = draw(st.integers(min_value=0, max_value=20) | st.integers(min_value=0, max_value=9999))
    tenths = draw(st.integers(min_value=1, max_value=9)) if draw(st.integers(0, 3)) == 0 else 0
    negative = draw(st.booleans()) and (whole or tenths) > 0
    code = ("-" if negative else "") + (f"{whole}.{tenths}" if tenths else str(whole))
    if draw(st.booleans()):
        digits = f"{whole:,}" if draw(st.booleans()) else str(whole)
        digits += f".{tenths}" if tenths else ""
        sign = draw(st.sampled_from(["-", "minus ", "negative "])) if negative else ""
        return Number(sign + digits, code)
    words = draw(st.sampled_from([num2words, american_words]))(whole)
    if words.startswith(("one hundred", "one thousand")) and draw(st.booleans()):
        words = "a" + words[3:]  # "a hundred and five"
    words += f" point {SMALL[tenths]}" if tenths else ""
    sign = draw(st.sampled_from(["minus ", "negative "])) if negative else ""
    return Number(sign + words, code)


Form = tuple[str, str]
"""A sentence with {a} and {b} for the numbers, and the expression with {a} and {b}."""

COMMANDS: list[Form] = [
    ("multiply {a} by {b}", "{a} * {b}"),
    ("multiply {a} and {b}", "{a} * {b}"),
    ("divide {a} by {b}", "{a} / {b}"),
    ("add {a} and {b}", "{a} + {b}"),
    ("add {b} to {a}", "{a} + {b}"),
    ("add up {a} and {b}", "{a} + {b}"),
    ("subtract {b} from {a}", "{a} - {b}"),
    ("take {b} away from {a}", "{a} - {b}"),
]
PHRASES: list[Form] = [
    ("{a} times {b}", "{a} * {b}"),
    ("{a} x {b}", "{a} * {b}"),
    ("{a} × {b}", "{a} * {b}"),
    ("{a} multiplied by {b}", "{a} * {b}"),
    ("the product of {a} and {b}", "{a} * {b}"),
    ("{a} divided by {b}", "{a} / {b}"),
    ("{a} over {b}", "{a} / {b}"),
    ("the quotient of {a} and {b}", "{a} / {b}"),
    ("{a} plus {b}", "{a} + {b}"),
    ("{a} + {b}", "{a} + {b}"),
    ("the sum of {a} and {b}", "{a} + {b}"),
    ("{a} minus {b}", "{a} - {b}"),
    ("the difference between {a} and {b}", "{a} - {b}"),
]
COMMAND_LEADS = [
    "", "please ", "could you ", "can you ", "would you please ", "I'd like you to ",
    "hey Gemini, ", "OK, ", "what do you get if you ",
]  # fmt: skip
QUESTIONS = [
    "what is {}", "what's {}", "whats {}", "how much is {}", "can you tell me what {} is",
    "I'd like to know what {} is", "could you tell me {}", "calculate {}", "{}",
]  # fmt: skip
ENDINGS = ["", " please", ", please", ", thanks", " thank you"]
STOPS = ["", "?", ".", "!"]
CASINGS: list[Callable[[str], str]] = [
    lambda s: s,
    lambda s: s[:1].upper() + s[1:],
    str.lower,
    str.upper,
]


@st.composite
def sums(draw: st.DrawFn) -> tuple[str, str]:
    """A sum said as a command or a question, with the expression the calculator must get."""
    a, b = draw(numbers()), draw(numbers())
    if draw(st.booleans()):
        sentence, expression = draw(st.sampled_from(COMMANDS))
        text = draw(st.sampled_from(COMMAND_LEADS)) + sentence
    else:
        sentence, expression = draw(st.sampled_from(PHRASES))
        text = draw(st.sampled_from(QUESTIONS)).format(sentence)
    text = text.format(a=a.spoken, b=b.spoken)
    text += draw(st.sampled_from(ENDINGS)) + draw(st.sampled_from(STOPS))
    return draw(st.sampled_from(CASINGS))(text), expression.format(a=a.code, b=b.code)


@given(sums())
def test_any_combination_of_politeness_operation_numbers_and_punctuation_calls_the_calculator(
    case: tuple[str, str],
) -> None:
    text, expression = case
    assert respond(text, BOT_TOOLS) == CallTools([("calculate", {"expression": expression})])


def spoken_operand(n: int) -> str:
    return f"minus {-n}" if n < 0 else str(n)


@given(
    st.integers(min_value=-999, max_value=999),
    st.integers(min_value=-999, max_value=999),
    st.sampled_from(
        [
            ("multiply {a} by {b}", "times", lambda a, b: a * b),
            ("add {a} and {b}", "plus", lambda a, b: a + b),
            ("subtract {b} from {a}", "minus", lambda a, b: a - b),
        ]
    ),
)
def test_without_a_calculator_the_answer_to_a_spoken_operation_is_right(
    a: int, b: int, form: tuple[str, str, Callable[[int, int], int]]
) -> None:
    sentence, word, work_out = form
    text = "Could you " + sentence.format(a=american_words(a), b=american_words(b)) + "?"
    question = f"{spoken_operand(a)} {word} {spoken_operand(b)}"
    expected = f"{question[:1].upper()}{question[1:]} is {work_out(a, b)}."
    assert respond(text, [GET_CURRENT_TIME]) == Say(expected)


CITIES = ["Tokyo", "Paris", "New York", "London", "Berlin", "Rio de Janeiro", "Los Angeles"]
TIME_QUESTIONS = [
    "what time is it in {}", "what's the time in {}", "what is the current time in {}",
    "tell me the time in {}", "current time in {}", "time in {}",
    "do you know what time it is in {}", "what's the local time in {}", "give me the time in {}",
]  # fmt: skip
TIME_LEADS = ["", "please ", "hey, ", "excuse me, ", "so ", "okay, ", "could you "]
TIME_ENDINGS = [*ENDINGS, " right now", " now", " today"]


@given(
    st.sampled_from(TIME_LEADS),
    st.sampled_from(TIME_QUESTIONS),
    st.sampled_from(CITIES),
    st.sampled_from(TIME_ENDINGS),
    st.sampled_from(STOPS),
    st.sampled_from(CASINGS),
)
def test_any_way_of_asking_the_time_in_a_city_calls_the_clock_with_that_city(
    lead: str,
    question: str,
    city: str,
    ending: str,
    stop: str,
    casing: Callable[[str], str],
) -> None:
    text = casing(lead + question.format(city) + ending + stop)
    assert respond(text, BOT_TOOLS) == CallTools([("get_current_time", {"place": city})])


FACTS = [
    "my dog is called Rex",
    "the door code is 4711",
    "I parked on level 3",
    "my sister's birthday is in May",
]
REMEMBER_FORMS = [
    "remember that {}", "remember {}", "remember: {}", "make a note: {}", "make a note that {}",
    "note that {}", "don't forget that {}", "write down that {}", "keep in mind that {}",
]  # fmt: skip
NOTE_LEADS = ["", "please ", "could you ", "can you ", "I'd like you to ", "hey, ", "okay, "]


@given(
    st.sampled_from(NOTE_LEADS),
    st.sampled_from(REMEMBER_FORMS),
    st.sampled_from(FACTS),
    st.sampled_from(ENDINGS),
    st.sampled_from(STOPS),
    st.sampled_from([str.lower, str.upper, lambda s: s[:1].upper() + s[1:]]),
)
def test_any_way_of_asking_to_remember_saves_the_fact_in_the_users_words(
    lead: str,
    form: str,
    fact: str,
    ending: str,
    stop: str,
    casing: Callable[[str], str],
) -> None:
    text = casing(lead + form.format(fact) + ending + stop)
    expected = casing(fact) if casing in (str.upper, str.lower) else fact  # the note keeps the case
    assert respond(text, BOT_TOOLS) == CallTools(
        [("remember_note", {"text": expected})], preamble="Sure, I'm saving that."
    )


RECALL_FORMS = [
    "what did I ask you to remember", "what have I asked you to remember", "what are my notes",
    "read my notes", "read me my notes", "list my notes", "what do you remember",
    "what notes do you have", "what's in my notes",
]  # fmt: skip


@given(
    st.sampled_from(["", "please ", "can you ", "okay, ", "so ", "hey, "]),
    st.sampled_from(RECALL_FORMS),
    st.sampled_from(ENDINGS),
    st.sampled_from(STOPS),
    st.sampled_from(CASINGS),
)
def test_any_way_of_asking_for_the_notes_calls_recall_for_all_of_them(
    lead: str, form: str, ending: str, stop: str, casing: Callable[[str], str]
) -> None:
    text = casing(lead + form + ending + stop)
    assert respond(text, BOT_TOOLS) == CallTools([("recall_notes", {})])


VOCABULARY = (
    "add added sum total of up together and to by from take away subtract multiply multiplied "
    "divide divided product quotient difference between half double plus minus times x over "
    "a hundred one two five twenty 3 7 1,000 2.5 - + ( ) , please what is the"
).split()


@given(st.lists(st.sampled_from(VOCABULARY), max_size=60))
def test_any_jumble_of_operation_words_and_numbers_gets_one_answer_without_an_error(
    words: list[str],
) -> None:
    text = " ".join(words)
    action = respond(text, BOT_TOOLS)
    assert isinstance(action, Say | CallTools)
    assert respond(text, BOT_TOOLS) == action
    if isinstance(action, CallTools):
        assert [name for name, _ in action.calls] == ["calculate"]


def test_a_turn_of_a_thousand_numbers_and_operators_is_still_read() -> None:
    text = " + ".join(["1"] * 1000) + " and multiply 6 by 7"
    assert respond(text, BOT_TOOLS) == CallTools([("calculate", {"expression": "6 * 7"})])
