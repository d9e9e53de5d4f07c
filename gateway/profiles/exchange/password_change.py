"""Exchange's expired-password page through a passed session: only for the session's own user.

`/owa/auth/expiredpassword.aspx` changes the password of whatever account its form's `username`
names, proven by that account's old password alone. Through a passed session of one's own (the
route needs one), a password for another account would otherwise change that account's password
(and lock its owner out), with no second factor of its owner's. So the small form is read by the
logon form's strict rules (the very bytes Exchange reads; refused with 400 where Exchange could read
them differently) and forwarded only when its `username` names the session's user by the rules of
sign-in (`gateway.profiles.exchange.identity.names_session_user`); otherwise 403 and the audit event `refused`
(reason `password_change_for_another_user`).

The page is matched on any path segment (`…/expiredpassword.aspx/x` is the same page to IIS, with
path info) and for every method but GET and HEAD: ASP.NET reads a form from any method.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote

from aiohttp import web

from gateway.app import error_page
from gateway.core import RequestContext, ResponseInspector
from gateway.mfa.flow import MfaFlow
from gateway.monosign import MonosignError
from gateway.policy.login_form import LoginFormRefused, RefusalReason, parse_password_change_form
from gateway.policy.paths import Target
from gateway.profiles.exchange.cookie_rules import forward_upstream
from gateway.profiles.exchange.identity import SessionUserCheck, names_session_user
from gateway.request_body import read_bounded
from gateway.sessions.base import SessionRecord

__all__ = ["forward_password_change", "is_password_change"]

# A path segment IIS serves as the page: its name, or its name followed by an NTFS stream or
# parameters, which IIS refuses or ignores (never another page).
_PAGE_SEGMENT = re.compile(r"expiredpassword\.aspx(?:[:;].*)?")
_READ_METHODS = frozenset({"GET", "HEAD"})


def is_password_change(method: str, target: Target) -> bool:
    """Whether a request to /owa or /ecp may post Exchange's expired-password form.

    Each segment is matched as IIS reads it, percent-decoded: the canonical path keeps `%3B` and
    `%3A` encoded, and IIS decodes them to the `;` and `:` the page's pattern allows."""
    if method.upper() in _READ_METHODS or "expiredpassword.aspx" not in target.lower_path:
        return False
    return any(_PAGE_SEGMENT.fullmatch(unquote(segment)) for segment in target.lower_path.split("/"))


async def forward_password_change(request: web.Request, ctx: RequestContext, flow: MfaFlow, record: SessionRecord,
                                  inspect: ResponseInspector) -> web.StreamResponse:
    """Forward the form (through a passed session, `record`) only for the session's own user."""
    assert ctx.target is not None
    try:
        async with asyncio.timeout(flow.config.form_timeout):
            body = await read_bounded(request, flow.config.login_max_body)
    except TimeoutError:
        flow.audit("refused", ctx, record, reason="password_change_form_too_slow")
        response = error_page(request, ctx, 408)
        response.force_close()
        return response
    if body is None:
        flow.audit("refused", ctx, record, reason="password_change_form_too_large")
        response = error_page(request, ctx, 413)
        response.force_close()
        return response
    try:
        username = parse_password_change_form(request.headers.get("Content-Type"), body, ctx.target.query)
    except LoginFormRefused as exc:
        flow.audit("refused", ctx, record, reason=f"password_change_form_{exc.reason.value}", field=exc.field)
        return error_page(request, ctx, 413 if exc.reason is RefusalReason.TOO_LARGE else 400)
    try:
        check = await names_session_user(username, record.user_id, record.normalised_usernames, flow.monosign)
    except MonosignError as error:
        return flow.monosign_failure(request, ctx, error, record)
    if check is not SessionUserCheck.SAME:
        # The name typed is the attacker's choice: logged as printable text, bounded.
        flow.audit("refused", ctx, record, reason="password_change_for_another_user", check=check.value,
                   form_user="".join(char for char in username[:128] if char.isprintable()))
        return error_page(request, ctx, 403)
    flow.audit("password_change", ctx, record)
    return await forward_upstream(request, ctx, session_passed=True, body=body, inspect=inspect)
