"""`GET /metrics`: the bot's Prometheus metrics (`bots.metrics`) in Prometheus's text format.

Who may read them follows the transcript pages: with `ADMIN_TOKEN` set, only a request with
`Authorization: Bearer <ADMIN_TOKEN>` (a scraper's `authorization` credentials; no cookie, no
sign-in form); without it, anyone on the machine, and only when the server is bound to loopback:
a network bind without `ADMIN_TOKEN` has no `/metrics` route at all (see
`bots.server.assemble.metrics_routes`).

A token-protected `/metrics` answers any Host header, as the probes do: Prometheus scrapes a pod
or container by its address, and a DNS-rebinding page cannot send the operator's token anyway.
Without the token the Host check stays, so a page elsewhere cannot read a local bot's numbers.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bots.metrics import REGISTRY
from bots.server.identity import bearer
from bots.server.operator import OperatorAccess

METRICS_PATH = "/metrics"


def metrics_router(admin_token: str | None) -> APIRouter:
    """The `/metrics` route; behind the bearer `admin_token` when one is given."""
    access = OperatorAccess(admin_token) if admin_token is not None else None
    router = APIRouter()

    @router.get(METRICS_PATH)
    async def metrics(request: Request) -> Response:
        if access is not None and not access.token_ok(bearer(request.headers.get("authorization"))):
            raise HTTPException(
                401, "The operator's token is required.", {"WWW-Authenticate": "Bearer"}
            )
        # A few dozen series and one read of /proc: well under a millisecond on the loop.
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
