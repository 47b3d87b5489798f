"""From a finished user turn to what the model does: a reply or tool calls.

Explicit requests ("call the tool recall_notes") come first, then the intent of the words, then
the declared tools decide between calling one and answering without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from emulator.brain.arithmetic import answer_arithmetic, to_code
from emulator.brain.intents import Intent, resolve_intent
from emulator.brain.operations import find_arithmetic
from emulator.brain.places import title_case
from emulator.brain.replies import describe_image, greeting, story
from emulator.brain.text import POLITE_TAIL, Utterance, token_at, trim, utterance
from emulator.brain.tools import (
    CALC_TOOL,
    EXPRESSION_HINTS,
    FORGET_TOOL,
    NOTE_HINTS,
    PLACE_HINTS,
    QUERY_HINTS,
    RECALL_TOOL,
    REMEMBER_TOOL,
    TIME_TOOL,
    WEATHER_TOOL,
    calls_to,
    find_tool,
    identifier_words,
    name_fits,
    pick_param,
    required_params,
)
from emulator.brain.types import Action, CallTools, ImageInfo, Say, ToolDecl
from emulator.brain.wording import (
    ASK_TIME_CITY,
    ASK_WEATHER_CITY,
    ECHO_TAIL,
    HEAR_YOU,
    NO_CLOCK,
    NO_WEATHER,
    SAVING_PREAMBLE,
    STOP_ACK,
    WAIT_ACK,
)

_CALL_VERBS: Final = frozenset({"call", "use", "run", "invoke", "trigger", "execute"})
_CALL_FILLERS: Final = frozenset({"the", "a", "an", "tool", "function", "called", "named"})
_ARGUMENT_PREPS: Final = frozenset({"for", "in", "with", "about", "on", "to", "of", "at"})


def _named_tool(
    words: Sequence[str], start: int, tools: Sequence[ToolDecl]
) -> tuple[ToolDecl, int] | None:
    """The declared tool whose name the words spell from `start` (longest first), and where it
    ends: "get current time" or "getcurrenttime" both name `get_current_time`."""
    best: tuple[ToolDecl, int] | None = None
    for tool in tools:
        name = identifier_words(tool.name)
        if not name:
            continue
        if list(words[start : start + len(name)]) == name:
            end = start + len(name)
        elif token_at(words, start) == "".join(name):
            end = start + 1
        else:
            continue
        if best is None or end > best[1]:
            best = (tool, end)
    return best


def _explicit_args(utt: Utterance, tool: ToolDecl, first: int) -> dict[str, Any]:
    """The words from token `first` to the end of its clause, as the tool's string argument."""
    last = trim(utt.tokens, first, utt.clause_end(first), POLITE_TAIL)
    param = pick_param(tool, (*PLACE_HINTS, *EXPRESSION_HINTS, *QUERY_HINTS), any_string=True)
    if param is None or last <= first:
        return {}
    value = utt.original_text(first, last)
    if any(name_fits(param, hint) for hint in PLACE_HINTS):
        value = title_case(utt.tokens[first:last])
    elif any(name_fits(param, hint) for hint in EXPRESSION_HINTS):
        node = find_arithmetic(utt.tokens[first:last], utt.breaks[first:last])
        value = to_code(node) if node is not None else value
    return {param: value}


def _explicit_call(utt: Utterance, tools: Sequence[ToolDecl]) -> CallTools | None:
    """ "call the tool NAME" / "use NAME for X": the declared tool the user named, if any."""
    keep = [k for k, t in enumerate(utt.tokens) if t != "underscore"]
    words = [utt.tokens[k] for k in keep]
    for v, verb in enumerate(words):
        if verb not in _CALL_VERBS:
            continue
        start = v + 1
        while start < len(words) and words[start] in _CALL_FILLERS:
            start += 1
        named = _named_tool(words, start, tools)
        if named is None:
            continue
        tool, end = named
        while end < len(words) and words[end] in ("tool", "function"):
            end += 1
        args: dict[str, Any] = {}
        if token_at(words, end) in _ARGUMENT_PREPS and end + 1 < len(words):
            args = _explicit_args(utt, tool, keep[end + 1])
        return calls_to(tool, [(tool.name, args)])
    return None


def _place_call(tool: ToolDecl, places: Sequence[str], ask: str) -> Action:
    """One call per place; without a place, ask rather than send a required argument empty."""
    param = pick_param(tool, PLACE_HINTS, any_string=False)
    if places:
        return calls_to(tool, [(tool.name, {param: p} if param else {}) for p in places])
    if param is not None and param in required_params(tool):
        return Say(ask)
    return calls_to(tool, [(tool.name, {})])


def _note_call(tool: ToolDecl, topic: str) -> CallTools:
    """Recall / forget with the topic as query; no topic means all notes (an empty query)."""
    param = pick_param(tool, QUERY_HINTS, any_string=True)
    if param is None:
        return calls_to(tool, [(tool.name, {})])
    if topic or param in required_params(tool):
        return calls_to(tool, [(tool.name, {param: topic})])
    return calls_to(tool, [(tool.name, {})])


@dataclass(frozen=True)
class _Turn:
    """A classified user turn and what the session knows around it."""

    intent: Intent
    utt: Utterance
    tools: Sequence[ToolDecl]
    system_instruction: str
    image: ImageInfo | None


def _time(turn: _Turn) -> Action:
    tool = find_tool(turn.tools, TIME_TOOL)
    return Say(NO_CLOCK) if tool is None else _place_call(tool, turn.intent.places, ASK_TIME_CITY)


def _weather(turn: _Turn) -> Action:
    tool = find_tool(turn.tools, WEATHER_TOOL)
    if tool is None:
        return Say(NO_WEATHER)
    return _place_call(tool, turn.intent.places, ASK_WEATHER_CITY)


def _remember(turn: _Turn) -> Action:
    fact = turn.intent.text
    if not fact:
        return Say("What would you like me to remember?")
    tool = find_tool(turn.tools, REMEMBER_TOOL)
    if tool is None:
        return Say(f"I can't save notes in this session, so I can't remember that {fact}.")
    param = pick_param(tool, NOTE_HINTS, any_string=True)
    args = {param: fact} if param else {}
    return calls_to(tool, [(tool.name, args)], SAVING_PREAMBLE)


def _recall(turn: _Turn) -> Action:
    tool = find_tool(turn.tools, RECALL_TOOL)
    if tool is None:
        return Say("I have no notes to look in, because no notes tool is available to me.")
    return _note_call(tool, turn.intent.text)


def _forget(turn: _Turn) -> Action:
    tool = find_tool(turn.tools, FORGET_TOOL)
    if tool is None:
        return Say("There is nothing for me to forget, because no notes tool is available.")
    return _note_call(tool, turn.intent.text)


def _arithmetic(turn: _Turn) -> Action:
    expression = turn.intent.expression
    if expression is None:
        return _echo(turn)
    tool = find_tool(turn.tools, CALC_TOOL)
    if tool is not None:
        param = pick_param(tool, EXPRESSION_HINTS, any_string=True)
        missing = required_params(tool) - {param}
        if param is not None and not missing:
            return calls_to(tool, [(tool.name, {param: to_code(expression)})])
    return Say(answer_arithmetic(expression))


def _echo(turn: _Turn) -> Action:
    said = " ".join(turn.utt.original.split())
    return Say(f'You said: "{said}". {ECHO_TAIL}')


_ACTS: Final[dict[str, Callable[[_Turn], Action]]] = {
    "blank": lambda turn: Say(greeting(turn.system_instruction)),
    "story": lambda turn: Say(story(turn.intent.text)),
    "vision": lambda turn: Say(describe_image(turn.image)),
    "stop": lambda turn: Say(STOP_ACK),
    "wait": lambda turn: Say(WAIT_ACK),
    "greeting": lambda turn: Say(HEAR_YOU),
    "time": _time,
    "weather": _weather,
    "remember": _remember,
    "recall": _recall,
    "forget": _forget,
    "arithmetic": _arithmetic,
}
"""What each intent does, given the declared tools; any other intent is echoed."""


def respond(
    user_text: str,
    tools: Sequence[ToolDecl],
    *,
    history: Sequence[tuple[str, str]] = (),
    system_instruction: str = "",
    image: ImageInfo | None = None,
) -> Action:
    """Decide what the model does with a finished user turn.

    Args:
        user_text: The transcript of the turn, as typed or as Whisper wrote it.
        tools: The functions the client declared.
        history: Earlier ``(role, text)`` turns, oldest first, role "user" or "model", without
            this turn; used to read "Tokyo" as the answer to "Which city ...?" and "what about
            London?" as a follow-up.
        system_instruction: The client's system instruction (for the greeting's name).
        image: The last video frame, if the client streams one.

    Returns:
        :class:`Say` with the reply, or :class:`CallTools` with the calls to make. See the
        module docstring for the rules.
    """
    utt = utterance(user_text)
    if utt.tokens:
        explicit = _explicit_call(utt, tools)
        if explicit is not None:
            return explicit
    intent = resolve_intent(utt, history, has_image=image is not None)
    turn = _Turn(intent, utt, tools, system_instruction, image)
    return _ACTS.get(intent.kind, _echo)(turn)
