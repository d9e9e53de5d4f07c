"""The `passthrough` profile: no sign-in of its own; the site's rules decide every request.

A passthrough site's every request (but `/_gateway/`, the gateway's own on every site) is decided by
the site's rules on the canonical path, the method and the client address: `bypass` forwards through
the streaming forwarder to the site's own upstream (one forwarder and pool per upstream URL, kept by
`gateway.assembly.sites.Sites`), `deny` answers 403, and `one_factor` / `two_factor` (and a rule that
needs to know the user) answer 403 saying sign-in is not available here (a `portal` site signs users
in). Client-sent identity headers, in every spelling, never reach the upstream; nor do the gateway's
own cookies, and the upstream cannot set them.
"""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from gateway.app import error_page, send_upstream, upstream_headers
from gateway.config.model import Action, Site
from gateway.core import RequestContext, Route
from gateway.policy.identity_headers import IdentityHeaders
from gateway.policy.rules import RuleRequest, RuleSet
from gateway.profiles.portal.serve import drop_gateway_set_cookies, strip_gateway_cookies
from gateway.proxy.forwarder import Forwarder
from gateway.proxy.upstream_config import UpstreamConfig

__all__ = ["PASSTHROUGH_LABEL", "SIGN_IN_NOT_AVAILABLE", "passthrough_route", "site_upstream"]

# The access log's and the metrics' route class for a passthrough site's requests.
PASSTHROUGH_LABEL = "passthrough"
# Shown on the 403 of a rule that asks for sign-in (gateway.pages.renderer.SHOWN_REASONS).
SIGN_IN_NOT_AVAILABLE = "sign-in for this site is not available"
# No identity reaches a passthrough upstream from the gateway yet, so every client spelling of one goes.
IDENTITY_HEADERS = IdentityHeaders()


def site_upstream(site: Site, base: UpstreamConfig) -> UpstreamConfig:
    """A passthrough site's upstream: its URL, with the Exchange upstream's limits and TLS settings
    (GATEWAY_UPSTREAM_*); no long polls of Exchange's there, so the plain read timeout throughout."""
    return replace(base, url=site.upstream, long_poll_timeout=base.read_timeout)


def passthrough_route(rules: RuleSet, forwarder: Forwarder) -> Route:
    """Every request of one passthrough site: its rules, then the forwarder or a 403."""

    def decide(request: web.Request, ctx: RequestContext) -> Action | None:
        assert ctx.target is not None
        return rules.decide(RuleRequest(request.method, ctx.target.lower_path, ctx.client_ip)).action

    async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
        action = decide(request, ctx)
        if action is Action.BYPASS:
            headers = upstream_headers(request, ctx)
            IDENTITY_HEADERS.strip(headers)
            strip_gateway_cookies(request, headers)
            return await send_upstream(request, ctx, headers, inspect=drop_gateway_set_cookies, forwarder=forwarder)
        if action is Action.DENY:
            return error_page(request, ctx, 403)
        # one_factor, two_factor, or a rule that needs the user: nobody can sign in here yet.
        return error_page(request, ctx, 403, reason=SIGN_IN_NOT_AVAILABLE)

    async def may_continue(request: web.Request, ctx: RequestContext) -> bool:
        return decide(request, ctx) is Action.BYPASS

    return Route(handle, may_continue=may_continue)
