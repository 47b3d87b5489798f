"""The Live API's JSON on the wire, read as leniently as proto JSON and written as the service does.

Clients disagree on spelling: the Python SDK mixes camelCase and snake_case within one session, the
JavaScript SDK sends camelCase only, and bytes arrive in either base64 alphabet. The real service
accepts all of it (proto JSON), so the emulator normalises every client message to snake_case once,
at the edge, and the rest of the code reads one spelling. Server messages go out in camelCase, the
only spelling the JavaScript SDK understands.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

MAX_JSON_DEPTH = 64
"""Deepest nesting of objects and arrays read from a client. The Live API's messages nest about 8
deep (a function response's user data a little more); proto's own JSON parser stops at 100."""

# Values under these keys are user data (function arguments and results, JSON schemas whose property
# names belong to the developer, labels): their keys are kept exactly as sent.
_OPAQUE_KEYS = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parameters_json_schema",
        "response_json_schema",
        "labels",
        "properties",
    }
)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")


class WireError(ValueError):
    """A client message the service would reject, with the reason it would give."""


class JsonRefused(ValueError):
    """A body that is not JSON the service would read; the message says why, for the client."""


def _no_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number: send a finite number.")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonRefused(f"{text} is out of range: send a finite number.")
    return value


def load_json(raw: str | bytes) -> Any:
    """Parse a client's JSON strictly: no `NaN` or `Infinity`, nesting at most `MAX_JSON_DEPTH`.

    Python's `json` accepts both constants and recurses until the interpreter's limit, which turns
    deep input into a `RecursionError` far from where it was read; refusing both here gives the
    client a clear error (1007 on the socket, 400 over HTTP) instead of a 1011 and a traceback.

    Raises:
        JsonRefused: The text is not JSON, holds a non-finite number, or nests too deep.
    """
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise JsonRefused(f"JSON nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise JsonRefused("The message is not valid JSON.") from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise JsonRefused(f"JSON nests deeper than {MAX_JSON_DEPTH} levels.")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when objects and arrays nest deeper than `limit`; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def snake_case(name: str) -> str:
    """Return the proto field name for a JSON field name written in either spelling."""
    return _CAMEL_BOUNDARY.sub(r"_\1", name).lower()


def camel_case(name: str) -> str:
    """Return the lowerCamelCase JSON name that the real service writes for a proto field name."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def normalize(value: Any) -> Any:
    """Return a client message with every field name in snake_case and user data untouched."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = snake_case(key)
            out[name] = item if name in _OPAQUE_KEYS else normalize(item)
        return out
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def camelize(value: Any) -> Any:
    """Return a copy of a server message with field names in camelCase, user data untouched."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[camel_case(key)] = item if key in _OPAQUE_KEYS else camelize(item)
        return out
    if isinstance(value, list):
        return [camelize(item) for item in value]
    return value


def decode_bytes(data: Any) -> bytes:
    """Decode a proto JSON `bytes` field: standard or URL-safe base64, padded or not.

    Plain `base64.b64decode` silently drops `-` and `_`, which corrupts audio from the Python SDK;
    translating to the standard alphabet first keeps both clients' bytes intact.
    """
    if not isinstance(data, str):
        raise WireError("Invalid value: bytes must be a base64 string.")
    text = data.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError(f"Invalid value: bytes are not valid base64 ({exc}).") from exc


def encode_bytes(data: bytes) -> str:
    """Encode bytes as the service does: standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def parse_rate(mime_type: str | None, *, default: int = 16000) -> int:
    """Return the sample rate of an `audio/pcm;rate=N` MIME type, refusing what is not PCM."""
    if not mime_type:
        return default
    if not isinstance(mime_type, str):
        raise WireError("Invalid value: mimeType must be a string such as 'audio/pcm;rate=16000'.")
    kind, _, params = mime_type.partition(";")
    if kind.strip().lower() not in ("audio/pcm", "audio/l16", "audio/raw"):
        raise WireError(
            f"Unsupported audio MIME type {mime_type!r}: send 16-bit PCM as 'audio/pcm;rate=16000'."
        )
    rate = default
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "rate":
            try:
                rate = int(val.strip())
            except ValueError:
                raise WireError(f"Invalid audio sample rate in {mime_type!r}.") from None
    if not 8000 <= rate <= 48000:
        raise WireError(
            f"Unsupported audio sample rate {rate} Hz in {mime_type!r}: use 8000 to 48000 Hz "
            "(16000 is native)."
        )
    return rate


def text_of(content: dict[str, Any] | None) -> str:
    """Join the text parts of a normalised `Content`, the way the model reads a turn."""
    if not content:
        return ""
    parts = content.get("parts") or []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def duration(seconds: float) -> str:
    """Format a proto `Duration` as JSON, e.g. `"9.5s"`."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
