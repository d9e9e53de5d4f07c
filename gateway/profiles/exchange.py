"""The exchange profile: Exchange's route classes, the handlers that serve them, and the choice
between those handlers for each request of the site.

- classify: `gateway.policy.routes.classify` (the design's route table);
- handlers: `exchange_routes` (the bare proxy's, the MFA-guarded classes refusing, fail closed) and
  `exchange_mfa_routes` (under the MFA flow); the non-browser classes' come from
  `gateway.proxy.client_routes`;
- what to inspect on the way back: the MFA flow's upstream guard (gateway.owa.cookie_rules),
  installed with the flow by `gateway.assembly.install_mfa`.

The pipeline (gateway.app) names none of this: it asks `AppState.profile`.
"""

from __future__ import annotations

from aiohttp import web

from gateway.app import deny, error_page, forward, not_found
from gateway.core import RequestContext, Route, always
from gateway.owa import guard, login, logoff, public
from gateway.policy.paths import Target
from gateway.policy.routes import RouteClass, classify, wants_navigation
from gateway.settings import RoutePolicy, Settings
from gateway.state import STATE

__all__ = ["ExchangeProfile", "exchange_mfa_routes", "exchange_routes", "redirect_to_owa", "refuse_without_mfa"]


async def redirect_to_owa(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    # A relative Location: never built from the request's Host.
    return web.Response(status=302, headers={"Location": "/owa/", "Cache-Control": "no-store"})


async def refuse_without_mfa(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Stand-in for the MFA flow: fail closed. Navigations get a page, everything else 440."""
    if wants_navigation(request.method, request.headers):
        return error_page(request, ctx, 403, kind="mfa-not-configured")
    return error_page(request, ctx, 440)


def exchange_routes(settings: Settings) -> dict[RouteClass, Route]:
    """The handlers by route class of the bare proxy: the MFA-guarded classes refuse until
    `exchange_mfa_routes` replaces them, the non-browser classes until their client routes do."""
    mfa_guarded = Route(refuse_without_mfa)
    return {
        RouteClass.OWA_PUBLIC: Route(forward, may_continue=always),
        RouteClass.OWA_LOGIN: mfa_guarded,
        RouteClass.OWA_LOGOFF: mfa_guarded,
        RouteClass.OWA_APP: mfa_guarded,
        RouteClass.ACTIVESYNC: Route(deny),
        RouteClass.WINDOWS_AUTH: Route(deny),
        RouteClass.POWERSHELL: Route(deny),
        RouteClass.ROOT: Route(redirect_to_owa),
        RouteClass.OTHER: Route(not_found),
    }


def exchange_mfa_routes() -> dict[RouteClass, Route]:
    """The exchange profile's routes under the MFA flow."""
    return {
        RouteClass.OWA_LOGIN: Route(login.handle, may_continue=login.may_continue),
        RouteClass.OWA_LOGOFF: Route(logoff.handle, may_continue=logoff.may_continue),
        RouteClass.OWA_APP: Route(guard.handle, may_continue=guard.may_continue),
        RouteClass.OWA_PUBLIC: Route(public.handle, may_continue=public.may_continue),
    }


_DENIED = Route(deny)


def _under_ecp(target: Target | None) -> bool:
    if target is None:
        return False
    path = target.lower_path
    return path == "/ecp" or path.startswith("/ecp/")


class ExchangeProfile:
    """The `SiteProfile` of an Exchange site."""

    name = "exchange"

    def __init__(self, settings: Settings) -> None:
        self._ecp_denied = settings.gateway_policy_ecp is not RoutePolicy.ALLOW

    def classify(self, method: str, target: Target) -> RouteClass:
        return classify(method, target)

    def route(self, request: web.Request, ctx: RequestContext) -> Route:
        assert ctx.route is not None
        if self._ecp_denied and _under_ecp(ctx.target):
            return _DENIED  # every /ecp path, whatever its class
        return request.app[STATE].routes[ctx.route]
