"""What the transcript of one conversation says, whichever layer wrote it.

The recorder's tests call it as the aggregators' events would; the observer's tests drive
Pipecat's own aggregators. Both play the same conversation, so both must find the same lines.
"""

from __future__ import annotations

from typing import Any


def assert_an_interrupted_story(events: list[dict[str, Any]]) -> None:
    """The lines of: the user asks for a story, interrupts it at "Once upon", says "Stop.", and
    the bot answers "Sure."."""
    assert [(e["type"], e.get("turn"), e.get("text")) for e in events] == [
        ("session", None, None),
        ("user_turn", 1, "Tell me a story."),
        ("bot_turn", 1, "Once upon"),
        ("interruption", None, None),
        ("user_turn", 2, "Stop."),
        ("bot_turn", 2, "Sure."),
        ("session", None, None),
    ]
    assert [e["interrupted"] for e in events if e["type"] == "bot_turn"] == [True, False]
    assert events[3]["bot_turn"] == 1
