"""`MfaFlow`: what every part of the OWA second-factor flow shares, and the small steps they all take.

One object per application, built by `gateway.assembly.install_mfa` and kept in
the `AppState` under `FLOW`. It holds the components (store, Monosign client, page renderer, lockout,
push poller) and the few operations every handler needs: find the request's session, end a
session, render a page, write an audit event, answer a Monosign failure.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from aiohttp import web

from gateway.app import site_title
from gateway.core import FeatureKey, RequestContext, SessionScope
from gateway.mfa.config import MfaConfig
from gateway.mfa.csrf import origin_of
from gateway.mfa.decisions import logon_redirect, touch_interval
from gateway.mfa.device_cookie import DeviceCookie
from gateway.mfa.lockout import Attempt, Lockout
from gateway.mfa.poller import PushPoller
from gateway.mfa.request_keys import RequestKeyReader
from gateway.mfa.session_cookie import SessionCookie
from gateway.monosign import (
    InputRefused,
    InvalidApplicationKey,
    MonosignClient,
    MonosignError,
    MonosignUnreachable,
    UserLocked,
    UserNotAssigned,
    UserNotFound,
)
from gateway.observability.audit import audit
from gateway.observability.logging import get_logger
from gateway.pages.renderer import PORTAL_URLS, URLS, PageRenderer
from gateway.policy.cookies import request_cookies
from gateway.policy.owa_responses import LogonReason
from gateway.policy.redirects import safe_destination
from gateway.sessions.base import SessionRecord, SessionState, SessionStore, StoreUnavailable
from gateway.sessions.lifetime import SessionTimeouts
from gateway.settings import FailMode
from gateway.state import STATE, AppState

if TYPE_CHECKING:
    from gateway.observability.metrics import Metrics

log = get_logger("gateway.mfa")

# A pending session (password accepted, second factor not yet passed) lives at most this long:
# pending state is worth little to a user after ten minutes and a lot to an attacker.
PENDING_MAX_SECONDS = 600.0
# Records stay in the store this long after their session ended, so that the request which finds
# it over can say why (a `session_ended` audit event) instead of finding nothing. Never a pass:
# every handler checks the timeouts itself.
ENDED_GRACE_SECONDS = 60.0
# Monosign's MFA methods per user id, remembered from the login's lookup for the MFA page.
_METHODS_TTL = 900.0
_METHODS_MAX = 10_000
_GROUP_READERS_MAX = 64
MFA_PAGE = URLS["mfa"]
SIGN_IN_PAGE = URLS["signin"]
# Where a portal site's user goes when no destination was asked for (Exchange's is /owa/).
PORTAL_DEFAULT_DESTINATION = "/"
# No origin is this: a request whose site origin cannot be told passes no Origin check.
_NO_ORIGIN = "invalid:"


def site_key(ctx: RequestContext) -> str:
    """The request's site as `SessionRecord.site` names it ("": the environment's Exchange site)."""
    return ctx.host_site or ""


class SessionLookup(NamedTuple):
    """A NamedTuple rather than a frozen dataclass: made on every request, at a quarter of the cost."""

    cookie: str | None  # the gateway cookie the request presented (None: none, or ambiguous)
    record: SessionRecord | None


class MfaFlow:
    def __init__(self, state: AppState, *, config: MfaConfig, monosign: MonosignClient, store: SessionStore,
                 session_cookie: SessionCookie, device_cookie: DeviceCookie,
                 clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.config = config
        self.metrics: Metrics = state.metrics
        self.monosign = monosign
        self.store = store
        self.renderer: PageRenderer = state.renderer  # the application's one renderer
        self.clock = clock
        self.cookie = session_cookie  # the host-only one (a session group's: `cookie_in`)
        self.keys = RequestKeyReader(self.cookie)  # session cookie and cadata binding, per Cookie header
        self.timeouts = SessionTimeouts(idle=config.idle_timeout, absolute=config.absolute_timeout)
        self.touch_every = touch_interval(config.idle_timeout)
        self.public_url = config.public_url
        public_origin = origin_of(config.public_url)
        assert public_origin is not None  # the settings accept only http(s) URLs with a host
        self.public_origin = public_origin
        self.lockout = Lockout(store, policy=config.lockout, seconds=config.lockout_seconds,
                               max_pushes=config.max_pushes, clock=clock)
        self.device_cookie = device_cookie
        self.poller = PushPoller(store, monosign, clock=clock)
        self._methods: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()
        # A reader per session group's cookie (a handful; a reload may add some, so bounded).
        self._group_keys: OrderedDict[SessionCookie, RequestKeyReader] = OrderedDict()

    async def aclose(self) -> None:
        await self.poller.aclose()
        await self.monosign.aclose()
        await self.store.aclose()

    # --- sessions ------------------------------------------------------------------------------------
    def scope(self, ctx: RequestContext) -> SessionScope | None:
        """The session group of the site whose host a /_gateway/ request came to (None: none)."""
        site, sites = site_key(ctx), self.state.sites
        return sites.session_scope(site) if site and sites is not None else None

    def cookie_in(self, scope: SessionScope | None) -> SessionCookie:
        """The session cookie of a site in `scope` (None: the host-only cookie)."""
        if scope is None:
            return self.cookie
        return SessionCookie(secure=self.cookie.secure, group=scope.group, domain=scope.cookie_domain)

    def cookie_for(self, ctx: RequestContext) -> SessionCookie:
        """The session cookie a /_gateway/ request's pages read and write: its site's group's, if any."""
        return self.cookie_in(self.scope(ctx))

    def keys_for(self, cookie: SessionCookie) -> RequestKeyReader:
        """The request keys as `cookie` reads them (`keys` for the host-only cookie)."""
        if cookie == self.cookie:
            return self.keys
        reader = self._group_keys.get(cookie)
        if reader is None:
            reader = self._group_keys[cookie] = RequestKeyReader(cookie)
            while len(self._group_keys) > _GROUP_READERS_MAX:
                self._group_keys.popitem(last=False)
        return reader

    async def lookup(self, request: web.Request, cookie: SessionCookie | None = None) -> SessionLookup:
        """The request's gateway session, under `cookie` (default: the host-only one). Raises
        StoreUnavailable (callers fail closed)."""
        value = self.keys_for(cookie or self.cookie).read(request).session_cookie
        if value is None:
            return SessionLookup(None, None)
        return SessionLookup(value, await self.store.load(value))

    async def site_lookup(self, request: web.Request, ctx: RequestContext) -> SessionLookup:
        """`lookup` with the site's cookie, where a session of another site is no session: it signed
        in somewhere else (a portal site's record on another host, a portal record on Exchange's
        host), unless that site is of the same session group."""
        scope = self.scope(ctx)
        found = await self.lookup(request, self.cookie_in(scope))
        sites = scope.sites if scope is not None else frozenset({site_key(ctx)})
        if found.record is not None and found.record.site not in sites:
            return SessionLookup(found.cookie, None)
        return found

    def cached_lookup(self, cookie: str | None) -> SessionLookup | None:
        """`lookup`'s answer for the session cookie `cookie` (`keys.read(request).session_cookie`)
        when the store's in-process cache holds the session (a signed-in browser's requests, without
        an await); None when `lookup` must be asked. The record is the cache's own
        (`SessionStore.cached`): read it, copy it before changing it."""
        if cookie is None:
            return None
        record = self.store.cached(cookie)
        return None if record is None else SessionLookup(cookie, record)

    def remaining(self, record: SessionRecord) -> float:
        """Seconds the session has left (zero or less: it is over)."""
        now = self.clock()
        remaining = self.timeouts.remaining(record, now)
        if record.state is SessionState.PENDING:
            remaining = min(remaining, record.created_at + PENDING_MAX_SECONDS - now)
        return remaining

    def ttl(self, record: SessionRecord) -> float:
        """Store TTL for a record that is not over (see ENDED_GRACE_SECONDS)."""
        return max(self.remaining(record), 0.0) + ENDED_GRACE_SECONDS

    async def end_session(self, ctx: RequestContext, cookie: str, record: SessionRecord | None,
                          reason: str) -> None:
        """Delete the session and say so (audit event, metric). A store failure is logged, not raised:
        the session then ends by its TTL, and the browser loses the cookie anyway."""
        try:
            await self.store.delete(cookie)
        except StoreUnavailable as exc:
            log.warning("session_delete_failed", reason=str(exc))
        if record is not None and record.push_request_id is not None and record.push_expires_at is not None:
            await self.forget_push(record.push_request_id, record.push_expires_at)
        self.metrics.sessions_ended.labels(reason).inc()
        self.audit("session_ended", ctx, record, reason=reason)

    async def forget_push(self, request_id: str, expires_at: float) -> None:
        """Stop polling a push that no session waits for any more (replaced, cancelled, or its session
        ended or passed otherwise): at once on this replica, at their next turn on the others
        (`PushPoller.abandon`). Call it after the session was saved without the push: an approval of
        it then counts for nothing, whatever the pollers do. A store failure is logged, not raised:
        this replica's poller stops anyway, the others at the push's expiry."""
        try:
            await self.poller.abandon(request_id, expires_at)
        except StoreUnavailable as exc:
            log.warning("push_abandon_not_shared", push_request_id=request_id, reason=str(exc))

    def attempt(self, request: web.Request, ctx: RequestContext, record: SessionRecord) -> Attempt:
        """Who is trying the second factor, for the lockout: the user, the address, and the
        browser's familiar-device id when it carries a valid one for this user."""
        device = self.device_cookie.read(request_cookies(request), record.user_id, self.clock())
        return Attempt(record.user_id, ctx.client_ip, device)

    # --- Monosign's view of the user ----------------------------------------------------------------------
    def remember_methods(self, user_id: str, methods: tuple[str, ...]) -> None:
        self._methods[user_id] = (self.clock() + _METHODS_TTL, methods)
        self._methods.move_to_end(user_id)
        while len(self._methods) > _METHODS_MAX:
            self._methods.popitem(last=False)

    async def methods_for(self, record: SessionRecord) -> tuple[str, ...]:
        """The user's MFA methods: remembered from the login, else asked again (another replica
        did the login, or it was a while ago). Raises MonosignError."""
        known = self._methods.get(record.user_id)
        if known is not None and known[0] > self.clock():
            return known[1]
        user = await self.monosign.lookup_user(record.user_name or record.typed_username)
        if user.id != record.user_id:
            raise UserNotFound("the user name now names another Monosign user")
        self.remember_methods(user.id, user.mfa_methods)
        return user.mfa_methods

    def fail_open_allowed(self, error: MonosignError) -> bool:
        """Only an unreachable Monosign (no HTTP answer: a transport failure, or the circuit those
        opened) may let users in, and only when asked for. Any HTTP answer (however odd), a
        configuration error or a refused input never does: a caller can shape those."""
        return self.config.fail_mode is FailMode.OPEN and isinstance(error, MonosignUnreachable)

    # --- answers -------------------------------------------------------------------------------------
    def page(self, request: web.Request, ctx: RequestContext, page: str, *, status: int | None = None,
             **context: Any) -> web.Response:
        rendered = self.renderer.render(page, lang=self.renderer.pick_language(request.headers.get("Accept-Language")),
                                        request_id=ctx.request_id, status=status,
                                        urls=PORTAL_URLS if site_key(ctx) else None,
                                        brand_name=site_title(self.state, ctx), **context)
        return web.Response(status=rendered.status, body=rendered.body, headers=dict(rendered.headers))

    def redirect(self, location: str, *, status: int = 302) -> web.Response:
        return web.Response(status=status, headers={"Location": location, "Cache-Control": "no-store"})

    def to_logon(self, target: str = "/owa/", *, reason: int = LogonReason.NONE, status: int = 302) -> web.Response:
        return self.redirect(logon_redirect(self.public_url, target, reason=reason), status=status)

    def to_sign_in(self, ctx: RequestContext, record: SessionRecord | None = None, *,
                   reason: int = LogonReason.NONE, status: int = 302) -> web.Response:
        """Where a browser without a usable session signs in: Exchange's logon page, or on a portal
        site its own sign-in page, with the session's destination (if any) as `rd`."""
        if not site_key(ctx):
            return self.to_logon(reason=reason, status=status)
        target = self.destination(record) if record is not None else PORTAL_DEFAULT_DESTINATION
        return self.redirect(f"{SIGN_IN_PAGE}?rd={quote(target, safe='')}", status=status)

    def origin(self, request: web.Request, ctx: RequestContext) -> str:
        """The origin the request's own pages are on: the public URL's for Exchange's site; for a
        portal site the public URL's scheme with the request's Host (which site dispatch chose it by)."""
        if not site_key(ctx):
            return self.public_origin
        return origin_of(f"{self.state.public_scheme}://{request.headers.get('Host', '')}") or _NO_ORIGIN

    def destination(self, record: SessionRecord) -> str:
        default = PORTAL_DEFAULT_DESTINATION if record.site else "/owa/"
        return safe_destination(record.destination, default=default, public_origin=self.public_url)

    def allowed_methods(self, record: SessionRecord, methods: tuple[str, ...]) -> tuple[str, ...]:
        """The methods this session may use: the `monosign` first factor has no password, so its
        second step is the push with number matching only (a code alone would be one factor)."""
        if record.first_factor == "monosign":
            return tuple(method for method in methods if method.strip().lower() == "push")
        return methods

    def monosign_failure(self, request: web.Request, ctx: RequestContext, error: MonosignError,
                         record: SessionRecord | None = None, *, user: str | None = None) -> web.Response:
        """The page for a Monosign failure that is not the user's wrong code."""
        if isinstance(error, UserNotFound):
            self.audit("refused", ctx, record, user=user, reason="monosign_user_not_found")
            return self.page(request, ctx, "not-found")
        if isinstance(error, UserNotAssigned):
            self.audit("refused", ctx, record, user=user, reason="monosign_user_not_assigned")
            return self.page(request, ctx, "not-assigned")
        if isinstance(error, UserLocked):
            self.metrics.lockouts.labels("monosign").inc()
            self.audit("lockout", ctx, record, user=user, scope="monosign")
            wait = error.retry_after if error.retry_after is not None else self.lockout.seconds
            return self.page(request, ctx, "locked", retry_after_seconds=wait)
        if isinstance(error, InputRefused):
            self.audit("refused", ctx, record, user=user, reason="monosign_input_refused", field=error.field)
            return self.page(request, ctx, "input-refused")
        if isinstance(error, InvalidApplicationKey):
            # Loud on purpose: every sign-in fails until an operator fixes the key pair.
            log.error("monosign_configuration_error", monosign_code=error.code, hint=error.operator_hint,
                      detail=error.detail)
            self.audit("refused", ctx, record, user=user, reason="monosign_configuration_error")
            return self.page(request, ctx, "config-error")
        if isinstance(error, MonosignUnreachable):
            self.audit("refused", ctx, record, user=user, reason="monosign_unreachable")
            retry = getattr(error, "retry_in", None)
            return self.page(request, ctx, "unavailable", retry_after_seconds=retry if retry else None)
        log.error("monosign_unexpected_answer", hint=error.operator_hint, detail=error.detail)
        self.audit("refused", ctx, record, user=user, reason="monosign_unexpected_answer")
        return self.page(request, ctx, "unavailable")

    def store_unavailable(self, request: web.Request, ctx: RequestContext, error: StoreUnavailable) -> web.Response:
        """The session store is down: sign-in itself is unavailable, whatever the second factor's state."""
        log.error("session_store_unavailable", reason=str(error))
        self.audit("refused", ctx, reason="session_store_unavailable")
        return self.page(request, ctx, "store-unavailable")

    def audit(self, event: str, ctx: RequestContext, record: SessionRecord | None = None, *,
              user: str | None = None, **fields: Any) -> None:
        """One audit event with who and from where (never a cookie, code or password)."""
        if record is not None:
            fields.setdefault("monosign_user_id", record.user_id or None)
            user = user or record.typed_username or None
        if event == "refused":
            self.metrics.refusals.labels(str(fields.get("reason"))).inc()
        audit(event, client_ip=ctx.client_ip, user=user, **fields)


# The flow's place in AppState.
FLOW = FeatureKey("mfa_flow", MfaFlow)


def flow_of(request: web.Request) -> MfaFlow:
    return request.app[STATE].feature(FLOW)

