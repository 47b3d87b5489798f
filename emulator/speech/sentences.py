"""Sentence splitting, so a reply can be synthesized and streamed one sentence at a time."""

from __future__ import annotations

import re

# A sentence ends with one or more terminal marks, optionally followed by closing quotes or
# brackets, and then whitespace. Requiring the whitespace is what keeps "3.14", "10:30",
# "e.g.," and "example.com" in one piece. Group 1 is the sentence end, which is kept.
_SENTENCE_END = re.compile(r"([.!?…]+[\"'”’)\]»]*)\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences so speech can be synthesized and streamed one at a time.

    The first sentence can start playing while later ones are still being synthesized, which is
    how the real service keeps time-to-first-audio short for long answers.

    Precisely: ``text`` is stripped, then cut after every run of ``.``, ``!``, ``?`` or ``…``
    (plus any closing quotes or brackets right after it) that is followed by whitespace. That
    whitespace run becomes a single space at the end of the piece before the cut, so::

        "".join(split_sentences(t)) == _SENTENCE_END.sub(r"\\1 ", t.strip())

    Every piece but the last ends with exactly one space; the last has no trailing whitespace;
    no piece is empty; whitespace inside a sentence is left alone. Text without terminal
    punctuation is one sentence. Abbreviations such as "Dr. Who" are split, a known and
    harmless limitation (Piper just pauses there).

    Args:
        text: Any text, possibly empty.

    Returns:
        The sentences in order; ``[]`` when ``text`` is empty or only whitespace.
    """
    stripped = text.strip()
    if not stripped:
        return []
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(stripped):
        pieces.append(stripped[start : match.end(1)] + " ")
        start = match.end()
    # ``stripped`` has no trailing whitespace, so a match never reaches the end of it and the
    # final piece is never empty.
    pieces.append(stripped[start:])
    return pieces
