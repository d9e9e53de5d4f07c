"""The gateway's error answers as aiohttp responses: the adapter between handlers and the renderer.

The words, markup, languages and security headers all come from the one page renderer
(`gateway.pages.renderer.PageRenderer.render_error`, kept on `AppState.renderer`); this module only
decides HTML or plain text from the request's headers and builds the response. Answers carry the
request id (a user can quote it to the help desk) and never an internal detail: no upstream
address, no exception text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from gateway.pages.renderer import PageRenderer
from gateway.pages.static_files import STATIC_PREFIX, StaticAsset

StaticHandler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]

# Status lines aiohttp has no phrase for. 440 is Exchange's own, and what OWA's scripts expect.
REASON_PHRASES: Mapping[int, str] = {440: "Login Timeout"}


def wants_html(headers: Mapping[str, str]) -> bool:
    """Browsers ask for text/html; scripts, phones and Outlook do not."""
    return "text/html" in headers.get("Accept", "")


def error_response(
    renderer: PageRenderer,
    headers: Mapping[str, str],
    status: int,
    *,
    request_id: str,
    kind: str | None = None,
    reason: str | None = None,
    expected_url: str | None = None,
    brand_name: str | None = None,
) -> web.Response:
    """A complete error response for a request with these `headers`, in the language they ask for.

    `kind` picks other words than the status's (gateway.pages.renderer.ERROR_KINDS); `reason` is the
    edge's short reason, shown only when it is one of the fixed, non-echoing ones; `expected_url`
    (the public URL, for a request to another host) is named, and linked on the page.
    """
    page = renderer.render_error(
        status,
        lang=renderer.pick_language(headers.get("Accept-Language")),
        request_id=request_id,
        html=wants_html(headers),
        kind=kind,
        reason=reason,
        expected_url=expected_url,
        brand_name=brand_name,
    )
    return web.Response(status=page.status, reason=REASON_PHRASES.get(status), body=page.body,
                        headers=dict(page.headers))


def static_routes(renderer: PageRenderer) -> dict[str, StaticHandler]:
    """The pages' style sheets, script and logo, by path under `/_gateway/static/`: every page needs
    them (error pages too, with or without the MFA flow), and the CSP allows no inline style."""
    routes: dict[str, StaticHandler] = {}
    for name in sorted(renderer.static.names):
        asset = renderer.static.get(name)
        assert asset is not None
        routes[STATIC_PREFIX + name] = _serve(asset)
    return routes


def _serve(asset: StaticAsset) -> StaticHandler:
    async def serve(request: web.Request, ctx: Any) -> web.StreamResponse:
        return web.Response(body=asset.body, headers=asset.headers)

    return serve
