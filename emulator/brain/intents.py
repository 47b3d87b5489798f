"""Intents: what the user wants, decided from the words alone, first matching rule winning.

Tools are matched afterwards (see `emulator.brain.respond`), so the same words mean the same
intent whatever the client declared.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from emulator.brain.expressions import Node
from emulator.brain.operations import find_arithmetic
from emulator.brain.places import place_groups, places_near
from emulator.brain.text import POLITE_TAIL, Utterance, trim, utterance, word_list
from emulator.brain.wording import ASK_TIME_CITY, ASK_WEATHER_CITY

_LEAD: Final = (
    r"(?:(?:please|ok|okay|hey|hi|so|and|also|now|oh|well|um|uh|gemini|can you|could you|"
    r"would you|will you|i want you to|i would like you to|i need you to)\s+)*"
)
_STORY_RE = re.compile(
    r"\b(?:tell|give|read|make up|write|narrate|hear|want|would like)(?:\s+(?:me|us))?"
    r"\s+(?:a|an|another|the)\s+"
    r"(?:(?:really|very|long|longer|short|little|bedtime|nice|good|funny|scary|silly|happy|"
    r"new|quick|fairy|kids|children's)\s+)*(?:story|tale)\b"
    r"(?:\s+(?:about|of|on|with)\s+(?P<topic>.+))?"
    r"|^(?:a\s+)?(?:(?:long|short|bedtime)\s+story|story(?=\s+(?:about|of)\s))"
    r"(?:\s+(?:about|of)\s+(?P<topic2>.+))?$"
    r"|^story time$"
)
_VISION_RE = re.compile(
    r"\bwhat (?:do|can) you see\b|\bwhat am i (?:holding|wearing|showing you|doing)\b"
    r"|\bdescribe (?:what you see|(?:the|this|my|your) (?:image|picture|photo|screen|video|"
    r"camera|frame|view|scene|room))\b"
    r"|\bwhat is (?:on|in) (?:my|the|this) (?:screen|image|picture|photo|camera|frame|video)\b"
    r"|\b(?:can|do) you see (?:me|this|it|my screen|anything)\b"
    r"|\bwhat is in front of (?:me|you|the)\b"
    r"|\blook at (?:this|me|my screen|the screen)\b|\bwhat colou?r is (?:this|it|my)\b"
    r"|\b(?:tell me|say) what you (?:can )?see\b|\bwhat are you (?:looking at|seeing)\b"
    r"|\bwhat does (?:the|my|your|this) (?:camera|screen|image|picture|photo|video) show\b"
)
_WEAK_VISION_RE = re.compile(r"^(?:what is (?:this|that|it)|what do you think of this)$")
_REMEMBER_RE = re.compile(
    rf"^{_LEAD}(?:please\s+)?(?:remember|memori[sz]e|do not forget|make a note|take a note|"
    r"save a note|add a note|write down|jot down|keep in mind|note down|note|save|store)\b"
    r"(?:\s+(?:the fact that|that|this|of)\b)?(?:\s+(?P<fact>.+))?$"
)
_TIME_RE = re.compile(
    r"\bwhat time\b|\b(?:what is|tell me|know|check|give me|get|have) the "
    r"(?:current |local |exact )?time\b|\b(?:current|local) time\b|\btime (?:is it )?in\b"
    r"|\btime is it\b|\bwhat hour\b"
)
_WEATHER_RE = re.compile(
    r"\bweather\b|\bforecast\b|\btemperature (?:in|at|for|outside)\b"
    r"|\b(?:is it|will it) (?:be )?(?:raining|rain|snowing|snow|sunny|hot|cold|warm|windy|"
    r"cloudy)\b"
)
_FORGET_RE = re.compile(
    rf"^{_LEAD}(?:please\s+)?(?:forget|delete|erase|clear|remove|wipe)\b(?:\s+(?P<topic>.+))?$"
)
_RECALL_RES: Final = (
    re.compile(
        rf"^{_LEAD}(?:what do you (?:still )?remember|what did i (?:tell|ask) you"
        r"(?: to (?:remember|note|save))?|what have i (?:told|asked) you(?: to remember)?"
        r"|what (?:have|did) you (?:saved|stored|noted|remembered|save|store|note|remember))"
        r"\b(?:\s+(?:about|of|regarding)\b)?(?:\s+(?P<topic>.+))?$"
    ),
    re.compile(rf"^{_LEAD}(?:do you (?:still )?remember|recall)\b(?:\s+(?P<topic>.+))?$"),
    re.compile(
        rf"^{_LEAD}(?:what|who|when|where|which|how old) (?:is|are|was|were) my"
        r"\s+(?P<topic>.+)$"
    ),
    re.compile(r"\b(?:my|the|your|any|saved|all) notes\b|\bnotes do you have\b"),
)
_STOP_RE = re.compile(
    r"^(?:(?:ok|okay|alright|please|no|oh|hey|just|now|can you|could you|would you|will you)"
    r"\s+)*(?P<what>stop|wait|pause|hold on|hang on|enough|that is enough|that will do|quiet|"
    r"be quiet|silence|cancel|shush|shh|hush|halt|shut up|never mind|one (?:moment|second|sec)|"
    r"just a (?:moment|second|sec|minute))\b"
)
_WAIT_WORDS: Final = frozenset({"wait", "hold", "hang", "one", "just"})
_GREETING_RE = re.compile(
    r"^(?:hello|hi|hey|hiya|howdy|greetings|yo|good (?:morning|afternoon|evening|day))\b"
    r"|\b(?:can|do) you hear me\b|\bare you (?:there|listening|awake)\b"
    r"|\bis this (?:thing )?(?:on|working)\b|\bhow are you\b|\btesting\b|\bmic check\b"
)
_FOLLOW_UP_RE = re.compile(
    r"^(?:(?:and|ok|okay|so|also)\s+)?(?:what|how) about\s+(?P<place>.+)$"
    r"|^and\s+(?P<place2>.+)$"
)
# Words in front of a note topic that say nothing about it: "what I told you about my dog".
_TOPIC_LEAD: Final = frozenset(
    word_list(
        "about that my the all of everything notes note what i told you said saved stored "
        "remembered your memory memories regarding any a an"
    )
)
_TOPIC_TAIL: Final = (
    ("now",),
    *POLITE_TAIL,
    ("is",),
    ("was",),
    ("are",),
    ("were",),
    ("again",),
    ("from", "memory"),
    ("from", "your", "memory"),
    ("for", "good"),
)


@dataclass(frozen=True)
class Intent:
    kind: str
    places: tuple[str, ...] = ()
    text: str = ""
    expression: Node | None = None


def _topic(utt: Utterance, span: tuple[int, int] | None) -> str:
    """A note topic in lower case: "what my favorite color is" -> "favorite color"."""
    if span is None:
        return ""
    i, j = span
    j = trim(utt.tokens, i, j, _TOPIC_TAIL)
    while i < j and utt.tokens[i] in _TOPIC_LEAD:
        i += 1
    return " ".join(utt.tokens[i:j])


def _story(utt: Utterance, has_image: bool) -> Intent | None:
    match = _STORY_RE.search(utt.text)
    if not match:
        return None
    span = utt.group_range(match, "topic") or utt.group_range(match, "topic2")
    topic = ""
    if span is not None:
        end = trim(utt.tokens, span[0], utt.clause_end(span[0]), POLITE_TAIL)
        topic = utt.original_text(span[0], end)
    return Intent("story", text=topic)


def _vision(utt: Utterance, has_image: bool) -> Intent | None:
    if _VISION_RE.search(utt.text) or (has_image and _WEAK_VISION_RE.search(utt.text)):
        return Intent("vision")
    return None


def _remember(utt: Utterance, has_image: bool) -> Intent | None:
    match = _REMEMBER_RE.match(utt.text)
    if not match:
        return None
    span = utt.group_range(match, "fact")
    fact = ""
    if span is not None:
        fact = utt.original_text(span[0], trim(utt.tokens, span[0], span[1], POLITE_TAIL))
    return Intent("remember", text=fact)


def _time(utt: Utterance, has_image: bool) -> Intent | None:
    match = _TIME_RE.search(utt.text)
    if not match:
        return None
    return Intent("time", places=places_near(utt, utt.token_index(match.start())))


def _weather(utt: Utterance, has_image: bool) -> Intent | None:
    match = _WEATHER_RE.search(utt.text)
    if not match:
        return None
    return Intent("weather", places=places_near(utt, utt.token_index(match.start())))


def _forget(utt: Utterance, has_image: bool) -> Intent | None:
    match = _FORGET_RE.match(utt.text)
    if not match:
        return None
    span = utt.group_range(match, "topic")
    if span is not None and utt.tokens[span[0] : span[1]] in (("it",), ("about", "it")):
        return Intent("stop")  # "forget it" means never mind, not "delete all my notes"
    return Intent("forget", text=_topic(utt, span))


def _recall(utt: Utterance, has_image: bool) -> Intent | None:
    for pattern in _RECALL_RES:
        match = pattern.search(utt.text)
        if match:
            span = utt.group_range(match, "topic") if "topic" in pattern.groupindex else None
            return Intent("recall", text=_topic(utt, span))
    return None


def _arithmetic(utt: Utterance, has_image: bool) -> Intent | None:
    expression = find_arithmetic(utt.tokens, utt.breaks)
    return None if expression is None else Intent("arithmetic", expression=expression)


def _stop(utt: Utterance, has_image: bool) -> Intent | None:
    match = _STOP_RE.match(utt.text)
    if not (match and len(utt.tokens) <= 6):
        return None
    return Intent("wait" if match.group("what").split()[0] in _WAIT_WORDS else "stop")


def _greeting(utt: Utterance, has_image: bool) -> Intent | None:
    return Intent("greeting") if _GREETING_RE.search(utt.text) else None


_RULES: Final[tuple[Callable[[Utterance, bool], Intent | None], ...]] = (
    _story,
    _vision,
    _remember,
    _time,
    _weather,
    _forget,
    _recall,
    _arithmetic,
    _stop,
    _greeting,
)
"""The rules in the order they are tried; the module docstring of `emulator.brain` lists them."""


def classify(utt: Utterance, *, has_image: bool) -> Intent:
    """Decide what the user wants from the words alone (tools are matched later)."""
    if not utt.tokens:
        return Intent("blank")
    for rule in _RULES:
        intent = rule(utt, has_image)
        if intent is not None:
            return intent
    return Intent("unknown")


def resolve_intent(
    utt: Utterance, history: Sequence[tuple[str, str]], *, has_image: bool, depth: int = 0
) -> Intent:
    """Classify, reading an unrecognised turn as the follow-up of a time or weather question."""
    intent = classify(utt, has_image=has_image)
    if intent.kind != "unknown" or depth > 3:
        return intent
    last_model, previous = "", None
    for k in range(len(history) - 1, -1, -1):
        role, said = history[k]
        if role == "user":
            previous = k
            break
        if not last_model:
            last_model = said
    if previous is None:
        return intent
    before = resolve_intent(
        utterance(history[previous][1]), history[:previous], has_image=False, depth=depth + 1
    )
    if before.kind not in ("time", "weather"):
        return intent
    match = _FOLLOW_UP_RE.match(utt.text)
    if match:
        span = utt.group_range(match, "place") or utt.group_range(match, "place2")
        assert span is not None
        places = place_groups(utt.tokens[span[0] : utt.clause_end(span[0])])
    elif ASK_TIME_CITY in last_model or ASK_WEATHER_CITY in last_model:
        places = place_groups(utt.tokens[: utt.clause_end(0)])
    else:
        return intent
    return Intent(before.kind, places=places) if places else intent
