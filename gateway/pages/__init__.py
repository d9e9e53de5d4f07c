"""The gateway's own error answers: a small branded HTML page for browsers, plain text otherwise.

They carry the request id (so a user can quote it to the help desk) and never an internal detail:
no upstream address, no exception text. The MFA pages have their own templates in `gateway/mfa/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import jinja2
from aiohttp import web


@dataclass(frozen=True, slots=True)
class Wording:
    reason: str
    title: str
    message: str


# What the user reads, per status. The reason phrase is the status line's; 440 is Exchange's.
WORDING: dict[int, Wording] = {
    400: Wording("Bad Request", "Bad request", "The request could not be understood."),
    403: Wording("Forbidden", "Access denied", "This address is not available through the gateway."),
    404: Wording("Not Found", "Not found", "There is nothing at this address."),
    408: Wording("Request Timeout", "Request timeout", "The request took too long to arrive."),
    413: Wording("Payload Too Large", "Request too large", "The request is larger than the gateway accepts."),
    417: Wording("Expectation Failed", "Expectation failed", "The request's Expect header is not supported."),
    440: Wording("Login Timeout", "Sign-in required", "Your session has ended. Sign in again."),
    500: Wording("Internal Server Error", "Something went wrong",
                 "The gateway could not complete the request. Try again in a moment."),
    502: Wording("Bad Gateway", "Mail server unreachable",
                 "The mail server cannot be reached right now. Try again in a moment."),
    503: Wording("Service Unavailable", "Service unavailable",
                 "The gateway cannot serve this request right now. Try again in a moment."),
    504: Wording("Gateway Timeout", "Mail server not answering",
                 "The mail server took too long to answer. Try again in a moment."),
}


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway", "pages"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("error.html")


def wants_html(headers: Mapping[str, str]) -> bool:
    """Browsers ask for text/html; scripts, phones and Outlook do not."""
    return "text/html" in headers.get("Accept", "")


def error_response(
    status: int,
    *,
    request_id: str | None,
    html: bool,
    title: str | None = None,
    message: str | None = None,
) -> web.Response:
    """A complete error response; `title`/`message` override the default wording (no internals!)."""
    wording = WORDING.get(status) or Wording("Error", "Error", "The request could not be completed.")
    shown_title = title or wording.title
    shown_message = message or wording.message
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if html:
        # The page loads nothing and runs nothing; its only style sheet is inline.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        body = _template().render(title=shown_title, message=shown_message, request_id=request_id, status=status)
        return web.Response(status=status, reason=wording.reason, text=body, content_type="text/html",
                            headers=headers)
    lines = [f"{status} {shown_title}", shown_message]
    if request_id:
        lines.append(f"Reference: {request_id}")
    return web.Response(status=status, reason=wording.reason, text="\n".join(lines) + "\n",
                        content_type="text/plain", headers=headers)
