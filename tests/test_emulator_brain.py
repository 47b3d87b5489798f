"""The offline brain: what the emulator's "model" does with what the user said.

The transcripts of the speech fixtures are used verbatim, with the variants Whisper produces
(lower case, no punctuation, digits for numbers), because the end-to-end tests depend on them.
"""

from __future__ import annotations

import itertools
import re
from fractions import Fraction
from typing import Any

import pytest
from brain_kit import (
    BOT_TOOLS,
    FORGET_NOTES,
    GET_CURRENT_TIME,
    GET_WEATHER,
    RECALL_NOTES,
    REMEMBER_NOTE,
    american_words,
    schema,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from num2words import num2words

from emulator.brain import (
    ASK_TIME_CITY,
    ECHO_TAIL,
    HEAR_YOU,
    NO_CAMERA,
    NO_CLOCK,
    NO_WEATHER,
    STOP_ACK,
    CallTools,
    ExpressionError,
    ImageInfo,
    Say,
    ToolDecl,
    colour_name,
    evaluate_expression,
    greeting,
    parse_number,
    respond,
    respond_to_tool_results,
    words_to_expression,
)

pytestmark = pytest.mark.unit


def calls_of(action: Any) -> list[tuple[str, dict[str, Any]]]:
    assert isinstance(action, CallTools), action
    return action.calls


def said(action: Any) -> str:
    assert isinstance(action, Say), action
    return action.text


# --------------------------------------------------------------------------------------------
# Greetings, stop, echo
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Hello, can you hear me?", "hello can you hear me", "Hi there!", "Can you hear me?"]
)
def test_hello_can_you_hear_me_gets_a_reply_that_says_it_can_hear(text: str) -> None:
    reply = said(respond(text, BOT_TOOLS))
    assert reply == HEAR_YOU
    assert "I can hear you" in reply


@pytest.mark.parametrize("text", ["", "   ", "...", "\n"])
def test_a_blank_turn_gets_the_greeting(text: str) -> None:
    assert said(respond(text, BOT_TOOLS, system_instruction="You are Ava.")) == greeting(
        "You are Ava."
    )


def test_the_greeting_introduces_the_name_from_the_system_instruction() -> None:
    assert greeting("You are Ava, a friendly voice assistant.").startswith("Hello! I'm Ava.")
    assert "Max" in greeting("Be brief. Your name is Max.")


def test_the_greeting_without_a_name_introduces_the_emulator() -> None:
    assert "emulator" in greeting("You are a helpful assistant.")
    assert "emulator" in greeting()


@pytest.mark.parametrize("text", ["Stop. Wait a moment.", "stop wait a moment", "Stop!", "stop"])
def test_stop_gets_a_very_short_acknowledgement(text: str) -> None:
    reply = said(respond(text, BOT_TOOLS))
    assert reply == STOP_ACK
    assert len(reply.split()) <= 4


def test_wait_gets_a_short_promise_to_wait() -> None:
    reply = said(respond("Wait a moment.", BOT_TOOLS))
    assert "wait" in reply.lower() and len(reply.split()) <= 4


def test_forget_it_means_never_mind_and_deletes_no_notes() -> None:
    assert said(respond("Oh, forget it.", BOT_TOOLS)) == STOP_ACK


def test_anything_else_is_echoed_with_what_the_emulator_understands() -> None:
    reply = said(respond("Bananas are  great!", BOT_TOOLS))
    assert reply == f'You said: "Bananas are great!". {ECHO_TAIL}'


def test_the_same_turn_always_gets_the_same_answer() -> None:
    for text in ["What time is it in Tokyo?", "Tell me a long story about a dragon.", "Hmm."]:
        assert respond(text, BOT_TOOLS) == respond(text, BOT_TOOLS)


# --------------------------------------------------------------------------------------------
# Time and weather
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("What time is it in Tokyo?", "Tokyo"),
        ("what time is it in tokyo", "Tokyo"),
        ("What's the time in Tokyo?", "Tokyo"),
        ("whats the time in tokyo right now", "Tokyo"),
        ("what's the time in new york", "New York"),
        ("Current time in New York City, please.", "New York City"),
        ("What time is it at the moment in Tokyo, Japan?", "Tokyo"),
        ("Hey, could you tell me the time in Rio de Janeiro?", "Rio de Janeiro"),
        ("what is the local time in utc", "UTC"),
    ],
)
def test_what_time_is_it_in_a_city_calls_the_time_tool_with_the_city(text: str, place: str) -> None:
    assert calls_of(respond(text, BOT_TOOLS)) == [("get_current_time", {"place": place})]


def test_a_blocking_tool_call_has_no_preamble() -> None:
    assert respond("What time is it in Tokyo?", BOT_TOOLS) == CallTools(
        [("get_current_time", {"place": "Tokyo"})], preamble=""
    )


def test_time_in_two_cities_calls_the_tool_once_for_each() -> None:
    assert calls_of(respond("What time is it in Tokyo and in London?", BOT_TOOLS)) == [
        ("get_current_time", {"place": "Tokyo"}),
        ("get_current_time", {"place": "London"}),
    ]


def test_a_test_tool_named_get_time_with_an_openapi_schema_is_found() -> None:
    get_time = ToolDecl(
        "get_time",
        "Returns the time.",
        {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
    )
    assert calls_of(respond("what time is it in paris", [get_time])) == [
        ("get_time", {"city": "Paris"})
    ]


def test_a_time_tool_is_found_by_its_description_alone() -> None:
    lookup = ToolDecl("lookup", "Tells the current time in a city.", schema([], where="string"))
    assert calls_of(respond("What time is it in Berlin?", [lookup])) == [
        ("lookup", {"where": "Berlin"})
    ]


def test_the_place_goes_into_a_location_like_parameter_rather_than_the_first_required() -> None:
    tool = ToolDecl(
        "get_time", "", schema(["format", "timezone"], format="string", timezone="string")
    )
    assert calls_of(respond("What time is it in Tokyo?", [tool])) == [
        ("get_time", {"timezone": "Tokyo"})
    ]


def test_without_a_location_like_parameter_the_first_required_string_takes_the_place() -> None:
    tool = ToolDecl("get_time", "", schema(["hours", "name"], hours="integer", name="string"))
    assert calls_of(respond("What time is it in Tokyo?", [tool])) == [
        ("get_time", {"name": "Tokyo"})
    ]


def test_what_time_is_it_without_a_place_asks_which_city_when_the_place_is_required() -> None:
    reply = said(respond("What time is it?", BOT_TOOLS))
    assert reply == ASK_TIME_CITY
    assert "Which city" in reply


def test_what_time_is_it_without_a_place_calls_bare_when_the_place_is_optional() -> None:
    tool = ToolDecl("get_time", "", schema([], city="string"))
    assert calls_of(respond("what time is it", [tool])) == [("get_time", {})]
    assert calls_of(respond("what time is it", [ToolDecl("get_time")])) == [("get_time", {})]


def test_the_answer_to_which_city_completes_the_time_question() -> None:
    history = [("user", "What time is it?"), ("model", ASK_TIME_CITY)]
    for answer in ["Tokyo.", "In Tokyo, please.", "tokyo"]:
        assert calls_of(respond(answer, BOT_TOOLS, history=history)) == [
            ("get_current_time", {"place": "Tokyo"})
        ]


def test_what_about_another_city_follows_up_a_time_question() -> None:
    history = [("user", "What time is it in Tokyo?"), ("model", "It is 22:15 in Tokyo.")]
    assert calls_of(respond("What about London?", BOT_TOOLS, history=history)) == [
        ("get_current_time", {"place": "London"})
    ]
    longer = [*history, ("user", "What about London?"), ("model", "It is 14:15 in London.")]
    assert calls_of(respond("And in Paris?", BOT_TOOLS, history=longer)) == [
        ("get_current_time", {"place": "Paris"})
    ]


def test_what_about_without_a_time_question_before_is_just_echoed() -> None:
    history = [("user", "Hello"), ("model", HEAR_YOU)]
    assert said(respond("What about London?", BOT_TOOLS, history=history)).startswith("You said")


def test_a_timer_tool_is_not_mistaken_for_a_clock() -> None:
    timer = ToolDecl("set_timer", "Set a timer.", schema(["minutes"], minutes="integer"))
    assert said(respond("What time is it in Tokyo?", [timer])) == NO_CLOCK


@pytest.mark.parametrize(
    "text",
    [
        "What is the weather like in Paris today?",
        "what is the weather like in paris today",
        "whats the weather in Paris",
        "Weather forecast for Paris, please.",
    ],
)
def test_the_weather_in_paris_calls_the_weather_tool_with_paris(text: str) -> None:
    tools = [GET_CURRENT_TIME, GET_WEATHER]
    assert calls_of(respond(text, tools)) == [("get_weather", {"city": "Paris"})]


def test_the_weather_without_a_weather_tool_says_it_cannot_check() -> None:
    reply = said(respond("What is the weather like in Paris today?", BOT_TOOLS))
    assert reply == NO_WEATHER
    assert "can't check the weather" in reply


# --------------------------------------------------------------------------------------------
# Notes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Please remember that my favorite color is blue.",
        "please remember that my favorite color is blue",
        "Remember that my favorite color is blue, please.",
        "Can you remember my favorite color is blue?",
        "Don't forget that my favorite color is blue.",
        "Make a note that my favorite color is blue.",
    ],
)
def test_remember_calls_remember_note_with_the_fact(text: str) -> None:
    assert calls_of(respond(text, BOT_TOOLS)) == [
        ("remember_note", {"text": "my favorite color is blue"})
    ]


def test_a_remembered_fact_keeps_the_users_own_wording() -> None:
    action = respond("Remember that I'm allergic to Brazil nuts!", BOT_TOOLS)
    assert calls_of(action) == [("remember_note", {"text": "I'm allergic to Brazil nuts"})]


def test_a_non_blocking_tool_call_comes_with_a_short_preamble() -> None:
    action = respond("Please remember that my favorite color is blue.", BOT_TOOLS)
    assert isinstance(action, CallTools)
    assert action.preamble and len(action.preamble.split()) <= 6


def test_remember_without_a_fact_asks_what_to_remember() -> None:
    assert "remember" in said(respond("Remember this.", BOT_TOOLS)).lower()


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("What is my favorite color?", {"query": "favorite color"}),
        ("what's my favorite color", {"query": "favorite color"}),
        ("Do you remember what my favorite color is?", {"query": "favorite color"}),
        ("Recall my favorite color.", {"query": "favorite color"}),
        ("What did I tell you about my dog?", {"query": "dog"}),
        ("What do you remember?", {}),
        ("What are my notes?", {}),
        ("read me my notes", {}),
    ],
)
def test_recall_questions_call_recall_notes_with_the_topic(text: str, args: dict[str, str]) -> None:
    assert calls_of(respond(text, BOT_TOOLS)) == [("recall_notes", args)]


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("Forget my favorite color.", {"query": "favorite color"}),
        ("Please forget what I told you about my dog.", {"query": "dog"}),
        ("Delete my notes.", {}),
        ("forget everything", {}),
    ],
)
def test_forget_requests_call_forget_notes(text: str, args: dict[str, str]) -> None:
    assert calls_of(respond(text, BOT_TOOLS)) == [("forget_notes", args)]


def test_a_required_query_is_sent_empty_when_there_is_no_topic() -> None:
    recall = ToolDecl("recall", "Recall notes.", schema(["query"], query="string"))
    assert calls_of(respond("What do you remember?", [recall])) == [("recall", {"query": ""})]


def test_the_three_notes_tools_are_told_apart_whatever_their_order() -> None:
    turns = {
        "Please remember that my favorite color is blue.": "remember_note",
        "What is my favorite color?": "recall_notes",
        "Forget my favorite color.": "forget_notes",
    }
    for order in itertools.permutations([REMEMBER_NOTE, RECALL_NOTES, FORGET_NOTES]):
        for text, name in turns.items():
            assert calls_of(respond(text, list(order)))[0][0] == name


def test_notes_tools_with_other_names_are_found_by_their_names() -> None:
    tools = [
        ToolDecl("save_memory", "", schema(["content"], content="string")),
        ToolDecl("search_memories", "", schema([], keywords="string")),
        ToolDecl("delete_memories", "", schema([], topic="string")),
    ]
    assert calls_of(respond("remember that the code is 4711", tools)) == [
        ("save_memory", {"content": "the code is 4711"})
    ]
    assert calls_of(respond("what is my code", tools)) == [
        ("search_memories", {"keywords": "code"})
    ]
    assert calls_of(respond("forget the code", tools)) == [("delete_memories", {"topic": "code"})]


def test_remember_without_a_notes_tool_says_it_cannot_save() -> None:
    assert "can't save notes" in said(respond("Remember that I like tea.", [GET_CURRENT_TIME]))


# --------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "What is twelve times seven?",
        "what is twelve times seven",
        "12 times 7",
        "What's 12 x 7?",
        "whats 12 * 7",
        "What is 12 × 7?",
        "Calculate twelve multiplied by seven.",
    ],
)
def test_twelve_times_seven_calls_the_calculator_with_12_star_7(text: str) -> None:
    assert respond(text, BOT_TOOLS) == CallTools([("calculate", {"expression": "12 * 7"})])


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("calculate 3 plus 4 divided by 2", "3 + 4 / 2"),
        ("What is (3 + 4) / 2?", "(3 + 4) / 2"),
        ("what is two to the power of ten", "2 ** 10"),
        ("what's five squared minus one", "5 ** 2 - 1"),
        ("What is the square root of 16?", "16 ** 0.5"),
        ("what is one hundred and five plus a thousand", "105 + 1000"),
        ("what is minus four times three point five", "-4 * 3.5"),
        ("What's 20% of 50?", "20 / 100 * 50"),
        ("how much is 1,000 over 8", "1000 / 8"),
        ("what is 2 ^ 8", "2 ** 8"),
    ],
)
def test_spoken_arithmetic_becomes_a_calculator_expression(text: str, expression: str) -> None:
    assert calls_of(respond(text, BOT_TOOLS)) == [("calculate", {"expression": expression})]


def test_a_calculator_tool_is_found_by_a_description_that_mentions_math() -> None:
    tool = ToolDecl("solve", "Evaluates a math expression.", schema(["input"], input="string"))
    assert calls_of(respond("what is 6 plus 1", [tool])) == [("solve", {"input": "6 + 1"})]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("What is twelve times seven?", "12 times 7 is 84."),
        ("calculate 3 plus 4 divided by 2", "3 plus 4 divided by 2 is 5."),
        ("what is two to the power of ten", "2 to the power of 10 is 1024."),
        ("What is the square root of 16?", "The square root of 16 is 4."),
        ("what is 7 divided by 2", "7 divided by 2 is 3.5."),
        ("what is one divided by three", "1 divided by 3 is 0.3333333333."),
        ("what is 0.1 plus 0.2", "0.1 plus 0.2 is 0.3."),
        ("What is minus two squared?", "Minus 2 to the power of 2 is -4."),
    ],
)
def test_without_a_calculator_the_brain_works_out_the_answer_itself(text: str, answer: str) -> None:
    assert said(respond(text, [GET_CURRENT_TIME])) == answer


def test_a_calculator_that_needs_numbers_rather_than_text_is_not_called() -> None:
    tool = ToolDecl("calculator", "Arithmetic.", schema(["a", "b"], a="number", b="number"))
    assert said(respond("What is twelve times seven?", [tool])) == "12 times 7 is 84."


def test_dividing_by_zero_gets_an_explanation_instead_of_a_crash() -> None:
    assert "divide by zero" in said(respond("What is ten divided by zero?", []))


def test_an_absurd_power_is_refused_quickly() -> None:
    assert "too large" in said(respond("what is 10 to the power of 10 to the power of 10", []))


@pytest.mark.parametrize(
    "text",
    ["What is my favorite color?", "I have two dogs and three cats", "nineteen eighty four", "5"],
)
def test_numbers_without_an_operation_are_not_arithmetic(text: str) -> None:
    assert words_to_expression(text) is None


@pytest.mark.parametrize(
    ("words", "number"),
    [
        ("zero", 0),
        ("seven", 7),
        ("twenty-one", 21),
        ("one hundred and five", 105),
        ("a hundred", 100),
        ("twelve hundred", 1200),
        ("a thousand and one", 1001),
        ("two million three hundred thousand", 2_300_000),
        ("minus seven", -7),
        ("negative forty two", -42),
        ("three point one four", 3.14),
        ("1,000", 1000),
        ("2 million", 2_000_000),
        ("Fifteen.", 15),
    ],
)
def test_number_words_parse_to_their_value(words: str, number: float) -> None:
    assert parse_number(words) == number


@pytest.mark.parametrize(
    "words", ["", "hello", "twelve seven", "nineteen eighty four", "one million two million"]
)
def test_what_is_not_exactly_one_number_does_not_parse(words: str) -> None:
    assert parse_number(words) is None


@given(st.integers(min_value=0, max_value=999_999))
def test_british_number_words_from_num2words_parse_back(n: int) -> None:
    assert parse_number(num2words(n)) == n


@given(st.integers(min_value=-999_999_999, max_value=999_999_999))
def test_american_number_words_parse_back(n: int) -> None:
    assert parse_number(american_words(n)) == n


OPERATORS = {"plus": "+", "minus": "-", "times": "*", "multiplied by": "*", "divided by": "/"}


@given(
    st.integers(min_value=0, max_value=999_999),
    st.sampled_from(sorted(OPERATORS)),
    st.integers(min_value=0, max_value=999_999),
)
def test_two_numbers_in_words_with_an_operator_word_become_an_expression(
    a: int, word: str, b: int
) -> None:
    text = f"What is {num2words(a)} {word} {american_words(b)}?"
    assert words_to_expression(text) == f"{a} {OPERATORS[word]} {b}"


# Random arithmetic trees, fully parenthesised, checked against exact Fraction arithmetic.
Tree = Any
leaves = st.integers(min_value=0, max_value=60)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), inner, inner),
        st.tuples(st.just("**"), inner, st.integers(min_value=0, max_value=3)),
        st.tuples(st.just("neg"), inner),
    ),
    max_leaves=8,
)


def source(tree: Tree) -> str:
    if isinstance(tree, int):
        return str(tree)
    if tree[0] == "neg":
        return f"-({source(tree[1])})"
    op, left, right = tree
    return f"({source(left)}) {op} ({source(right)})"


def exact(tree: Tree) -> Fraction:
    if isinstance(tree, int):
        return Fraction(tree)
    if tree[0] == "neg":
        return -exact(tree[1])
    op, left, right = tree
    a, b = exact(left), exact(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b  # raises ZeroDivisionError like the brain should
    return a**right


@given(trees)
def test_evaluating_random_arithmetic_matches_exact_fractions(tree: Tree) -> None:
    try:
        expected = exact(tree)
    except ZeroDivisionError:
        with pytest.raises(ZeroDivisionError):
            evaluate_expression(source(tree))
        return
    value = evaluate_expression(source(tree))
    if expected.denominator == 1:
        assert value == expected and isinstance(value, int)
    else:
        assert value == pytest.approx(float(expected))


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("(5) - ((3) - (2))", "5 - (3 - 2)"),
        ("((5) - (3)) - (2)", "5 - 3 - 2"),
        ("8 / (4 / 2)", "8 / (4 / 2)"),
        ("8 / (4 * 2)", "8 / (4 * 2)"),
        ("(2 ** 3) ** 2", "(2 ** 3) ** 2"),
        ("2 ** (3 ** 2)", "2 ** 3 ** 2"),
        ("(-2) ** 2", "(-2) ** 2"),
        ("-(1 + 2) * 3", "-(1 + 2) * 3"),
        ("(1 + 2) + 3", "1 + 2 + 3"),
        ("2 * (3 + 4)", "2 * (3 + 4)"),
    ],
)
def test_the_calculator_expression_keeps_exactly_the_parentheses_it_needs(
    text: str, expression: str
) -> None:
    assert words_to_expression(text) == expression


@settings(max_examples=300)
@given(trees.filter(lambda tree: not isinstance(tree, int)))
def test_the_calculator_expression_keeps_the_value_with_fewer_parentheses(tree: Tree) -> None:
    text = source(tree)
    rewritten = words_to_expression(text)
    if rewritten is None:  # "-(5)" alone is a number, not a sum
        assert tree[0] == "neg" and isinstance(tree[1], int)
        return
    try:
        expected = evaluate_expression(text)
    except ZeroDivisionError:
        with pytest.raises(ZeroDivisionError):
            evaluate_expression(rewritten)
        return
    assert evaluate_expression(rewritten) == expected
    assert rewritten.count("(") <= text.count("(")


@pytest.mark.parametrize("text", ["import os", "2 +", "(1 + 2", "1 2", "__import__('os')", ""])
def test_evaluate_refuses_what_is_not_arithmetic(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate_expression(text)


def test_evaluate_reports_impossible_arithmetic_with_standard_errors() -> None:
    with pytest.raises(ZeroDivisionError):
        evaluate_expression("1 / (2 - 2)")
    with pytest.raises(OverflowError):
        evaluate_expression("9 ** 9 ** 9")
    with pytest.raises(ValueError, match="real"):
        evaluate_expression("(0 - 4) ** 0.5")


def test_evaluate_refuses_deep_nesting_instead_of_exhausting_the_stack() -> None:
    with pytest.raises(ExpressionError):
        evaluate_expression("(" * 150 + "1" + ")" * 150)


# --------------------------------------------------------------------------------------------
# Vision, stories, explicit calls
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["What do you see?", "what am i holding", "Describe the screen.", "Can you see me?"]
)
def test_vision_questions_describe_the_size_and_colour_of_the_frame(text: str) -> None:
    image = ImageInfo(width=640, height=480, mean_rgb=(220, 30, 25))
    reply = said(respond(text, BOT_TOOLS, image=image))
    assert reply.startswith("I can see a 640 by 480 image that is mostly red.")


def test_vision_without_an_image_says_no_camera_or_screen_is_shared() -> None:
    reply = said(respond("What do you see?", BOT_TOOLS))
    assert reply == NO_CAMERA
    assert "no camera or screen" in reply


def test_what_is_this_is_a_vision_question_only_while_an_image_is_shared() -> None:
    image = ImageInfo(800, 600, (20, 20, 230))
    assert said(respond("What is this?", [], image=image)).startswith(
        "I can see an 800 by 600 image that is mostly blue."
    )
    assert said(respond("What is this?", [])).startswith("You said")


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 0, 0), "red"),
        ((0, 200, 0), "green"),
        ((0, 0, 255), "blue"),
        ((255, 255, 0), "yellow"),
        ((255, 165, 0), "orange"),
        ((128, 0, 128), "purple"),
        ((255, 192, 203), "pink"),
        ((139, 69, 19), "brown"),
        ((0, 0, 0), "black"),
        ((255, 255, 255), "white"),
        ((128, 128, 128), "gray"),
        ((0, 255, 255), "cyan"),
    ],
)
def test_colour_names_match_the_mean_colour(rgb: tuple[int, int, int], name: str) -> None:
    assert colour_name(rgb) == name


def test_tell_me_a_long_story_gets_a_long_story_about_the_topic() -> None:
    text = "Tell me a long story about a dragon who learned to fly."
    story = said(respond(text, BOT_TOOLS))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", story) if s]
    assert len(sentences) >= 8
    assert len(story.split()) >= 150  # about a minute at a speaking rate of 150 words a minute
    assert "a dragon who learned to fly" in story
    assert said(respond(text.lower().rstrip("."), BOT_TOOLS)) == story


def test_stories_about_different_topics_differ() -> None:
    dragon = said(respond("tell me a story about a dragon", []))
    robot = said(respond("tell me a story about a robot", []))
    assert dragon != robot and "robot" in robot


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("Call the tool recall_notes.", ("recall_notes", {})),
        ("please use get current time for Tokyo", ("get_current_time", {"place": "Tokyo"})),
        (
            "call get underscore current underscore time for new york",
            ("get_current_time", {"place": "New York"}),
        ),
        ("use calculate with twelve times seven", ("calculate", {"expression": "12 * 7"})),
        ("Run the forget_notes tool.", ("forget_notes", {})),
    ],
)
def test_an_explicitly_named_tool_is_called(text: str, call: tuple[str, dict[str, Any]]) -> None:
    assert calls_of(respond(text, BOT_TOOLS)) == [call]


def test_calling_something_that_is_not_a_declared_tool_is_not_a_tool_call() -> None:
    assert said(respond("Call my mom.", BOT_TOOLS)).startswith("You said")


# --------------------------------------------------------------------------------------------
# Tool results
# --------------------------------------------------------------------------------------------


def test_a_time_result_is_read_as_a_sentence() -> None:
    reply = respond_to_tool_results([("get_time", {"time": "22:15", "timezone": "Asia/Tokyo"})])
    assert reply == Say("The current time in Asia/Tokyo is 22:15.")


def test_the_bots_clock_result_is_read_with_every_field() -> None:
    result = {
        "place": "Tokyo",
        "timezone": "Asia/Tokyo",
        "time": "22:15",
        "date": "2025-06-01",
        "weekday": "Sunday",
        "utc_offset": "+09:00",
    }
    text = respond_to_tool_results([("get_current_time", result)]).text
    assert text.startswith("The current time in Tokyo (Asia/Tokyo) is 22:15.")
    assert all(value in text for value in result.values())


def test_a_calculator_result_names_the_expression() -> None:
    reply = respond_to_tool_results([("calculate", {"expression": "12 * 7", "result": 84})])
    assert reply.text == "12 * 7 is 84."


def test_a_bare_result_is_read_with_the_users_question() -> None:
    reply = respond_to_tool_results(
        [("calculate", {"result": 84})], user_text="What is twelve times seven?"
    )
    assert reply.text == "12 times 7 is 84."
    assert respond_to_tool_results([("calculate", {"result": 84})]).text == "The result is 84."


def test_an_unknown_result_shape_is_read_key_by_key() -> None:
    reply = respond_to_tool_results([("get_weather", {"city": "Paris", "temperature": 21})])
    assert reply.text == "Here is what get_weather returned: city Paris, temperature 21."


def test_a_weather_result_with_a_condition_is_read_as_a_sentence() -> None:
    result = {"city": "Paris", "temperature": 21, "condition": "sunny"}
    assert respond_to_tool_results([("get_weather", result)]).text == (
        "In Paris it is sunny and 21 degrees."
    )


def test_an_error_result_says_the_tool_failed_with_its_message() -> None:
    reply = respond_to_tool_results([("get_current_time", {"error": "Unknown city: 'Atlantis'"})])
    assert reply.text == "Sorry, get_current_time failed: Unknown city: 'Atlantis'."


def test_notes_results_are_read_naturally() -> None:
    saved = respond_to_tool_results(
        [("remember_note", {"saved": "my favorite color is blue", "count": 1})]
    ).text
    assert saved == "Okay, I'll remember that my favorite color is blue. You have 1 note saved now."
    found = respond_to_tool_results(
        [("recall_notes", {"notes": ["my favorite color is blue", "my dog is Rex"]})]
    ).text
    assert found == "Here is what I found: my favorite color is blue; my dog is Rex."
    assert "nothing" in respond_to_tool_results([("recall_notes", {"notes": []})]).text
    forgot = respond_to_tool_results([("forget_notes", {"forgotten": 2})]).text
    assert forgot == "Done, I forgot 2 notes."


def test_nested_results_are_flattened_and_wrappers_removed() -> None:
    reply = respond_to_tool_results(
        [("lookup", {"output": {"city": {"name": "Paris", "tags": ["big", 3.5, None, True]}}})]
    )
    assert (
        reply.text
        == "Here is what lookup returned: city name Paris, city tags big, 3.5, nothing, yes."
    )


def test_several_results_are_read_in_order() -> None:
    reply = respond_to_tool_results(
        [("get_time", {"time": "09:00"}), ("calculate", {"expression": "1 + 1", "result": 2})]
    )
    assert reply.text == "The current time is 09:00. 1 + 1 is 2."


def spoken(value: Any) -> str:
    """How a scalar must appear in the reply (independent of the brain's own code)."""
    if value is None:
        return "nothing"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in scalars(v)]
    return [value]


scalar_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
keys = st.one_of(
    st.sampled_from(
        ["time", "timezone", "place", "city", "result", "expression", "error", "notes", "saved",
         "count", "forgotten", "temperature", "condition", "value", "output", "date"]
    ),
    st.text(min_size=1, max_size=10),
)  # fmt: skip
json_values = st.recursive(
    scalar_values,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


@given(
    st.lists(
        st.tuples(st.sampled_from(["get_time", "calculate", "recall_notes", "x"]),
                  st.dictionaries(keys, json_values, max_size=6)),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(["", "What is twelve times seven?"]),
)  # fmt: skip
def test_every_value_in_the_tool_results_is_said(
    results: list[tuple[str, dict[str, Any]]], user_text: str
) -> None:
    text = respond_to_tool_results(results, user_text=user_text).text
    for _, response in results:
        for value in scalars(response):
            assert spoken(value) in text
