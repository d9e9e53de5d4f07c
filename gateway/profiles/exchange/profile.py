"""The exchange profile: Exchange's route classes, the handlers that serve them, and the choice
between those handlers for each request of the site, by the site's rules.

- classify: `gateway.policy.routes.classify` (the design's route table);
- handlers: `exchange_routes` (the bare proxy's, the MFA-guarded classes refusing, fail closed) and
  `exchange_mfa_routes` (under the MFA flow); the non-browser classes' come from
  `gateway.profiles.exchange.client_routes`;
- the choice: the site's compiled rules (`AppState.site_rules`) give the action for the request and
  its route class, and `gateway.config.exchange.SERVING` maps (route class, action) to how it is
  served: refused (403; 404 on `other`), Exchange's public pages' handler, the root's redirect,
  the MFA-guarded handlers. The non-browser classes go to their handler, which decides with the
  same rules and the user their credential names (`gateway.policy.clients.decide_by_rules`);
- what to inspect on the way back: the MFA flow's upstream guard (gateway.profiles.exchange.cookie_rules),
  installed with the flow by `gateway.assembly.install_mfa`.

The pipeline (gateway.app) names none of this: it asks `AppState.profile`.
"""

from __future__ import annotations

from aiohttp import web

from gateway.app import deny, error_page, forward, not_found
from gateway.config.exchange import CLIENT_CLASSES, Serving, serving
from gateway.core import RequestContext, Route, always
from gateway.policy.paths import Target
from gateway.policy.routes import RouteClass, classify, wants_navigation
from gateway.policy.rules import RuleRequest
from gateway.profiles.exchange import guard, login, logoff, public
from gateway.settings import Settings
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


_FORBIDDEN = Route(deny)
_NOT_FOUND = Route(not_found)
# The class whose handler serves each way of serving a browser request.
_HANDLED_BY = {
    Serving.PUBLIC: RouteClass.OWA_PUBLIC,
    Serving.REDIRECT: RouteClass.ROOT,
    Serving.SIGN_IN: RouteClass.OWA_LOGIN,
    Serving.SIGN_OUT: RouteClass.OWA_LOGOFF,
    Serving.SECOND_FACTOR: RouteClass.OWA_APP,
}


def handler_for(routes: dict[RouteClass, Route], route_class: RouteClass, how: Serving) -> Route:
    """The handler that serves a request of `route_class` as `how` says, from the handlers by class."""
    if route_class in CLIENT_CLASSES:
        return routes[route_class]  # it decides itself, with the user the credential names
    if how is Serving.REFUSED:
        return _NOT_FOUND if route_class is RouteClass.OTHER else _FORBIDDEN
    handled_by = _HANDLED_BY.get(how)
    return routes[handled_by] if handled_by is not None else _FORBIDDEN


class ExchangeProfile:
    """The `SiteProfile` of an Exchange site."""

    name = "exchange"

    def __init__(self, settings: Settings) -> None:
        del settings  # everything it decides by is the site's rules (AppState.site_rules)

    def classify(self, method: str, target: Target) -> RouteClass:
        return classify(method, target)

    def route(self, request: web.Request, ctx: RequestContext) -> Route:
        route_class = ctx.route
        assert route_class is not None
        assert ctx.target is not None
        state = request.app[STATE]
        if route_class in CLIENT_CLASSES:
            return state.routes[route_class]
        decision = state.site_rules.decide(RuleRequest(request.method, ctx.target.lower_path, ctx.client_ip,
                                                       route_class))
        return handler_for(state.routes, route_class, serving(route_class, decision.action))
