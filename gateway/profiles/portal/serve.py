"""Serving a portal site: its rules, the session, the identity handed upstream.

Each request of a portal site (but `/_gateway/`, the gateway's own on every site) is decided by the
site's compiled rules on the canonical path, the method and the client address:

- `bypass`: forwarded with no identity: every client spelling of the identity headers and of the
  assertion header is removed (gateway.policy.identity_headers) and none is set;
- `deny`: 403;
- `one_factor`: needs a session of this site whose first factor passed (pending, or passed);
  `two_factor`: a passed one (complete, or exempt). A rule with `users:` / `groups:` is decided
  again with the session's user. Without such a session a browser navigation is sent to
  `/_gateway/signin?rd=<path and query>` (a relative Location), anything else gets 401 with
  `WWW-Authenticate` naming the sign-in URL (not Exchange's 440).

A passed request gets the site's identity headers and, when the site enables it, the signed assertion
(`X-Monosign-Assertion`). A token is signed once per session and reused for half its life, so the
data path does not sign on every request (`AssertionCache`). Sessions are found, timed out and
touched as Exchange's guard does (gateway.profiles.exchange.guard): a cached session costs no store round trip,
activity is written at most every `touch_interval`.

The gateway's own cookies (session, familiar device, and any `msgw-*` cookie such as the sign-in's;
a session group's `__Secure-msgw-group-*` too) never reach the upstream, and an upstream cannot set
one (its `Set-Cookie` for them is dropped).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict

from gateway.app import error_page, send_upstream, upstream_headers
from gateway.assertion import ASSERTION_LIFETIME, AssertionSigner
from gateway.config.model import Action, GatewayConfig, Site
from gateway.core import RequestContext, Route, SessionScope, UpstreamAnswer
from gateway.mfa.decisions import needs_touch
from gateway.mfa.flow import FLOW, PENDING_MAX_SECONDS, MfaFlow
from gateway.mfa.session_cookie import (
    GATEWAY_COOKIE_NAMES,
    GATEWAY_COOKIE_PREFIXES,
    SessionCookie,
    is_gateway_cookie,
    strip_request_cookies,
)
from gateway.policy.cookies import request_cookies
from gateway.policy.identity_headers import ASSERTION_HEADER, IdentityHeaderNames, IdentityHeaders
from gateway.policy.routes import wants_page
from gateway.policy.rules import Decision, RuleRequest, RuleSet
from gateway.policy.sites import SiteIndex
from gateway.profiles.portal.access import PortalAccess, amr, claims, identity, opens, portal_access
from gateway.proxy.forwarder import Forwarder
from gateway.sessions.base import SessionRecord, StoreUnavailable
from gateway.state import AppState

__all__ = ["PORTAL_LABEL", "SIGN_IN_PATH", "AssertionCache", "PortalSite", "PortalSites", "SessionCheck",
           "check_session", "drop_gateway_set_cookies", "record_activity", "sign_in_location",
           "strip_gateway_cookies"]

# The access log's and the metrics' route class for a portal site's requests.
PORTAL_LABEL = "portal"
SIGN_IN_PATH = "/_gateway/signin"
# A signed assertion is handed out again for this long (of its 60 s): an upstream always gets one
# with at least half its life left, and a busy session costs one signature per half minute.
TOKEN_REUSE_SECONDS = ASSERTION_LIFETIME / 2
TOKEN_CACHE_ENTRIES = 10_000
# Every site strips these whatever its own names are: the defaults are what applications read first.
_DEFAULT_NAMES = IdentityHeaderNames()


def sign_in_location(target: str) -> str:
    """The sign-in page's relative URL for a refused request to `target` (its path and query)."""
    return f"{SIGN_IN_PATH}?rd={quote(target, safe='/')}"


def strip_gateway_cookies(request: web.Request, headers: CIMultiDict[str]) -> None:
    """The gateway's cookies out of the upstream request headers (a copy of `request`'s)."""
    strip_request_cookies(headers, GATEWAY_COOKIE_NAMES, request_cookies(request), prefixes=GATEWAY_COOKIE_PREFIXES)


def _gateway_cookie(set_cookie: str) -> bool:
    # The name as a browser reads a Set-Cookie (RFC 6265 5.2): up to the first `=`, white space trimmed.
    return is_gateway_cookie(set_cookie.partition(";")[0].partition("=")[0].strip(" \t"))


async def drop_gateway_set_cookies(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> None:
    """An upstream never sets (or fixes) one of the gateway's cookies in the browser."""
    if "Set-Cookie" not in client_headers:
        return
    values = client_headers.popall("Set-Cookie")
    for value in values:
        if not _gateway_cookie(value):
            client_headers.add("Set-Cookie", value)


class AssertionCache:
    """Signed assertions per session, reused for `reuse` seconds (bounded; least recently used go first).

    Keyed by the session's cookie and the record's version: any change to the stored session (a new
    state, activity written) signs a new one."""

    def __init__(self, signer: AssertionSigner, *, reuse: float = TOKEN_REUSE_SECONDS,
                 max_entries: int = TOKEN_CACHE_ENTRIES) -> None:
        self.signer = signer
        self._reuse = reuse
        self._max_entries = max_entries
        self._tokens: OrderedDict[str, tuple[int, float, str]] = OrderedDict()

    def token(self, cookie: str, record: SessionRecord, now: float) -> str:
        known = self._tokens.get(cookie)
        if known is not None and known[0] == record.version and now - known[1] < self._reuse:
            self._tokens.move_to_end(cookie)
            return known[2]
        token = self.signer.assertion(subject=record.user_id, claims=claims(record), factors=amr(record), now=now)
        self._tokens[cookie] = (record.version, now, token)
        self._tokens.move_to_end(cookie)
        while len(self._tokens) > self._max_entries:
            self._tokens.popitem(last=False)
        return token


@dataclass(frozen=True, slots=True)
class PortalSite:
    """One site as the portal (and forward auth) serve it."""

    site: Site
    rules: RuleSet
    headers: IdentityHeaders
    sessions_from: frozenset[str]  # the sites whose sessions count here: this one and its group's
    tokens: AssertionCache | None
    cookie: SessionCookie  # the session cookie its hosts read: host-only, or its session group's
    scope: SessionScope | None  # its session group (None: its sessions are its own)

    def decide(self, request: web.Request, ctx: RequestContext) -> Decision:
        assert ctx.target is not None
        return self.rules.decide(RuleRequest(request.method, ctx.target.lower_path, ctx.client_ip))

    def upstream_identity(self, check: SessionCheck, now: float) -> list[tuple[str, str]]:
        """The headers a passed session's request carries: identity, then the assertion."""
        assert check.record is not None
        assert check.cookie is not None
        values = self.headers.values(claims(check.record))
        if self.tokens is not None:
            values.append((ASSERTION_HEADER, self.tokens.token(check.cookie, check.record, now)))
        return values


def session_scope(site: Site, config: GatewayConfig) -> SessionScope | None:
    """The session group `site` is in, as the sign-in and the cookie see it (None: no group)."""
    if site.session_group is None:
        return None
    group = next(group for group in config.session_groups if group.name == site.session_group)
    members = frozenset(other.name for other in config.sites if other.session_group == group.name)
    return SessionScope(group.name, group.cookie_domain, members)


def _portal_site(site: Site, rules: RuleSet, config: GatewayConfig, issuer: str, secure: bool) -> PortalSite:
    names = site.identity_header_names
    stripped = tuple(dict.fromkeys((ASSERTION_HEADER, *_DEFAULT_NAMES.all())))
    scope = session_scope(site, config)
    sessions_from = scope.sites if scope is not None else frozenset({site.name})
    cookie = SessionCookie(secure=secure) if scope is None else \
        SessionCookie(secure=secure, group=scope.group, domain=scope.cookie_domain)
    keys = site.assertion.keys if site.assertion is not None else None
    tokens = AssertionCache(AssertionSigner(keys, issuer=issuer, audience=site.name)) if keys is not None else None
    return PortalSite(site, rules, IdentityHeaders(names, extra_stripped=stripped), sessions_from, tokens, cookie,
                      scope)


class SessionCheck(NamedTuple):
    cookie: str | None
    record: SessionRecord | None
    access: PortalAccess


async def check_session(flow: MfaFlow, request: web.Request, portal: PortalSite, now: float) -> SessionCheck:
    """The request's session as `portal` sees it. Raises StoreUnavailable (callers fail closed)."""
    cookie = flow.keys_for(portal.cookie).read(request).session_cookie
    found = flow.cached_lookup(cookie)
    if found is None:
        found = await flow.lookup(request, portal.cookie)
    access = portal_access(found.record, sites=portal.sessions_from, now=now, timeouts=flow.timeouts,
                           pending_max=PENDING_MAX_SECONDS)
    return SessionCheck(found.cookie, found.record, access)


async def record_activity(flow: MfaFlow, check: SessionCheck, now: float) -> None:
    """Write the session's last activity, at most every `touch_every` (raises StoreUnavailable). On a
    copy: the record may be the session cache's own. A lost compare-and-set: another request did it."""
    record = check.record
    if check.cookie is None or record is None or not needs_touch(record, now, flow.touch_every):
        return
    touched = record.copy()
    touched.last_activity = now
    await flow.store.save(check.cookie, touched, flow.ttl(touched))


def _decide_again(portal: PortalSite, request: web.Request, ctx: RequestContext, decision: Decision,
                  check: SessionCheck) -> Action | None:
    """The action for a session that may open something: rules with a subject are decided with its user."""
    if not decision.needs_identity:
        return decision.action
    if check.access not in (PortalAccess.PASSED, PortalAccess.FIRST_FACTOR) or check.record is None:
        return None
    who = identity(check.record)
    if who is None:
        return Action.DENY
    assert ctx.target is not None
    return portal.rules.decide(RuleRequest(request.method, ctx.target.lower_path, ctx.client_ip,
                                           identity=who)).action


class PortalSites:
    """Every site of one configuration, as the portal and forward auth see it; built with each
    configuration (`gateway.assembly.sites.Sites`), so a reload swaps it whole."""

    def __init__(self, index: SiteIndex, state: AppState) -> None:
        self.index = index
        try:
            self.flow: MfaFlow | None = state.feature(FLOW)
        except KeyError:
            self.flow = None  # no second factor installed: nobody signs in, every session rule refuses
        self.issuer = issuer = state.settings.gateway_public_url
        secure = state.settings.public_is_https
        self._sites: Mapping[str, PortalSite] = {
            site.name: _portal_site(site, index.rules(site), index.config, issuer, secure)
            for site in index.config.sites}

    def site(self, name: str) -> PortalSite:
        return self._sites[name]

    def scope(self, name: str) -> SessionScope | None:
        """The session group of the site called `name` (None: none, or no such site)."""
        portal = self._sites.get(name)
        return portal.scope if portal is not None else None

    def signers(self) -> list[AssertionSigner]:
        return [portal.tokens.signer for portal in self._sites.values() if portal.tokens is not None]

    def route(self, site: Site, forwarder: Forwarder) -> Route:
        return portal_route(self._sites[site.name], forwarder, self.flow)


def portal_route(portal: PortalSite, forwarder: Forwarder, flow: MfaFlow | None) -> Route:
    """Every request of one portal site: its rules, the session, then the forwarder or a refusal."""

    async def forward(request: web.Request, ctx: RequestContext, identity_headers: list[tuple[str, str]] | None
                      ) -> web.StreamResponse:
        headers = upstream_headers(request, ctx)
        strip_gateway_cookies(request, headers)
        portal.headers.strip(headers)
        for name, value in identity_headers or ():
            headers[name] = value
        return await send_upstream(request, ctx, headers, inspect=drop_gateway_set_cookies, forwarder=forwarder)

    async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
        decision = portal.decide(request, ctx)
        if decision.action is Action.BYPASS:
            return await forward(request, ctx, None)
        if decision.action is Action.DENY or flow is None:
            return error_page(request, ctx, 403)
        now = flow.clock()
        try:
            check = await check_session(flow, request, portal, now)
        except StoreUnavailable as exc:
            return flow.store_unavailable(request, ctx, exc)
        if check.access.ends_session and check.cookie is not None:
            await flow.end_session(ctx, check.cookie, check.record, check.access.value)
        action = _decide_again(portal, request, ctx, decision, check)
        if action is Action.BYPASS:
            return await forward(request, ctx, None)
        if action is Action.DENY:
            return error_page(request, ctx, 403)
        if action is not None and opens(action, check.access):
            try:
                await record_activity(flow, check, now)
            except StoreUnavailable as exc:
                return flow.store_unavailable(request, ctx, exc)
            return await forward(request, ctx, portal.upstream_identity(check, now))
        response = sign_in_refusal(request, ctx)
        if check.access.ends_session:
            response.headers.add("Set-Cookie", portal.cookie.expire_header())
        return response

    async def may_continue(request: web.Request, ctx: RequestContext) -> bool:
        """`100 Continue` only for a request that will be forwarded: never invite a body we refuse."""
        decision = portal.decide(request, ctx)
        if decision.action is Action.BYPASS:
            return True
        if decision.action is Action.DENY or flow is None:
            return False
        try:
            check = await check_session(flow, request, portal, flow.clock())
        except StoreUnavailable:
            return False
        action = _decide_again(portal, request, ctx, decision, check)
        return action is Action.BYPASS or (action is not None and opens(action, check.access))

    return Route(handle, may_continue=may_continue)


def sign_in_refusal(request: web.Request, ctx: RequestContext) -> web.Response:
    """No session that opens this: a navigation goes to the sign-in page (and comes back to the same
    path and query), anything else gets 401 naming it."""
    assert ctx.target is not None
    location = sign_in_location(ctx.target.forward)
    if wants_page(request.method, request.headers):
        return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
    response = error_page(request, ctx, 401)
    response.headers["WWW-Authenticate"] = www_authenticate(location)
    response.headers["Cache-Control"] = "no-store"
    return response


def www_authenticate(sign_in_url: str) -> str:
    """A challenge that names where to sign in (no HTTP authentication scheme fits a form sign-in)."""
    return f'MonosignGateway realm="gateway", sign_in="{sign_in_url}"'
