"""Hypothesis strategies the fuzz suites draw from: methods, paths, JSON of any shape, JSON
nested too deep, and the bodies and headers of requests to the bot server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)
"""Any JSON value (infinities included: `json.dumps` writes them as `Infinity`)."""

deep: st.SearchStrategy[str] = st.integers(min_value=50, max_value=5000).map(
    lambda n: "[" * n + "]" * n
)
"""An array nested 50 to 5,000 levels deep, as text."""

methods: st.SearchStrategy[str] = st.sampled_from(
    ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH")
)
"""Every HTTP method a route might (wrongly) answer."""


def paths(known: Sequence[str], *, prefix: str, alphabet: str) -> st.SearchStrategy[str]:
    """One of the `known` paths, or `prefix` plus up to 30 characters of `alphabet`."""
    return st.sampled_from(known) | st.text(alphabet=alphabet, max_size=30).map(
        lambda p: prefix + p
    )


start_like = st.fixed_dictionaries(
    {},
    optional={
        "transport": st.sampled_from(["webrtc", "daily", "", "x" * 300]) | json_values,
        "enableDefaultIceServers": json_values,
        "body": json_values,
    },
)
sdp_lines = st.lists(
    st.sampled_from(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=rtpmap:111 opus/48000/2",
            "c=IN IP4 0.0.0.0",
            "a=mid:0",
            "garbage",
        ]
    )
    | st.text(max_size=30),
    max_size=12,
)
offer_like = st.fixed_dictionaries(
    {},
    optional={
        "sdp": sdp_lines.map("\r\n".join) | json_values,
        "type": st.sampled_from(["offer", "answer", ""]) | json_values,
        "pc_id": st.text(max_size=20) | json_values,
        "restart_pc": json_values,
        "candidates": st.lists(json_values, max_size=3),
    },
)
request_bodies: st.SearchStrategy[Any] = (
    st.none()
    | json_values.map(json.dumps)
    | start_like.map(json.dumps)
    | offer_like.map(json.dumps)
    | deep
    | st.binary(max_size=2000)
    | st.integers(min_value=60_000, max_value=120_000).map(lambda n: "x" * n)
)
request_headers: st.SearchStrategy[dict[str, str]] = st.fixed_dictionaries(
    {},
    optional={
        "Origin": st.sampled_from(["https://evil.example", "null", "http://127.0.0.1"]),
        "Content-Type": st.sampled_from(
            [
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ]
        ),
        "Authorization": st.sampled_from(
            ["Bearer", "Bearer x", "Basic Zm9vOmJhcg==", "{token}", "{admin}"]
        ),
        "Accept": st.sampled_from(["text/html", "*/*", "application/json"]),
        # DNS rebinding and junk: a name that is not ours is refused, never a 5xx.
        "Host": st.sampled_from(["127.0.0.1", "localhost:7860", "evil.example", "[::1]", "a b"]),
        "Cookie": st.sampled_from(["gla_operator=x", "gla_operator={admin}", "a=" + "b" * 5000]),
        "Sec-Fetch-Site": st.sampled_from(["cross-site", "same-site", "same-origin", "none", "?"]),
    },
)
"""Bodies of any size and shape: none, JSON, `/start`- and offer-like JSON, deep nesting, bytes,
text past the 64 KiB limit."""


def with_tokens(drawn: dict[str, str], *, session: str, admin: str) -> dict[str, str]:
    """The drawn headers with `{token}` and `{admin}` made real: as a whole value a bearer
    header, inside one the bare token (the operator's cookie)."""

    def real(value: str) -> str:
        if value in ("{token}", "{admin}"):
            return f"Bearer {session if value == '{token}' else admin}"
        return value.replace("{token}", session).replace("{admin}", admin)

    return {name: real(value) for name, value in drawn.items()}


@dataclass(frozen=True)
class Drawn:
    """One drawn request: `headers` may hold `{token}` and `{admin}` (see `with_tokens`)."""

    method: str
    path: str
    headers: dict[str, str]
    content: bytes | None


def requests(known: Sequence[str], *, alphabet: str) -> st.SearchStrategy[Drawn]:
    """Requests to the bot server: any method, one of the `known` paths or junk under `/`, the
    drawn headers and a body of any shape, as bytes."""
    return st.builds(
        Drawn,
        method=methods,
        path=paths(known, prefix="/", alphabet=alphabet),
        headers=request_headers,
        content=request_bodies.map(lambda b: b.encode() if isinstance(b, str) else b),
    )
