"""What the brain's phrasing tests share: the bot's tools as the emulator receives them, and a
number speller that owes nothing to the brain's own number reader."""

from __future__ import annotations

from typing import Any

from emulator.brain import ToolDecl


def schema(required: list[str], **properties: str) -> dict[str, Any]:
    """A JSON schema with typed properties."""
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in properties.items()},
        "required": required,
    }


# The tools the bot declares (see bots/tools).
GET_CURRENT_TIME = ToolDecl(
    "get_current_time",
    "Get the current local time, date and weekday in a city or time zone.",
    schema(["place"], place="string"),
)
CALCULATE = ToolDecl(
    "calculate",
    "Calculate the exact result of an arithmetic expression.",
    schema(["expression"], expression="string"),
)
REMEMBER_NOTE = ToolDecl(
    "remember_note",
    "Save a note for the user so it can be recalled in later conversations.",
    schema(["text"], text="string"),
    non_blocking=True,
)
RECALL_NOTES = ToolDecl(
    "recall_notes",
    "Look up notes the user asked you to remember earlier.",
    schema([], query="string"),
)
FORGET_NOTES = ToolDecl(
    "forget_notes",
    "Delete notes the user no longer wants you to remember.",
    schema([], query="string"),
)
GET_WEATHER = ToolDecl(
    "get_weather",
    "Get the current weather for a city.",
    {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
)
BOT_TOOLS = [GET_CURRENT_TIME, CALCULATE, REMEMBER_NOTE, RECALL_NOTES, FORGET_NOTES]

SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def american_words(n: int) -> str:
    """An independent number speller, American style: no "and", hyphens in the tens."""
    if n < 0:
        return "minus " + american_words(-n)
    if n < 20:
        return SMALL[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + SMALL[n % 10])
    if n < 1000:
        rest = n % 100
        return SMALL[n // 100] + " hundred" + ("" if rest == 0 else " " + american_words(rest))
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            head = american_words(n // size) + " " + name
            return head + ("" if rest == 0 else " " + american_words(rest))
    raise AssertionError(n)
