"""The signed-in side: start page, service.svc, notifications, attachments, ECP.

Every handler here runs only with a valid session (`ctx.session`); the dispatcher answers the
rest with the logon redirect or 440.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from gateway.sim.owa import pages
from gateway.sim.owa.auth import resources_root
from gateway.sim.owa.config import SimUser
from gateway.sim.owa.content import attachment_chunks
from gateway.sim.owa.responses import method_not_allowed, not_found, page, redirect, status_response
from gateway.sim.owa.sessions import OwaSession
from gateway.sim.owa.state import OwaSimState, RequestContext
from gateway.sim.owa.wire import query_param, set_cookie

JSON_TYPE = "application/json"
UPLOAD_ACTION = "createattachmentfromlocalfile"
_READ_CHUNK = 64 * 1024


def _session(ctx: RequestContext) -> OwaSession:
    if ctx.session is None:  # the dispatcher guarantees it; fail closed if it ever does not
        raise web.HTTPForbidden()
    return ctx.session


def owa_root(ctx: RequestContext) -> str:
    """`/owa/` or, under explicit logon, `/owa/<smtp>/`."""
    return f"/owa/{ctx.resolved.mailbox}/" if ctx.resolved.mailbox else "/owa/"


def _mailbox_for(state: OwaSimState, ctx: RequestContext) -> SimUser | None:
    """The mailbox a request works on: the user's own, or one they may open by explicit logon."""
    user = _session(ctx).user
    if ctx.resolved.mailbox is None:
        return user
    target = state.users.mailbox(ctx.resolved.mailbox)
    if target is None:
        return None
    if target is user or target.smtp.casefold() in {smtp.casefold() for smtp in user.delegate_of}:
        return target
    return None


def _no_mailbox_access(state: OwaSimState, ctx: RequestContext) -> web.Response:
    return page(pages.render("error_fe.html", resources=resources_root(state), server_name=state.config.server_name,
                             client_id=ctx.request_id, http_code="403", cafe_error="ExplicitLogonAccessDenied"),
                status=403)


def _canary_ok(request: web.Request, ctx: RequestContext) -> bool:
    """X-OWA-CANARY header (or query parameter for downloads and streams) must match the session's cookie."""
    expected = _session(ctx).canary.encode()
    cookie = ctx.cookies.get("X-OWA-CANARY", "").encode()
    presented = (request.headers.get("X-OWA-CANARY") or query_param(request.query_string, "X-OWA-CANARY") or "")
    return hmac.compare_digest(cookie, expected) and hmac.compare_digest(presented.encode(), expected)


def _canary_failure(state: OwaSimState) -> web.Response:
    state.recorder.counters.canary_failures += 1
    return status_response(state.config.canary_failure_status, "The request failed the X-OWA-CANARY check.")


def _start_page_cookies(ctx: RequestContext, session: OwaSession) -> list[str]:
    """X-BackEndCookie, X-OWA-CANARY, ClientId, UC: set when the browser does not have this session's values."""
    secure = ctx.secure_cookies
    wanted = [
        ("X-BackEndCookie", f"{session.user.sid}={session.backend_cookie}", True),
        ("X-OWA-CANARY", session.canary, False),  # not HttpOnly: OWA's script copies it into a header
        ("ClientId", session.client_id, False),
        ("UC", session.user_context, False),
    ]
    return [
        set_cookie(name, value, samesite_none=False, secure=secure, httponly=httponly)
        for name, value, httponly in wanted
        if ctx.cookies.get(name) != value
    ]


async def start_page(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed()
    session = _session(ctx)
    mailbox = _mailbox_for(state, ctx)
    if mailbox is None:
        return _no_mailbox_access(state, ctx)
    if state.config.language_selection and session.user.username not in state.languages_set:
        response = redirect(f"{owa_root(ctx)}languageselection.aspx")
    else:
        response = page(pages.render(
            "mailbox.html", resources=resources_root(state), user=session.user, mailbox=mailbox,
            messages=mailbox.messages, owa_root=owa_root(ctx),
        ), no_store=True)
    for cookie in _start_page_cookies(ctx, session):
        response.headers.add("Set-Cookie", cookie)
    return response


async def language_page(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    return page(pages.render("language.html", resources=resources_root(state), owa_root=owa_root(ctx)))


async def language_post(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    if request.method != "POST":
        return method_not_allowed()
    await _drain(request)
    state.languages_set.add(_session(ctx).user.username)
    return redirect(owa_root(ctx))


def _server_version(state: OwaSimState) -> dict[str, Any]:
    parts = [int(p) if p.isdigit() else 0 for p in (state.config.build.split(".") + ["0"] * 4)[:4]]
    return {"MajorVersion": parts[0], "MinorVersion": parts[1], "MajorBuildNumber": parts[2],
            "MinorBuildNumber": parts[3], "Version": "V2017_07_11"}


def _envelope(state: OwaSimState, action: str, item: dict[str, Any]) -> dict[str, Any]:
    message = {"__type": f"{action}ResponseMessage:#Exchange", "ResponseClass": "Success",
               "ResponseCode": "NoError", **item}
    return {"Header": {"ServerVersionInfo": _server_version(state)},
            "Body": {"ResponseMessages": {"Items": [message]}}}


async def _drain(request: web.Request) -> tuple[int, str]:
    """Read a request body chunk by chunk (never held in memory): (byte count, sha256 hex)."""
    digest = hashlib.sha256()
    count = 0
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        digest.update(chunk)
        count += len(chunk)
    return count, digest.hexdigest()


def _url_post_data(request: web.Request) -> object | None:
    raw = request.headers.get("x-owa-urlpostdata")
    if raw is None:
        return None
    text = unquote(raw)
    try:
        decoded: object = json.loads(text)
    except json.JSONDecodeError:
        return text
    return decoded


async def service(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    """POST /owa/service.svc?action=A: the JSON API, behind the canary."""
    if state.config.service_error:
        return redirect("/owa/auth/errorFE.aspx?httpCode=500")
    if request.method not in ("GET", "POST"):
        return method_not_allowed()
    if not _canary_ok(request, ctx):
        await _drain(request)
        return _canary_failure(state)
    mailbox = _mailbox_for(state, ctx)
    if mailbox is None:
        return _no_mailbox_access(state, ctx)
    action = query_param(request.query_string, "action") or request.headers.get("Action") or ""
    byte_count, sha256 = await _drain(request)
    item: dict[str, Any] = {}
    if action.lower() == UPLOAD_ACTION:
        item = {"ByteCount": byte_count, "Sha256": sha256}
    elif action.lower() == "finditem":
        item = {"TotalItemsInView": len(mailbox.messages), "Items": [
            {"Subject": m.subject, "From": m.sender, "Preview": m.preview, "DateTimeReceived": m.received}
            for m in mailbox.messages
        ]}
    body = _envelope(state, action, item)
    echoed = _url_post_data(request)
    if echoed is not None:
        body["UrlPostData"] = echoed
    return web.json_response(body, content_type=JSON_TYPE, headers={"Cache-Control": "no-cache"})


def _requested_size(request: web.Request, state: OwaSimState) -> int | None:
    raw = query_param(request.query_string, "size")
    if raw is None:
        return state.config.attachment_size
    if not raw.isdigit() or int(raw) > state.config.attachment_max_size:
        return None
    return int(raw)


async def download(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    """GetFileAttachment / attachment.ashx: a large deterministic file, streamed in 64 KiB blocks."""
    if state.config.service_error:
        return redirect("/owa/auth/errorFE.aspx?httpCode=500")
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed()
    if not _canary_ok(request, ctx):
        return _canary_failure(state)
    size = _requested_size(request, state)
    if size is None:
        return web.Response(status=400, text="size must be a whole number of bytes within the configured maximum")
    response = web.StreamResponse(headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": 'attachment; filename="attachment.bin"',
        "Cache-Control": "no-cache",
    })
    if state.config.attachment_chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = size
    await response.prepare(request)
    try:
        if request.method == "GET":
            for chunk in attachment_chunks(size):
                await response.write(chunk)
        await response.write_eof()
    except ConnectionError:
        pass  # the client stopped reading; nothing to clean up
    return response


async def events(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    """ev.owa2: FinishNotificationRequest hands out a channel id; PendingNotificationRequest streams."""
    event = (query_param(request.query_string, "ev") or "").lower()
    if request.method == "POST" and event == "finishnotificationrequest":
        await _drain(request)
        cid = secrets.token_hex(16)
        state.notification_channels.add(cid)
        return web.json_response({"cid": cid}, headers={"Cache-Control": "no-cache"})
    if request.method == "GET" and event == "pendingnotificationrequest":
        return await _notification_stream(request, state)
    return web.Response(status=400, text="unknown notification request")


async def _notification_stream(request: web.Request, state: OwaSimState) -> web.StreamResponse:
    """One `<script>{…}</script>` chunk right away, then one per interval until the hold time ends."""
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    interval = state.config.notification_interval_s
    deadline = time.monotonic() + state.config.notification_hold_s
    sequence = 0
    try:
        while True:
            payload = json.dumps({"id": str(sequence), "ts": time.time(), "data": []}, separators=(",", ":"))
            await response.write(f"<script>{payload}</script>".encode())
            sequence += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(interval, remaining))
            if time.monotonic() >= deadline:
                break
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away; OWA simply re-issues the request
    return response


async def keepalive(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    await _drain(request)
    return web.Response(text="", content_type="text/plain", headers={"Cache-Control": "no-cache"})


async def session_data(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        return method_not_allowed()
    await _drain(request)
    mailbox = _mailbox_for(state, ctx)
    if mailbox is None:
        return _no_mailbox_access(state, ctx)
    return web.json_response({
        "owaUserConfig": {"SessionSettings": {
            "UserDisplayName": mailbox.display_name, "UserEmailAddress": mailbox.smtp,
            "LogonEmailAddress": _session(ctx).user.smtp, "UserPrincipalName": mailbox.principal_name,
            "IsExplicitLogon": ctx.resolved.mailbox is not None,
        }},
        "findFolders": {"Body": {"ResponseMessages": {"Items": [{"RootFolder": {"TotalItemsInView": 4}}]}}},
    }, headers={"Cache-Control": "no-cache"})


async def ecp_page(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed()
    return page(pages.render("ecp.html", resources=resources_root(state), user=_session(ctx).user), no_store=True)


async def app_not_found(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    await _drain(request)
    return not_found()
