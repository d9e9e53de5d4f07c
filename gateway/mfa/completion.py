"""The end of a pending session: the second factor passed (or is waived by fail-open), or it failed.

Passing rotates the session id (a new privilege level gets a new id), marks the session complete
and bound to the held Exchange session, and replays the held `cadata*` Set-Cookies byte for byte on
the redirect to the destination, which is a same-origin relative path or `/owa/`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.core import RequestContext
from gateway.mfa.csrf import new_csrf_token
from gateway.mfa.flow import MFA_PAGE, MfaFlow
from gateway.observability.logging import get_logger
from gateway.policy.owa_responses import binding_hash
from gateway.sessions.base import SessionRecord, SessionState, StoreUnavailable

log = get_logger("gateway.mfa")

# Audit event of a passed second factor, by method.
PASSED_EVENTS = {"totp": "code_ok", "push": "push_approved", "fail_open": "fail_open_bypass"}


async def finish(request: web.Request, ctx: RequestContext, flow: MfaFlow, cookie: str, record: SessionRecord,
                 *, method: str) -> web.StreamResponse:
    """Complete the session and send the browser on with Exchange's cookies. `method`: totp, push, fail_open."""
    now = flow.clock()
    attempt = flow.attempt(request, ctx, record)
    # Only Exchange's sessions hold upstream cookies back; a portal site's sign-in is the gateway's own.
    held = list(record.upstream_set_cookies) if not record.site else []
    started = record.created_at
    record.state = SessionState.EXEMPT if method == "fail_open" else SessionState.COMPLETE
    record.mfa_at = now
    record.second_factor = method
    record.last_activity = now
    record.upstream_set_cookies = []  # replayed now; the store need not keep Exchange's session
    # A push still waiting when a code (or fail-open) passes is abandoned; an approved one is final.
    waiting_push = (record.push_request_id, record.push_expires_at) if method != "push" else (None, None)
    record.push_request_id = None
    record.push_expires_at = None
    record.push_number = None
    record.failures = 0
    record.csrf_token = new_csrf_token()
    if record.cadata_hash is None and not record.site:
        record.cadata_hash = binding_hash(held)
    try:
        new_cookie = await flow.store.rotate(cookie, record, flow.ttl(record))
        if new_cookie is None:
            # Changed meanwhile (a second tab, a double submit): let the MFA page look again.
            return flow.redirect(MFA_PAGE, status=303)
        if method != "fail_open":
            await flow.lockout.succeeded(attempt)
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)
    if waiting_push[0] is not None and waiting_push[1] is not None:
        await flow.forget_push(waiting_push[0], waiting_push[1])
    if method == "fail_open":
        flow.metrics.bypasses.labels("fail_open").inc()
        log.warning("fail_open_bypass", user=record.typed_username,
                    reason="Monosign is unreachable and GATEWAY_FAIL_MODE=open: signed in without a second factor")
    else:
        flow.metrics.second_factor.labels(method, "success").inc()
        flow.metrics.login_duration.observe(max(0.0, now - started))
    flow.audit(PASSED_EVENTS[method], ctx, record, method=method)
    response = flow.redirect(flow.destination(record))
    for value in held:
        response.headers.add("Set-Cookie", value)
    response.headers.add("Set-Cookie", flow.cookie_for(ctx).set_header(new_cookie))
    if method != "fail_open" and flow.device_cookie.enabled:
        # This browser is now familiar for this user (its id kept if it had one): failures from
        # elsewhere will not lock it out (gateway.mfa.lockout).
        _, device_cookie = flow.device_cookie.issue(record.user_id, now, attempt.device_id)
        response.headers.add("Set-Cookie", device_cookie)
    return response


async def count_failure(request: web.Request, ctx: RequestContext, flow: MfaFlow, record: SessionRecord,
                        *, method: str, event: str, **fields: Any) -> tuple[int, web.Response | None]:
    """Count a failed attempt (gateway.mfa.lockout). Returns (attempts left, the locked page if this
    failure set a lock that applies to this browser). Raises StoreUnavailable."""
    attempt = flow.attempt(request, ctx, record)
    outcome = await flow.lockout.record_failure(attempt)
    flow.metrics.second_factor.labels(method, "failure").inc()
    flow.audit(event, ctx, record, attempts_left=outcome.attempts_left, familiar_device=attempt.device_id is not None,
               **fields)
    for scope in outcome.locked:
        flow.metrics.lockouts.labels(scope.value).inc()
        flow.audit("lockout", ctx, record, scope=scope.value, seconds=flow.lockout.seconds)
    if not outcome.locks_this_browser:
        # Not locked, or locked elsewhere only (a familiar device's failures that reached the
        # user's overall count: other browsers are paused, this one keeps its own count).
        return outcome.attempts_left, None
    return 0, flow.page(request, ctx, "locked", retry_after_seconds=flow.lockout.seconds)
