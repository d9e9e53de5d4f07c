"""The MFA pages: `/_gateway/mfa` (GET), `/verify`, `/push` and `/cancel` (POST), `/status` (JSON), `/complete`.

Every handler starts from the request's pending session (no session: Exchange's logon page; a
passed one: its destination), and every POST must carry the session's CSRF token and come from
the gateway's own origin. Attempts are limited by the smart lockout (gateway.mfa.lockout); a code
that is not exactly GATEWAY_MFA_CODE_LENGTH digits once white space is removed is refused without
asking Monosign (and still counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web

from gateway.core import RequestContext
from gateway.mfa.completion import count_failure, finish
from gateway.mfa.csrf import cross_site_problem, token_matches
from gateway.mfa.decisions import expiry_reason, new_number_challenge, normalise_code
from gateway.mfa.flow import MFA_PAGE, MfaFlow, flow_of
from gateway.monosign import InvalidCode, MonosignError, PushStatus
from gateway.pages.renderer import URLS, offered_methods
from gateway.policy.login_form import is_form_content_type
from gateway.policy.owa_responses import LogonReason
from gateway.policy.user_agent import parse_user_agent
from gateway.request_body import read_bounded
from gateway.sessions.base import SessionRecord, SessionState, StoreUnavailable

_NO_STORE = {"Cache-Control": "no-store"}
# The MFA forms carry a code and a token: a few hundred bytes.
MAX_FORM_BYTES = 4096
# The store calls a push press makes under its claim (load, poll status, count, save, poller lease):
# the claim outlasts the Monosign call and that many store timeouts, and frees itself after that
# should the replica holding it die.
PUSH_CLAIM_STORE_CALLS = 5


@dataclass(frozen=True, slots=True)
class Pending:
    cookie: str
    record: SessionRecord


async def _pending(request: web.Request, ctx: RequestContext, flow: MfaFlow) -> Pending | web.StreamResponse:
    """The request's pending session, or where the browser goes instead."""
    try:
        found = await flow.site_lookup(request, ctx)
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)
    record = found.record
    if found.cookie is None or record is None:
        return flow.to_sign_in(ctx, status=303)
    now = flow.clock()
    if flow.remaining(record) <= 0:
        await flow.end_session(ctx, found.cookie, record, expiry_reason(record, now, flow.timeouts).value)
        response = flow.to_sign_in(ctx, record, reason=LogonReason.TIMEOUT, status=303)
        response.headers.add("Set-Cookie", flow.cookie_for(ctx).expire_header())
        return response
    if record.passed:
        return flow.redirect(flow.destination(record), status=303)
    if record.state is not SessionState.PENDING:
        return flow.to_sign_in(ctx, record, status=303)
    return Pending(found.cookie, record)


def _display_name(record: SessionRecord) -> str:
    return record.display_name or record.user_name or record.typed_username


async def _mfa_page(request: web.Request, ctx: RequestContext, flow: MfaFlow, pending: Pending, *,
                    status: int | None = None, **context: object) -> web.StreamResponse:
    """The MFA page with the user's methods (asking Monosign if this replica does not know them)."""
    try:
        methods = flow.allowed_methods(pending.record, await flow.methods_for(pending.record))
    except MonosignError as error:
        return await _monosign_failed(request, ctx, flow, pending, error)
    if not offered_methods(methods):
        return flow.page(request, ctx, "no-methods")
    if context.get("push_state") == "waiting" and "push" not in offered_methods(methods):
        context.pop("push_state")
    elif context.get("push_state") == "waiting" and pending.record.push_expires_at is not None:
        context["push_expires_in"] = max(0, math.ceil(pending.record.push_expires_at - flow.clock()))
        if pending.record.push_number is not None:
            context["push_number"] = pending.record.push_number
    return flow.page(request, ctx, "mfa", status=status, display_name=_display_name(pending.record),
                     methods=list(methods), csrf_token=pending.record.csrf_token,
                     greeting="site" if pending.record.site else "mailbox", **context)


async def _monosign_failed(request: web.Request, ctx: RequestContext, flow: MfaFlow, pending: Pending,
                           error: MonosignError) -> web.StreamResponse:
    if flow.fail_open_allowed(error):
        return await finish(request, ctx, flow, pending.cookie, pending.record, method="fail_open")
    return flow.monosign_failure(request, ctx, error, pending.record)


async def _locked(request: web.Request, ctx: RequestContext, flow: MfaFlow, record: SessionRecord,
                  method: str | None = None) -> web.Response | None:
    wait = await flow.lockout.wait_seconds(flow.attempt(request, ctx, record))
    if wait <= 0:
        return None
    if method is not None:
        flow.metrics.second_factor.labels(method, "locked").inc()
    return flow.page(request, ctx, "locked", retry_after_seconds=wait)


async def read_form(request: web.Request) -> dict[str, str] | None:
    """A small url-encoded form with each field at most once, else None."""
    if not is_form_content_type(request.headers.get("Content-Type")):
        return None
    body = await read_bounded(request, MAX_FORM_BYTES)
    if body is None:
        return None
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            return None
        fields[name] = value
    return fields


async def _checked_post(request: web.Request, ctx: RequestContext, flow: MfaFlow
                        ) -> tuple[Pending, dict[str, str]] | web.StreamResponse:
    """The pending session and the form of a POST that passed the CSRF checks."""
    pending = await _pending(request, ctx, flow)
    if not isinstance(pending, Pending):
        return pending
    try:
        # As long as the request head had: a trickled form must not hold the connection open.
        async with asyncio.timeout(flow.config.form_timeout):
            form = await read_form(request)
    except TimeoutError:
        flow.audit("refused", ctx, pending.record, reason="form_too_slow")
        response = flow.page(request, ctx, "bad-request", status=408)
        response.force_close()
        return response
    problem = cross_site_problem(request.headers, flow.origin(request, ctx))
    if problem is None and form is None:
        problem = "unreadable_form"
    if problem is None and not token_matches(pending.record.csrf_token, (form or {}).get("csrf_token")):
        problem = "csrf_token"
    if problem is not None:
        flow.audit("refused", ctx, pending.record, reason=f"csrf_{problem}" if problem != "csrf_token" else problem)
        response = flow.page(request, ctx, "bad-request", status=403)
        response.force_close()
        return response
    assert form is not None
    return pending, form


# --- GET /_gateway/mfa ---------------------------------------------------------------------------------


async def show(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    flow = flow_of(request)
    pending = await _pending(request, ctx, flow)
    if not isinstance(pending, Pending):
        return pending
    record = pending.record
    try:
        locked = await _locked(request, ctx, flow, record)
        if locked is not None:
            return locked
        if record.push_request_id is not None and record.push_expires_at is not None:
            status = await flow.poller.status(record.push_request_id, record.push_expires_at)
            if status is not PushStatus.PENDING:
                return flow.redirect(URLS["complete"], status=303)
            await flow.poller.ensure(record.push_request_id, record.push_expires_at)
            return await _mfa_page(request, ctx, flow, pending, push_state="waiting")
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)
    return await _mfa_page(request, ctx, flow, pending)


# --- POST /_gateway/mfa/verify -----------------------------------------------------------------------------


async def verify(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    flow = flow_of(request)
    checked = await _checked_post(request, ctx, flow)
    if not isinstance(checked, tuple):
        return checked
    pending, form = checked
    record = pending.record
    code = form.get("code", "")
    if not flow.allowed_methods(record, ("totp",)):
        flow.audit("refused", ctx, record, reason="method_not_allowed", method="totp")
        return flow.page(request, ctx, "bad-request", status=403)
    try:
        async with flow.lockout.one_at_a_time(record.user_id):
            locked = await _locked(request, ctx, flow, record, "totp")
            if locked is not None:
                return locked
            # One spelling for Monosign and the single-use claim alike (`normalise_code`).
            digits = normalise_code(code, flow.config.code_length)
            if digits is None:
                left, locked = await count_failure(request, ctx, flow, record, method="totp", event="code_failed",
                                                   reason="format")
                return locked or await _mfa_page(request, ctx, flow, pending, code_error="format",
                                                 attempts_left=left)
            try:
                await flow.monosign.verify_code(record.user_id, digits)
            except InvalidCode:
                left, locked = await count_failure(request, ctx, flow, record, method="totp", event="code_failed",
                                                   reason="invalid")
                return locked or await _mfa_page(request, ctx, flow, pending, code_error="invalid",
                                                 attempts_left=left)
            except MonosignError as error:
                flow.metrics.second_factor.labels("totp", "error").inc()
                return await _monosign_failed(request, ctx, flow, pending, error)
            if not await flow.lockout.first_use_of_code(record.user_id, digits):
                left, locked = await count_failure(request, ctx, flow, record, method="totp", event="code_failed",
                                                   reason="replayed")
                return locked or await _mfa_page(request, ctx, flow, pending, code_error="invalid",
                                                 attempts_left=left)
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)
    return await finish(request, ctx, flow, pending.cookie, record, method="totp")


# --- POST /_gateway/mfa/push ---------------------------------------------------------------------------


async def push(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    flow = flow_of(request)
    checked = await _checked_post(request, ctx, flow)
    if not isinstance(checked, tuple):
        return checked
    pending, form = checked
    # "Send again" on the waiting page: a new push in place of the waiting one (the limits still apply).
    resend = form.get("resend") == "1"
    try:
        locked = await _locked(request, ctx, flow, pending.record, "push")
        if locked is not None:
            return locked
        # One push at a time per session, across tabs, double clicks and replicas: the press that
        # wins this claim (one atomic set-if-absent in the store) decides; the others wait on the page.
        claim = f"push-start:{pending.cookie}"
        claim_seconds = flow.config.monosign_timeout + PUSH_CLAIM_STORE_CALLS * flow.config.store_timeout
        if not await flow.store.claim_once(claim, claim_seconds):
            return flow.redirect(MFA_PAGE, status=303)
        try:
            return await _start_push(request, ctx, flow, pending.cookie, resend=resend)
        finally:
            # Released once the record says so (or nothing was sent); should the store fail now,
            # the claim still ends with its TTL.
            with contextlib.suppress(StoreUnavailable):
                await flow.store.release(claim)
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)


async def _start_push(request: web.Request, ctx: RequestContext, flow: MfaFlow, cookie: str, *,
                      resend: bool) -> web.StreamResponse:
    """Under the session's push claim: read the record again (a press that held the claim before
    may have started a push since this request first read it), then start one if none is pending,
    or in place of the pending one on "Send again"."""
    record = await flow.store.load(cookie)
    if record is None or record.state is not SessionState.PENDING:
        return flow.redirect(MFA_PAGE, status=303)
    replaced = None
    if record.push_request_id is not None and record.push_expires_at is not None:
        status = await flow.poller.status(record.push_request_id, record.push_expires_at)
        if status is PushStatus.APPROVED:
            return flow.redirect(URLS["complete"], status=303)  # answered already: never ask again
        if status is PushStatus.PENDING and not resend:
            # A second press of the button must not buzz the phone again.
            return flow.redirect(MFA_PAGE, status=303)
        replaced = record.push_request_id if status is PushStatus.PENDING else None
    spent = await flow.lockout.spend_push(flow.attempt(request, ctx, record))
    if spent is not None:
        flow.metrics.second_factor.labels("push", "locked").inc()
        flow.audit("refused", ctx, record, reason="too_many_pushes", scope=spent.value)
        return flow.page(request, ctx, "locked", retry_after_seconds=flow.lockout.seconds)
    replaced_expires_at = record.push_expires_at
    number = new_number_challenge() if flow.config.number_matching else None
    try:
        started = await flow.monosign.start_push(record.user_id, ctx.client_ip,
                                                 parse_user_agent(request.headers.get("User-Agent")),
                                                 number_challenge=number)
    except MonosignError as error:
        flow.metrics.second_factor.labels("push", "error").inc()
        return await _monosign_failed(request, ctx, flow, Pending(cookie, record), error)
    record.push_request_id = started.request_id
    record.push_expires_at = flow.clock() + started.expires_in
    record.push_number = number
    if not await flow.store.save(cookie, record, flow.ttl(record)):
        return flow.redirect(MFA_PAGE, status=303)
    if replaced is not None and replaced_expires_at is not None:
        await flow.forget_push(replaced, replaced_expires_at)
    await flow.poller.ensure(started.request_id, record.push_expires_at)
    flow.audit("push_sent", ctx, record, expires_in=started.expires_in, number_matching=number is not None,
               **({"replaced_push_request_id": replaced} if replaced is not None else {}))
    return flow.redirect(MFA_PAGE, status=303)


# --- POST /_gateway/mfa/cancel -------------------------------------------------------------------------


async def cancel(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Stop waiting for the push ("Cancel", "Use a code instead"): the session forgets it, so an
    approval that comes later counts for nothing, and the page offers the methods again."""
    flow = flow_of(request)
    checked = await _checked_post(request, ctx, flow)
    if not isinstance(checked, tuple):
        return checked
    pending, form = checked
    record = pending.record
    if record.push_request_id is not None:
        request_id, expires_at = record.push_request_id, record.push_expires_at
        record.push_request_id = None
        record.push_expires_at = None
        record.push_number = None
        try:
            saved = await flow.store.save(pending.cookie, record, flow.ttl(record))
        except StoreUnavailable as exc:
            return flow.store_unavailable(request, ctx, exc)
        if saved:
            flow.audit("push_cancelled", ctx, record, push_request_id=request_id)
            if expires_at is not None:
                await flow.forget_push(request_id, expires_at)
    # "Use a code instead" lands on the code field.
    return flow.redirect(MFA_PAGE + ("#code" if form.get("then") == "code" else ""), status=303)


# --- GET /_gateway/mfa/status ------------------------------------------------------------------------------


async def status(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """`{"status": "pending|approved|rejected|expired"}` from the store: never a Monosign call."""
    flow = flow_of(request)
    try:
        found = await flow.site_lookup(request, ctx)
        record = found.record
        if record is None or flow.remaining(record) <= 0:
            return web.json_response({"status": PushStatus.EXPIRED.value}, status=401, headers=_NO_STORE)
        if record.passed:
            return web.json_response({"status": PushStatus.APPROVED.value}, headers=_NO_STORE)
        if record.push_request_id is None or record.push_expires_at is None:
            return web.json_response({"status": PushStatus.EXPIRED.value}, headers=_NO_STORE)
        push_status = await flow.poller.status(record.push_request_id, record.push_expires_at)
        if push_status is PushStatus.PENDING:
            # The poller may have died with another replica: a lease nobody renewed is taken here.
            await flow.poller.ensure(record.push_request_id, record.push_expires_at)
    except StoreUnavailable:
        return web.json_response({"status": "unavailable"}, status=503, headers=_NO_STORE)
    return web.json_response({"status": push_status.value}, headers=_NO_STORE)


# --- GET /_gateway/mfa/complete ----------------------------------------------------------------------------


async def complete(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Decide for every push status: approved → in; pending → wait; rejected / expired → choose again.

    The user comes here right after answering on the phone ("I have approved it", the no-script
    refresh, the script seeing `approved`), often before the poller's next turn: so Monosign is
    asked now (`check_now`: at most once per push per second, whatever the number of requests)."""
    flow = flow_of(request)
    pending = await _pending(request, ctx, flow)
    if not isinstance(pending, Pending):
        return pending
    record = pending.record
    if record.push_request_id is None or record.push_expires_at is None:
        return flow.redirect(MFA_PAGE, status=303)
    try:
        push_status = await flow.poller.check_now(record.push_request_id, record.push_expires_at)
        if push_status is PushStatus.APPROVED:
            return await finish(request, ctx, flow, pending.cookie, record, method="push")
        if push_status is PushStatus.PENDING:
            await flow.poller.ensure(record.push_request_id, record.push_expires_at)
            return await _mfa_page(request, ctx, flow, pending, push_state="waiting")
        request_id = record.push_request_id
        record.push_request_id = None
        record.push_expires_at = None
        record.push_number = None
        if not await flow.store.save(pending.cookie, record, flow.ttl(record)):
            return flow.redirect(MFA_PAGE, status=303)
        if push_status is PushStatus.REJECTED:
            _, locked = await count_failure(request, ctx, flow, record, method="push", event="push_rejected",
                                            push_request_id=request_id)
            return locked or await _mfa_page(request, ctx, flow, pending, notice="push-rejected")
        flow.metrics.second_factor.labels("push", "expired").inc()
        flow.audit("push_expired", ctx, record, push_request_id=request_id)
        return await _mfa_page(request, ctx, flow, pending, notice="push-expired")
    except StoreUnavailable as exc:
        return flow.store_unavailable(request, ctx, exc)
