"""Who may read the transcripts: the operator, proven by `ADMIN_TOKEN`, and nobody else.

Transcripts hold what users said and the notes they asked to keep. With `ADMIN_TOKEN` set, the
pages need it, as `Authorization: Bearer <token>` or through a login form that sets an HttpOnly,
SameSite=Strict cookie (so no other site's page can send it). Without `ADMIN_TOKEN` the pages
exist only on a loopback bind, where the operator is whoever sits at the machine.
"""

from __future__ import annotations

import hashlib
import hmac
import html

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bots.server.identity import bearer

COOKIE = "gla_operator"
COOKIE_MAX_AGE_SECS = 8 * 3600


class LoginRequired(HTTPException):
    """A transcript page asked for without the operator's token: answered with the login form."""

    def __init__(self, message: str = "") -> None:
        super().__init__(401, "The operator's token is required.")
        self.message = message


def login_page(message: str = "") -> HTMLResponse:
    """The login form (401): one field for the operator's token."""
    note = f"<p style='color:#b3261e'>{html.escape(message)}</p>" if message else ""
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Transcripts: sign in</title>"
        "<body style='font:15px system-ui;margin:3rem auto;max-width:24rem'>"
        f"<h1>Transcripts</h1>{note}<form method=post action='/transcripts/login'>"
        "<label>Operator token <input name=token type=password autocomplete=current-password "
        "required></label> <button type=submit>Sign in</button></form></body></html>",
        status_code=401,
    )


class OperatorAccess:
    """Checks a request for the operator's token (bearer header or login cookie)."""

    def __init__(self, admin_token: str) -> None:
        if not admin_token:
            raise ValueError("ADMIN_TOKEN must not be empty")
        self._token = admin_token.encode()
        # The cookie holds a value derived from the token, never the token itself.
        self._cookie = hmac.new(self._token, b"transcripts-cookie", hashlib.sha256).hexdigest()

    def token_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self._token)

    async def require(self, request: Request) -> None:
        """FastAPI dependency: LoginRequired unless the request carries the operator's token."""
        if self.token_ok(bearer(request.headers.get("authorization"))):
            return
        cookie = request.cookies.get(COOKIE)
        if cookie is not None and hmac.compare_digest(cookie, self._cookie):
            return
        raise LoginRequired()

    def login_router(self) -> APIRouter:
        """`POST /transcripts/login`: the form's token in, the cookie out."""
        router = APIRouter()

        @router.post("/transcripts/login")
        async def login(request: Request) -> Response:
            form = await request.form()
            token = form.get("token")
            if not isinstance(token, str) or not self.token_ok(token):
                return login_page("That is not the operator's token.")
            response = RedirectResponse("/transcripts", status_code=303)
            secure = request.url.scheme == "https" or (
                request.headers.get("x-forwarded-proto") == "https"
            )
            response.set_cookie(
                COOKIE,
                self._cookie,
                max_age=COOKIE_MAX_AGE_SECS,
                path="/transcripts",
                httponly=True,
                samesite="strict",
                secure=secure,
            )
            return response

        return router
