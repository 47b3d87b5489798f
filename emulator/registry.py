"""What one connection asks of the server that accepted it, and how the server wants it to behave.

A conversation outlives its sockets: a resumption handle reopens it on a new connection, and a
resume is refused while an earlier connection of it is still open. That needs state shared by all
connections, which the server keeps. A session sees it only through `Registry`, so the session and
the server do not import each other, and the session never touches the server's maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from emulator.scenario import Scenario
from emulator.state import Conversation
from emulator.tokens import AuthToken


class Listed(Protocol):
    """A connection as the registry keeps it."""

    @property
    def open(self) -> bool:
        """False once the connection has closed."""
        ...


class Registry(Protocol):
    """The shared state a connection reads and changes, and nothing else of the server."""

    def admit_token(self, name: str, *, resuming: bool) -> AuthToken:
        """The ephemeral token `name`, with one of its uses spent on this connection.

        Raises:
            emulator.tokens.TokenRefused: The token is unknown, expired or used up.
        """
        ...

    def issue_handle(self, conversation: Conversation) -> str:
        """A new resumption handle for the conversation as it is now (its turns so far)."""
        ...

    def resolve_handle(self, handle: str) -> tuple[Conversation, int] | None:
        """The conversation a handle resumes and how many of its turns the handle covers; None
        when the handle is unknown or past its lifetime."""
        ...

    def claim(self, conversation_id: str, connection: Listed) -> bool:
        """Make `connection` the live connection of the conversation.

        Returns:
            False, changing nothing, while another open connection holds the conversation.
        """
        ...

    def release(self, conversation_id: str, connection: Listed) -> None:
        """The connection has ended; forget it as the conversation's live one if it still is."""
        ...


@dataclass(frozen=True)
class SessionOptions:
    """How the server wants a connection to behave, fixed when the connection opens.

    Attributes:
        pace: Output audio speed relative to real time; 0 sends each turn at once.
        lead_s: How far output audio may run ahead of real time.
        first_audio_ms: Delay before each answer, until the control API changes it.
        connection_lifetime_s: Send goAway and close after this long; None never does.
        goaway_lead_s: How long before the end of the lifetime the goAway is sent.
        scenario: Rules tried before the brain, and actions for a new conversation.
        cancel_blocking_on_input: On the 3.8 family, new input while a BLOCKING call is
            unanswered cancels the call (`toolCallCancellation`) and is answered, as Vertex's
            3.8 guide describes; off, the input is held until the call is answered.
        polite_interrupt: On the 3.8 family, an `INTERRUPT` result that arrives while the user
            is speaking waits until the user has finished, as Vertex's 3.8 guide describes;
            off, it is spoken at once.
        max_turn_audio_s: The most audio one user turn may buffer before it ends; more
            closes the connection with 1009, so one client cannot fill the server's memory.
        heard_as: Load mode: every spoken turn is heard as this text, without Whisper, so its
            answer is the same each time and comes from the synthesizer's cache; None
            transcribes each turn.
        default_silence_ms: The silence that ends a user turn when the setup does not set
            `silenceDurationMs`; Gemini's own is about 500 ms, and so is this unless the
            server was started with a faster one.
    """

    pace: float = 1.0
    lead_s: float = 0.2
    first_audio_ms: int = 0
    connection_lifetime_s: float | None = 600.0
    goaway_lead_s: float = 10.0
    scenario: Scenario | None = None
    cancel_blocking_on_input: bool = False
    polite_interrupt: bool = False
    max_turn_audio_s: float = 120.0
    heard_as: str | None = None
    default_silence_ms: int = 500
