"""A portal site's sign-in: `GET`/`POST /_gateway/signin` and `GET`/`POST /_gateway/signout`.

The contract (docs/sites.md, "The portal profile"): `GET /_gateway/signin?rd=<same-origin path>`
shows the form, which posts `username`, `password` (no password for the `monosign` first factor) and
`csrf_token` to `/_gateway/signin?rd=...`. Only on a portal site's hosts: anywhere else, 404.

A post must come from the site's own page: `Origin` / `Sec-Fetch-Site` name the request's own site
origin (gateway.mfa.csrf), and the token is the one this browser's pre-session cookie was shown
(gateway.policy.signin_csrf). Then:

1. the first-factor lockout (the smart model of gateway.mfa.lockout, counted as "signin" and keyed by
   site and typed account: one address cannot lock a user out everywhere, only from its network,
   until the much higher per-user count); a locked attempt checks no password;
2. the site's backend checks the name and password; every failure that could tell whether the user
   exists shows the one message, and the backends take the same time either way;
3. Monosign is asked for the user by the directory's canonical name; MONOSIGN_USER_EXCEPTIONS and
   GATEWAY_FAIL_MODE=open apply as at Exchange's login (never to the `monosign` first factor, where
   they would let someone in on a typed name alone);
4. any session this browser had on this site ends; a pending session (site, groups, first factor,
   destination `rd`) and a 302 to the MFA page, which then works as for Exchange.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, quote

from aiohttp import web

from gateway.app import error_page
from gateway.config.model import FirstFactorKind
from gateway.core import RequestContext
from gateway.identity.base import Failure, FailureKind, Identity
from gateway.mfa.csrf import cross_site_problem, new_csrf_token, origin_of, started_elsewhere, token_matches
from gateway.mfa.flow import MFA_PAGE, PORTAL_DEFAULT_DESTINATION, SIGN_IN_PAGE, MfaFlow, SessionLookup, flow_of
from gateway.mfa.handlers import read_form
from gateway.mfa.lockout import Attempt, client_address_key
from gateway.monosign import MonosignError, MonosignUser, UserNotAssigned, UserNotFound
from gateway.observability.logging import get_logger
from gateway.pages.renderer import offered_methods
from gateway.policy.redirects import safe_destination
from gateway.policy.signin_csrf import new_browser_id, signin_token, token_problem
from gateway.policy.users import matches_exception, parse_username
from gateway.profiles.portal.first_factors import SiteFirstFactor
from gateway.profiles.portal.portal import Portal, portal_of
from gateway.sessions.base import SessionRecord, SessionState, StoreUnavailable

__all__ = ["confirm_sign_out", "show", "sign_out", "submit"]

log = get_logger("gateway.profiles.portal")

# Counts every sign-in with the `monosign` first factor per client address: each one sends a push.
_MONOSIGN_SIGNINS = "signin-monosign-ip"
_BYPASS_EVENTS = {"exception": "exception_bypass", "fail_open": "fail_open_bypass"}


def _destination(ctx: RequestContext, flow: MfaFlow, request: web.Request) -> str:
    """`rd` of the request's query, when it is a same-origin destination (else the site's root)."""
    assert ctx.target is not None
    values = [value for name, value in parse_qsl(ctx.target.query, keep_blank_values=True) if name == "rd"]
    wanted = values[0] if len(values) == 1 else None
    return safe_destination(wanted, default=PORTAL_DEFAULT_DESTINATION, public_origin=flow.origin(request, ctx))


def _form(request: web.Request, ctx: RequestContext, flow: MfaFlow, portal: Portal, site: SiteFirstFactor,
          destination: str, *, error: str | None = None, notice: str | None = None, username: str = "",
          status: int | None = None) -> web.Response:
    """The sign-in form, its token bound to this browser's pre-session cookie (set when it has none)."""
    browser_id = portal.cookie.read(request)
    fresh = browser_id is None
    browser_id = browser_id or new_browser_id()
    token = signin_token(portal.keys[0], site=site.name, browser_id=browser_id, now=flow.clock())
    response = flow.page(request, ctx, "signin", status=status, csrf_token=token,
                         action=f"{SIGN_IN_PAGE}?rd={quote(destination, safe='')}",
                         password=site.first_factor is not FirstFactorKind.MONOSIGN,
                         error=error, notice=notice, username=username)
    if fresh:
        response.headers.add("Set-Cookie", portal.cookie.set_header(browser_id))
    return response


def _on_portal_site(request: web.Request, ctx: RequestContext
                    ) -> tuple[MfaFlow, Portal, SiteFirstFactor] | web.StreamResponse:
    """The flow, the portal and the first factor of the portal site whose host the request came
    to; the sign-in pages answer 404 on any other site's hosts."""
    portal = portal_of(request)
    site = portal.first_factors.site(ctx.host_site)
    if site is None:
        return error_page(request, ctx, 404)
    return flow_of(request), portal, site


# --- GET /_gateway/signin ------------------------------------------------------------------------------------


async def show(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    found_site = _on_portal_site(request, ctx)
    if not isinstance(found_site, tuple):
        return found_site
    flow, portal, site = found_site
    destination = _destination(ctx, flow, request)
    try:
        found = await flow.site_lookup(request, ctx)
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)
    if found.record is not None and found.record.passed and flow.remaining(found.record) > 0:
        return flow.redirect(destination, status=303)  # signed in here already
    notice = "signed-out" if "signed_out=1" in (ctx.target.query if ctx.target else "").split("&") else None
    return _form(request, ctx, flow, portal, site, destination, notice=notice)


# --- POST /_gateway/signin -----------------------------------------------------------------------------------


async def submit(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    found_site = _on_portal_site(request, ctx)
    if not isinstance(found_site, tuple):
        return found_site
    flow, portal, site = found_site
    try:
        async with asyncio.timeout(flow.config.form_timeout):
            form = await read_form(request)
    except TimeoutError:
        flow.audit("refused", ctx, reason="form_too_slow")
        response = flow.page(request, ctx, "bad-request", status=408)
        response.force_close()
        return response
    origin = flow.origin(request, ctx)
    problem = cross_site_problem(request.headers, origin)
    if problem is None and "Origin" not in request.headers and "Referer" in request.headers \
            and origin_of(request.headers["Referer"]) != origin:
        problem = "foreign_referer"  # a browser that sends no Origin still names the page it posts from
    if problem is None and form is None:
        problem = "unreadable_form"
    elif problem is not None:
        problem = f"csrf_{problem}"
    if problem is None:
        problem = token_problem(portal.keys, site=site.name, browser_id=portal.cookie.read(request),
                                token=(form or {}).get("csrf_token"), now=flow.clock())
    if problem is not None:
        flow.audit("refused", ctx, reason=problem, site=site.name)
        response = flow.page(request, ctx, "bad-request", status=403)
        response.force_close()
        return response
    assert form is not None
    destination = _destination(ctx, flow, request)
    typed = form.get("username", "")
    password = form.get("password", "") if site.first_factor is not FirstFactorKind.MONOSIGN else ""
    attempt = Attempt(_lockout_key(site.name, typed), ctx.client_ip)
    try:
        locked = await _locked(request, ctx, flow, portal, site, attempt)
        if locked is not None:
            return locked
        outcome = await site.backend.authenticate(typed, password)
        if isinstance(outcome, Failure):
            return await _failed(request, ctx, flow, portal, site, destination, typed, attempt, outcome)
        await portal.lockout.succeeded(attempt)
        flow.audit("first_factor_ok", ctx, user=typed, site=site.name, first_factor=site.first_factor.value)
        return await _second_factor(request, ctx, flow, portal, site, destination, typed, attempt, outcome)
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)


def _lockout_key(site: str, typed: str) -> str:
    """Whose failures these are before anyone is known: the site and the typed account, lower-cased
    (`CORP\\alice`, `alice@corp.example` and `ALICE` are one count)."""
    try:
        account = parse_username(typed).account
    except ValueError:
        account = typed.strip().lower()
    return f"signin\x00{site}\x00{account}"


async def _locked(request: web.Request, ctx: RequestContext, flow: MfaFlow, portal: Portal, site: SiteFirstFactor,
                  attempt: Attempt) -> web.Response | None:
    wait = await portal.lockout.wait_seconds(attempt)
    if wait <= 0 and site.first_factor is FirstFactorKind.MONOSIGN:
        # Without a password every sign-in is a push: bounded per address as failures are.
        signins = await flow.store.hit(_MONOSIGN_SIGNINS, client_address_key(ctx.client_ip), portal.lockout.seconds)
        if signins > portal.lockout.policy.max_failures_ip:
            wait = portal.lockout.seconds
    if wait <= 0:
        return None
    flow.audit("refused", ctx, reason="signin_locked", site=site.name)
    return flow.page(request, ctx, "locked", retry_after_seconds=wait)


async def _failed(request: web.Request, ctx: RequestContext, flow: MfaFlow, portal: Portal, site: SiteFirstFactor,
                  destination: str, typed: str, attempt: Attempt, failure: Failure) -> web.StreamResponse:
    if failure.kind in (FailureKind.DIRECTORY_UNREACHABLE, FailureKind.DIRECTORY_MISCONFIGURED):
        # Whoever signs in gets this: it says nothing about the user.
        log.error("first_factor_unavailable", site=site.name, first_factor=site.first_factor.value,
                  kind=failure.kind.value, reason=failure.reason)
        flow.audit("refused", ctx, user=typed, reason=f"first_factor_{failure.kind.value}", site=site.name)
        return flow.page(request, ctx, "unavailable")
    return await _bad_credentials(request, ctx, flow, portal, site, destination, typed, attempt, failure.reason,
                                  counted=failure.kind is FailureKind.BAD_CREDENTIALS)


async def _bad_credentials(request: web.Request, ctx: RequestContext, flow: MfaFlow, portal: Portal,
                           site: SiteFirstFactor, destination: str, typed: str, attempt: Attempt, reason: str, *,
                           counted: bool) -> web.StreamResponse:
    """The one answer for a name or password that did not do: the form again, the same message."""
    flow.metrics.first_factor_failures.inc()
    attempts_left: int | None = None
    if counted:
        outcome = await portal.lockout.record_failure(attempt)
        attempts_left = outcome.attempts_left
        for scope in outcome.locked:
            flow.metrics.lockouts.labels(f"signin_{scope.value}").inc()
            flow.audit("lockout", ctx, user=typed, scope=f"signin_{scope.value}", seconds=portal.lockout.seconds,
                       site=site.name)
        if outcome.locks_this_browser:
            flow.audit("first_factor_failed", ctx, user=typed, reason=reason, site=site.name, attempts_left=0)
            return flow.page(request, ctx, "locked", retry_after_seconds=portal.lockout.seconds)
    flow.audit("first_factor_failed", ctx, user=typed, reason=reason, site=site.name, attempts_left=attempts_left)
    return _form(request, ctx, flow, portal, site, destination, error="credentials", username=typed)


def _forms(name: str) -> set[str]:
    """The lower-cased forms of a user name, for MONOSIGN_USER_EXCEPTIONS (gateway.policy.users)."""
    try:
        return set(parse_username(name).forms)
    except ValueError:
        return {name.strip().lower()}


async def _second_factor(request: web.Request, ctx: RequestContext, flow: MfaFlow, portal: Portal,
                         site: SiteFirstFactor, destination: str, typed: str, attempt: Attempt,
                         identity: Identity) -> web.StreamResponse:
    """The first factor passed: who this is in Monosign, then an exempt or a pending session."""
    passwordless = site.first_factor is FirstFactorKind.MONOSIGN
    exceptions = flow.config.user_exceptions
    forms = _forms(identity.username)
    await _end_previous_session(request, ctx, flow)
    if not passwordless and matches_exception(forms, exceptions):
        return await _exempt(request, ctx, flow, site, destination, typed, identity, None, "exception")
    try:
        user = await flow.monosign.lookup_user(identity.username)
    except MonosignError as error:
        if passwordless and isinstance(error, UserNotFound | UserNotAssigned):
            # No password was checked: a name Monosign does not know gets the same answer as a
            # wrong password (the form again), not a page that says the name is not a user.
            return await _bad_credentials(request, ctx, flow, portal, site, destination, typed, attempt,
                                          f"monosign_{type(error).__name__}", counted=True)
        if not passwordless and flow.fail_open_allowed(error):
            return await _exempt(request, ctx, flow, site, destination, typed, identity, None, "fail_open")
        return flow.monosign_failure(request, ctx, error, user=typed)
    forms |= {form.lower() for form in (user.user_name, user.email) if form}
    if not passwordless and matches_exception(forms, exceptions):
        return await _exempt(request, ctx, flow, site, destination, typed, identity, user, "exception")
    return await _pending(request, ctx, flow, portal, site, destination, typed, identity, user, forms)


async def _end_previous_session(request: web.Request, ctx: RequestContext, flow: MfaFlow) -> None:
    """A new sign-in replaces whatever session this browser had on this site."""
    try:
        found = await flow.site_lookup(request, ctx)
    except StoreUnavailable:
        return
    if found.cookie is not None and found.record is not None:
        await flow.end_session(ctx, found.cookie, found.record, "new_login")


def _record(flow: MfaFlow, ctx: RequestContext, site: SiteFirstFactor, destination: str, typed: str,
            identity: Identity, user: MonosignUser | None, forms: set[str], state: SessionState) -> SessionRecord:
    now = flow.clock()
    if site.first_factor is FirstFactorKind.MONOSIGN and user is not None:
        # Only the typed name was checked: the directory's view of the user is Monosign's.
        email, display_name = user.email or "", user.display_name or user.user_name
    else:
        email = identity.email or (user.email if user is not None else None) or ""
        display_name = identity.display_name or (user.display_name if user is not None else None) \
            or identity.username
    return SessionRecord(
        state=state,
        typed_username=typed,
        normalised_usernames=sorted(forms),
        user_id=user.id if user is not None else "",
        user_name=user.user_name if user is not None else identity.username,
        email=email,
        display_name=display_name,
        destination=destination,
        created_at=now,
        last_activity=now,
        client_ip=ctx.client_ip,
        site=site.name,
        groups=list(identity.groups),
        first_factor=site.first_factor.value,
    )


async def _exempt(request: web.Request, ctx: RequestContext, flow: MfaFlow, site: SiteFirstFactor, destination: str,
                  typed: str, identity: Identity, user: MonosignUser | None, kind: str) -> web.StreamResponse:
    """No second factor for this sign-in (an exception, or fail-open): signed in at once."""
    if kind == "fail_open":
        log.warning("fail_open_bypass", user=typed, site=site.name,
                    reason="Monosign is unreachable and GATEWAY_FAIL_MODE=open: signed in without a second factor")
    record = _record(flow, ctx, site, destination, typed, identity, user, _forms(identity.username),
                     SessionState.EXEMPT)
    record.mfa_at = record.created_at
    record.second_factor = kind
    cookie = await flow.store.create(record, flow.ttl(record))
    flow.metrics.bypasses.labels(kind).inc()
    flow.audit(_BYPASS_EVENTS[kind], ctx, record, site=site.name)
    response = flow.redirect(destination)
    response.headers.add("Set-Cookie", flow.cookie_for(ctx).set_header(cookie))
    response.headers.add("Set-Cookie", portal_of(request).cookie.expire_header())
    return response


async def _pending(request: web.Request, ctx: RequestContext, flow: MfaFlow, portal: Portal, site: SiteFirstFactor,
                   destination: str, typed: str, identity: Identity, user: MonosignUser,
                   forms: set[str]) -> web.StreamResponse:
    record = _record(flow, ctx, site, destination, typed, identity, user, forms, SessionState.PENDING)
    methods = offered_methods(flow.allowed_methods(record, user.mfa_methods))
    if not methods:
        flow.audit("refused", ctx, user=typed, monosign_user_id=user.id, reason="no_mfa_method", site=site.name)
        return flow.page(request, ctx, "no-methods")
    record.csrf_token = new_csrf_token()
    cookie = await flow.store.create(record, flow.ttl(record))
    flow.remember_methods(user.id, user.mfa_methods)
    flow.audit("mfa_started", ctx, record, methods=list(methods), site=site.name,
               first_factor=site.first_factor.value)
    response = flow.redirect(MFA_PAGE)
    response.headers.add("Set-Cookie", flow.cookie_for(ctx).set_header(cookie))
    response.headers.add("Set-Cookie", portal.cookie.expire_header())
    return response


# --- GET and POST /_gateway/signout --------------------------------------------------------------------------


async def sign_out(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """End this browser's session on this site (its session group's, for a site in one), then the
    sign-in form (which says so). A GET that another site started (gateway.mfa.csrf.started_elsewhere:
    a link elsewhere would otherwise sign anyone out) ends nothing: it shows a page whose button posts
    the sign-out with the session's token."""
    found_site = _on_portal_site(request, ctx)
    if not isinstance(found_site, tuple):
        return found_site
    flow, _portal, _site = found_site
    try:
        found = await flow.site_lookup(request, ctx)
        if found.cookie is not None and found.record is not None \
                and started_elsewhere(request.headers, flow.origin(request, ctx)):
            return await _confirmation(request, ctx, flow, found.cookie, found.record)
    except StoreUnavailable as exc:
        response = flow.store_unavailable(request, ctx, exc)
        response.headers.add("Set-Cookie", flow.cookie_for(ctx).expire_header())
        return response
    return await _signed_out(ctx, flow, found)


async def confirm_sign_out(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """The confirmation page's post: from the site's own page (Origin, Fetch Metadata), with the
    session's token; anything else ends nothing (403, the form expired)."""
    found_site = _on_portal_site(request, ctx)
    if not isinstance(found_site, tuple):
        return found_site
    flow, _portal, site = found_site
    try:
        async with asyncio.timeout(flow.config.form_timeout):
            form = await read_form(request)
    except TimeoutError:
        form = None
    try:
        found = await flow.site_lookup(request, ctx)
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)
    problem = cross_site_problem(request.headers, flow.origin(request, ctx))
    if problem is not None:
        problem = f"csrf_{problem}"
    elif form is None:
        problem = "unreadable_form"
    elif found.record is not None and not token_matches(found.record.csrf_token, form.get("csrf_token")):
        problem = "csrf_token_mismatch"
    if problem is not None:
        flow.audit("refused", ctx, found.record, reason=problem, site=site.name, action="sign_out")
        response = flow.page(request, ctx, "bad-request", status=403)
        response.force_close()
        return response
    return await _signed_out(ctx, flow, found)


async def _confirmation(request: web.Request, ctx: RequestContext, flow: MfaFlow, cookie: str,
                        record: SessionRecord) -> web.StreamResponse:
    """The page that asks before signing out, with the session's CSRF token (one is made for a
    session that has none: an exempt one). Raises StoreUnavailable."""
    token = record.csrf_token
    if not token:
        updated = record.copy()  # the record may be the session cache's own
        updated.csrf_token = token = new_csrf_token()
        if not await flow.store.save(cookie, updated, flow.ttl(updated)):
            return flow.redirect(SIGN_IN_PAGE, status=303)  # changed meanwhile: nothing to confirm here
    flow.audit("sign_out_confirmation", ctx, record)
    response = flow.page(request, ctx, "signout", csrf_token=token)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _signed_out(ctx: RequestContext, flow: MfaFlow, found: SessionLookup) -> web.StreamResponse:
    if found.cookie is not None and found.record is not None:
        await flow.end_session(ctx, found.cookie, found.record, "logoff")
    response = flow.redirect(f"{SIGN_IN_PAGE}?signed_out=1", status=303)
    if found.cookie is not None:
        response.headers.add("Set-Cookie", flow.cookie_for(ctx).expire_header())
    return response
