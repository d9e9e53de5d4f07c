"""The owa-login route: observe Exchange's forms login and hold its session back until the second factor.

1. Read the small url-encoded body (bounded: 413 beyond `GATEWAY_LOGIN_MAX_BODY`), parse it exactly
   as Exchange will (400 otherwise), keep the `username`, forward the original bytes.
2. Exchange's answer, before any byte reaches the browser:
   - wrong password (302 to `logon.aspx?…reason=2`): passed through unchanged, counted per user and
     per client address;
   - success (302 with live `cadata` + `cadataKey`): the user is identified; exceptions and system
     mailboxes get an exempt session at once (cookies pass); everyone else gets a pending session
     that holds every `cadata*` Set-Cookie byte for byte, and a 302 to the MFA page;
   - anything else: passed through, but never with a live Exchange session.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from aiohttp import web
from multidict import CIMultiDict

from gateway.app import error_page
from gateway.core import RequestContext, ResponseInspector, UpstreamAnswer
from gateway.mfa.csrf import cross_site_problem, new_csrf_token, site_origins
from gateway.mfa.flow import MFA_PAGE, MfaFlow, flow_of
from gateway.monosign import MonosignError
from gateway.observability.logging import get_logger
from gateway.pages.renderer import offered_methods
from gateway.policy.login_form import LoginForm, LoginFormRefused, RefusalReason, is_form_content_type, parse_login_form
from gateway.policy.owa_responses import LoginOutcome, binding_hash, cadata_cookies, login_outcome
from gateway.policy.redirects import safe_destination
from gateway.policy.users import AmbiguousUserName, parse_username
from gateway.profiles.exchange.cookie_rules import forward_upstream, hold_back_cadata, refusal
from gateway.profiles.exchange.identity import Identity, Verdict, identify
from gateway.request_body import read_bounded
from gateway.sessions.base import SessionRecord, SessionState, StoreUnavailable
from gateway.state import STATE

# The logger keeps its name from before the module moved: operators filter on it.
log = get_logger("gateway.owa.login")


async def may_continue(request: web.Request, ctx: RequestContext) -> bool:
    """Invite the body only when it is a logon form the gateway will read."""
    length = request.content_length
    limit = flow_of(request).config.login_max_body
    return length is not None and length <= limit and is_form_content_type(request.headers.get("Content-Type")) \
        and _cross_site(request) is None


def _cross_site(request: web.Request) -> str | None:
    """Login CSRF: a logon form posted from another site's page (the browser says so with `Origin`
    or `Sec-Fetch-Site`) would sign the victim's browser in as whoever's password the other site
    chose, and a second factor that person approves would open their mailbox in the victim's
    browser. Exchange's own logon page posts from one of the gateway's host names."""
    state = request.app[STATE]
    return cross_site_problem(request.headers, _origins(state.public_scheme, state.allowed_hosts))


@lru_cache(maxsize=8)
def _origins(scheme: str, hosts: frozenset[str]) -> frozenset[str]:
    return site_origins(scheme, hosts)


async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    flow = flow_of(request)
    assert ctx.target is not None
    problem = _cross_site(request)
    if problem is not None:
        flow.audit("refused", ctx, reason=f"login_csrf_{problem}")
        response = flow.page(request, ctx, "bad-request", status=403)
        response.force_close()  # the form's body is never read
        return response
    try:
        # The head had GATEWAY_HEADER_TIMEOUT; the small form read before anything else gets as long,
        # or a client trickling it would hold its connection for as long as it likes.
        async with asyncio.timeout(flow.config.form_timeout):
            body = await read_bounded(request, flow.config.login_max_body)
    except TimeoutError:
        flow.audit("refused", ctx, reason="login_form_too_slow")
        response = flow.page(request, ctx, "bad-request", status=408)
        response.force_close()
        return response
    if body is None:
        flow.audit("refused", ctx, reason="login_form_too_large")
        response = error_page(request, ctx, 413)
        response.force_close()  # the rest of the body is never read
        return response
    try:
        form = parse_login_form(request.headers.get("Content-Type"), body, ctx.target.query)
    except LoginFormRefused as exc:
        flow.audit("refused", ctx, reason=f"login_form_{exc.reason.value}", field=exc.field)
        status = 413 if exc.reason is RefusalReason.TOO_LARGE else 400
        return error_page(request, ctx, status)
    return await forward_upstream(request, ctx, session_passed=False, body=body,
                                  inspect=_login_watch(request, ctx, flow, form))


def _login_watch(request: web.Request, ctx: RequestContext, flow: MfaFlow, form: LoginForm) -> ResponseInspector:
    async def inspect(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
        set_cookies = upstream.headers.getall("Set-Cookie", [])
        outcome = login_outcome(upstream.status, upstream.headers.get("Location"), set_cookies)
        if outcome is LoginOutcome.SUCCESS:
            return await _second_factor(request, ctx, flow, form, set_cookies, client_headers)
        if outcome is LoginOutcome.FAILED:
            await _count_first_factor_failure(ctx, flow, form)
        if hold_back_cadata(client_headers):
            flow.audit("refused", ctx, user=form.username, reason="exchange_session_without_mfa",
                       upstream_status=upstream.status)
            return refusal(request, ctx)
        return None

    return inspect


async def _count_first_factor_failure(ctx: RequestContext, flow: MfaFlow, form: LoginForm) -> None:
    flow.metrics.first_factor_failures.inc()
    try:
        account = parse_username(form.username).account
    except ValueError:
        account = form.username.strip().lower()
    window = flow.config.lockout_seconds
    per_user: int | None = None
    per_ip: int | None = None
    try:
        per_user = await flow.store.hit("login-fail-user", account, window)
        per_ip = await flow.store.hit("login-fail-ip", ctx.client_ip, window)
    except StoreUnavailable:
        pass  # counting is for the operator; Exchange's answer still passes
    flow.audit("first_factor_failed", ctx, user=form.username, failures_for_user=per_user,
               failures_for_ip=per_ip, window_seconds=window)


async def _second_factor(request: web.Request, ctx: RequestContext, flow: MfaFlow, form: LoginForm,
                         set_cookies: list[str], client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
    """Exchange accepted the password: decide who this is, and what the browser gets now."""
    flow.audit("first_factor_ok", ctx, user=form.username)
    await _end_previous_session(request, ctx, flow)
    try:
        identity: Identity | None = await identify(form.username, flow.monosign,
                                                   flow.config.user_exceptions)
    except ValueError as exc:
        hold_back_cadata(client_headers)
        reason = "ambiguous_username" if isinstance(exc, AmbiguousUserName) else "unparsable_username"
        flow.audit("refused", ctx, user=form.username, reason=reason)
        return flow.page(request, ctx, "not-found")
    except MonosignError as error:
        if not flow.fail_open_allowed(error):
            hold_back_cadata(client_headers)
            return flow.monosign_failure(request, ctx, error, user=form.username)
        identity = None  # fail-open: Exchange's answer passes with an exempt session
    try:
        if identity is None or identity.verdict is not Verdict.SECOND_FACTOR:
            await _exempt(ctx, flow, form, identity, set_cookies, client_headers)
            return None
        return await _pending(request, ctx, flow, form, identity, set_cookies, client_headers)
    except StoreUnavailable as exc:
        hold_back_cadata(client_headers)
        return flow.store_unavailable(request, ctx, exc)


async def _end_previous_session(request: web.Request, ctx: RequestContext, flow: MfaFlow) -> None:
    """A new Exchange login replaces whatever gateway session the browser had."""
    try:
        found = await flow.lookup(request)
    except StoreUnavailable:
        return
    if found.cookie is not None and found.record is not None:
        await flow.end_session(ctx, found.cookie, found.record, "new_login")


def _record(flow: MfaFlow, ctx: RequestContext, form: LoginForm, identity: Identity | None, state: SessionState,
            set_cookies: list[str]) -> SessionRecord:
    user = identity.user if identity is not None else None
    now = flow.clock()
    return SessionRecord(
        state=state,
        typed_username=form.username,
        normalised_usernames=identity.forms if identity is not None else [],
        user_id=user.id if user is not None else "",
        user_name=user.user_name if user is not None else "",
        email=(user.email or "") if user is not None else "",
        display_name=(user.display_name or user.user_name) if user is not None else form.username,
        destination=safe_destination(form.destination, default="/owa/", public_origin=flow.public_url),
        created_at=now,
        last_activity=now,
        cadata_hash=binding_hash(set_cookies),
        client_ip=ctx.client_ip,
        first_factor="exchange",
    )


async def _exempt(ctx: RequestContext, flow: MfaFlow, form: LoginForm,
                  identity: Identity | None, set_cookies: list[str], client_headers: CIMultiDict[str]) -> None:
    """No second factor for this login: Exchange's answer passes, cookies and all, with an exempt session."""
    if identity is None:
        kind, event = "fail_open", "fail_open_bypass"
        log.warning("fail_open_bypass", user=form.username,
                    reason="Monosign is unreachable and GATEWAY_FAIL_MODE=open: signed in without a second factor")
    elif identity.verdict is Verdict.SYSTEM_MAILBOX:
        kind, event = "system_mailbox", "system_mailbox_bypass"
    else:
        kind, event = "exception", "exception_bypass"
    record = _record(flow, ctx, form, identity, SessionState.EXEMPT, set_cookies)
    record.mfa_at = record.created_at
    record.second_factor = kind
    cookie = await flow.store.create(record, flow.ttl(record))
    client_headers.add("Set-Cookie", flow.cookie.set_header(cookie))
    flow.metrics.bypasses.labels(kind).inc()
    flow.audit(event, ctx, record)


async def _pending(request: web.Request, ctx: RequestContext, flow: MfaFlow, form: LoginForm, identity: Identity,
                   set_cookies: list[str], client_headers: CIMultiDict[str]) -> web.StreamResponse:
    """The second factor comes next: hold Exchange's session, send the browser to the MFA page."""
    user = identity.user
    assert user is not None
    hold_back_cadata(client_headers)
    if not offered_methods(user.mfa_methods):
        flow.audit("refused", ctx, user=form.username, monosign_user_id=user.id, reason="no_mfa_method")
        return flow.page(request, ctx, "no-methods")
    record = _record(flow, ctx, form, identity, SessionState.PENDING, set_cookies)
    record.upstream_set_cookies = cadata_cookies(set_cookies)
    record.csrf_token = new_csrf_token()
    cookie = await flow.store.create(record, flow.ttl(record))
    flow.remember_methods(user.id, user.mfa_methods)
    flow.audit("mfa_started", ctx, record, methods=list(offered_methods(user.mfa_methods)))
    response = flow.redirect(MFA_PAGE)
    for value in client_headers.getall("Set-Cookie", []):  # Exchange's other cookies may pass
        response.headers.add("Set-Cookie", value)
    response.headers.add("Set-Cookie", flow.cookie.set_header(cookie))
    return response
