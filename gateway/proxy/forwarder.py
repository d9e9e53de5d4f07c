"""The streaming forwarder: one pooled aiohttp client session per process, bytes passed through.

Request and response bodies stream both ways with back-pressure (the client's `StreamReader` is
the upload's data source; the upstream's body is copied chunk by chunk into a `StreamResponse`), so
memory per request stays flat whatever the size. `auto_decompress=False` keeps `Content-Encoding`
and `Content-Length` coherent: gzip passes byte-identical. No cookie jar (the upstream's cookies
belong to the browser, or to the MFA hold-back), no redirect following (the browser follows), no
invented headers (`skip_auto_headers`), no total timeout (ActiveSync pings last an hour).

Failures before the response starts become a 502 (unreachable, TLS, broken answer) or a 504 (no
response headers within the read timeout); after it started, the only honest signal left is to
cut the client connection, so a truncated body is never mistaken for a complete one.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import StreamReader
from multidict import CIMultiDict

from gateway._compat import send_head_with_first_write
from gateway.core import ResponseInspector, Transfer
from gateway.observability.logging import get_logger
from gateway.policy.headers import forwarded_request_headers, response_headers_for_client
from gateway.proxy.drain import Drain, DrainStarted
from gateway.proxy.pinned import PinnedConnections, PinnedPool
from gateway.proxy.upstream import ConnectFailed, UpstreamPool, UpstreamResponse
from gateway.proxy.upstream_config import UpstreamConfig

if TYPE_CHECKING:
    from gateway.observability.metrics import Metrics

log = get_logger("gateway.proxy")

# Request headers that are the gateway's business, never the upstream's.
GATEWAY_OWNED_REQUEST_HEADERS = ("Expect", "X-Request-Id")
# Seconds an idle pooled upstream connection is kept (IIS closes idle connections after 120 s).
UPSTREAM_KEEPALIVE = 30.0

# How long a request body may still be on its way upstream after the answer came back (a 401 to a
# POST's first leg) before its connection is given up rather than reused.
BODY_AFTER_ANSWER_SECONDS = 10.0


class UpstreamFailure(StrEnum):
    """Kinds of upstream failure: the metric label, and which status the client gets."""

    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"
    DISCONNECT = "disconnect"

    @property
    def status(self) -> int:
        return 504 if self is UpstreamFailure.TIMEOUT else 502


class UpstreamError(Exception):
    """The upstream failed before a response could start; carries the kind, never a raw detail.

    `end_connection`: the client connection must end after the error answer (`Connection: close`):
    its pinned upstream connection is gone, and with it the authentication the client believes in.
    """

    def __init__(self, kind: UpstreamFailure, *, end_connection: bool = False) -> None:
        super().__init__(kind.value)
        self.kind = kind
        self.end_connection = end_connection


class ClientGone(ConnectionResetError):
    """The client disconnected while we were streaming; there is nobody left to answer."""


def classify_client_error(exc: BaseException) -> UpstreamFailure:
    """Map an upstream exception to a failure kind (order matters: subclasses first)."""
    if isinstance(exc, ConnectFailed):
        return UpstreamFailure(exc.kind)
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return UpstreamFailure.TLS
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return UpstreamFailure.TIMEOUT
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return UpstreamFailure.CONNECT
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamFailure.DISCONNECT
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamFailure.TIMEOUT
    return UpstreamFailure.PROTOCOL


# Failures of the upstream exchange itself, as raised by UpstreamPool.request and the body stream.
_UPSTREAM_FAILURES = (ConnectFailed, aiohttp.ClientError, HttpProcessingError, OSError, TimeoutError)


class Forwarder:
    """Forwards a request upstream and streams the answer back. Create in the event loop."""

    def __init__(self, config: UpstreamConfig, metrics: Metrics, *, drain: Drain | None = None) -> None:
        self.drain = drain or Drain()
        parts = urlsplit(config.url)
        self._prefix = parts.path.rstrip("/")  # an upstream URL may name a base path
        self._metrics = metrics
        self._config = config
        self._read_timeout = config.read_timeout
        # OWA's background requests (the ev.owa2 notification channel) may stay silent much longer.
        self._long_poll_timeout = max(self._read_timeout, config.long_poll_timeout)
        self._pool: UpstreamPool | None = None
        self._unpooled: UpstreamPool | None = None  # one connection per request, never reused
        # Client connections using NTLM/Negotiate, each with its own upstream connection (gateway.proxy.pinned).
        self.pins: PinnedConnections | None = None


    @property
    def config(self) -> UpstreamConfig:
        """The upstream this forwarder was built for."""
        return self._config

    def _new_pool(self, *, reuse: bool) -> UpstreamPool:
        config = self._config
        return UpstreamPool(config.url, ssl_context=config.ssl_context(),
                            limit=config.pool_size,
                            connect_timeout=config.connect_timeout,
                            idle_seconds=UPSTREAM_KEEPALIVE, reuse=reuse)

    @property
    def pool(self) -> UpstreamPool:
        if self._pool is None:
            raise RuntimeError("Forwarder.start() has not run")
        return self._pool

    async def start(self) -> None:
        self.open()

    def open(self) -> None:
        """`start` without awaiting (a configuration reload opens new sites' forwarders in place)."""
        self._pool = self._new_pool(reuse=True)
        self._unpooled = self._new_pool(reuse=False)
        self.pins = PinnedConnections(self._config, ssl_context=self._config.ssl_context())

    async def close(self) -> None:
        if self.pins is not None:
            self.pins.close()
        for pool in (self._pool, self._unpooled):
            if pool is not None:
                pool.close()
        self._pool = self._unpooled = None

    async def check(self) -> str | None:
        """Readiness: does the upstream answer HTTP at all? Any status counts as reachable."""
        headers: CIMultiDict[str] = CIMultiDict({"Host": self.pool.host, "User-Agent": "monosign-gateway readiness"})
        try:
            response = await self.pool.request("GET", self._prefix + "/", headers, body=None,
                                               read_timeout=self._read_timeout)
        except _UPSTREAM_FAILURES as exc:
            return f"upstream not reachable ({classify_client_error(exc).value})"
        response.close()
        return None

    async def forward(
        self,
        request: web.Request,
        target_forward: str,
        headers: CIMultiDict[str],
        transfer: Transfer,
        *,
        request_id: str,
        body: bytes | None = None,
        long_poll: bool = False,
        reuse_connection: bool = True,
        inspect: ResponseInspector | None = None,
        read_timeout: float | None = None,
        pin: bool = False,
        connection_auth: bool = True,
        held: bool = False,
    ) -> web.StreamResponse:
        """Send `headers` (already built for the upstream) and the body; stream the answer back.

        `body` replaces the client's body (the small login form, already read); otherwise the client's
        stream is forwarded as it arrives. `long_poll` allows GATEWAY_TIMEOUT_OWA_NOTIFICATIONS of silence;
        `reuse_connection=False` closes the upstream connection afterwards instead of pooling it.
        `read_timeout` (the route class's setting) overrides `long_poll`. The request goes over the
        client connection's pinned upstream connection when `pin` is set, when it carries NTLM or
        Negotiate, or when the connection is already pinned (gateway.proxy.pinned), unless
        `connection_auth=False`: then never (OWA and ECP, whose session is the cookies alone, must not
        ride on a connection that NTLM authenticated as somebody).
        `held` marks a long poll (ActiveSync Ping, OWA's notification channel): it ends at the start of
        the shutdown drain, with DrainStarted when no answer has started yet, else with the end of a
        chunked body (a body of announced length cannot end early: its client connection is cut).
        The client's response carries `X-Request-Id: request_id`. Raises UpstreamError before the
        response starts, and ClientGone when the connection to the client had to be cut.
        """
        data: bytes | StreamReader | None = body if body is not None else (
            request.content if request.body_exists else None)
        pins = self.pins
        pinned = pins is not None and connection_auth and (pin or pins.wants(request))
        pool = (pins.pool_for(request) or self._unpooled) if pins is not None and pinned else (
            self._pool if reuse_connection else self._unpooled)
        assert pool is not None, "Forwarder.start() has not run"
        # Over the client connection's own upstream connection (not a one-off unpooled one): when that
        # one ends, so does the client connection (gateway.proxy.pinned).
        own_connection = isinstance(pool, PinnedPool)
        if read_timeout is None:
            read_timeout = self._long_poll_timeout if long_poll else self._read_timeout
        started = time.monotonic()
        try:
            sent = pool.request(request.method, self._prefix + target_forward, headers, body=data,
                                read_timeout=read_timeout)
            upstream = await (self.drain.race(sent) if held else sent)
        except _UPSTREAM_FAILURES as exc:
            kind = classify_client_error(exc)
            transfer.upstream_seconds = time.monotonic() - started
            self._metrics.upstream_errors.labels(kind.value).inc()
            if request.transport is None or request.transport.is_closing():
                raise ClientGone("client disconnected while the upstream request was sent") from None
            raise UpstreamError(kind, end_connection=own_connection) from None
        transfer.upstream_seconds = time.monotonic() - started
        # An NTLM/Negotiate offer on a pooled connection pins the client; that connection is not reused.
        reusable = pins.after_response(request, upstream, pinned=pinned) if pins is not None else True
        try:
            response = await self._relay(request, upstream, transfer, request_id, inspect,
                                         own_connection=own_connection, held=held)
        except BaseException:
            # An aborted download also aborts the upstream request: its connection is closed.
            upstream.close()
            raise
        if reusable:
            if upstream.request_body_pending:  # rare: no coroutine on the common path
                await upstream.request_body_sent(BODY_AFTER_ANSWER_SECONDS)
            upstream.release()
        else:
            upstream.close()
        return response

    async def _relay(
        self,
        request: web.Request,
        upstream: UpstreamResponse,
        transfer: Transfer,
        request_id: str,
        inspect: ResponseInspector | None,
        *,
        own_connection: bool,
        held: bool = False,
    ) -> web.StreamResponse:
        """`own_connection`: `upstream` came over the client connection's pinned upstream connection,
        so the client connection ends (`Connection: close` on this answer) when that one does."""
        client_headers = response_headers_for_client(upstream.headers)
        client_headers["X-Request-Id"] = request_id
        if inspect is not None:
            replacement = await inspect(upstream, client_headers)
            if replacement is not None:
                upstream.close()
                if own_connection:  # closing the upstream answer closed the pinned connection
                    replacement.force_close()
                transfer.status = replacement.status
                return replacement
        content = upstream.content
        try:
            # The body bytes that arrived with the head (for a small answer, all of it) go out in the
            # same write as the head; a body that is not here yet never holds the head back.
            first = content.read_nowait()
        except _UPSTREAM_FAILURES as exc:
            kind = classify_client_error(exc)
            self._metrics.upstream_errors.labels(kind.value).inc()
            # Nothing was sent yet: the client gets a 502.
            raise UpstreamError(kind, end_connection=own_connection) from None
        transfer.status = upstream.status
        response = RelayResponse(status=upstream.status, reason=upstream.reason, headers=client_headers,
                                 head_with_body=bool(first) or content.at_eof())
        if self.drain.started:
            response.force_close()  # `Connection: close`: this replica takes no further request
        elif own_connection and upstream.connection_ends:
            # The upstream closes after this answer (it said so, or it has): so does the client
            # connection, and the answer says so, rather than the next request finding it gone.
            response.force_close()
        try:
            await response.prepare(request)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            raise ClientGone("client disconnected before the response started") from None
        try:
            if content.at_eof():  # the whole body is here: head and body in one write
                await response.write_eof(first)
                transfer.bytes_out += len(first)
                return response
            if first:
                await response.write(first)
                transfer.bytes_out += len(first)
            while True:
                if held:
                    try:
                        chunk = await self.drain.race(content.readany())
                    except DrainStarted:
                        if response.content_length is not None:
                            raise ClientGone("the drain ended a long poll of announced length") from None
                        break  # the chunked body ends here; the client reconnects elsewhere
                else:
                    chunk = await content.readany()
                if not chunk:
                    break
                await response.write(chunk)
                transfer.bytes_out += len(chunk)
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            # The client went away: the caller closes the upstream connection too.
            self._metrics.upstream_errors.labels("client_disconnect").inc()
            raise ClientGone("client disconnected during the response") from None
        except _UPSTREAM_FAILURES as exc:
            kind = classify_client_error(exc)
            self._metrics.upstream_errors.labels(kind.value).inc()
            log.warning("upstream_failed_mid_response", message="upstream failed mid-response; client connection cut",
                        kind=kind.value, status=upstream.status,
                        bytes_out=transfer.bytes_out)
            raise ClientGone("upstream failed mid-response; client connection cut") from None
        return response


class RelayResponse(web.StreamResponse):
    """A streamed response whose head can wait for the body's first bytes, to leave in one write.

    `head_with_body=True` only when those bytes are already at hand (the caller writes them right
    after `prepare`): a small answer then costs one socket write instead of two or three. Otherwise
    the head is sent at `prepare`, as aiohttp's StreamResponse does, so a long poll or a slow body
    still gets its head at once.
    """

    def __init__(self, *, status: int, reason: str | None, headers: CIMultiDict[str], head_with_body: bool) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        send_head_with_first_write(self, head_with_body)


def upstream_request_headers(
    headers: Mapping[str, str],
    *,
    peer_ip: str,
    peer_trusted: bool,
    proto: str,
    host: str,
    request_id: str,
    drop: Collection[str] = (),
) -> CIMultiDict[str]:
    """The header policy's filtered copy of the client's headers, plus forwarding headers and request id.

    `Host` stays as the client sent it (allow-listed at the edge): Exchange builds redirects from it.
    """
    upstream = forwarded_request_headers(headers, peer_trusted=peer_trusted, client_ip=peer_ip, proto=proto,
                                         host=host, drop=(*GATEWAY_OWNED_REQUEST_HEADERS, *drop))
    upstream["X-Request-Id"] = request_id
    return upstream
