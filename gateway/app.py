"""The gateway's aiohttp Application: edge checks, one canonical path, a handler per route class.

Every request takes the same way through `_entry` (one catch-all route, so aiohttp's router never
decides anything on its own spelling of the path):

1. `decide`: request id, client address, edge checks (origin-form target, Host allow-list,
   framing aiohttp still accepts), `canonicalize(request.raw_path)` once, `classify`.
2. the `Route` that serves it: its site's (a passthrough site), the gateway's own pages for
   `/_gateway/`, else the one the application's profile chooses (`AppState.profile`, which
   classified it in step 1). The pipeline names no profile.
3. one access-log line and the metrics, whatever happened.

`Expect: 100-continue` is answered by `_expect`, which runs the same `decide` plus the route's
`may_continue` check *before* aiohttp would send `100 Continue`, so a refused client never gets
invited to send its body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from aiohttp import HttpVersion11, web
from multidict import CIMultiDict
from yarl import URL

from gateway import __version__
from gateway._compat import c_parser_loaded
from gateway.core import CONTEXT, RequestContext, ResponseInspector, Route, SiteRoute, Transfer, UpstreamAnswer
from gateway.observability.access import AccessLog
from gateway.observability.logging import get_logger, request_id_var
from gateway.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.pages import error_response
from gateway.pages.static_files import STATIC_PREFIX
from gateway.policy.edge import EdgeRejection, check_edge, new_request_id, normalise_host, valid_request_id
from gateway.policy.headers import client_ip as resolve_client_ip
from gateway.policy.paths import BadTarget, canonicalize
from gateway.policy.routes import RouteClass
from gateway.proxy.drain import DrainStarted
from gateway.proxy.forwarder import ClientGone, Forwarder, UpstreamError, upstream_request_headers
from gateway.state import STATE, AppState

_access_log = AccessLog()
log = get_logger("gateway.app")

# The access log names query parameters (never their values: they may carry tokens).
MAX_LOGGED_QUERY_NAMES = 16
MAX_LOGGED_QUERY_NAME_LENGTH = 40
SERVER_NAME = "monosign-gateway"
# Status logged when the client went away before a response was sent (nginx's convention).
CLIENT_CLOSED_REQUEST = 499


class CParserMissing(RuntimeError):
    """aiohttp runs on its pure-Python parser: slower, and where most of its smuggling CVEs were."""


def assert_c_parser() -> None:
    """Refuse to serve without aiohttp's C (llhttp) request parser."""
    if not c_parser_loaded():
        raise CParserMissing(
            "aiohttp's C HTTP parser is not loaded (is AIOHTTP_NO_EXTENSIONS set?); refusing to start"
        )


@lru_cache(maxsize=4096)
def _normalised_peer(peer_ip: str) -> str:
    """The peer's address in the header policy's normal form (IPv4-mapped IPv6 as IPv4)."""
    return resolve_client_ip(peer_ip, {}, ())


# --- Edge decision --------------------------------------------------------------------------------


def decide(request: web.Request, state: AppState) -> RequestContext:
    """Request id, client address, edge checks, canonical target and route class (or a rejection)."""
    peer_ip = request.remote or ""
    peer_trusted = state.peer_is_trusted(peer_ip)
    inbound_id = request.headers.get("X-Request-Id") if peer_trusted else None
    request_id = inbound_id if inbound_id is not None and valid_request_id(inbound_id) else new_request_id()
    ctx = RequestContext(
        request_id=request_id,
        started=time.monotonic(),
        peer_ip=peer_ip,
        # Only a trusted proxy's X-Forwarded-For can name another client.
        client_ip=(resolve_client_ip(peer_ip, request.headers, state.trusted_networks) if peer_trusted
                   else _normalised_peer(peer_ip)),
        peer_trusted=peer_trusted,
    )
    rejection = check_edge(request.raw_path, (request.version.major, request.version.minor), request.headers,
                           allowed_hosts=state.allowed_hosts, scheme=state.public_scheme)
    site: SiteRoute | int | None = None
    if state.sites is not None and rejection in (None, EdgeRejection.UNKNOWN_HOST):
        # With a configuration file the sites decide the host (any port): every site's hosts are allowed.
        site = state.sites.dispatch(request.headers["Host"])
        rejection = EdgeRejection.UNKNOWN_HOST if isinstance(site, int) else None
    if rejection is EdgeRejection.UNKNOWN_HOST and _misdirected(request, state, ctx):
        return ctx
    if rejection is not None:
        ctx.rejection = (site if isinstance(site, int) else 400, rejection.value)
        state.metrics.rejected.labels(rejection.name.lower()).inc()
        return ctx
    try:
        ctx.target = canonicalize(request.raw_path)
    except BadTarget as exc:
        ctx.rejection = (400, exc.reason)
        state.metrics.rejected.labels("bad_target").inc()
        return ctx
    route = state.profile.classify(request.method, ctx.target)
    if isinstance(site, SiteRoute) and route is not RouteClass.GATEWAY:
        ctx.site = site  # /_gateway/ stays the gateway's own on every site
    else:
        ctx.route = route
        if route is RouteClass.GATEWAY:
            # Its pages may depend on the site whose host it came to (a portal site's sign-in).
            ctx.host_site = state.sites.host_site(request.headers["Host"]) if state.sites is not None else ""
    return ctx


def _misdirected(request: web.Request, state: AppState, ctx: RequestContext) -> bool:
    """A request for a host the gateway does not serve that it still answers (True): a loopback
    alias of a loopback public URL is sent to the public URL, and the pages' style sheets and logo
    are served to any host, so that the "wrong address" page a browser gets is the branded one.
    Everything else stays refused (False). The edge has checked all but the host already."""
    try:
        target = canonicalize(request.raw_path)
    except BadTarget:
        return False
    if state.loopback_aliases and normalise_host(request.headers["Host"], scheme=state.public_scheme) in \
            state.loopback_aliases:
        ctx.moved_to = state.settings.gateway_public_url + target.forward
    elif not (target.lower_path.startswith(STATIC_PREFIX) and request.method in ("GET", "HEAD")):
        return False
    ctx.target = target
    ctx.route = state.profile.classify(request.method, target)
    return True


def _context(request: web.Request) -> RequestContext:
    # `_expect` runs first only for a request with an Expect header; for any other, asking the
    # request for a context would cost a KeyError, on every request.
    ctx = request.get(CONTEXT) if "Expect" in request.headers else None
    if ctx is None:
        ctx = decide(request, request.app[STATE])
        request[CONTEXT] = ctx
    return ctx


# --- Default route handlers -------------------------------------------------------------------------


def site_title(state: AppState, ctx: RequestContext) -> str | None:
    """The brand name of the request's site's pages: its `title` (None: GATEWAY_BRAND_NAME's)."""
    if ctx.site is not None:
        return ctx.site.title
    if ctx.host_site and state.sites is not None:
        return state.sites.site_title(ctx.host_site)
    return None


def error_page(request: web.Request, ctx: RequestContext, status: int, *, kind: str | None = None,
               reason: str | None = None, expected_url: str | None = None) -> web.Response:
    """The gateway's own error answer: a branded page for browsers, plain text otherwise (only
    ever built on errors, so successful requests never pay for it)."""
    state = request.app[STATE]
    return error_response(state.renderer, request.headers, status, request_id=ctx.request_id,
                          kind=kind, reason=reason, expected_url=expected_url, brand_name=site_title(state, ctx))


def upstream_headers(request: web.Request, ctx: RequestContext) -> CIMultiDict[str]:
    """The client's request headers as the upstream gets them (gateway.proxy.forwarder's rules)."""
    return upstream_request_headers(
        request.headers, peer_ip=ctx.peer_ip, peer_trusted=ctx.peer_trusted,
        proto=request.app[STATE].public_scheme, host=request.headers.get("Host", ""), request_id=ctx.request_id,
    )


async def forward(request: web.Request, ctx: RequestContext, *, read_timeout: float | None = None,
                  pin: bool = False, inspect: ResponseInspector | None = None,
                  body: bytes | None = None,
                  held: Callable[[], web.StreamResponse] | None = None) -> web.StreamResponse:
    """Pass the request through the streaming forwarder (the route handler for allowed classes).

    Routes with needs of their own (gateway.profiles.exchange.client_routes) pass the route class's read
    timeout, `pin` (always over the client connection's pinned upstream connection), an
    inspector that runs after the cookie rules' one, and `body` to send instead of the client's.
    `held` marks a long poll: when the shutdown drain starts before the upstream answers, the
    client gets `held()` instead, at once.
    """
    headers = upstream_headers(request, ctx)
    guard = request.app[STATE].upstream_guard
    guard_inspect = guard.prepare(request, ctx, headers) if guard is not None else None
    return await send_upstream(request, ctx, headers, inspect=_chain(guard_inspect, inspect),
                               read_timeout=read_timeout, pin=pin, body=body, held=held)


async def send_upstream(request: web.Request, ctx: RequestContext, headers: CIMultiDict[str], *,
                        inspect: ResponseInspector | None, body: bytes | None = None, long_poll: bool = False,
                        read_timeout: float | None = None, pin: bool = False, connection_auth: bool = True,
                        held: Callable[[], web.StreamResponse] | None = None,
                        forwarder: Forwarder | None = None) -> web.StreamResponse:
    """The one way a handler sends a request upstream, with `headers` already built for it: an
    upstream failure before the response started becomes the gateway's error page. `held` marks a
    long poll: when the shutdown drain starts before the upstream answers, the client gets `held()`.
    `forwarder` is another site's (a passthrough site); by default the application's own."""
    assert ctx.target is not None
    try:
        return await (forwarder or request.app[STATE].forwarder).forward(
            request, ctx.target.forward, headers, ctx.transfer, request_id=ctx.request_id, inspect=inspect,
            body=body, long_poll=long_poll, read_timeout=read_timeout, pin=pin, connection_auth=connection_auth,
            held=held is not None,
        )
    except UpstreamError as exc:
        response = error_page(request, ctx, exc.kind.status)
        if exc.end_connection:
            response.force_close()
        return response
    except DrainStarted:
        assert held is not None
        return held()


def _chain(first: ResponseInspector | None, second: ResponseInspector | None) -> ResponseInspector | None:
    if first is None or second is None:
        return first or second

    async def both(upstream: UpstreamAnswer, client_headers: CIMultiDict[str]) -> web.StreamResponse | None:
        replacement = await first(upstream, client_headers)
        return replacement if replacement is not None else await second(upstream, client_headers)

    return both


async def deny(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    return error_page(request, ctx, 403)


async def not_found(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    return error_page(request, ctx, 404)


async def gateway_page(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    assert ctx.target is not None
    found = request.app[STATE].pages.find(request.method, ctx.target.lower_path)
    if isinstance(found, int):
        return error_page(request, ctx, found)
    return await found(request, ctx)


async def healthz(request: web.Request, ctx: RequestContext | None = None) -> web.StreamResponse:
    """Liveness: the process answers. Never depends on Monosign, the store or the upstream."""
    return web.json_response({"status": "ok", "version": __version__}, headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request, ctx: RequestContext | None = None) -> web.StreamResponse:
    report = await request.app[STATE].readiness.report()
    return web.json_response(report.as_json(), status=200 if report.ready else 503,
                             headers={"Cache-Control": "no-store"})


async def public_readyz(request: web.Request, ctx: RequestContext | None = None) -> web.StreamResponse:
    """Readiness on the public listener: ready or not, and nothing about which dependency is down
    (that is for the admin listener's /readyz, off the public network)."""
    report = await request.app[STATE].readiness.report()
    return web.json_response({"status": "ready" if report.ready else "not ready"},
                             status=200 if report.ready else 503, headers={"Cache-Control": "no-store"})


GATEWAY_PAGES = Route(gateway_page)


def _route(request: web.Request, state: AppState, ctx: RequestContext) -> Route | None:
    """What serves the request: its site's route (a passthrough site), the gateway's own pages, else
    the route the application's profile chooses."""
    if ctx.site is not None:
        return ctx.site.route
    if ctx.route is None:
        return None
    if ctx.route is RouteClass.GATEWAY:
        return GATEWAY_PAGES
    return state.profile.route(request, ctx)


def _route_label(ctx: RequestContext) -> str:
    if ctx.route is not None:
        return ctx.route.value
    return ctx.site.label if ctx.site is not None else "rejected"


# --- The pipeline -------------------------------------------------------------------------------------


async def _expect(request: web.Request) -> None:
    """Runs before aiohttp would answer `Expect`: invite the body only when it would be accepted."""
    ctx = _context(request)
    if request.version != HttpVersion11:
        return
    if request.headers.get("Expect", "").lower() != "100-continue":
        if ctx.rejection is None:
            ctx.rejection = (417, "unsupported expectation")
        return
    if ctx.rejection is not None or ctx.moved_to is not None:
        return
    route = _route(request, request.app[STATE], ctx)
    if route is None:
        return
    if await route.may_continue(request, ctx):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the 100 is not part of the response proper


async def _entry(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    ctx = _context(request)
    request_id_var.set(ctx.request_id)
    state.metrics.request_started()
    status = 500
    try:
        if ctx.rejection is not None:
            code, reason = ctx.rejection
            if reason == EdgeRejection.UNKNOWN_HOST:
                # Name the address that works (the public URL is public): a browser gets a link to it.
                response: web.StreamResponse = error_page(request, ctx, code, kind="unknown-host", reason=reason,
                                                          expected_url=f"{state.settings.gateway_public_url}/")
            else:
                response = error_page(request, ctx, code, reason=reason)
            response.force_close()  # after a framing or host problem, do not read another request
        elif ctx.moved_to is not None:
            response = web.Response(status=307, headers={"Location": ctx.moved_to, "Cache-Control": "no-store"})
        else:
            route = _route(request, state, ctx)
            assert route is not None
            response = await route.handle(request, ctx)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-Id"] = ctx.request_id
            # Our own answers do not advertise the Python and aiohttp versions.
            response.headers.setdefault("Server", SERVER_NAME)
            if state.drain.started:
                # Sent here, before aiohttp's finish_response could add it: this replica takes no
                # further request on the connection (`Connection: close`), as for relayed answers.
                response.force_close()
            if isinstance(response, web.Response):
                await _send_own_answer(request, response, ctx.transfer)
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = ctx.request_id
        raise
    except (ClientGone, asyncio.CancelledError):
        status = ctx.transfer.status or CLIENT_CLOSED_REQUEST
        state.drain.record_cut(_route_label(ctx))
        raise
    finally:
        _record(request, state, ctx, status)


# Statuses whose answers never carry a body (RFC 9110, sections 15.3.5 and 15.4.5).
_BODYLESS_STATUSES = frozenset({204, 304})


async def _send_own_answer(request: web.Request, response: web.Response, transfer: Transfer) -> None:
    """Send an answer the gateway made itself (a page, a static file, an error, a redirect) now rather
    than after the handler returns, so the access line counts the body bytes it wrote (`bytes_out`),
    as the forwarder counts a relayed body's. aiohttp's own sending afterwards finds it done."""
    transfer.status = response.status
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        raise ClientGone("client disconnected during the gateway's own answer") from None
    body = response.body
    if request.method != "HEAD" and response.status not in _BODYLESS_STATUSES and isinstance(body, bytes | bytearray):
        transfer.bytes_out += len(body)


def _query_names(query: str) -> list[str]:
    if not query:
        return []
    names = [part.partition("=")[0][:MAX_LOGGED_QUERY_NAME_LENGTH] for part in query.split("&") if part]
    return names[:MAX_LOGGED_QUERY_NAMES]


def _milliseconds(seconds: float) -> float:
    """Milliseconds to the microsecond (round(x, 3) writes the same, at three times the cost)."""
    return int(seconds * 1_000_000 + 0.5) / 1000


def _record(request: web.Request, state: AppState, ctx: RequestContext, status: int) -> None:
    duration = time.monotonic() - ctx.started
    route = _route_label(ctx)
    state.metrics.request_ended(route, status, duration)
    upstream = ctx.transfer.upstream_seconds
    target = ctx.target
    _access_log.write(ctx.request_id, {
        "client_ip": ctx.client_ip,
        "method": request.method,
        "path": target.path if target is not None else None,
        "query_names": _query_names(target.query) if target is not None else [],
        "route_class": route,
        "status": status,
        "reason": ctx.rejection[1] if ctx.rejection is not None else None,
        "bytes_in": request.content.total_bytes,
        "bytes_out": ctx.transfer.bytes_out,
        "duration_ms": _milliseconds(duration),
        "upstream_ms": _milliseconds(upstream) if upstream is not None else None,
    })


# --- Building the applications -------------------------------------------------------------------------


async def _forwarder_lifecycle(app: web.Application) -> Any:
    state = app[STATE]
    await state.forwarder.start()
    if state.sites is not None:
        await state.sites.start()
    yield
    await state.forwarder.close()
    for close in state.closers:
        await close()


def build_app(state: AppState) -> web.Application:
    """The main listener's application (`gateway.assembly.build_state` makes `state`; the admin
    application may share it)."""
    assert_c_parser()
    app = web.Application(client_max_size=64 * 1024)
    app[STATE] = state
    app.cleanup_ctx.append(_forwarder_lifecycle)
    app.router.register_resource(EveryTarget(_entry, expect_handler=_expect))
    return app


class EveryTarget(web.PlainResource):
    """The main application's one resource: it matches every request whatever the form of its
    target (origin, absolute, asterisk; authority-form with `routing_every_target`), so aiohttp's
    router decides nothing on its own reading of the path. A resource rather than a middleware
    catching what a route would not match: a middleware costs every request (about 3 % of the
    gateway's CPU per request)."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], *,
                 expect_handler: Callable[[web.Request], Awaitable[None]]) -> None:
        super().__init__("/")  # the router reaches "/" last, for every target that has a path
        self._route = self.add_route("*", handler, expect_handler=expect_handler)

    async def resolve(self, request: web.Request) -> tuple[web.UrlMappingMatchInfo, set[str]]:
        return web.UrlMappingMatchInfo({}, self._route), set()


_ROOT = URL("/")
RequestFactory = Callable[..., web.BaseRequest]


def routing_every_target(factory: RequestFactory) -> RequestFactory:
    """Wrap a server's request factory so absolute- and authority-form targets (`GET http://host`,
    `CONNECT host:443`) also reach `EveryTarget`: aiohttp routes on the URL's relative part, which
    for them can be empty, and then its router looks nothing up. Only the URL aiohttp routes on
    changes; `raw_path` stays as sent, and the edge refuses it (not origin-form)."""

    def make_request(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        if message.url.absolute:
            message = message._replace(url=_ROOT)
        return factory(message, payload, protocol, writer, task)

    return make_request


def build_admin_app(state: AppState) -> web.Application:
    """The admin listener: /metrics, /healthz, /readyz (keep it off the public network)."""
    app = web.Application(client_max_size=1024)
    app[STATE] = state

    async def metrics(request: web.Request) -> web.Response:
        state = request.app[STATE]
        await state.readiness.report()  # gateway_ready and gateway_readiness_check_ok, as of this scrape
        body = state.metrics.render()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
