"""Hypothesis strategies both fuzz suites draw from: methods, paths, JSON of any shape, JSON
nested too deep."""

from __future__ import annotations

from collections.abc import Sequence
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
