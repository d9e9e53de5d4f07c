"""The anonymous side: logon page, the credential post, logoff, error and health pages."""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web

from gateway.observability.logging import get_logger
from gateway.sim.owa import pages
from gateway.sim.owa.responses import (
    bad_request,
    expire_carried_fba_cookies,
    expire_cookies,
    method_not_allowed,
    not_found,
    page,
    redirect,
    session_cookie,
    unauthenticated,
)
from gateway.sim.owa.sessions import Verdict, session_timeout
from gateway.sim.owa.state import OwaSimState, RequestContext
from gateway.sim.owa.wire import (
    CADATA_COOKIES,
    LOGOFF_PAGE_TARGET,
    destination_problem,
    dotnet_url_encode,
    location_value,
    logon_redirect,
    origin,
    parse_flags,
    query_param,
    rescheme,
)

log = get_logger("gateway.sim.owa")

REQUIRED_FIELDS = ("destination", "username", "password", "flags")
_MAX_COUNTED_NAME = 256


def resources_root(state: OwaSimState) -> str:
    return f"/owa/auth/{state.config.resource_build}/themes/resources"


async def root(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    if state.config.root_redirect:
        return redirect("/owa/")
    return web.Response(text=pages.render("iisstart.html"), content_type="text/html")


async def vdir_no_slash(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    return redirect(f"/{ctx.resolved.vdir}/", status=state.config.vdir_redirect_status)


async def healthcheck(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    return web.Response(text=f"200 OK\r\n{state.config.server_fqdn}", content_type="text/plain")


async def favicon(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    return web.Response(body=pages.FAVICON, content_type="image/x-icon")


async def auth_resource(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    found = pages.static_resource(ctx.resolved.resource or "")
    if found is None or request.method not in ("GET", "HEAD"):
        return not_found()
    body, content_type = found
    response = web.Response(body=body, content_type=content_type)
    response.headers["Cache-Control"] = "public, max-age=31536000"
    return response


async def logon_page(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed()
    qs = request.query_string
    reason = parse_flags(query_param(qs, "reason") or "0")
    replace_current = query_param(qs, "replaceCurrent") == "1"
    destination = query_param(qs, "url") or f"{origin(ctx.redirect_scheme, ctx.host)}/owa/"
    # flogon.js' redir() reloads this page with replaceCurrent=1 in the outermost window.
    again = "/owa/auth/logon.aspx?replaceCurrent=1"
    if reason:
        again += f"&reason={reason}"
    again += f"&url={dotnet_url_encode(destination)}"
    html = pages.render(
        "logon.html", build=state.config.build, resources=resources_root(state),
        replace_current=1 if replace_current else 0, logon_again_url=again, destination=destination,
        error_text=state.config.logon_texts.get(reason, "") if reason else "",
    )
    return page(html, no_store=True)


async def _read_form(request: web.Request, limit: int) -> bytes | None:
    """The url-encoded credential form, or None when it is larger than `limit`."""
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)


async def auth_post(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    """POST /owa/auth.owa (and the legacy /owa/auth/owaauth.dll): FbaModule's credential post."""
    if request.method != "POST":
        if ctx.session is not None:
            return redirect("/owa/")
        return unauthenticated(request, ctx, expired=False)
    body = await _read_form(request, state.config.max_form_bytes)
    if body is None:
        return web.Response(status=413, text="<HTML><BODY>413 Request Entity Too Large</BODY></HTML>",
                            content_type="text/html")
    # A missing Content-Type counts as url-encoded, as in Exchange.
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if missing:
        return bad_request(f"missing form field: {missing[0]}")
    destination = fields["destination"]
    problem = destination_problem(destination, ctx.host, require_host_match=state.config.require_host_match)
    if problem:
        return bad_request(problem)
    flags = parse_flags(fields["flags"])
    user = state.users.authenticate(fields["username"], fields["password"])
    counters = state.recorder.counters
    if user is None:
        known = state.users.resolve(fields["username"])
        counted = known.username if known else fields["username"].strip().lower()[:_MAX_COUNTED_NAME]
        counters.logins_failed[counted] += 1
        log.info("owa_sim_login_failed", user=counted)
        back_to = rescheme(destination, ctx.redirect_scheme)
        response = redirect(logon_redirect(scheme=ctx.redirect_scheme, host=ctx.host,
                                           original_url=back_to, reason=2))
        expire_carried_fba_cookies(response, ctx)
        return response
    timeout = session_timeout(flags, public_timeout_s=state.config.public_timeout_s,
                              private_timeout_s=state.config.private_timeout_s)
    session, ttl = state.sessions.create(user, flags, timeout, state.clock())
    counters.logins_ok[user.username] += 1
    log.info("owa_sim_login_ok", user=user.username, private=bool(flags & 4))
    response = redirect(location_value(destination))
    for name, value in session.cookie_values(ttl).items():
        response.headers.add("Set-Cookie", session_cookie(ctx, name, value))
    return response


async def expired_password(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    """/owa/auth/expiredpassword.aspx: change the password of the account the form names, proven by
    its old password alone (anonymous, like the rest of /owa/auth/: no session is consulted). Fields
    are read as ASP.NET's Request.Form does: names case-insensitively, repeats joined with commas."""
    destination = query_param(request.query_string, "url") or f"{origin(ctx.redirect_scheme, ctx.host)}/owa/"
    if request.method in ("GET", "HEAD"):
        return page(pages.render("expired_password.html", resources=resources_root(state), destination=destination,
                                 error_text=""), no_store=True)
    if request.method != "POST":
        return method_not_allowed()
    body = await _read_form(request, state.config.max_form_bytes)
    if body is None:
        return web.Response(status=413, text="<HTML><BODY>413 Request Entity Too Large</BODY></HTML>",
                            content_type="text/html")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        key = name.lower()
        fields[key] = f"{fields[key]},{value}" if key in fields else value
    if any(name not in fields for name in ("username", "oldpwd", "newpwd", "conf")):
        return bad_request("missing form field")
    error = ""
    if fields["newpwd"] != fields["conf"]:
        error = "The passwords you entered don't match."
    elif (user := state.users.change_password(fields["username"], fields["oldpwd"], fields["newpwd"])) is None:
        error = "The user name or password you entered isn't correct."
    else:
        state.recorder.counters.password_changes[user.username] += 1
        log.info("owa_sim_password_changed", user=user.username)
        response = redirect(logon_redirect(scheme=ctx.redirect_scheme, host=ctx.host,
                                           original_url=fields.get("destination") or destination, reason=4))
        expire_carried_fba_cookies(response, ctx)
        return response
    return page(pages.render("expired_password.html", resources=resources_root(state), destination=destination,
                             error_text=error), no_store=True)


def _end_session(state: OwaSimState, ctx: RequestContext) -> None:
    check = state.sessions.check(ctx.cookies, now=state.clock(), user_activity=False)
    if check.session is not None and check.verdict in (Verdict.VALID, Verdict.EXPIRED):
        state.sessions.end(check.session)
        state.recorder.counters.logoffs += 1


async def logoff(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    """/owa/logoff.owa and /ecp/logoff.aspx: end the session, expire the cookies, show the signed-out page."""
    _end_session(state, ctx)
    response = redirect(LOGOFF_PAGE_TARGET)
    expire_cookies(response, [*CADATA_COOKIES, "X-OWA-CANARY", "UC"])
    return response


async def signed_out_page(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    """/owa/auth/logoff.aspx?Cmd=logoff&src=exch: scripts also log off by fetching it directly."""
    response = page(pages.render("signed_out.html", resources=resources_root(state)))
    if (query_param(request.query_string, "Cmd") or "").lower() == "logoff" and any(
        name in ctx.cookies for name in CADATA_COOKIES
    ):
        _end_session(state, ctx)
        expire_cookies(response, [*CADATA_COOKIES, "X-OWA-CANARY", "UC"])
    return response


async def error_fe(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    qs = request.query_string
    return page(pages.render(
        "error_fe.html", resources=resources_root(state), server_name=state.config.server_name,
        client_id=ctx.request_id, http_code=query_param(qs, "httpCode") or "",
        cafe_error=query_param(qs, "CafeError") or "",
    ))


async def auth_not_found(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    return not_found()
