"""Forwarding under the MFA flow's two cookie rules.

1. The gateway's own cookie never reaches the upstream (nor Exchange's routing-hint cookies, from a
   client without a passed session: the ProxyLogon vector).
2. No response gives a browser a live Exchange session (`cadata*` cookies) unless that browser has
   passed the second factor (DESIGN principle 2). The login route holds them back for the MFA
   step; on every other route the gateway does not know who signed in, so it strips them and
   refuses the response. Deletions of those cookies always pass: logging out is never held back.
"""

from __future__ import annotations

import time

from aiohttp import web
from multidict import CIMultiDict

from gateway.app import error_page, send_upstream
from gateway.app import upstream_headers as client_upstream_headers
from gateway.core import RequestContext, ResponseInspector, UpstreamAnswer
from gateway.mfa.flow import MfaFlow
from gateway.mfa.session_cookie import (
    GATEWAY_COOKIE_NAMES,
    hint_prefixes_to_strip,
    is_gateway_cookie,
    strip_request_cookies,
)
from gateway.observability.audit import audit
from gateway.policy.cookies import request_cookies
from gateway.policy.owa_responses import CADATA_COOKIE_NAMES, live_cadata, parse_set_cookie, sets_foreign_session
from gateway.sessions.base import StoreUnavailable


def hold_back_cadata(client_headers: CIMultiDict[str], *, now: float | None = None) -> bool:
    """Remove every `Set-Cookie` that sets a live `cadata*` cookie; True when one was removed."""
    moment = time.time() if now is None else now
    values = client_headers.popall("Set-Cookie", [])
    removed = False
    for value in values:
        cookie = parse_set_cookie(value)
        if cookie.key in CADATA_COOKIE_NAMES and not cookie.is_deletion(moment):
            removed = True
            continue
        client_headers.add("Set-Cookie", value)
    return removed


def dropping_gateway_cookies(inspect: ResponseInspector) -> ResponseInspector:
    """`inspect`, after removing any upstream `Set-Cookie` that names the gateway's own cookie: only
    the gateway hands out its session (an upstream could otherwise plant or shadow one)."""

    async def inspect_without(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
        values = client_headers.getall("Set-Cookie", ())
        if values and any(is_gateway_cookie(parse_set_cookie(value).key) for value in values):
            del client_headers["Set-Cookie"]
            for value in values:
                if not is_gateway_cookie(parse_set_cookie(value).key):
                    client_headers.add("Set-Cookie", value)
        return await inspect(upstream, client_headers)

    return inspect_without


def refusal(request: web.Request, ctx: RequestContext) -> web.Response:
    """What the browser gets instead of a response that would have handed it an Exchange session."""
    return error_page(request, ctx, 403, kind="sign-in-again")


def cadata_guard(request: web.Request, ctx: RequestContext, flow: MfaFlow, *, session_passed: bool | None
                 ) -> ResponseInspector:
    """An inspector that enforces rule 2 on a route where the gateway does not know who signed in.

    `session_passed=None`: look the session up only if a response actually sets live cadata (rare),
    so ordinary traffic on these routes costs no store round trip.
    """

    async def inspect(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
        if "Set-Cookie" not in client_headers or not live_cadata(client_headers.getall("Set-Cookie")):
            return None
        passed = session_passed
        if passed is None:
            try:
                found = await flow.lookup(request)
            except StoreUnavailable:
                found = None
            # Only the Exchange session this gateway session is bound to passes: another one is
            # a sign-in that has not passed the second factor.
            passed = found is not None and found.record is not None and found.record.passed and not (
                sets_foreign_session(client_headers.getall("Set-Cookie", []), found.record.cadata_hash))
        if passed:
            return None
        hold_back_cadata(client_headers)
        flow.audit("refused", ctx, reason="exchange_session_without_mfa", route=ctx.route.value if ctx.route else None,
                   upstream_status=upstream.status)
        return refusal(request, ctx)

    return inspect


def strip_forwarded_cookies(request: web.Request, ctx: RequestContext, headers: CIMultiDict[str], *,
                            session_passed: bool, exchange_cookies: bool) -> None:
    """Rebuild the upstream copy's `Cookie` header from the request's cookie-pairs, without the
    gateway's cookie, without Exchange's routing hints unless `session_passed`, and without `cadata*`
    unless `exchange_cookies`; a piece of the header that is not a cookie-pair never goes upstream,
    and one shaped to be read as a pair by some parser is an audit event."""
    cookies = request_cookies(request)
    names = GATEWAY_COOKIE_NAMES if exchange_cookies else GATEWAY_COOKIE_NAMES | CADATA_COOKIE_NAMES
    strip_request_cookies(headers, names, cookies, prefixes=hint_prefixes_to_strip(session_passed=session_passed))
    reason = cookies.audit_reason()
    if reason is not None:
        # One event per request whose header hid a pair or padded a name; never a name or value.
        audit("cookie_dropped", client_ip=ctx.client_ip, reason=reason, pieces=len(cookies.dropped),
              route=ctx.route.value if ctx.route else None)


def upstream_headers(request: web.Request, ctx: RequestContext, *, session_passed: bool,
                     exchange_cookies: bool = True) -> CIMultiDict[str]:
    """The client's headers for Exchange's forms vdirs; `exchange_cookies=False` also drops `cadata*`."""
    headers = client_upstream_headers(request, ctx)
    strip_forwarded_cookies(request, ctx, headers, session_passed=session_passed, exchange_cookies=exchange_cookies)
    # On Exchange's forms vdirs the Exchange session is the bound cadata and nothing else. FbaModule
    # leaves a client's own `Authorization` in place whenever it cannot decrypt the cookies (drop
    # cadataTTL and it gives up), and IIS's Basic authentication on /owa and /ecp then signs in
    # whoever the header names: a passed session of one's own plus another user's password.
    headers.popall("Authorization", None)
    return headers


async def forward_upstream(request: web.Request, ctx: RequestContext, *, session_passed: bool,
                           inspect: ResponseInspector, body: bytes | None = None,
                           long_poll: bool = False, exchange_cookies: bool = True,
                           held: bool = False) -> web.StreamResponse:
    """Forward with the cookie rules applied; an upstream failure becomes the gateway's error page.

    `held` (OWA's notification channel) ends at the start of the shutdown drain: with a 503 when
    Exchange has not answered yet (OWA reopens the channel, on another replica).

    Never over a client connection's NTLM-authenticated upstream connection: IIS would take the
    request as that connection's user wherever Windows authentication is enabled on the vdir.
    """
    headers = upstream_headers(request, ctx, session_passed=session_passed, exchange_cookies=exchange_cookies)
    return await send_upstream(request, ctx, headers, body=body, long_poll=long_poll,
                               inspect=dropping_gateway_cookies(inspect), connection_auth=False,
                               held=(lambda: error_page(request, ctx, 503)) if held else None)


class FlowUpstreamGuard:
    """The cookie rules for the routes the MFA flow does not own (ActiveSync, Windows authentication,
    PowerShell): `gateway.app` calls `prepare` on every request it forwards."""

    def __init__(self, flow: MfaFlow) -> None:
        self._flow = flow

    def prepare(self, request: web.Request, ctx: RequestContext, headers: CIMultiDict[str]) -> ResponseInspector:
        # Exchange's session cookies go only where their binding is checked (owa-app) or where they
        # are ended (logoff): ActiveSync and the Windows-authentication endpoints must authenticate
        # on their own, never ride on a forms session.
        strip_forwarded_cookies(request, ctx, headers, session_passed=False, exchange_cookies=False)
        return dropping_gateway_cookies(cadata_guard(request, ctx, self._flow, session_passed=None))

