"""Point the google-genai SDK, or Pipecat's Gemini Live service, at a running emulator."""

from __future__ import annotations

import ssl
from pathlib import Path

from google.genai import types


def client_ssl_context(ca: str | Path) -> ssl.SSLContext:
    """Return a TLS context that trusts the emulator's CA (and nothing else is needed)."""
    return ssl.create_default_context(cafile=str(ca))


def http_options(
    base_url: str, ca: str | Path, *, api_version: str | None = None
) -> types.HttpOptions:
    """Return `HttpOptions` that send the SDK's WebSocket and REST calls to the emulator.

    Args:
        base_url: The emulator's `https://HOST:PORT`, as printed on its `ready` line.
        ca: The PEM the emulator printed as `ca=`; WebSocket and REST clients both trust it.
        api_version: e.g. `"v1alpha"` for ephemeral tokens; the SDK's default otherwise.

    Use it as `genai.Client(api_key=..., http_options=http_options(url, ca))` or
    `GeminiLiveLLMService(api_key=..., http_options=http_options(url, ca))`.
    """
    return types.HttpOptions(
        base_url=base_url.rstrip("/"),
        api_version=api_version,
        async_client_args={"ssl": client_ssl_context(ca)},
        client_args={"verify": str(ca)},
    )
