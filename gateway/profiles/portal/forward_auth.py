"""`GET /_gateway/auth`: the gateway as the decision point for nginx, Caddy and Traefik.

The other proxy describes the original request in headers (gateway.policy.forward_auth reads them,
only from `GATEWAY_TRUSTED_PROXIES`); its `Cookie` header is the browser's, so the session is the one
the browser holds, checked for the site the original host selects exactly as a portal site's own
requests are (gateway.profiles.portal.serve): same timeouts, same activity, a session of another
site is no session. The answer is what those proxies understand:

- 200, with the site's identity headers and (when enabled) the signed assertion, for the proxy to
  copy onto the request it forwards (an empty 200 on a `bypass` rule: the proxy must remove the
  client's own copies of those headers itself, see docs/forward-auth.md);
- 401 with `Location`: the sign-in page on the original host (absolute: the proxy redirects the
  browser there, nginx with `error_page 401`, Caddy with `handle_response`), `rd` the original path
  and query; and `WWW-Authenticate` naming it. A proxy that cannot redirect on a 401 (Traefik relays
  it as it is) asks `/_gateway/auth?browsers=redirect`: a browser navigation then gets the same
  `Location` with 302, which it relays and the browser follows;
- 403 for everything else: a rule that denies, a peer that is not trusted, a description that is
  missing, ambiguous or not canonical;
- 503 when the session store cannot be asked (the proxies turn it into an error: fail closed).

Every decision is one audit event (`forward_auth`), without cookies or query values.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit

from aiohttp import web

from gateway.core import Handler, RequestContext
from gateway.observability.audit import audit
from gateway.observability.logging import get_logger
from gateway.policy.forward_auth import (
    ForwardAuthDecision,
    ForwardAuthRefused,
    OriginalRequest,
    SessionFactors,
    Verdict,
    decide,
    original_request,
)
from gateway.policy.routes import wants_page
from gateway.policy.sites import HostMatch
from gateway.profiles.portal.access import PortalAccess, identity
from gateway.profiles.portal.serve import (
    SIGN_IN_PATH,
    PortalSites,
    SessionCheck,
    check_session,
    record_activity,
    www_authenticate,
)
from gateway.sessions.base import StoreUnavailable

__all__ = ["FORWARD_AUTH_PATH", "forward_auth_handler"]

log = get_logger("gateway.forward_auth")

FORWARD_AUTH_PATH = "/_gateway/auth"
_NO_STORE = {"Cache-Control": "no-store"}


def forward_auth_handler(portals: Callable[[], PortalSites]) -> Handler:
    """The page handler; `portals()` is the configuration in force (read once per request)."""

    async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
        sites = portals()
        check: SessionCheck | None = None
        session: SessionFactors | None = None
        flow = sites.flow
        original = _original(request) if ctx.peer_trusted else None
        selection = sites.index.select(original.host) if original is not None else None
        if flow is not None and selection is not None and selection.site is not None:
            portal = sites.site(selection.site.name)
            now = flow.clock()
            try:
                check = await check_session(flow, request, portal, now)
                if check.access.ends_session and check.cookie is not None:
                    await flow.end_session(ctx, check.cookie, check.record, check.access.value)
                session = _factors(check)
            except StoreUnavailable as exc:
                audit("forward_auth", client_ip=ctx.client_ip, verdict="error", reason="session_store_unavailable",
                      **_described(original))
                flow.metrics.refusals.labels("session_store_unavailable").inc()
                log.error("session_store_unavailable", reason=str(exc))
                return web.Response(status=503, text="session store unavailable\n", headers=_NO_STORE)
        decision = decide(request.headers, peer_trusted=ctx.peer_trusted, client_ip=ctx.client_ip,
                          sites=sites.index, session=session)
        user = check.record.user_id if check is not None and check.record is not None else None
        audit("forward_auth", client_ip=ctx.client_ip, verdict=decision.verdict.value, reason=decision.reason,
              site=decision.site, rule=decision.rule, monosign_user_id=user if decision.session else None,
              **_described(decision.original))
        if decision.verdict is Verdict.ALLOW:
            headers = dict(_NO_STORE)
            if decision.session is not None and check is not None and flow is not None and decision.site is not None:
                now = flow.clock()
                try:
                    await record_activity(flow, check, now)
                except StoreUnavailable:
                    return web.Response(status=503, text="session store unavailable\n", headers=_NO_STORE)
                headers.update(sites.site(decision.site).upstream_identity(check, now))
            return web.Response(status=200, headers=headers)
        if decision.verdict is Verdict.SIGN_IN:
            response = _sign_in(decision, listed=selection is not None and selection.match is HostMatch.LISTED,
                                public_url=sites.issuer)
            assert decision.original is not None
            if request.query.get("browsers") == "redirect" and wants_page(decision.original.method, request.headers):
                response.set_status(302)
            return response
        return web.Response(status=403, text="403 Forbidden\n", headers=_NO_STORE)

    return handle


def _original(request: web.Request) -> OriginalRequest | None:
    try:
        return original_request(request.headers)
    except ForwardAuthRefused:
        return None  # `decide` refuses it again, with the reason


def _factors(check: SessionCheck) -> SessionFactors | None:
    if check.record is None or check.access not in (PortalAccess.PASSED, PortalAccess.FIRST_FACTOR):
        return None
    who = identity(check.record)
    if who is None:
        return None
    return SessionFactors(who, second_factor=check.access is PortalAccess.PASSED)


def _described(original: OriginalRequest | None) -> dict[str, str]:
    if original is None:
        return {}
    return {"method": original.method, "host": original.host, "path": original.target.path}


def _sign_in(decision: ForwardAuthDecision, *, listed: bool, public_url: str) -> web.Response:
    """401 with the sign-in page's absolute URL on the original host, or on the public URL when the
    host is no site's own (the default site's): a Location is never built from a host no site lists."""
    original = decision.original
    assert original is not None
    origin = f"{original.scheme}://{original.host}" if listed else _origin(public_url)
    url = f"{origin}{SIGN_IN_PATH}?rd={quote(original.target.forward, safe='/')}"
    return web.Response(status=401, text="401 Unauthorized\n",
                        headers={**_NO_STORE, "Location": url, "WWW-Authenticate": www_authenticate(url)})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
