"""The everyday ways of asking the offline brain for something, each with the call it must make.

Every expected call and argument is written out by hand. The phrasings are spelled the way
people say them and Whisper writes them: capitalised or not, with or without the final "?",
politeness in front ("could you", "I'd like to know") or behind ("please", "thanks").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from brain_kit import BOT_TOOLS, GET_CURRENT_TIME, GET_WEATHER
from conftest import REPO

from emulator.brain import CallTools, ImageInfo, Say, respond, respond_to_tool_results

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


# --------------------------------------------------------------------------------------------
# Time in a place
# --------------------------------------------------------------------------------------------

TIME = [
    ("what time is it in Tokyo", "Tokyo"),
    ("What time is it in Tokyo?", "Tokyo"),
    ("what's the time in Paris", "Paris"),
    ("tell me the time in New York please", "New York"),
    ("current time in London?", "London"),
    ("time in Berlin", "Berlin"),
    ("Time in Berlin.", "Berlin"),
    ("Could you tell me what time it is in Tokyo, please?", "Tokyo"),
    ("I'd like to know the time in Paris.", "Paris"),
    ("Do you know what time it is in London?", "London"),
    ("What's the current time in London?", "London"),
    ("Can you tell me the local time in Sydney, thanks?", "Sydney"),
    ("what time is it now in rio de janeiro", "Rio de Janeiro"),
    ("Give me the time in Los Angeles.", "Los Angeles"),
    ("WHAT TIME IS IT IN TOKYO", "Tokyo"),
]


@pytest.mark.parametrize(("text", "place"), TIME)
def test_the_time_in_a_place_asked_in_an_everyday_way_calls_the_clock_with_the_place(
    text: str, place: str
) -> None:
    assert respond(text, BOT_TOOLS) == CallTools([("get_current_time", {"place": place})])


# --------------------------------------------------------------------------------------------
# Notes: remember and recall
# --------------------------------------------------------------------------------------------

REMEMBER = [
    ("remember that my dog is called Rex", "my dog is called Rex"),
    ("Remember that my dog is called Rex.", "my dog is called Rex"),
    ("Please remember my dog is called Rex.", "my dog is called Rex"),
    ("Make a note: buy milk.", "buy milk"),
    ("make a note that the door code is 4711", "the door code is 4711"),
    ("Note that I parked on level 3.", "I parked on level 3"),
    ("Note: buy milk", "buy milk"),
    ("Remember: the meeting is at noon.", "the meeting is at noon"),
    ("Could you please remember that I like tea?", "I like tea"),
    ("Can you remember that I like tea, thanks.", "I like tea"),
    ("I'd like you to remember that I like tea.", "I like tea"),
    ("Don't forget that I like tea.", "I like tea"),
    ("Jot down that the door code is 4711.", "the door code is 4711"),
    ("Write down that the door code is 4711.", "the door code is 4711"),
    ("Keep in mind that I'm vegetarian.", "I'm vegetarian"),
]
RECALL = [
    "what did I ask you to remember",
    "What did I ask you to remember?",
    "What have I asked you to remember?",
    "What did I tell you to remember, please?",
    "what are my notes",
    "What are my notes?",
    "read my notes",
    "Read my notes, please.",
    "Could you read me my notes?",
    "List my notes.",
    "Show me my notes.",
    "What's in my notes?",
    "What notes do you have?",
    "Do I have any notes?",
    "What do you remember?",
    "What did you save?",
]


@pytest.mark.parametrize(("text", "fact"), REMEMBER)
def test_a_note_asked_for_in_an_everyday_way_is_saved_in_the_users_words(
    text: str, fact: str
) -> None:
    assert respond(text, BOT_TOOLS) == CallTools(
        [("remember_note", {"text": fact})], preamble="Sure, I'm saving that."
    )


@pytest.mark.parametrize("text", RECALL)
def test_asking_for_the_notes_in_an_everyday_way_calls_recall_with_no_query(text: str) -> None:
    assert respond(text, BOT_TOOLS) == CallTools([("recall_notes", {})])


# --------------------------------------------------------------------------------------------
# Vision, stop and wait, stories
# --------------------------------------------------------------------------------------------

VISION = [
    "what do you see",
    "What do you see?",
    "What can you see right now?",
    "Can you see me?",
    "Do you see me?",
    "Tell me what you see, please.",
    "Describe what you see.",
    "What are you looking at?",
    "What's on my screen?",
    "What is in the picture?",
    "Could you describe the image?",
    "What does the camera show?",
    "What am I holding?",
    "Look at this.",
]


@pytest.mark.parametrize("text", VISION)
def test_a_question_about_the_camera_describes_the_frame(text: str) -> None:
    image = ImageInfo(width=640, height=480, mean_rgb=(220, 30, 25))
    assert said(respond(text, BOT_TOOLS, image=image)) == (
        "I can see a 640 by 480 image that is mostly red. Offline, I can only tell its size "
        "and main colour."
    )


@pytest.mark.parametrize("text", VISION)
def test_a_question_about_the_camera_without_a_camera_says_none_is_shared(text: str) -> None:
    assert said(respond(text, BOT_TOOLS)) == (
        "I can't see anything: no camera or screen is shared with me right now."
    )


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("stop", "Okay, I'll stop."),
        ("Stop!", "Okay, I'll stop."),
        ("Please stop.", "Okay, I'll stop."),
        ("Stop talking.", "Okay, I'll stop."),
        ("Could you stop?", "Okay, I'll stop."),
        ("Can you stop talking, please?", "Okay, I'll stop."),
        ("Okay, stop.", "Okay, I'll stop."),
        ("Just stop.", "Okay, I'll stop."),
        ("That's enough.", "Okay, I'll stop."),
        ("Be quiet.", "Okay, I'll stop."),
        ("Never mind.", "Okay, I'll stop."),
        ("Wait.", "Sure, I'll wait."),
        ("Please wait.", "Sure, I'll wait."),
        ("Can you wait a second?", "Sure, I'll wait."),
        ("Hold on.", "Sure, I'll wait."),
        ("Just a moment.", "Sure, I'll wait."),
    ],
)
def test_stop_and_wait_asked_in_an_everyday_way_get_a_short_acknowledgement(
    text: str, reply: str
) -> None:
    assert said(respond(text, BOT_TOOLS)) == reply


@pytest.mark.parametrize(
    ("text", "hero"),
    [
        ("tell me a story", "a curious little robot"),
        ("Tell me a story.", "a curious little robot"),
        ("Tell me a story about a fox.", "a fox"),
        ("Can you tell me a story about a fox, please?", "a fox"),
        ("Could you please tell me a bedtime story?", "a curious little robot"),
        ("Tell me a long story about a dragon.", "a dragon"),
        ("Tell me a funny story about a cat.", "a cat"),
        ("Tell me a fairy tale.", "a curious little robot"),
        ("Tell us a story about a fox.", "a fox"),
        ("Read me a story.", "a curious little robot"),
        ("Make up a story about a fox.", "a fox"),
        ("I'd like to hear a story about a fox.", "a fox"),
        ("I want a story about a fox.", "a fox"),
        ("I'd like a bedtime story.", "a curious little robot"),
        ("Story about a fox.", "a fox"),
        ("A long story.", "a curious little robot"),
        ("Story time!", "a curious little robot"),
    ],
)
def test_a_story_asked_for_in_an_everyday_way_is_told_about_its_topic(text: str, hero: str) -> None:
    story = said(respond(text, BOT_TOOLS))
    opening = "Once upon a time, in a valley surrounded by tall blue mountains, there lived"
    assert story.startswith(f"{opening} {hero}.")
    assert story.endswith("The end.")


# --------------------------------------------------------------------------------------------
# What is not understood
# --------------------------------------------------------------------------------------------

ECHO_TAIL = (
    "I am the local Gemini Live emulator; I understand questions about the time, arithmetic, "
    "notes and what the camera sees."
)


@pytest.mark.parametrize(
    "text",
    [
        "Blorp fizzle?",
        "colorless green ideas sleep furiously",
        "The quick brown fox jumps over the lazy dog.",
        "What is the meaning of life?",
        "I like the story.",
        "story",
        "zxqv 42 plorb",
    ],
)
def test_what_the_brain_does_not_understand_gets_the_honest_answer_of_what_it_does(
    text: str,
) -> None:
    assert said(respond(text, BOT_TOOLS)) == f'You said: "{text}". {ECHO_TAIL}'


# --------------------------------------------------------------------------------------------
# The README's table: every example in it is understood as its row says
# --------------------------------------------------------------------------------------------

README = (REPO / "emulator" / "README.md").read_text(encoding="utf-8")
IMAGE = ImageInfo(width=640, height=480, mean_rgb=(220, 30, 25))
ASKED_WHICH_CITY = [
    ("user", "What time is it?"),
    ("model", "Which city would you like the time for?"),
]


def readme_rows() -> dict[str, list[str]]:
    """Intent -> the quoted examples of its row, from the table of the brain's section."""
    section = README[README.index("## What the offline brain understands") :]
    section = section[: section.index("\n## ")]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("Intent", "---"):
            continue
        rows[cells[0]] = re.findall(r'"([^"]*)"', cells[1])
    return rows


def operators(action: Any) -> set[str]:
    """The binary operators of a single calculator call (unary minus has no space after it)."""
    if not (isinstance(action, CallTools) and len(action.calls) == 1):
        return set()
    name, args = action.calls[0]
    return set(re.findall(r" (\*\*|[-+*/]) ", args["expression"])) if name == "calculate" else set()


def calls_to(action: Any, name: str) -> list[dict[str, Any]]:
    """The arguments of the calls if there are some and all go to ``name``, else none."""
    if not (isinstance(action, CallTools) and action.calls):
        return []
    if any(called != name for called, _ in action.calls):
        return []
    return [args for _, args in action.calls]


def text_of(action: Any) -> str:
    return action.text if isinstance(action, Say) else ""


def asks_for_a_place(example: str, name: str, key: str, **kwargs: Any) -> bool:
    """Calls ``name`` once per place, each place as written in the example."""
    tools = [*BOT_TOOLS, GET_WEATHER]
    calls = calls_to(respond(example, tools, **kwargs), name)
    return bool(calls) and all(args[key].lower() in example.lower() for args in calls)


def names_the_tool(example: str) -> bool:
    action = respond(example, BOT_TOOLS)
    spelled = example.lower().replace(" underscore ", "_").replace(" ", "_")
    return isinstance(action, CallTools) and action.calls[0][0] in spelled


def remembers_in_its_words(example: str) -> bool:
    calls = calls_to(respond(example, BOT_TOOLS), "remember_note")
    return bool(calls) and calls[0]["text"] in example


def reply(example: str, **kwargs: Any) -> str:
    return text_of(respond(example, BOT_TOOLS, **kwargs))


CHECKS: dict[str, Callable[[str], bool]] = {
    "Blank turn": lambda ex: (
        reply(ex) == "Hello! I'm the local Gemini Live emulator. How can I help you today?"
    ),
    "Explicit tool": names_the_tool,
    "Story": lambda ex: reply(ex).startswith("Once upon a time"),
    "Vision": lambda ex: reply(ex, image=IMAGE).startswith("I can see a 640 by 480 image"),
    "Remember": remembers_in_its_words,
    "Time in a place": lambda ex: asks_for_a_place(ex, "get_current_time", "place"),
    "Weather": lambda ex: asks_for_a_place(ex, "get_weather", "city"),
    "Forget": lambda ex: bool(calls_to(respond(ex, BOT_TOOLS), "forget_notes")),
    "Recall": lambda ex: bool(calls_to(respond(ex, BOT_TOOLS), "recall_notes")),
    "Addition": lambda ex: operators(respond(ex, BOT_TOOLS)) == {"+"},
    "Subtraction": lambda ex: operators(respond(ex, BOT_TOOLS)) == {"-"},
    "Multiplication": lambda ex: operators(respond(ex, BOT_TOOLS)) == {"*"},
    "Division": lambda ex: operators(respond(ex, BOT_TOOLS)) == {"/"},
    "Powers, roots, percentages": lambda ex: bool(operators(respond(ex, BOT_TOOLS))),
    "Stop": lambda ex: reply(ex) == "Okay, I'll stop.",
    "Wait": lambda ex: reply(ex) == "Sure, I'll wait.",
    "Greeting": lambda ex: (
        reply(ex) == "Hello! Yes, I can hear you clearly. How can I help you today?"
    ),
    "Follow-up": lambda ex: asks_for_a_place(
        ex, "get_current_time", "place", history=ASKED_WHICH_CITY
    ),
    "Anything else": lambda ex: reply(ex) == f'You said: "{ex}". {ECHO_TAIL}',
}
"""Whether the brain understood an example as its README row says, for each row."""


def test_the_readme_table_has_a_row_for_each_intent_and_examples_in_each() -> None:
    rows = readme_rows()
    assert list(rows) == list(CHECKS)
    assert all(rows.values()), rows


@pytest.mark.parametrize(
    ("intent", "example"),
    [(intent, example) for intent, examples in readme_rows().items() for example in examples],
)
def test_every_example_in_the_readme_table_is_understood_as_its_row_says(
    intent: str, example: str
) -> None:
    assert CHECKS[intent](example), respond(example, BOT_TOOLS)
