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


# A clause ends at a comma, semicolon or colon followed by whitespace ("1,000" and "10:30" stay
# whole), before a spaced dash or an opening parenthesis. Group 1 is what the first piece keeps.
_CLAUSE_END = re.compile(r"([,;:]\s+|\s+(?=[—–-]\s)|\s+(?=\())")
_DASH_AFTER = re.compile(r"[—–-]\s+")


def split_first_clause(sentence: str) -> list[str]:
    """Cut a sentence after its first clause, so speech can begin before the whole is rendered.

    Piper renders a sentence at a time, in time that grows with its length; the first clause of
    an answer's first sentence ("Yes, ...", "The time in Tokyo (...) is ...") is ready sooner,
    and the rest is rendered while it plays, as a streaming model speaks before its sentence is
    done. The cut falls after the first ``,``, ``;`` or ``:`` that is followed by whitespace,
    after a spaced dash (``—``, ``–`` or ``-``), or before an opening parenthesis; the
    whitespace stays at the end of the first piece, so::

        "".join(split_first_clause(s)) == s

    Args:
        sentence: One sentence, normally the first item of :func:`split_sentences`.

    Returns:
        ``[clause, rest]``, both with words in them, or ``[sentence]`` when it has no clause
        boundary with words on both sides (and ``[]`` for an empty sentence).
    """
    if not sentence:
        return []
    for match in _CLAUSE_END.finditer(sentence):
        cut = match.end()
        dash = _DASH_AFTER.match(sentence, cut)
        if dash is not None:
            cut = dash.end()  # the dash ends the first clause: "Well — " | "that's odd."
        head, rest = sentence[:cut], sentence[cut:]
        if _has_word(head) and _has_word(rest):
            return [head, rest]
    return [sentence]


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)
