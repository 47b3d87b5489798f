"""What a lost or refused Gemini Live connection means: retry, start afresh, or give up.

The SDK reports a closed socket as `google.genai.errors.APIError` (any close, a clean one too),
a refused upgrade as `websockets.InvalidStatus`, and network failures as `OSError`; the close
code or HTTP status decides whether trying again can help.
"""

from __future__ import annotations

import ssl
from enum import StrEnum

from google.genai import errors as genai_errors
from websockets.exceptions import ConnectionClosed, InvalidStatus

PERMANENT_HTTP = frozenset({400, 401, 403, 404})
"""HTTP statuses on the WebSocket upgrade that retrying cannot fix."""


class Verdict(StrEnum):
    """What to do after a connection failed or was lost."""

    RETRY = "retry"
    HANDLE_REFUSED = "handle_refused"  # start a fresh session, seeded with the conversation
    PERMANENT = "permanent"  # a bad key, model or setup: give up at once


def close_code(error: BaseException) -> int | None:
    """The WebSocket close code an error carries, if any."""
    if isinstance(error, genai_errors.APIError):
        return error.code
    if isinstance(error, ConnectionClosed) and error.rcvd is not None:
        return error.rcvd.code
    return None


def is_connection_error(error: BaseException) -> bool:
    """Whether the error means the socket is gone (the supervisor then reconnects)."""
    return isinstance(
        error, ConnectionClosed | genai_errors.APIError | OSError | ConnectionError | TimeoutError
    )


def classify(error: Exception, *, resuming: bool, opened: bool) -> Verdict:
    """Say whether a failure is a refused handle, permanent, or worth retrying.

    Args:
        error: What the connection ended with.
        resuming: Whether the attempt resumed with a handle.
        opened: Whether the socket was open (setupComplete received) before it failed; a
            connection that worked once is always worth another try.
    """
    if opened:
        return Verdict.RETRY
    code = close_code(error)
    if code == 1008 and resuming:
        return Verdict.HANDLE_REFUSED
    if code in (1007, 1008):
        return Verdict.PERMANENT  # the setup itself is refused: a bad key, model or field
    if isinstance(error, InvalidStatus) and error.response.status_code in PERMANENT_HTTP:
        return Verdict.PERMANENT
    if isinstance(error, ssl.SSLCertVerificationError):
        return Verdict.PERMANENT
    return Verdict.RETRY


def describe(error: BaseException) -> str:
    """A short, key-free description of a connection error for logs and the browser."""
    if isinstance(error, genai_errors.APIError):
        return f"closed with {error.code}: {error.message or error.details or error.status}"
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code} on connect"
    if isinstance(error, TimeoutError):
        return "timed out connecting"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def failure_reason(error: BaseException, verdict: Verdict, *, opened: bool) -> str:
    """A label for a failed or lost connection, from a fixed set (`bots.metrics`)."""
    if opened:
        return "lost"
    if verdict is Verdict.HANDLE_REFUSED:
        return "handle_refused"
    if verdict is Verdict.PERMANENT:
        return "refused"
    if isinstance(error, TimeoutError):
        return "timeout"
    return "connect_failed"
