"""Replies that need no tool: the greeting, what the camera sees, and a long story."""

from __future__ import annotations

import colorsys
import re
from typing import Final

from emulator.brain.text import word_list
from emulator.brain.types import ImageInfo
from emulator.brain.wording import NO_CAMERA

_NAME_RE = re.compile(
    r"\b(?:[Yy]our name is|[Yy]ou are called|[Yy]ou are named|[Cc]all yourself|[Yy]ou are|"
    r"[Yy]ou're)\s+([A-Z][\w'-]*)"
)
_NOT_NAMES: Final = frozenset(
    word_list("A An The Not Now Here Always Never Very In On At To My Our Your This That")
)


def greeting(system_instruction: str = "") -> str:
    """The first words of a session, with the assistant's name if the instruction gives one.

    Args:
        system_instruction: The client's system instruction; "You are Ava, ..." or "Your name
            is Ava" make the greeting introduce Ava.

    Returns:
        A one-sentence hello and an offer to help.
    """
    for match in _NAME_RE.finditer(system_instruction):
        name = match.group(1).rstrip("'-")
        if name not in _NOT_NAMES:
            return f"Hello! I'm {name}. How can I help you today?"
    return "Hello! I'm the local Gemini Live emulator. How can I help you today?"


_HUES: Final = (
    (45, "orange", "brown", 0.65),
    (70, "yellow", "olive", 0.5),
    (165, "green", "green", 0.0),
    (200, "cyan", "teal", 0.6),
    (255, "blue", "navy", 0.35),
    (315, "purple", "purple", 0.0),
)
"""Hue bands past red, by upper bound in degrees: the name, and the name when the colour's value
(brightness) is under the threshold."""


def colour_name(rgb: tuple[int, int, int]) -> str:
    """A plain colour word for a mean RGB value: "red", "dark gray", "brown", ...

    Args:
        rgb: Red, green and blue, 0 to 255 each (out-of-range values are clamped).

    Returns:
        One of black, white, light gray, gray, dark gray, red, pink, orange, brown, yellow,
        olive, green, cyan, teal, blue, navy or purple.
    """
    r, g, b = (max(0, min(255, int(c))) / 255 for c in rgb)
    hue, lightness, _ = colorsys.rgb_to_hls(r, g, b)
    value, chroma = max(r, g, b), max(r, g, b) - min(r, g, b)
    if value < 0.15:
        return "black"
    if chroma < 0.12:
        if lightness > 0.85:
            return "white"
        if lightness > 0.6:
            return "light gray"
        return "gray" if lightness > 0.3 else "dark gray"
    degrees = hue * 360
    if degrees < 15 or degrees >= 345:
        return "pink" if lightness > 0.75 else "red"
    for below, name, darker, darker_under in _HUES:
        if degrees < below:
            return darker if value < darker_under else name
    return "pink"


def _article(number: int) -> str:
    """ "a 640", but "an 800", "an 11" and "an 18000" (said "eighteen thousand")."""
    digits = str(number)
    if digits.startswith("8") or (len(digits) in (2, 5) and digits[:2] in ("11", "18")):
        return "an"
    return "a"


def describe_image(image: ImageInfo | None) -> str:
    if image is None:
        return NO_CAMERA
    return (
        f"I can see {_article(image.width)} {image.width} by {image.height} image that is "
        f"mostly {colour_name(image.mean_rgb)}. Offline, I can only tell its size and main colour."
    )


def story(topic: str) -> str:
    """A long fixed story (about 90 seconds of speech) around the user's topic."""
    topic = topic.strip() or "a curious little robot"
    first, _, rest = topic.partition(" ")
    if first.lower() in ("a", "an") and rest:
        hero, the_hero = topic, f"the {rest}"
    elif first.lower() in ("the", "my", "your", "our", "his", "her", "their") or topic[0].isupper():
        hero = the_hero = topic
    else:
        hero, the_hero = f"a young traveller who dreamed about {topic}", "the traveller"
    sentences = [
        f"Once upon a time, in a valley surrounded by tall blue mountains, there lived {hero}.",
        f"Every morning, {the_hero} watched the sun climb over the peaks and wondered what lay "
        "beyond them.",
        "The villagers said that nobody had ever crossed the mountains, and that the wind up "
        "there was far too strong for anyone.",
        f"But {the_hero} was patient, and practised a little more each day, even when it rained "
        "and even when it was cold.",
        "One spring, an old owl who lived in a crooked oak tree offered a piece of advice: start "
        "small, and never give up.",
        f"So {the_hero} began with tiny steps, then bigger ones, and slowly the impossible "
        "started to feel possible.",
        f"There were many failures along the way, and more than once {the_hero} came home tired, "
        "muddy and discouraged.",
        "Yet every failure taught something new, and the owl would nod and say that this was how "
        "all great journeys begin.",
        f"At last, on a bright and windy afternoon, {the_hero} reached the highest ridge and "
        "looked out over a land that nobody in the valley had ever seen.",
        "There were silver rivers, golden fields and cities full of music, stretching all the way "
        "to the sea.",
        f"When {the_hero} came back to the valley, the villagers gathered in the square to hear "
        "every detail of the adventure.",
        "And from that day on, whenever someone said that something could not be done, they "
        f"remembered the story of {topic}, and they kept on trying.",
        "The end.",
    ]
    return " ".join(sentences)
