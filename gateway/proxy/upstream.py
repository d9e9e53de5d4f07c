"""A lean HTTP/1.1 client for the one upstream: a connection pool and a single request exchange.

Why not `aiohttp.ClientSession`: on the gateway's hot path it cost about as much CPU per request as
everything else together (URL handling, cookie and redirect machinery, per-request objects the
gateway never uses). This keeps what matters and reuses aiohttp's own pieces for the hard parts:

- responses are parsed by aiohttp's `ResponseHandler` protocol with its C (llhttp) response parser
  (one per connection, see `UpstreamProtocol`), flow control and `StreamReader` payloads, with the
  read timeout armed on every received byte;
- requests are written by aiohttp's `StreamWriter` (chunked framing, back-pressure), their head by
  `serialize_request_head` (aiohttp's serialiser, which refuses CR/LF, with the Cookie lines done
  apart);
- the request line and headers are exactly what the caller built: nothing is added except the
  framing header a streamed body needs (`Transfer-Encoding: chunked` when the client sent no
  `Content-Length`).

A connection returns to the pool only after a complete exchange that leaves it clean (whole body
read, no `Connection: close`, request body fully sent); anything else closes it. An idempotent
request without a body that fails on a reused connection before any response byte (the upstream
closed an idle connection as we sent) is retried once on a fresh connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientConnectionResetError, ClientOSError, ServerDisconnectedError
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_writer import StreamWriter
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy

from gateway._compat import ResponseHandler, serialize_headers

# Exchange sends big headers (Set-Cookie, Negotiate tokens); the upstream is trusted, bound it anyway.
MAX_RESPONSE_LINE = 65536
MAX_RESPONSE_FIELD = 65536
MAX_RESPONSE_HEADERS = 256
READ_BUFFER = 2**16
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class ConnectFailed(Exception):
    """No connection to the upstream: `tls` (handshake or certificate) or `connect` (refused,
    unreachable, or no free pooled connection in time)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(slots=True)
class UpstreamResponse:
    """The upstream's answer as response inspectors see it; `content` streams the body."""

    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    content: StreamReader
    _protocol: UpstreamProtocol = field(repr=False)
    _pool: UpstreamPool = field(repr=False)
    _body_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _done: bool = field(default=False, repr=False)
    _closes: bool = field(default=False, repr=False)  # the head said so (`Connection: close`, HTTP/1.0)

    @property
    def connection_ends(self) -> bool:
        """The upstream closes its connection after this answer: it said so, or it has closed already."""
        return self._closes or not self._protocol.is_connected()

    @property
    def request_body_pending(self) -> bool:
        """The request body is still being sent (the answer came first)."""
        return self._body_task is not None and not self._body_task.done()

    async def request_body_sent(self, seconds: float) -> None:
        """Let the request body finish going upstream when the answer came first.

        A server may answer before it has read the body (IIS's 401 to a POST's first NTLM leg); the
        client goes on sending it, the server reads and drops it, and the connection stays usable. On
        a pinned connection that matters: NTLM's handshake is bound to it. Bounded by `seconds`: a
        body still unsent by then leaves the connection unclean, and `release` closes it.
        """
        task = self._body_task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=seconds)

    def release(self) -> None:
        """Hand the connection back: pooled when the exchange left it clean, else closed."""
        if self._done:
            return
        self._done = True
        body_sent = self._body_task is None or (self._body_task.done() and not self._body_task.cancelled()
                                                and self._body_task.exception() is None)
        clean = body_sent and self.content.is_eof() and not self._protocol.should_close
        if self._body_task is not None and not self._body_task.done():
            self._body_task.cancel()
        self._pool.release(self._protocol, reusable=clean)

    def close(self) -> None:
        """Abandon the exchange: the connection is closed, whatever its state."""
        if self._done:
            return
        self._done = True
        if self._body_task is not None and not self._body_task.done():
            self._body_task.cancel()
        self._pool.release(self._protocol, reusable=False)


class UpstreamProtocol(ResponseHandler):
    """aiohttp's client protocol, keeping its response parser from one exchange to the next.

    aiohttp makes a new parser for every request (`set_response_params`, about 1.5 µs). A connection
    goes back to the pool only after a complete, clean response, where llhttp is at the start of the
    next one, as aiohttp's server parser is between the requests of a connection; so the parser is
    kept while the next exchange expects the same kind of answer (with a body, or none for HEAD).
    """

    parser_expects_body: bool | None = None  # what the current parser was made for; None: no parser yet

    def prepare_exchange(self, *, expects_body: bool, read_timeout: float) -> None:
        if self.parser_expects_body is expects_body:
            self.read_timeout = read_timeout
            return
        self.set_response_params(
            skip_payload=not expects_body, read_until_eof=True, auto_decompress=False,
            read_timeout=read_timeout, read_bufsize=READ_BUFFER, max_line_size=MAX_RESPONSE_LINE,
            max_field_size=MAX_RESPONSE_FIELD, max_headers=MAX_RESPONSE_HEADERS,
        )
        self.parser_expects_body = expects_body


class UpstreamPool:
    """Connections to one upstream origin, at most `limit` at a time (waiting counts as connecting)."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None, limit: int, connect_timeout: float,
                 idle_seconds: float, reuse: bool = True) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.is_tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.is_tls else 80)
        self._ssl = ssl_context if self.is_tls else None
        self._connect_timeout = connect_timeout
        self._idle_seconds = idle_seconds
        self._reuse = reuse
        self._slots = asyncio.Semaphore(limit)
        self._idle: deque[tuple[UpstreamProtocol, float]] = deque()
        self._closed = False
        # The loop its connections belong to, remembered at first use (asking for it costs a getpid()).
        self._loop: asyncio.AbstractEventLoop | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def _acquire(self) -> tuple[UpstreamProtocol, bool]:
        """A connection (and a slot), and whether it was reused from the pool."""
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise ConnectFailed("connect") from None
        else:
            await self._slots.acquire()
        try:
            now = time.monotonic()
            while self._idle:
                protocol, expires = self._idle.pop()
                if expires > now and protocol.is_connected() and not protocol.should_close:
                    return protocol, True
                protocol.close()
            return await self._connect(), False
        except BaseException:
            self._slots.release()
            raise

    async def _connect(self) -> UpstreamProtocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: UpstreamProtocol(loop), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except ssl.SSLError:
            raise ConnectFailed("tls") from None
        except (OSError, TimeoutError):
            raise ConnectFailed("connect") from None
        return protocol

    def release(self, protocol: UpstreamProtocol, *, reusable: bool) -> None:
        if reusable and self._reuse and not self._closed and protocol.is_connected():
            self._idle.append((protocol, time.monotonic() + self._idle_seconds))
        else:
            protocol.close()
        self._slots.release()

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop()[0].close()

    async def request(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        *,
        body: bytes | StreamReader | None,
        read_timeout: float,
    ) -> UpstreamResponse:
        """Send one request and return once the response head has arrived.

        `body` is the whole body (bytes, sent with its Content-Length), the client's stream (sent as
        it arrives, alongside reading the response), or None. The caller must `release()` or
        `close()` the response. Raises ConnectFailed, or aiohttp's client errors once connected
        (ServerDisconnectedError, SocketTimeoutError, ClientOSError, HttpProcessingError).
        """
        # Only a request that can safely happen twice is retried (never a login form, never a stream).
        retry = body is None and method in IDEMPOTENT_METHODS
        while True:
            protocol, reused = await self._acquire()
            try:
                return await self._exchange(protocol, method, target, headers, body, read_timeout)
            except (ServerDisconnectedError, ClientOSError, ConnectionResetError):
                self.release(protocol, reusable=False)
                if reused and retry:
                    retry = False
                    continue
                raise
            except BaseException:
                self.release(protocol, reusable=False)
                raise

    async def _exchange(self, protocol: UpstreamProtocol, method: str, target: str, headers: CIMultiDict[str],
                        body: bytes | StreamReader | None, read_timeout: float) -> UpstreamResponse:
        protocol.prepare_exchange(expects_body=method != "HEAD", read_timeout=read_timeout)
        status_line = f"{method} {target} HTTP/1.1"
        body_task: asyncio.Task[None] | None = None
        if isinstance(body, StreamReader):
            loop = self._running_loop()
            writer = StreamWriter(protocol, loop)
            chunked = "Content-Length" not in headers
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
            # The head goes out before chunked framing starts: it is not part of the body.
            await writer.write(serialize_request_head(status_line, headers))
            if chunked:
                writer.enable_chunking()
            body_task = loop.create_task(_send_body(writer, body, protocol))
            body_task.add_done_callback(_retrieve)
        else:
            if body is not None:
                headers["Content-Length"] = str(len(body))
            head = serialize_request_head(status_line, headers)
            transport = protocol.transport
            if transport is None or transport.is_closing():
                raise ClientConnectionResetError("the upstream connection closed before the request was sent")
            # One write for the head and the (small, buffered) body, as aiohttp's writer would do.
            transport.write(head + body if body else head)
            protocol.start_timeout()
        try:
            while True:
                message, payload = await protocol.read()
                if message.code == 101:
                    # Never asked for (Upgrade is hop-by-hop and dropped): what follows is no HTTP,
                    # so fail now rather than wait for an answer that never comes.
                    raise HttpProcessingError(message="unrequested protocol switch")
                # Interim answers (100 Continue, 102) are between the gateway and the upstream.
                if not 100 <= message.code < 200:
                    break
        except BaseException:
            if body_task is not None:
                body_task.cancel()
            raise
        return UpstreamResponse(message.code, message.reason, message.headers, payload, protocol, self, body_task,
                                _closes=message.should_close)


# Below this many characters of Cookie lines, aiohttp's serialiser does the whole head.
_LONG_COOKIES = 256


def serialize_request_head(status_line: str, headers: CIMultiDict[str]) -> bytes:
    """The request line and header section as bytes; ValueError when the line, a name or a value
    holds CR or LF (a header injection), like aiohttp's own serialiser, which this uses.

    Except for `Cookie`: aiohttp checks and copies one character at a time (about 14 instructions a
    byte), and a signed-in OWA browser sends 1.5 to 3 KB of cookies with every request, which made
    the serialising a quarter of what a session costs over an anonymous request. Long Cookie values
    are checked with `in` (memchr) and encoded whole, as the client sent them (the request parser
    decoded them with `surrogateescape`), and their lines come last, in their order: the order of
    different field names carries no meaning (RFC 9110, section 5.3).
    """
    cookies = headers.getall("Cookie", ())
    if not cookies or sum(map(len, cookies)) < _LONG_COOKIES:
        return serialize_headers(status_line, headers)
    lines = []
    for value in cookies:
        if "\r" in value or "\n" in value:
            raise ValueError("Forbidden control character detected in headers (CR or LF in a Cookie value)")
        lines.append(b"Cookie: " + value.encode("utf-8", "surrogateescape") + b"\r\n")
    others = headers.copy()
    del others["Cookie"]
    # aiohttp's head ends with the blank line; the Cookie lines go before it.
    return b"".join([serialize_headers(status_line, others)[:-2], *lines, b"\r\n"])


async def _send_body(writer: StreamWriter, body: StreamReader, protocol: ResponseHandler) -> None:
    """Stream the client's body upstream; if the client's side fails, the upstream exchange is void."""
    try:
        while True:
            chunk = await body.readany()
            if not chunk:
                break
            await writer.write(chunk)
        await writer.write_eof()
        protocol.start_timeout()
    except asyncio.CancelledError:
        raise
    except BaseException:
        # The upstream got a truncated body: it must not be taken as a complete request.
        protocol.abort()
        raise


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
