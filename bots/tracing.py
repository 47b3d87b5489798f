"""OpenTelemetry for the bot: Pipecat's own spans, sent where the settings say.

Pipecat 1.14 already traces a conversation (`conversation`, `turn`) and its Gemini Live service
(`llm_setup` per connection, `llm_tool_call` and `llm_tool_result` per call) once a worker has
`enable_tracing`; what it needs is a tracer provider with an exporter, set once per process.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from pipecat.utils.tracing.setup import setup_tracing

from bots.settings import Settings


def configure_tracing(settings: Settings, exporter: Any | None = None) -> bool:
    """Install the process's tracer provider when `ENABLE_TRACING` is on.

    Args:
        settings: `enable_tracing`, `otel_exporter_otlp_endpoint`, `otel_service_name`.
        exporter: A span exporter to use instead (tests pass an in-memory one).

    Returns:
        Whether spans will be exported.
    """
    if not settings.enable_tracing:
        return False
    if exporter is None and settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    ok = setup_tracing(
        settings.otel_service_name, exporter=exporter, console_export=exporter is None
    )
    if ok:
        where = settings.otel_exporter_otlp_endpoint or (
            "a test exporter" if exporter else "the console"
        )
        logger.info(f"tracing on: spans go to {where}")
    return ok
