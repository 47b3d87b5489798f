"""The `setup` handshake: the first message, the token it is sent with, the model, the conversation.

Each step refuses what the service refuses, with its close code: 1007 for a malformed setup or one
the model does not accept (`emulator.setup_rules`), 1008 for a refused token, an unknown model or a
bad resumption handle, 1011 for a resume while an earlier connection of the conversation is still
open.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from emulator.config import SessionConfig
from emulator.models import LiveModel, lookup
from emulator.registry import Listed, Registry
from emulator.session.channel import CLIENT_MESSAGES, Channel, CloseSession
from emulator.setup_rules import check_setup
from emulator.state import Conversation
from emulator.tokens import AuthToken, TokenRefused, apply_constraints
from emulator.wire import WireError


async def read_setup(channel: Channel, frames: Counter[str]) -> dict[str, Any]:
    """The body of the client's first message, which must be `setup` and nothing else."""
    message = await channel.receive()
    if message is None:
        raise CloseSession(1000, "Client closed before setup.")
    unknown = [k for k in message if k not in CLIENT_MESSAGES]
    if unknown:
        raise CloseSession(1007, channel.unknown_name(unknown[0]))
    if list(message) != ["setup"]:
        raise CloseSession(1007, "The first message must be a setup message.")
    frames["setup"] += 1
    setup: dict[str, Any] = message["setup"]
    return setup


def admit(registry: Registry, token_name: str, setup: Any) -> tuple[AuthToken, dict[str, Any]]:
    """Spend a use of the ephemeral token and lock the setup fields it fixes."""
    resuming = bool(((setup or {}).get("session_resumption") or {}).get("handle"))
    try:
        token = registry.admit_token(token_name, resuming=resuming)
    except TokenRefused as exc:
        raise CloseSession(1008, str(exc)) from None
    return token, apply_constraints(setup, token)


def configure(
    setup: Any, api_version: str, *, default_silence_ms: int = 500
) -> tuple[SessionConfig, LiveModel]:
    """The connection's configuration and the model it asked for."""
    try:
        config = SessionConfig.from_setup(setup, default_silence_ms=default_silence_ms)
    except WireError as exc:
        raise CloseSession(1007, str(exc)) from None
    model = lookup(config.model)
    if model is None:
        name = config.model if config.model.startswith("models/") else f"models/{config.model}"
        raise CloseSession(
            1008,
            f"{name} is not found for API version {api_version}, or is not supported "
            "for bidiGenerateContent.",
        )
    try:
        config = check_setup(config, model)
    except WireError as exc:
        raise CloseSession(1007, str(exc)) from None
    return config, model


def open_conversation(
    config: SessionConfig, registry: Registry, connection: Listed
) -> tuple[Conversation, str | None]:
    """A new conversation, or the one the resumption handle restores; the handle resumed from."""
    handle = config.resume_handle
    if not handle:
        conv = Conversation()
        registry.claim(conv.id, connection)
        return conv, None
    resolved = registry.resolve_handle(handle)
    if resolved is None:
        raise CloseSession(1008, "Session resumption handle is invalid or has expired.")
    conv, turns = resolved
    if not registry.claim(conv.id, connection):
        raise CloseSession(
            1011, "Resumption refused: an earlier connection of this session is still open."
        )
    if conv.turn_mark > turns:
        # A handle restores the state it stood for: later turns are lost, as on Gemini, where a
        # client must resend what it sent after the handle it resumes with.
        conv.rewind(turns)
    return conv, handle
