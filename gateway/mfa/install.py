"""Wire the OWA second-factor flow into an application's state, in one place.

    install_mfa(state, monosign=MonosignClient.from_settings(settings), store=build_store(settings))

replaces the fail-closed stand-ins of the owa-login, owa-logoff and owa-app routes and the plain
forwarding of owa-public (gateway.owa.public), adds the MFA pages (rendered by the application's own
`state.renderer`, whose static files `build_state` already serves), applies the cookie rules to
every other forwarded route, adds the `store` (critical) and `monosign` (informational) readiness
checks and the Monosign metrics, and closes it all at shutdown.
"""

from __future__ import annotations

from gateway.app import AppState, Route
from gateway.mfa import handlers
from gateway.mfa.flow import FLOW, MfaFlow
from gateway.monosign import MonosignClient
from gateway.monosign.metrics import register_monosign_metrics
from gateway.owa import guard, login, logoff, public
from gateway.owa.upstream import FlowUpstreamGuard
from gateway.policy.routes import RouteClass
from gateway.sessions.base import SessionStore


def install_mfa(state: AppState, *, monosign: MonosignClient, store: SessionStore) -> MfaFlow:
    """Install the flow; the returned object is also kept in `state.extra["mfa_flow"]`."""
    flow = MfaFlow(state, monosign=monosign, store=store)
    state.extra[FLOW] = flow
    state.routes[RouteClass.OWA_LOGIN] = Route(login.handle, may_continue=login.may_continue)
    state.routes[RouteClass.OWA_LOGOFF] = Route(logoff.handle, may_continue=logoff.may_continue)
    state.routes[RouteClass.OWA_APP] = Route(guard.handle, may_continue=guard.may_continue)
    state.routes[RouteClass.OWA_PUBLIC] = Route(public.handle, may_continue=public.may_continue)
    state.upstream_guard = FlowUpstreamGuard(flow)

    pages = state.pages
    pages.add("GET", "/_gateway/mfa", handlers.show)
    pages.add("POST", "/_gateway/mfa/verify", handlers.verify)
    pages.add("POST", "/_gateway/mfa/push", handlers.push)
    pages.add("POST", "/_gateway/mfa/cancel", handlers.cancel)
    pages.add("GET", "/_gateway/mfa/status", handlers.status)
    pages.add("GET", "/_gateway/mfa/complete", handlers.complete)

    # Informational: Monosign is shared by every replica, so draining this one for it would drain
    # them all; users get the "unavailable" page (or fail-open) instead (observability.readiness).
    state.readiness.add("monosign", monosign.readiness_check, critical=False)
    state.readiness.add("store", store.readiness_problem)
    register_monosign_metrics(monosign, state.metrics.registry)
    state.closers.append(flow.aclose)
    return flow


def install_mfa_from_settings(state: AppState) -> MfaFlow:
    """`install_mfa` with the Monosign client and store the settings describe."""
    from gateway.sessions.factory import build_store

    settings = state.settings
    return install_mfa(state, monosign=MonosignClient.from_settings(settings), store=build_store(settings))
