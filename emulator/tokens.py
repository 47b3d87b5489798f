"""Ephemeral auth tokens, as `client.auth_tokens.create` makes them and the Live API enforces them.

A browser should never hold the API key; it gets a short-lived token that may open a limited number
of sessions and whose locked fields the client cannot change. The rules follow Google's docs:
`uses` counts new sessions (resuming does not spend one), `new_session_expire_time` bounds when a
session may start, `expire_time` bounds the token itself.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from emulator.wire import WireError, normalize, snake_case

DEFAULT_EXPIRE = dt.timedelta(minutes=30)
DEFAULT_NEW_SESSION_EXPIRE = dt.timedelta(seconds=60)
MAX_TOKENS = 10_000
"""Unexpired tokens kept at once; creating one more is refused (429) until some expire."""


class TokenRefused(Exception):
    """The token cannot open this connection; the message is the close reason."""


class TokenLimit(Exception):
    """`MAX_TOKENS` unexpired tokens exist; the message says so, for a 429."""


def _parse_time(value: Any, default: dt.datetime) -> dt.datetime:
    if value in (None, ""):
        return default
    if not isinstance(value, str):
        raise WireError(f"Invalid timestamp {value!r}.")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WireError(f"Invalid timestamp {value!r}.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            target[key] = nxt
        target = nxt
    target[path[-1]] = copy.deepcopy(value)


def _get_path(source: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    cur: Any = source
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return False, None
        cur = cur[key]
    return True, cur


@dataclass
class AuthToken:
    """One ephemeral token and what is left of it."""

    name: str
    expire_time: dt.datetime
    new_session_expire_time: dt.datetime
    uses_left: int | None  # None: `uses: 0` was asked for, which means no limit
    constraints: dict[str, Any] | None = None
    # Field paths the token fixes; None is the SDK's global lock (no fieldMask): the whole setup.
    locked: list[list[str]] | None = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expireTime": self.expire_time.isoformat().replace("+00:00", "Z"),
            "newSessionExpireTime": self.new_session_expire_time.isoformat().replace("+00:00", "Z"),
            "uses": self.uses_left or 0,
        }


class TokenStore:
    """Issues tokens and checks them at connect time."""

    def __init__(self, limit: int = MAX_TOKENS) -> None:
        self._tokens: dict[str, AuthToken] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._tokens)

    def prune(self, now: dt.datetime | None = None) -> None:
        """Forget the tokens past their `expire_time`: they can never be admitted again."""
        now = now or dt.datetime.now(dt.UTC)
        for name in [n for n, token in self._tokens.items() if now >= token.expire_time]:
            del self._tokens[name]

    def create(self, body: dict[str, Any], now: dt.datetime | None = None) -> AuthToken:
        """Create a token from the JSON body the SDK posts to `/v1alpha/auth_tokens`.

        Raises:
            WireError: A field is malformed.
            TokenLimit: `MAX_TOKENS` unexpired tokens exist already.
        """
        now = now or dt.datetime.now(dt.UTC)
        self.prune(now)
        if len(self._tokens) >= self._limit:
            raise TokenLimit(
                f"{self._limit} ephemeral tokens are unexpired: wait for some to expire."
            )
        data = normalize(body)
        uses = data.get("uses", 1)
        if not isinstance(uses, int) or uses < 0:
            raise WireError(f"Invalid uses {uses!r}: a non-negative integer is required.")
        expire = _parse_time(data.get("expire_time"), now + DEFAULT_EXPIRE)
        new_session = _parse_time(
            data.get("new_session_expire_time"), now + DEFAULT_NEW_SESSION_EXPIRE
        )
        setup = data.get("bidi_generate_content_setup")
        locked: list[list[str]] | None = []
        if setup is not None:
            mask = data.get("field_mask")
            if mask:
                paths = [p.strip() for p in str(mask).split(",") if p.strip()]
                locked = [[snake_case(part) for part in p.split(".")] for p in paths]
            else:
                locked = None
        token = AuthToken(
            name=f"auth_tokens/{secrets.token_urlsafe(24)}",
            expire_time=expire,
            new_session_expire_time=new_session,
            uses_left=uses or None,
            constraints=setup,
            locked=locked,
        )
        self._tokens[token.name] = token
        return token

    def admit(self, name: str, *, resuming: bool, now: dt.datetime | None = None) -> AuthToken:
        """Check a token for a new connection, spending a use unless it resumes a session."""
        now = now or dt.datetime.now(dt.UTC)
        token = self._tokens.get(name)
        if token is None:
            raise TokenRefused("Ephemeral token not found or revoked.")
        if now >= token.expire_time:
            raise TokenRefused("Ephemeral token has expired.")
        if resuming:
            return token
        if now >= token.new_session_expire_time:
            raise TokenRefused("Ephemeral token can no longer start new sessions.")
        if token.uses_left is not None:
            if token.uses_left <= 0:
                raise TokenRefused("Ephemeral token has no uses left.")
            token.uses_left -= 1
        return token


def apply_constraints(setup: dict[str, Any], token: AuthToken) -> dict[str, Any]:
    """Return the setup with the token's locked fields overriding what the client sent."""
    if not token.constraints:
        return setup
    if token.locked is None:
        # Global lock: the token's setup is the session's; the client chooses only what to resume.
        merged = copy.deepcopy(token.constraints)
        if "session_resumption" in setup:
            merged["session_resumption"] = copy.deepcopy(setup["session_resumption"])
        return merged
    merged = copy.deepcopy(setup)
    for path in token.locked:
        found, value = _get_path(token.constraints, path)
        if found:
            _set_path(merged, path, value)
    return merged
