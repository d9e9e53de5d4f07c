"""Responses shaped like IIS and Exchange's CAFE produce them."""

from __future__ import annotations

from aiohttp import web

from gateway.sim.owa import pages
from gateway.sim.owa.state import RequestContext
from gateway.sim.owa.wire import (
    CADATA_COOKIES,
    CAFE_COOKIES,
    LOGIN_TIMEOUT_PLAIN_BODY,
    LOGIN_TIMEOUT_SCRIPT_BODY,
    expired_cookie,
    is_oeh_request,
    logon_redirect,
    object_moved_body,
    original_url_for_logon,
    set_cookie,
)

HTML = "text/html"
REASON_PHRASES = {440: "Login Timeout", 449: "Retry With"}


def redirect(location: str, *, status: int = 302) -> web.Response:
    response = web.Response(status=status, text=object_moved_body(location), content_type=HTML, charset="utf-8")
    response.headers["Location"] = location
    return response


def page(html: str, *, status: int = 200, no_store: bool = False) -> web.Response:
    response = web.Response(status=status, text=html, content_type=HTML, charset="utf-8")
    response.headers["Cache-Control"] = "no-cache, no-store" if no_store else "no-cache"
    return response


def not_found() -> web.Response:
    return web.Response(status=404, text=pages.render("not_found.html"), content_type=HTML)


def bad_request(why: str) -> web.Response:
    return web.Response(status=400, reason="Bad Request", content_type=HTML, charset="utf-8",
                        text=f"<HTML><BODY><h2>Bad Request</h2><p>{why}</p></BODY></HTML>")


def method_not_allowed() -> web.Response:
    return web.Response(status=405, text="<HTML><BODY>405 Method Not Allowed</BODY></HTML>", content_type=HTML)


def login_timeout(*, script: bool) -> web.Response:
    """440 Login Timeout: what OWA's scripts expect instead of a redirect."""
    response = web.Response(status=440, reason="Login Timeout", content_type=HTML,
                            text=LOGIN_TIMEOUT_SCRIPT_BODY if script else LOGIN_TIMEOUT_PLAIN_BODY)
    response.force_close()  # Connection: close
    return response


def status_response(status: int, text: str) -> web.Response:
    """A knob-chosen status (e.g. the canary failure) with a plain body."""
    response = web.Response(status=status, reason=REASON_PHRASES.get(status), text=text, content_type="text/plain")
    if status == 440:
        response.force_close()
    return response


def session_cookie(ctx: RequestContext, name: str, value: str) -> str:
    """One of the five FBA cookies: HttpOnly, SameSite=None smuggled into the path when applicable."""
    return set_cookie(name, value, samesite_none=ctx.samesite_none, secure=ctx.secure_cookies, httponly=True)


def expire_cookies(response: web.StreamResponse, names: tuple[str, ...] | list[str]) -> None:
    for name in names:
        response.headers.add("Set-Cookie", expired_cookie(name))


def expire_carried_fba_cookies(response: web.StreamResponse, ctx: RequestContext) -> None:
    """DeleteFbaAuthCookies: only the FBA/CAFE cookies the request actually carried."""
    expire_cookies(response, [name for name in (*CADATA_COOKIES, *CAFE_COOKIES) if name in ctx.cookies])


def unauthenticated(request: web.Request, ctx: RequestContext, *, expired: bool) -> web.Response:
    """No (or an expired) session: navigations go to the logon page, everything else gets 440."""
    response: web.Response
    if request.method == "GET" and not (expired and is_oeh_request(request.query_string)):
        reason = 3 if expired else 2 if "Authorization" in request.headers else 0
        original = original_url_for_logon(
            scheme=ctx.redirect_scheme, host=ctx.host, target=request.raw_path,
            explicit_logon_user=request.headers.get("X-OWA-ExplicitLogonUser"),
        )
        response = redirect(logon_redirect(scheme=ctx.redirect_scheme, host=ctx.host,
                                           original_url=original, reason=reason))
    else:
        response = login_timeout(script=request.method == "POST")
    expire_carried_fba_cookies(response, ctx)
    return response
