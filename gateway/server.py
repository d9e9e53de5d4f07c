"""Listeners, connection protocol and lifecycle: start, serve, drain on SIGTERM/SIGINT, exit.

`GatewayServer` is aiohttp's `web.Server` (the protocol factory the listening sockets call for each
connection) with one change: every connection gets a `GatewayRequestHandler`. That is the hook for
anything that must happen below HTTP parsing:

- the header timeout (`GATEWAY_HEADER_TIMEOUT`): a client that trickles its request line and headers
  is cut, with a 408 when nothing else was said on the connection;
- quiet, non-leaking answers to requests the strict C parser refused (aiohttp would log a traceback
  and echo the offending bytes back);
- Exchange's extension methods (`RPC_IN_DATA`, `RPC_OUT_DATA`), which llhttp rejects: a connection
  that starts with one is framed by `gateway.proxy.extension_methods` before llhttp sees it, every
  other connection keeps the strict C parser untouched (see docs/security.md);
- close hooks (`gateway.proxy.client_connection`): a pinned upstream connection ends with its client's.

The drain (SIGTERM/SIGINT) is the gateway's own, not aiohttp's `BaseRunner.cleanup()`: that one
closes every connection (`Server.pre_shutdown`), after which aiohttp drops the bytes still arriving,
so accepted uploads were lost, and it waits the grace period twice. Here, after the optional
`GATEWAY_SHUTDOWN_DELAY`: the listeners close; idle keep-alive connections close at once; held
requests (long polls) end at once (gateway.proxy.drain); every other accepted request keeps being
read and forwarded to its end, answered with `Connection: close`; at `GATEWAY_SHUTDOWN_GRACE` what is
still running is cut, and the log says how many requests and of which route classes.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from gateway import __version__
from gateway._compat import (
    RequestHandler,
    handler_busy,
    handler_loop,
    handler_request_count,
    new_connection_handler,
    wrap_server,
)
from gateway.app import build_admin_app, build_app, routing_every_target
from gateway.assembly import build_state
from gateway.assembly.sites import Sites
from gateway.config.live import LiveConfig, LoadedConfig, describe
from gateway.config.loader import ConfigError, ConfigProblem
from gateway.config.model import GatewayConfig
from gateway.observability.logging import get_logger
from gateway.pages import error_response
from gateway.pages.renderer import PageRenderer
from gateway.policy.edge import new_request_id
from gateway.proxy.client_connection import CloseHooksMixin
from gateway.proxy.extension_methods import ExtensionMethodsMixin, restoring_extension_methods
from gateway.settings import Settings
from gateway.state import STATE, AppState
from gateway.tls import CertificateError, SniCertificates

log = get_logger("gateway.server")

REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\n\r\n408 Request Timeout\r\n"
)
LISTEN_BACKLOG = 1024
IDLE_KEEPALIVE_SECONDS = 120.0
DRAIN_POLL_SECONDS = 0.05  # how often the drain looks for connections that became idle
# How often GATEWAY_CONFIG_FILE (and the certificates it names) are checked for a change.
CONFIG_WATCH_SECONDS = 2.0
# After the cut, how long the cancelled requests get to unwind (close their upstream, log).
CUT_SETTLE_SECONDS = 2.0


class GatewayRequestHandler(CloseHooksMixin, ExtensionMethodsMixin, RequestHandler):
    """aiohttp's connection protocol, plus a deadline for each request's head."""

    def __init__(self, manager: web.Server, *, header_timeout: float, renderer: PageRenderer,
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._renderer = renderer
        self._header_deadline: asyncio.TimerHandle | None = None
        self._draining = False

    def begin_drain(self) -> None:
        """Take no new request on this connection: closed now when idle, else after its answer.

        The request in progress keeps its body flowing: aiohttp's own `shutdown()`/`close()` would
        make `data_received` drop it. Called again while the drain waits, to close the connection
        in the moment after its answer."""
        self._draining = True
        if not handler_busy(self):
            self.force_close()

    async def finish_response(self, request: BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        if self._draining:
            resp.force_close()  # `Connection: close`, and aiohttp reads no further request
        return await super().finish_response(request, resp, start_time)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        # Bytes arriving while no request is queued or running start the next request's head.
        starts_head = self._header_deadline is None and not handler_busy(self)
        seen = handler_request_count(self)
        super().data_received(data)
        if handler_request_count(self) != seen:
            self._disarm_header_deadline()
        elif starts_head:
            # Armed only for a head still incomplete after these bytes (the same moment as before
            # parsing them): a head that arrives whole, the usual case, costs no timer.
            self._arm_header_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._header_deadline = handler_loop(self).call_later(self._header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if handler_busy(self):
            return  # a request is being served; its own timeouts apply
        log.info("slow_request_headers", message="client too slow sending request headers", peer=_peer(self.peername),
                 timeout_s=self._header_timeout)
        if handler_request_count(self) == 0:
            transport.write(REQUEST_TIMEOUT_RESPONSE)
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer without echoing the request or logging a traceback for client mistakes."""
        if request.writer.output_size > 0 or isinstance(exc, ConnectionError):
            # The response already started (or the client is gone): all we can do is close.
            raise ConnectionError("response already started; closing the connection")
        # The request never reached the pipeline: give it an id here, for the log and the answer.
        request_id = new_request_id()
        if status >= 500:
            log.error("unhandled_error", message="unhandled error while serving a request", exc_info=exc,
                      request_id=request_id)
        else:
            log.info("malformed_request", message="malformed request refused", status=status,
                     error=type(exc).__name__ if exc else None,
                     peer=_peer(self.peername), request_id=request_id)
        # No request headers are trusted here (they may be what was malformed): plain text, in the
        # configured (or default) language.
        response = error_response(self._renderer, {}, status, request_id=request_id)
        response.headers["X-Request-Id"] = request_id
        response.force_close()
        return response


def _peer(peername: Any) -> str | None:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return None


class GatewayServer(web.Server):
    """The protocol factory: aiohttp's `web.Server`, handing out `GatewayRequestHandler`s."""

    def __init__(self, handler: Any, *, header_timeout: float, renderer: PageRenderer, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        # Requests of RPC_IN_DATA/RPC_OUT_DATA connections get their real method back (extension_methods).
        self.request_factory = routing_every_target(restoring_extension_methods(self.request_factory))
        self._header_timeout = header_timeout
        self._renderer = renderer

    @classmethod
    def wrapping(cls, server: web.Server, *, header_timeout: float, renderer: PageRenderer) -> GatewayServer:
        return wrap_server(cls, server, header_timeout=header_timeout, renderer=renderer)

    def __call__(self) -> RequestHandler:
        return new_connection_handler(GatewayRequestHandler, self, header_timeout=self._header_timeout,
                                      renderer=self._renderer)

    def drain_connections(self) -> int:
        """Ask every connection to take no new request (idle ones close now); how many are left."""
        connections = self.connections
        for connection in connections:
            if isinstance(connection, GatewayRequestHandler):
                connection.begin_drain()
        return len(connections)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose server is a `GatewayServer`."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return GatewayServer.wrapping(server, header_timeout=self._header_timeout,
                                      renderer=self.app[STATE].renderer)

    async def drain(self, grace: float) -> None:
        """Stop accepting, end held requests, let the others finish for `grace` seconds, cut the rest."""
        server = self.server
        if not isinstance(server, GatewayServer):
            return  # never set up
        for site in list(self.sites):
            await site.stop()
        drain = self.app[STATE].drain
        drain.begin()
        loop = asyncio.get_running_loop()
        await _poll_while(lambda: server.drain_connections() > 0, loop.time() + grace)
        connections = server.connections
        if not connections:
            log.info("drain_complete", message="drain complete: every request finished", grace_s=grace)
            return
        drain.cutting = True
        for connection in connections:
            connection.force_close()
        await _poll_while(lambda: bool(server.connections), loop.time() + CUT_SETTLE_SECONDS)
        drain.cutting = False
        log.warning("requests_cut_at_grace", message="grace period over: requests still running were cut",
                    grace_s=grace, requests_cut=sum(drain.cut.values()), route_classes=dict(sorted(drain.cut.items())),
                    connections_cut=len(connections))


async def _poll_while(condition: Callable[[], bool], deadline: float) -> None:
    """Wait while `condition` holds, until the loop time `deadline`. Polled: a connection that becomes
    idle after its answer, or closes, signals nothing the drain could wait on."""
    loop = asyncio.get_running_loop()
    while condition() and (left := deadline - loop.time()) > 0:  # noqa: ASYNC110 - see the docstring
        await asyncio.sleep(min(DRAIN_POLL_SECONDS, left))


def listener_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS for the main listener when a certificate and key are configured; None for plain HTTP."""
    if settings.gateway_tls_cert_file is None or settings.gateway_tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # HTTP/1.1 only: Windows authentication is bound to the connection and cannot be multiplexed.
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(str(settings.gateway_tls_cert_file), str(settings.gateway_tls_key_file))
    return context


def listener_certificates(settings: Settings, config: GatewayConfig) -> SniCertificates | None:
    """With a configuration file: each site's certificate by SNI (GATEWAY_TLS_* the default), when
    the listener has TLS at all (GATEWAY_TLS_CERT_FILE or a site's `tls`); CertificateError when one
    does not load."""
    default = settings.gateway_tls_cert_file, settings.gateway_tls_key_file
    if default[0] is None or default[1] is None:
        if all(site.tls is None for site in config.sites):
            return None
        return SniCertificates(None, config)
    return SniCertificates((default[0], default[1]), config)


def _certificate_swap(certificates: SniCertificates, live: LiveConfig, source: str) -> Callable[[LoadedConfig], None]:
    in_force = [live.current]

    def swap(loaded: LoadedConfig) -> None:
        if loaded is in_force[0]:
            return  # a refused reload restoring the configuration whose certificates are still loaded
        try:
            certificates.reload(loaded.config)
        except CertificateError as exc:  # refuses the reload: the old certificates stay
            raise ConfigError([ConfigProblem(source, None, (), str(exc))]) from None
        in_force[0] = loaded

    return swap


def main_runner_options(settings: Settings) -> dict[str, Any]:
    """Options for the main listener's connections (header limits, keep-alive, cancellation)."""
    return {
        "header_timeout": settings.gateway_header_timeout,
        # The grace period is the drain's (GatewayRunner.drain); aiohttp's own shutdown only meets
        # what the cut left, and must not wait the grace period a second time.
        "shutdown_timeout": CUT_SETTLE_SECONDS,
        # A client that disconnects cancels its handler, which aborts the upstream request.
        "handler_cancellation": True,
        "access_log": None,  # our own access log line is written by the app
        "max_line_size": settings.gateway_max_header_size,
        "max_field_size": settings.gateway_max_header_size,
        "max_headers": settings.gateway_max_headers,
        # Idle keep-alive connections cost a descriptor and memory each; IIS closes them after 120 s too.
        # (Long polls are requests in progress, not idle connections: this does not cut them.)
        "keepalive_timeout": IDLE_KEEPALIVE_SECONDS,
    }


class Gateway:
    """The running gateway: main and admin listeners around one shared AppState."""

    def __init__(self, settings: Settings, *, state: AppState | None = None,
                 watch_interval: float = CONFIG_WATCH_SECONDS) -> None:
        self.settings = settings
        path = settings.gateway_config_file
        # GATEWAY_CONFIG_FILE's sites (ConfigError when it cannot be used); without one, the environment's.
        self.live = LiveConfig.load(path) if path is not None else None
        self.state = state or build_state(settings, config=self.live.current.config if self.live else None)
        self._watch_interval = watch_interval
        self._watch_stop = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        sites = self.state.sites
        if self.live is not None and isinstance(sites, Sites):
            # A reload swaps the sites for new requests; one they refuse keeps the old configuration.
            self.live.subscribe(lambda loaded: sites.swap(loaded.config))
        # TLS by SNI, each site's certificate (reloaded with the file, and when a certificate changes).
        self.certificates = listener_certificates(settings, self.live.current.config) if self.live else None
        if self.live is not None and self.certificates is not None:
            self.live.subscribe(_certificate_swap(self.certificates, self.live, str(path)))
        self._main = GatewayRunner(build_app(self.state), **main_runner_options(settings))
        admin_app = build_admin_app(self.state)
        admin_app.router.add_get("/config", self._config_page)
        self._admin = web.AppRunner(admin_app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        self.main_addresses: list[str] = []
        self.admin_addresses: list[str] = []
        self._stopping = False

    async def start(self, *, reuse_port: bool = False, listen_sockets: Sequence[socket.socket] = (),
                    admin_path: str | None = None) -> None:
        """Open the listeners. A worker under the supervisor (gateway.workers) passes the main
        listener's sockets, already bound and listening, and a Unix socket path for its admin app."""
        settings = self.settings
        await self._main.setup()
        await self._admin.setup()
        tls = self.certificates.listener_context if self.certificates is not None else listener_ssl_context(settings)
        main_sites: list[web.BaseSite] = [
            web.SockSite(self._main, sock, ssl_context=tls) for sock in listen_sockets
        ] or [web.TCPSite(self._main, settings.gateway_listen.host, settings.gateway_listen.port,
                          ssl_context=tls, backlog=LISTEN_BACKLOG, reuse_port=reuse_port or None)]
        for main_site in main_sites:
            await main_site.start()
        admin_site: web.BaseSite
        if admin_path is not None:
            admin_site = web.UnixSite(self._admin, admin_path)
        else:
            admin_site = web.TCPSite(self._admin, settings.gateway_admin_listen.host,
                                     settings.gateway_admin_listen.port, reuse_port=reuse_port or None)
        await admin_site.start()
        scheme = "https" if tls is not None else "http"
        self.main_addresses = [_url(scheme, address) for address in self._main.addresses]
        self.admin_addresses = [address if isinstance(address, str) else _url("http", address)
                                for address in self._admin.addresses]
        if self.live is not None:
            self._watch = asyncio.create_task(self.live.watch(self._watch_interval, self._watch_stop))

    def reload(self, reason: str = "SIGHUP") -> None:
        """Read GATEWAY_CONFIG_FILE again (SIGHUP): a valid file is served to new requests, an invalid
        one is logged and the old configuration stays."""
        if self.live is None:
            log.info("config_reload_skipped", message="no GATEWAY_CONFIG_FILE: nothing to reload", reason=reason)
            return
        self.live.reload(reason=reason)

    async def _config_page(self, request: web.Request) -> web.Response:
        """The admin listener's /config: which configuration is in force, since when."""
        if self.live is None:
            return web.json_response({"source": "environment"}, headers={"Cache-Control": "no-store"})
        return web.json_response(describe(self.live.current, pending_settings=self.live.pending_settings),
                                 headers={"Cache-Control": "no-store"})

    async def stop(self) -> None:
        """Readiness 503 at once; after GATEWAY_SHUTDOWN_DELAY stop accepting, drain within
        GATEWAY_SHUTDOWN_GRACE (module docstring), then close. Once: later calls return at once."""
        if self._stopping:
            return
        self._stopping = True
        self.state.readiness.draining = True
        self._watch_stop.set()
        if self._watch is not None:
            await self._watch
        delay = self.settings.gateway_shutdown_delay
        if delay > 0:
            log.info("shutdown_delay", delay_s=delay,
                     message="shutdown delay: serving on while load balancers stop sending new connections")
            await asyncio.sleep(delay)
        await self._main.drain(self.settings.gateway_shutdown_grace)
        await self._main.cleanup()
        await self._admin.cleanup()


def _url(scheme: str, address: Any) -> str:
    host, port = address[0], address[1]
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


async def run_gateway(settings: Settings, *, on_started: Callable[[Gateway], None] | None = None,
                      reuse_port: bool = False, listen_sockets: Sequence[socket.socket] = (),
                      admin_path: str | None = None, started_event: str = "gateway_started") -> int:
    """Serve until SIGTERM or SIGINT, then drain and return 0."""
    gateway = Gateway(settings)
    await gateway.start(reuse_port=reuse_port, listen_sockets=listen_sockets, admin_path=admin_path)
    log.info(started_event, version=__version__, listen=gateway.main_addresses,
             admin_listen=gateway.admin_addresses, upstream=gateway.state.forwarder.config.url,
             public_url=settings.gateway_public_url)
    log.debug("effective_limits", header_timeout_s=settings.gateway_header_timeout,
              max_header_size=settings.gateway_max_header_size, max_headers=settings.gateway_max_headers,
              upstream_pool_size=settings.gateway_upstream_pool_size,
              upstream_connect_timeout_s=settings.gateway_upstream_connect_timeout,
              upstream_read_timeout_s=settings.gateway_upstream_read_timeout,
              shutdown_grace_s=settings.gateway_shutdown_grace,
              trusted_proxies=settings.gateway_trusted_proxies, allowed_hosts=sorted(gateway.state.allowed_hosts))
    if on_started is not None:
        on_started(gateway)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    try:
        await stop.wait()
        log.info("shutting_down", message="readiness 503; in-flight requests may finish",
                 delay_s=settings.gateway_shutdown_delay, grace_s=settings.gateway_shutdown_grace)
        await gateway.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    log.info("gateway_stopped")
    return 0
