"""The emulator's offline "model": deterministic rules from what the user said to what it does.

The emulator has no language model, yet a voice bot built on it must be usable and its tests must
be able to rely on what the "model" answers. So this module maps a transcript to one action, a
spoken reply (:class:`Say`) or tool calls (:class:`CallTools`), with plain rules: same input, same
output, no I/O, no randomness. Tools are chosen by what their declared names and descriptions
mention, never by exact names only, so a test may declare ``get_time`` or ``get_weather`` and the
bot may declare ``get_current_time``; and tool results are read back with every value in them, so
a test can prove that a result reached the model.

The rules read in one direction, one module each: `text` (normalised tokens), `numbers` (number
words), `expressions` (sums written with operators), `operations` (sums said with verbs and nouns:
"multiply 6 by 7", "the sum of 2 and 3") and `arithmetic` (working a sum out), `places`,
`intents` (what the words ask for), `tools` (which declared tool fits), `replies` (answers that need
no tool), `respond` (a turn to an action) and `results` (tool results read back). `types` and
`wording` hold the data and the fixed sentences they share.

What the offline brain understands
----------------------------------
The table in the emulator's README lists every intent with examples of the ways of asking and the
call each makes; `tests/test_emulator_brain_phrasings.py` checks each example. In short, rules are
tried in this order and the first that matches wins. Text is normalised first (lower case,
punctuation dropped, "what's" read as "what is", "twenty-one" as two words), so Whisper-style
transcripts such as "What time is it in Tokyo?" and "whats the time in new york" are understood
alike, and politeness ("please", "could you", "I'd like to know", "thanks") changes nothing.

- An empty or blank turn: the greeting (:func:`greeting`), which uses a name found in the
  system instruction ("You are Ava, ...").
- Explicit tool requests: "call the tool recall_notes", "use get current time for Tokyo"
  (Whisper's "get underscore current underscore time" too) call that declared tool, with the
  words after "for"/"in"/"with" as its string argument, or with no arguments.
- Stories: "tell me a (long) story about X", "I'd like to hear a story", "make up a story",
  "a fairy tale" get a long deterministic story (13 sentences, well over 40 seconds of speech)
  built around X, long enough to barge in on.
- Vision: "what do you see", "tell me what you see", "what am I holding", "describe the
  image/screen", "can you see me", "what does the camera show" (and "what is this" while an
  image is shared) describe the last frame's size and main colour ("I can see a 640 by 480
  image that is mostly red."), or say that no camera or screen is shared.
- Remembering: "(please) remember (that) X", "make a note: X", "note that X", "jot down that
  X", "don't forget that X" call the tool that mentions remember / note / save / store with X in
  the user's own words.
- Time: "what time is it in X", "what's the time in X", "tell me the time in X", "(current)
  time in X" call the tool that mentions time, with X title-cased ("New York") in its city /
  location / place / timezone parameter (else its first required string parameter); "X and Y"
  gives two calls. Without a place the tool is called bare if that parameter is optional, else
  the brain asks which city, and takes the next turn ("Tokyo", "in Tokyo") as the answer.
- Weather: "what is the weather like in X", "forecast for X" call the tool that mentions
  weather the same way, or say that the weather cannot be checked.
- Forgetting and recalling: "forget X", "delete my notes" call the forget / delete tool (no
  query when "everything" is to go; "forget it" is just "never mind"); "what is my X", "do you
  remember X", "recall X", "what did I ask you to remember", "what are my notes", "read my
  notes" call the recall / list / search tool with the topic ("favorite color") as its query.
- Arithmetic, in words or symbols: number words from zero to trillions ("one hundred and
  five", "a thousand", "three point five", "minus four"), digits ("1,000", "3.5"), and
  plus, minus, times, x, multiplied by, divided by, over, to the power of, squared, cubed,
  square root of, percent (of), parentheses; or the operation said first, as a verb or a noun:
  "multiply 6 by 7", "divide 10 by 4", "add 2 and 3", "subtract 3 from 10", "take 3 away from
  10", "the sum / difference / product / quotient of A and B", "half of 10". It calls the tool
  that mentions calc / math / arithmetic / expression with a Python-style expression in the
  order of the sum ("10 - 3" for "subtract 3 from 10"; a square root as "16 ** 0.5"); without
  such a tool it computes the answer itself, exactly and without ``eval``, and says "12 times 7
  is 84."
- "Stop", "could you stop", "that's enough", "wait", "hold on", "never mind" (short turns): a
  very short acknowledgement, "wait" or "stop" as the verb says.
- Greetings and microphone checks ("Hello, can you hear me?"): a reply that says yes, it can
  hear you.
- Follow-ups, for a turn that no rule above matched: after a time or weather question, "what
  about London?" or "and in Paris?" asks the same for the new place.
- Anything else: an echo, 'You said: "...". I am the local Gemini Live emulator; ...'.
- Calls to a tool declared NON_BLOCKING come with a short preamble ("Let me check that for
  you."), since the model goes on talking; blocking calls come with none.
- Tool results (:func:`respond_to_tool_results`) are read back with every value they hold;
  times, calculator results, saved / recalled / forgotten notes, weather with a condition and
  errors get natural sentences, anything else "Here is what NAME returned: key value, ...".

What it does not
----------------
- Understand language: only the phrasings above are recognised; everything else is echoed.
- Do more than one thing per turn (except one call per place in "X and Y"); a turn that
  mixes two requests gets the first matching rule.
- Know anything itself: the time, the weather and notes always come from the declared tools.
- See: vision reports only the frame's size and average colour, not objects or text.
- Fill tool arguments other than strings: number, boolean and object parameters are left out.
- Follow up on anything but the place of a time or weather question.
- Understand languages other than English, ordinals, fractions in words ("one and a half"),
  comparisons ("is 5 less than 10"), "and" alone as plus, or years read as pairs ("nineteen
  eighty-four"). "Add a hundred and five" is 100 + 5, since "add" needs two numbers.
- Vary: the same turn always gets the same answer.
"""

from __future__ import annotations

from emulator.brain.arithmetic import evaluate_expression, words_to_expression
from emulator.brain.numbers import parse_number
from emulator.brain.replies import colour_name, greeting
from emulator.brain.respond import respond
from emulator.brain.results import respond_to_tool_results
from emulator.brain.types import Action, CallTools, ExpressionError, ImageInfo, Say, ToolDecl
from emulator.brain.wording import (
    ASK_TIME_CITY,
    ASK_WEATHER_CITY,
    ECHO_TAIL,
    HEAR_YOU,
    NO_CAMERA,
    NO_CLOCK,
    NO_WEATHER,
    STOP_ACK,
    WAIT_ACK,
)

__all__ = [
    "ASK_TIME_CITY",
    "ASK_WEATHER_CITY",
    "ECHO_TAIL",
    "HEAR_YOU",
    "NO_CAMERA",
    "NO_CLOCK",
    "NO_WEATHER",
    "STOP_ACK",
    "WAIT_ACK",
    "Action",
    "CallTools",
    "ExpressionError",
    "ImageInfo",
    "Say",
    "ToolDecl",
    "colour_name",
    "evaluate_expression",
    "greeting",
    "parse_number",
    "respond",
    "respond_to_tool_results",
    "words_to_expression",
]
