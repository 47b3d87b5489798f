"""Who a session belongs to: a signed, expiring token minted by the operator, or the local user.

With `SESSION_SECRET` set, `POST /start` and the offer need `Authorization: Bearer <token>`; the
token says whose notes and transcript the session is, so no request body can choose the user.
Tokens are itsdangerous signatures (HMAC-SHA1 over a JSON payload with a salt of our own), not
hand-rolled crypto; the expiry travels inside the signed payload.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

LOCAL_USER = "local-user"
"""The one user of a server without `SESSION_SECRET` (local mode)."""
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""A user id: letters, digits and `._@-`, at most 64 characters (it names files and rows)."""
MAX_MINUTES = 7 * 24 * 60
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_.-]{1,1000}$")
_SALT = "gemini-live-agent.session-token.v1"


class TokenError(ValueError):
    """A token that does not admit its bearer: the reason is safe to show to the client."""


@dataclass(frozen=True)
class Identity:
    """The user a request speaks for, and whether a token proved it."""

    user: str
    authenticated: bool


def check_user(user: str) -> str:
    """`user` if it is a valid user id, else ValueError naming the rule."""
    if not USER_NAME.match(user):
        raise ValueError(
            "a user id is 1-64 letters, digits or . _ @ -, starting with a letter or digit"
        )
    return user


def mint(secret: str, user: str, minutes: float, *, now: Callable[[], float] = time.time) -> str:
    """A token for `user` that expires `minutes` from now."""
    check_user(user)
    if not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be between 0 and {MAX_MINUTES}")
    expires = int(now() + minutes * 60)
    return URLSafeSerializer(secret, salt=_SALT).dumps({"sub": user, "exp": expires})


def verify(secret: str, token: str, *, now: Callable[[], float] = time.time) -> Identity:
    """The identity a token proves; TokenError when it is forged, malformed or expired."""
    # Base64 decoding skips characters outside its alphabet, so junk appended to a good token
    # would still verify: only the token's own alphabet is accepted.
    if not TOKEN_CHARS.match(token):
        raise TokenError("the token is not valid")
    try:
        payload = URLSafeSerializer(secret, salt=_SALT).loads(token)
    except BadSignature:
        raise TokenError("the token is not valid") from None
    if not isinstance(payload, dict):
        raise TokenError("the token is not valid")
    user, expires = payload.get("sub"), payload.get("exp")
    if not isinstance(user, str) or not USER_NAME.match(user) or not isinstance(expires, int):
        raise TokenError("the token is not valid")
    if now() >= expires:
        raise TokenError("the token has expired: ask for a new one")
    return Identity(user=user, authenticated=True)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None
