"""Places named in a question: "in Tokyo and New York right now" -> ("Tokyo", "New York")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from emulator.brain.text import Utterance, word_list

_UPPER_WORDS: Final = frozenset(
    {"utc", "gmt", "usa", "uk", "uae", "nyc", "us", "dc", "est", "pst", "cet", "bst", "ist", "jst"}
)
_LOWER_INNER_WORDS: Final = frozenset(
    {"of", "de", "da", "do", "del", "di", "am", "upon", "on", "sur", "en", "la"}
)
# A place ends where one of these begins: "Tokyo right now", "Paris today", "London at noon".
_PLACE_STOPS: Final = frozenset(
    word_list(
        "what how is are was will would could can do does right now today tonight tomorrow "
        "yesterday currently please thanks thank there then also like in for at this weather time "
        "exactly again too okay ok so but"
    )
)
_NOT_PLACES: Final = frozenset(
    {
        "the moment",
        "the minute",
        "present",
        "the same time",
        "the time",
        "it",
        "me",
        "you",
        "the world",
        "general",
    }
)
_PLACE_LEAD: Final = (
    ("the", "city", "of"),
    ("i", "mean"),
    ("it", "is"),
    ("um",),
    ("uh",),
    ("well",),
    ("ok",),
    ("okay",),
    ("in",),
    ("for",),
    ("at",),
)


def title_case(words: Sequence[str]) -> str:
    out: list[str] = []
    for k, word in enumerate(words):
        if word in _UPPER_WORDS:
            out.append(word.upper())
        elif k and word in _LOWER_INNER_WORDS:
            out.append(word)
        else:
            out.append(word[:1].upper() + word[1:])
    return " ".join(out)


def place_groups(words: Sequence[str]) -> tuple[str, ...]:
    """ "tokyo and new york right now" -> ("Tokyo", "New York")."""
    places: list[str] = []
    group: list[str] = []
    for word in [*words, "and"]:
        if word != "and":
            group.append(word)
            continue
        changed = True
        while changed:
            changed = False
            for lead in _PLACE_LEAD:
                if len(group) > len(lead) and tuple(group[: len(lead)]) == lead:
                    group = group[len(lead) :]
                    changed = True
        kept: list[str] = []
        for w in group:
            if w in _PLACE_STOPS:
                break
            kept.append(w)
        if kept and len(kept) <= 5 and " ".join(kept) not in _NOT_PLACES:
            places.append(title_case(kept))
        group = []
    return tuple(dict.fromkeys(places))


def places_near(utt: Utterance, trigger_start: int) -> tuple[str, ...]:
    """Places named after "in"/"for"/"at" following a trigger word, else before it."""
    tokens = utt.tokens
    for k in range(trigger_start, len(tokens)):
        if tokens[k] in ("in", "for", "at"):
            places = place_groups(tokens[k + 1 : utt.clause_end(k + 1)])
            if places:
                return places
    for k in range(trigger_start):
        if tokens[k] in ("in", "for"):
            return place_groups(tokens[k + 1 : min(trigger_start, utt.clause_end(k + 1))])
    return ()
