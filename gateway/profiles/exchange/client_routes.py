"""The non-browser route classes: ActiveSync, Windows authentication (EWS, MAPI, RPC, OAB,
Autodiscover) and PowerShell, each under its site's rules, its read timeout and pinning.

These clients never see the MFA page, so the site's rules decide per class: allow (`bypass`, or
`pinned`: over the client connection's own upstream connection), deny, only from some networks,
only some users (`gateway.policy.clients.decide_by_rules`; the environment's rules are the
GATEWAY_POLICY_* settings, gateway.config.exchange). The user is read from Basic or from
the NTLM authenticate message; on a pinned connection, from the leg that authenticated it. Under a
user list, a credential whose user cannot be read is refused without reaching Exchange; a request
that names nobody yet (no credential, or NTLM leg 1) is forwarded without its body, only to fetch
the challenge: any answer but 401 becomes 403. Every decision is an audit event; on a pinned connection an allow is
audited once per user rather than for each of its (many) requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import Counter, Gauge

from gateway.app import error_page, forward
from gateway.config.exchange import Serving, serving
from gateway.core import ContinueCheck, Handler, RequestContext, ResponseInspector, Route, UpstreamAnswer
from gateway.observability.audit import audit
from gateway.policy.clients import (
    PING_NO_CHANGES,
    WBXML_CONTENT_TYPE,
    ActiveSyncDevice,
    AuthScheme,
    ClientCredential,
    ClientPolicy,
    PolicyDecision,
    PolicyOutcome,
    activesync_device,
    decide_by_rules,
    is_held_command,
    parse_authorization,
)
from gateway.policy.cookies import request_cookies
from gateway.policy.explicit_logon import autodiscover_path_confusion
from gateway.policy.routes import RouteClass
from gateway.policy.rules import RuleRequest
from gateway.settings import RoutePolicy, Settings
from gateway.state import STATE, AppState

if TYPE_CHECKING:
    from gateway.policy.users import UserName

__all__ = ["ClientClass", "client_classes", "install_client_routes"]

AUDIT_EVENT = "client_policy"


@dataclass(frozen=True, slots=True)
class ClientClass:
    """One non-browser route class. The site's rules decide who may use it; `policy` is the
    GATEWAY_POLICY_* settings' own reading, which the environment's rules are written from (tests
    hold the two to deciding alike), and serves nothing any more."""

    route: RouteClass
    policy: ClientPolicy
    read_timeout: float
    pinned: bool  # always over the client connection's own upstream connection (else: when a rule says `pinned`)


def client_classes(settings: Settings) -> dict[RouteClass, ClientClass]:
    def policy(mode: RoutePolicy, networks: list[str], users: list[str]) -> ClientPolicy:
        return ClientPolicy.build(allow=mode is RoutePolicy.ALLOW, networks=networks, users=users)

    return {
        RouteClass.ACTIVESYNC: ClientClass(
            RouteClass.ACTIVESYNC,
            policy(settings.gateway_policy_activesync, settings.gateway_policy_activesync_networks,
                   settings.gateway_policy_activesync_users),
            settings.gateway_timeout_activesync, pinned=False),
        RouteClass.WINDOWS_AUTH: ClientClass(
            RouteClass.WINDOWS_AUTH,
            policy(settings.gateway_policy_windows_auth, settings.gateway_policy_windows_auth_networks,
                   settings.gateway_policy_windows_auth_users),
            settings.gateway_timeout_windows_auth, pinned=True),
        RouteClass.POWERSHELL: ClientClass(
            RouteClass.POWERSHELL,
            policy(settings.gateway_policy_powershell, settings.gateway_policy_powershell_networks,
                   settings.gateway_policy_powershell_users),
            settings.gateway_timeout_windows_auth, pinned=True),
    }


def install_client_routes(state: AppState) -> None:
    """Replace the fail-closed stand-ins of the three classes with their policy-aware handlers,
    and add their metrics: decisions by class and outcome, pinned connections open."""
    decisions = Counter("gateway_client_policy_decisions_total",
                        "Non-browser client policy decisions, by route class and outcome.",
                        ("route_class", "outcome"), registry=state.metrics.registry)
    pinned = Gauge("gateway_pinned_connections",
                   "Client connections with an upstream connection of their own (NTLM/Negotiate).",
                   registry=state.metrics.registry)
    pinned.set_function(lambda: state.forwarder.pins.upstream_connections if state.forwarder.pins else 0)
    for client_class in client_classes(state.settings).values():
        state.routes[client_class.route] = Route(_handler(client_class, decisions),
                                                 may_continue=_may_continue(client_class))


def _decision(request: web.Request, ctx: RequestContext, client_class: ClientClass
              ) -> tuple[PolicyDecision, ClientCredential, UserName | None]:
    state = request.app[STATE]
    pins = state.forwarder.pins
    credential = parse_authorization(request.headers.getall("Authorization", ()))
    connection_user = pins.connection_user(request) if pins is not None else None
    assert ctx.target is not None
    decision = decide_by_rules(state.site_rules, RuleRequest(request.method, ctx.target.lower_path, ctx.client_ip,
                                                             client_class.route),
                               credential=credential, connection_user=connection_user,
                               connection_authenticated=pins is not None and pins.connection_authenticated(request))
    return decision, credential, connection_user


def _pinned(client_class: ClientClass, decision: PolicyDecision) -> bool:
    return client_class.pinned or serving(client_class.route, decision.action) is Serving.CLIENT_PINNED


def _may_continue(client_class: ClientClass) -> ContinueCheck:
    async def may_continue(request: web.Request, ctx: RequestContext) -> bool:
        return _decision(request, ctx, client_class)[0].allowed

    return may_continue


def _handler(client_class: ClientClass, decisions: Counter) -> Handler:
    async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
        if ctx.target is not None and autodiscover_path_confusion(
                ctx.target, request_cookies(request).values("email"), request.headers.get("Content-Type")):
            # Exchange would serve another endpoint than the one decided on here (ProxyShell).
            decisions.labels(client_class.route.value, PolicyOutcome.DENY.value).inc()
            audit(AUDIT_EVENT, route_class=client_class.route.value, outcome=PolicyOutcome.DENY.value,
                  reason="autodiscover path confusion", client_ip=ctx.client_ip, method=request.method,
                  path=ctx.target.path)
            return _refusal(request, ctx)
        decision, credential, connection_user = _decision(request, ctx, client_class)
        decisions.labels(client_class.route.value, decision.outcome.value).inc()
        device = activesync_device(ctx.target.query if ctx.target else "") \
            if client_class.route is RouteClass.ACTIVESYNC else None
        _audit(request, ctx, client_class, decision, credential, connection_user, device)
        if not decision.allowed:
            response = _refusal(request, ctx)
            pins = request.app[STATE].forwarder.pins
            if pins is not None and pins.is_pinned(request):
                response.force_close()  # the connection's authenticated user is not allowed here
            return response
        held = _ping_without_changes if device is not None and is_held_command(device) else None
        if decision.outcome is PolicyOutcome.CHALLENGE_ONLY:
            # Only the challenge is wanted: the body stays here (aiohttp reads and drops it after
            # the answer, so the connection and its handshake carry on), Exchange gets none.
            return await forward(request, ctx, read_timeout=client_class.read_timeout,
                                 pin=_pinned(client_class, decision), inspect=_challenge_only(request, ctx),
                                 body=b"" if request.body_exists else None, held=held)
        return await forward(request, ctx, read_timeout=client_class.read_timeout, pin=_pinned(client_class, decision),
                             held=held)

    return handle


def _ping_without_changes() -> web.Response:
    """A held Ping at the start of the shutdown drain: "nothing changed", and the phone pings again,
    on another replica (any change meanwhile is reported by that Ping)."""
    return web.Response(body=PING_NO_CHANGES, content_type=WBXML_CONTENT_TYPE)


def _refusal(request: web.Request, ctx: RequestContext) -> web.Response:
    return error_page(request, ctx, 403)


def _challenge_only(request: web.Request, ctx: RequestContext) -> ResponseInspector:
    """Pass the upstream's 401 challenge; anything else went further than a nameless client may."""

    async def inspect(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
        if upstream.status == 401:
            return None
        audit(AUDIT_EVENT, outcome=PolicyOutcome.DENY.value, reason="answer beyond the challenge",
              route_class=ctx.route.value if ctx.route else None, client_ip=ctx.client_ip,
              upstream_status=upstream.status)
        return _refusal(request, ctx)

    return inspect


def _audit(request: web.Request, ctx: RequestContext, client_class: ClientClass, decision: PolicyDecision,
           credential: ClientCredential, connection_user: UserName | None, device: ActiveSyncDevice | None) -> None:
    user = credential.user if credential.user is not None else (
        connection_user if credential.scheme is AuthScheme.NONE else None)
    pinned = request.app[STATE].forwarder.pins
    state = pinned.get(request) if pinned is not None else None
    if state is not None and decision.outcome is PolicyOutcome.ALLOW:
        key = (client_class.route.value, decision.reason, user.typed if user else "")
        if key in state.audited:
            return  # this connection's allow for this user is on record already
        state.audited.add(key)
    fields: dict[str, object] = {
        "route_class": client_class.route.value,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "client_ip": ctx.client_ip,
        "user": user.typed if user else None,
        "auth_scheme": credential.scheme.value,
        "method": request.method,
        "path": ctx.target.path if ctx.target else None,
    }
    if credential.workstation:
        fields["workstation"] = credential.workstation
    if device is not None:
        fields.update(device_id=device.device_id, device_type=device.device_type, command=device.command)
    audit(AUDIT_EVENT, **fields)
