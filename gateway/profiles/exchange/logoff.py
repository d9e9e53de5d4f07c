"""The owa-logoff route (`/owa/logoff.owa`, `/owa/auth/logoff.aspx`, `/ecp/logoff.aspx`).

Signing out must always work: the gateway session ends (record deleted, cookie expired), and the
request is forwarded so Exchange ends its own session and expires its cookies. A logoff without a
session is forwarded too (Exchange's signed-out page is harmless); whatever Exchange answers,
a live Exchange session never comes back through it.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway.core import RequestContext, UpstreamAnswer
from gateway.mfa.flow import flow_of
from gateway.observability.logging import get_logger
from gateway.policy.cookies import request_cookies
from gateway.profiles.exchange.cookie_rules import cadata_guard, forward_upstream
from gateway.sessions.base import StoreUnavailable

# The logger keeps its name from before the module moved: operators filter on it.
log = get_logger("gateway.owa.logoff")


async def may_continue(request: web.Request, ctx: RequestContext) -> bool:
    return True


async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    flow = flow_of(request)
    presented = flow.cookie.read(request_cookies(request))
    try:
        found = await flow.lookup(request)
    except StoreUnavailable as exc:
        log.warning("logoff_without_store", reason=str(exc))  # the cookie is expired below all the same
    else:
        if found.cookie is not None and found.record is not None:
            await flow.end_session(ctx, found.cookie, found.record, "logoff")
    guard = cadata_guard(request, ctx, flow, session_passed=False)

    async def inspect(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
        replacement = await guard(upstream, client_headers)
        target = replacement.headers if replacement is not None else client_headers
        if presented is not None:
            target.add("Set-Cookie", flow.cookie.expire_header())
        return replacement

    return await forward_upstream(request, ctx, session_passed=False, inspect=inspect)
