"""Normalisation: a transcript as lower-case tokens that remember where they came from.

Whisper writes "What's the time in New York?" one day and "whats the time in new york" the next;
every rule reads the same tokens either way, and can still lead back to the user's own wording.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final


def word_list(text: str) -> tuple[str, ...]:
    """A word list written as one string, to keep long keyword lists readable."""
    return tuple(text.split())


_TOKEN_RE = re.compile(
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)"
    r"|(?P<op>\*\*|[+\-*/×÷^()%=])"
    r"|(?P<stop>[,.;:!?…—–]+)"
)
_HYPHEN_IN_WORD_RE = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")

_CONTRACTIONS: Final[dict[str, tuple[str, ...]]] = {
    "whats": ("what", "is"),
    "cannot": ("can", "not"),
    "can't": ("can", "not"),
    "won't": ("will", "not"),
    "dont": ("do", "not"),
    "let's": ("let", "us"),
    "i'm": ("i", "am"),
}
_IS_BEFORE_S: Final = frozenset(
    "what it that there where who how here he she when why this everything name".split()
)
_SUFFIXES: Final = (
    ("n't", "not"),
    ("'re", "are"),
    ("'ll", "will"),
    ("'ve", "have"),
    ("'d", "would"),
    ("'m", "am"),
)


def _expand(word: str) -> tuple[str, ...]:
    """Split a contraction so rules see "what is" whether Whisper wrote "what's" or "whats"."""
    if word in _CONTRACTIONS:
        return _CONTRACTIONS[word]
    if word.endswith("'s") and word[:-2] in _IS_BEFORE_S:
        return (word[:-2], "is")
    for suffix, full in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            return (word[: -len(suffix)], full)
    return (word,)


@dataclass(frozen=True)
class Utterance:
    """A normalised transcript.

    Rules match regular expressions against ``text`` (the tokens joined by single spaces);
    ``spans`` lead back to the original wording, so a note is saved as the user said it, and
    ``breaks`` mark the ends of clauses, so a place ends at a comma or full stop.
    """

    original: str
    tokens: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    breaks: tuple[bool, ...]
    text: str
    starts: tuple[int, ...]

    def token_index(self, char: int) -> int:
        """The token that covers character ``char`` of ``text``."""
        return max(0, bisect.bisect_right(self.starts, char) - 1)

    def group_range(self, match: re.Match[str], group: str) -> tuple[int, int] | None:
        """Token range ``[i, j)`` of a named group of a match against ``text``."""
        if match.group(group) is None:
            return None
        start, end = match.span(group)
        if end <= start:
            return None
        return self.token_index(start), self.token_index(end - 1) + 1

    def clause_end(self, i: int) -> int:
        """Index just past the last token of the clause that token ``i`` is in."""
        for k in range(i, len(self.tokens)):
            if self.breaks[k]:
                return k + 1
        return len(self.tokens)

    def original_text(self, i: int, j: int) -> str:
        """The user's own wording of tokens ``[i, j)``, punctuation inside kept."""
        if j <= i:
            return ""
        return self.original[self.spans[i][0] : self.spans[j - 1][1]]


def utterance(text: str) -> Utterance:
    """Tokenise a transcript; see :class:`Utterance`."""
    prepared = text.replace("’", "'").replace("‘", "'").replace("`", "'")
    prepared = _HYPHEN_IN_WORD_RE.sub(" ", prepared)  # same length: spans stay valid
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    breaks: list[bool] = []
    for match in _TOKEN_RE.finditer(prepared):
        kind = match.lastgroup
        if kind == "stop":
            if breaks:
                breaks[-1] = True
            continue
        raw = match.group()
        pieces: tuple[str, ...]
        if kind == "num":
            pieces = (raw.replace(",", ""),)
        elif kind == "word":
            pieces = _expand(raw.lower())
        else:
            pieces = (raw,)
        for piece in pieces:
            tokens.append(piece)
            spans.append(match.span())
            breaks.append(False)
    starts: list[int] = []
    position = 0
    for token in tokens:
        starts.append(position)
        position += len(token) + 1
    return Utterance(
        original=text,
        tokens=tuple(tokens),
        spans=tuple(spans),
        breaks=tuple(breaks),
        text=" ".join(tokens),
        starts=tuple(starts),
    )


def trim(tokens: Sequence[str], i: int, j: int, phrases: Iterable[tuple[str, ...]]) -> int:
    """Drop trailing filler phrases ("please", "thank you") from ``tokens[i:j]``; new ``j``."""
    phrases = tuple(phrases)
    changed = True
    while changed and j > i:
        changed = False
        for phrase in phrases:
            n = len(phrase)
            if j - n >= i and tuple(tokens[j - n : j]) == phrase:
                j -= n
                changed = True
                break
    return j


POLITE_TAIL: Final = (
    ("please",),
    ("thanks",),
    ("thank", "you"),
    ("for", "me"),
    ("okay",),
    ("ok",),
)


def token_at(tokens: Sequence[str], i: int) -> str:
    return tokens[i] if 0 <= i < len(tokens) else ""
