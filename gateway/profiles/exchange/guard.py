"""The owa-app route: everything under /owa/ and /ecp/ that needs a passed second factor.

A request reaches Exchange only with a complete (or exempt) gateway session whose bound Exchange
session (cadata + cadataKey) is the one the request carries. Anything else never leaves the gateway,
even with cadata cookies (they could be foreign, stolen or replayed): a navigation is sent to
Exchange's logon page (no session) or the MFA page (pending); everything else gets 440.

The passed path costs no store round trip while the session cache holds the record, and one
write per `touch_interval` for activity; background requests (notifications, pings, `UA=0`) are
not activity.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway.app import error_page
from gateway.core import RequestContext, ResponseInspector, UpstreamAnswer
from gateway.mfa.decisions import Access, decide_access, needs_touch
from gateway.mfa.flow import MFA_PAGE, MfaFlow, flow_of
from gateway.policy.owa_responses import LogonReason, is_exchange_timeout, sets_foreign_session
from gateway.policy.routes import is_background, is_notification_channel, wants_navigation
from gateway.profiles.exchange.cookie_rules import forward_upstream, hold_back_cadata, refusal
from gateway.profiles.exchange.password_change import forward_password_change, is_password_change
from gateway.sessions.base import SessionRecord, StoreUnavailable

_TIMEOUT_ACCESS = (Access.IDLE, Access.ABSOLUTE)


async def may_continue(request: web.Request, ctx: RequestContext) -> bool:
    """`100 Continue` only for a request that will be forwarded: never invite a body we refuse."""
    flow = flow_of(request)
    try:
        found = await flow.lookup(request)
    except StoreUnavailable:
        return False
    binding = flow.keys.read(request).binding
    return decide_access(found.record, now=flow.clock(), timeouts=flow.timeouts, binding=binding) is Access.PASS


async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    flow = flow_of(request)
    assert ctx.target is not None
    keys = flow.keys.read(request)
    found = flow.cached_lookup(keys.session_cookie)
    if found is None:
        try:
            found = await flow.lookup(request)
        except StoreUnavailable as exc:
            return flow.store_unavailable(request, ctx, exc)
    now = flow.clock()
    access = decide_access(found.record, now=now, timeouts=flow.timeouts, binding=keys.binding)
    background = is_background(ctx.target, request.headers)
    if access is Access.PASS:
        assert found.cookie is not None
        assert found.record is not None
        record = found.record
        if not background and needs_touch(record, now, flow.touch_every):
            try:
                await _touch(flow, found.cookie, record, now)
            except StoreUnavailable as exc:
                return flow.store_unavailable(request, ctx, exc)
        if is_password_change(request.method, ctx.target):
            return await forward_password_change(request, ctx, flow, record,
                                                 _exchange_timeout_watch(request, flow, ctx, found.cookie, record))
        return await forward_upstream(request, ctx, session_passed=True, long_poll=background,
                                      held=is_notification_channel(ctx.target),
                                      inspect=_exchange_timeout_watch(request, flow, ctx, found.cookie, record))
    if access.ends_session and found.cookie is not None:
        await flow.end_session(ctx, found.cookie, found.record, access.value)
    response = refuse(request, ctx, flow, access)
    if found.cookie is not None and access is not Access.PENDING:
        # A cookie that opens nothing any more: let the browser forget it.
        response.headers.add("Set-Cookie", flow.cookie.expire_header())
    return response


def refuse(request: web.Request, ctx: RequestContext, flow: MfaFlow, access: Access) -> web.Response:
    """Navigations are redirected, everything else gets 440 (what OWA's scripts expect)."""
    assert ctx.target is not None
    if not wants_navigation(request.method, request.headers):
        return error_page(request, ctx, 440)
    if access is Access.PENDING:
        return flow.redirect(MFA_PAGE)
    reason = LogonReason.TIMEOUT if access in _TIMEOUT_ACCESS else LogonReason.NONE
    return flow.to_logon(ctx.target.forward, reason=reason)


async def _touch(flow: MfaFlow, cookie: str, record: SessionRecord, now: float) -> None:
    """Record user activity. A lost compare-and-set means another request just did the same.
    On a copy: `record` may be the session cache's own (`MfaFlow.cached_lookup`)."""
    touched = record.copy()
    touched.last_activity = now
    await flow.store.save(cookie, touched, flow.ttl(touched))


def _exchange_timeout_watch(request: web.Request, flow: MfaFlow, ctx: RequestContext, cookie: str,
                            record: SessionRecord) -> ResponseInspector:
    """Exchange's own timeout (440, or a redirect to the logon page with reason=3) ends the gateway
    session too: the next login is a new Exchange session and needs a new second factor.

    A passed session's answers never carry another Exchange session either: Exchange signs in
    wherever a credential post lands, and whoever posted it has not passed that user's second factor.
    """

    async def inspect(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
        if "Set-Cookie" in client_headers and sets_foreign_session(client_headers.getall("Set-Cookie"),
                                                                   record.cadata_hash):
            hold_back_cadata(client_headers)
            flow.audit("refused", ctx, record, reason="foreign_exchange_session", upstream_status=upstream.status)
            return refusal(request, ctx)
        if is_exchange_timeout(upstream.status, upstream.headers.get("Location")):
            await flow.end_session(ctx, cookie, record, "exchange_timeout")
            client_headers.add("Set-Cookie", flow.cookie.expire_header())
        return None

    return inspect
