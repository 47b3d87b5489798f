"""What one step of a test produced: its slice of the conversation, and a cursor over it."""

from __future__ import annotations

from dataclasses import dataclass

from bottest.events import Conversation, Event
from bottest.expect import Expect


@dataclass
class Turn:
    """What happened from one step to the end of the bot's answer to it."""

    conversation: Conversation
    start: int
    end: int
    _expect: Expect | None = None

    @property
    def events(self) -> list[Event]:
        return self.conversation.events[self.start : self.end]

    @property
    def expect(self) -> Expect:
        """The cursor over this turn's events: each expectation starts after the last match."""
        if self._expect is None:
            self._expect = Expect(self.conversation, self.start, self.end)
        return self._expect

    @property
    def reply(self) -> str:
        """Everything the bot said in the turn, joined."""
        return " ".join(e.text for e in self.events if e.kind == "reply" and e.text)

    @property
    def speech(self) -> tuple[float, float] | None:
        """For a spoken step, when its words began and ended going in (`time.monotonic()`:
        the first and the last loud 20 ms frame); at real time, when the user said them."""
        first = self.conversation.events[self.start] if self.start < self.end else None
        return first.speech if first is not None and first.kind == "spoke" else None

    def __str__(self) -> str:
        return self.conversation.render(start=self.start)
