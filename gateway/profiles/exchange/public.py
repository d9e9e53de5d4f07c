"""The owa-public route under the MFA flow: Exchange's anonymous pages (`/owa/auth/…`, `/ecp/auth/…`),
the health checks and `/favicon.ico`.

Nothing there needs a session, so nothing of one goes upstream: neither the gateway's cookie nor
Exchange's (`cadata*`), no `Authorization`, and never the client connection's NTLM-authenticated
upstream connection (gateway.profiles.exchange.cookie_rules). An answer that would set up a live Exchange session
is refused like on every route without a checked binding.
"""

from __future__ import annotations

from aiohttp import web

from gateway.core import RequestContext
from gateway.mfa.flow import flow_of
from gateway.profiles.exchange.cookie_rules import cadata_guard, forward_upstream


async def may_continue(request: web.Request, ctx: RequestContext) -> bool:
    return True


async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    flow = flow_of(request)
    return await forward_upstream(request, ctx, session_passed=False, exchange_cookies=False,
                                  inspect=cadata_guard(request, ctx, flow, session_passed=None))
