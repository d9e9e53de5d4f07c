"""The simulator as an aiohttp application, and a way to run it in-process on 127.0.0.1:0.

One catch-all route: IIS matches paths case-insensitively, so the simulator classifies the path
itself (routes.resolve), checks the FBA session for everything that is not anonymous, and hands
the request to a page handler.
"""

from __future__ import annotations

import ssl
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from itertools import count

from aiohttp import web

from gateway.proxy.extension_methods import ExtensionMethodsRunner
from gateway.sim.exchange_clients import endpoints as exchange_clients
from gateway.sim.owa import auth, control, mailbox
from gateway.sim.owa.config import OwaSimConfig
from gateway.sim.owa.responses import session_cookie, unauthenticated
from gateway.sim.owa.routes import Page, resolve
from gateway.sim.owa.sessions import Verdict
from gateway.sim.owa.state import CONTEXT_KEY, STATE_KEY, OwaSimState, RequestContext
from gateway.sim.owa.wire import is_user_activity, parse_cookie_header, ua_supports_samesite_none

Handler = Callable[[web.Request, OwaSimState, RequestContext], Awaitable[web.StreamResponse]]

HANDLERS: dict[Page, Handler] = {
    Page.ROOT: auth.root,
    Page.VDIR_NO_SLASH: auth.vdir_no_slash,
    Page.HEALTHCHECK: auth.healthcheck,
    Page.FAVICON: auth.favicon,
    Page.LOGON_PAGE: auth.logon_page,
    Page.AUTH_RESOURCE: auth.auth_resource,
    Page.ERROR_FE: auth.error_fe,
    Page.SIGNED_OUT_PAGE: auth.signed_out_page,
    Page.EXPIRED_PASSWORD: auth.expired_password,
    Page.AUTH_NOT_FOUND: auth.auth_not_found,
    Page.AUTH_POST: auth.auth_post,
    Page.LOGOFF: auth.logoff,
    Page.NOT_FOUND: auth.auth_not_found,
    Page.START_PAGE: mailbox.start_page,
    Page.SERVICE: mailbox.service,
    Page.DOWNLOAD: mailbox.download,
    Page.EVENTS: mailbox.events,
    Page.KEEPALIVE: mailbox.keepalive,
    Page.PING: mailbox.keepalive,
    Page.SESSION_DATA: mailbox.session_data,
    Page.LANGUAGE_PAGE: mailbox.language_page,
    Page.LANGUAGE_POST: mailbox.language_post,
    Page.ECP_PAGE: mailbox.ecp_page,
    Page.APP_NOT_FOUND: mailbox.app_not_found,
    Page.EXCHANGE_CLIENT: exchange_clients.handle,
}


class _ConnectionIds:
    """A small integer per TCP connection (later: NTLM state is bound to it)."""

    def __init__(self) -> None:
        self._ids: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self._fallback: dict[int, int] = {}
        self._next = count(1)

    def of(self, transport: object | None) -> int:
        if transport is None:
            return 0
        try:
            found = self._ids.get(transport)
            if found is None:
                found = self._ids[transport] = next(self._next)
            return found
        except TypeError:  # a transport type without weak references
            return self._fallback.setdefault(id(transport), next(self._next))


_SNI = web.AppKey("owa_sim_sni", weakref.WeakKeyDictionary)
_CONNECTIONS = web.AppKey("owa_sim_connections", _ConnectionIds)


def _context(request: web.Request, state: OwaSimState) -> RequestContext:
    config = state.config
    resolved = resolve(request.path)
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    peer = transport.get_extra_info("peername") if transport is not None else None
    sni = request.app[_SNI].get(ssl_object) if ssl_object is not None else None
    record = state.recorder.record(
        connection=request.app[_CONNECTIONS].of(transport),
        peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer or ""),
        tls=ssl_object is not None, sni=sni, method=request.method, target=request.raw_path,
        http_version=f"{request.version.major}.{request.version.minor}",
        headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers],
        path_key=request.path.lower(),
    )
    secure = {"always": True, "never": False}.get(config.secure_cookies, request.secure)
    return RequestContext(
        resolved=resolved,
        cookies=parse_cookie_header(request.headers.getall("Cookie", []), lenient=config.cookie_reader == "lenient"),
        host=request.headers.get("Host") or config.default_host,
        redirect_scheme="https" if config.redirect_scheme == "https" else request.scheme,
        secure_cookies=secure,
        samesite_none=config.samesite_none and ua_supports_samesite_none(request.headers.get("User-Agent", "")),
        record=record,
    )


async def _dispatch(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if request.path.lower().startswith("/_sim/"):
        return await control.handle(request, state)
    ctx = _context(request, state)
    request[CONTEXT_KEY] = ctx
    try:
        return await _serve(request, state, ctx)
    finally:
        if ctx.record is not None:
            content = request.content
            ctx.record.body_length = content.total_bytes if content.at_eof() else request.content_length


async def _serve(request: web.Request, state: OwaSimState, ctx: RequestContext) -> web.StreamResponse:
    counters = state.recorder.counters
    check = state.sessions.check(ctx.cookies, now=state.clock(),
                                 user_activity=is_user_activity(request.query_string))
    if check.verdict is Verdict.TAMPERED:
        counters.tampered_cookies += 1
    handler = HANDLERS[ctx.resolved.page]
    if ctx.resolved.anonymous:
        ctx.session = check.session if check.verdict is Verdict.VALID else None
        return await handler(request, state, ctx)
    if check.verdict is not Verdict.VALID or check.session is None:
        if check.verdict is Verdict.EXPIRED:
            counters.expired_sessions += 1
        elif check.verdict is Verdict.ENDED:
            counters.ended_session_replays += 1
        return unauthenticated(request, ctx, expired=check.verdict is Verdict.EXPIRED)
    ctx.session = check.session
    if check.reissue_ttl:
        ttl = state.sessions.issue_ttl(check.session, state.clock())
        ctx.extra_cookies.append(session_cookie(ctx, "cadataTTL", ttl))
    return await handler(request, state, ctx)


async def _exchange_headers(request: web.Request, response: web.StreamResponse) -> None:
    """What every IIS/CAFE response carries, plus cookies queued by the session check."""
    state = request.app[STATE_KEY]
    ctx = request.get(CONTEXT_KEY)
    response.headers["Server"] = "Microsoft-IIS/10.0"
    response.headers["X-Powered-By"] = "ASP.NET"
    response.headers["X-FEServer"] = state.config.server_name
    response.headers["request-id"] = ctx.request_id if ctx is not None else str(uuid.uuid4())
    if ctx is None:
        return
    if ctx.resolved.vdir in ("owa", "ecp"):
        response.headers["X-OWA-Version"] = state.config.build
    for cookie in ctx.extra_cookies:
        response.headers.add("Set-Cookie", cookie)
    if ctx.record is not None:
        ctx.record.status = response.status


def build_app(config: OwaSimConfig | None = None, *, state: OwaSimState | None = None) -> web.Application:
    """The OWA simulator as an aiohttp app; its state is `app[STATE_KEY]`."""
    app = web.Application(client_max_size=1024 * 1024)
    app[STATE_KEY] = state or OwaSimState.from_config(config or OwaSimConfig())
    app[_SNI] = weakref.WeakKeyDictionary()
    app[_CONNECTIONS] = _ConnectionIds()
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    app.on_response_prepare.append(_exchange_headers)
    exchange_clients.install(app, app[STATE_KEY].config.exchange_clients)
    return app


def server_ssl_context(app: web.Application, cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS context for the simulator that also records the SNI each connection asked for."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    attach_sni_recorder(app, context)
    return context


def attach_sni_recorder(app: web.Application, context: ssl.SSLContext) -> None:
    sni_seen = app[_SNI]

    def remember(ssl_object: object, server_name: str | None, _: ssl.SSLContext) -> None:
        with suppress(TypeError):
            sni_seen[ssl_object] = server_name
        return None

    context.sni_callback = remember


@dataclass(frozen=True, slots=True)
class RunningOwaSim:
    base_url: str
    port: int
    state: OwaSimState
    app: web.Application


@asynccontextmanager
async def running_owa_sim(
    config: OwaSimConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    app: web.Application | None = None,
) -> AsyncIterator[RunningOwaSim]:
    """Run the simulator on host:port (0 = a free port) for the duration of the block."""
    app = app or build_app(config)
    # Outlook Anywhere's RPC_IN_DATA / RPC_OUT_DATA need the extension-method connections.
    runner = ExtensionMethodsRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        scheme = "https" if ssl_context is not None else "http"
        shown_host = f"[{host}]" if ":" in host else host
        yield RunningOwaSim(base_url=f"{scheme}://{shown_host}:{bound_port}", port=bound_port,
                            state=app[STATE_KEY], app=app)
    finally:
        await runner.cleanup()
