"""Pinned upstream connections: one per client connection that uses NTLM or Negotiate, never shared.

NTLM (and Negotiate, which IIS may also keep per connection) authenticates the TCP connection: the
challenge of leg 2 belongs to the upstream connection that sent it, and after leg 3 IIS treats every
later request on that connection as the authenticated user. So a pooled upstream connection that
carried one client's handshake would hand that user's identity to the next client that borrows it
(and a pooled leg 3 on another connection loops on 401s). Here, each such client connection gets
an upstream connection of its own:

- opened on first use, over TLS like the pooled forwarder's, never returned to the shared pool,
  never used for another client connection, never silently replaced: if it is gone, the next
  request fails (502) rather than reaching Exchange on a fresh, unauthenticated connection;
- closed when the client connection closes (`CloseHooksMixin`), and the other way round: when the
  upstream closes it (IIS's or a load balancer's keep-alive limit, nginx's `keepalive_requests`),
  the client connection ends too, so the client starts a new handshake instead of believing it is
  still authenticated; gracefully, never with a request unanswered:
  - an answer the upstream ends its connection after (`Connection: close`, or closed before its
    head is relayed) goes to the client with `Connection: close`, and the client connection ends
    after it (requests pipelined behind it are not processed, as RFC 9112 section 9.6 says, so the
    client knows it may send them again);
  - a closing noticed only after the answer went out: every later request on the client connection
    is answered 502 with `Connection: close` (the forwarder), and an idle client connection is
    closed after `CLOSE_GRACE_SECONDS` (`close_when_idle`), not at once: the client's next request
    may already be on its way.

Which requests are pinned: every request on a connection that is already pinned; a request that
carries `Authorization: NTLM|Negotiate`; the Windows-authentication route classes (the caller
asks with `always=True`). A pooled response that offers NTLM/Negotiate pins the client connection
for its next requests, and that pooled upstream connection is closed instead of pooled.

The user an NTLM/Negotiate leg 3 authenticated is remembered per connection (read from the leg-3
message, never the password), so policies can judge later requests that carry no credential.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.observability.logging import get_logger
from gateway.policy.clients import is_connection_auth, offers_connection_auth, parse_authorization
from gateway.policy.users import UserName
from gateway.proxy.client_connection import CloseHooksMixin, add_close_hook, close_when_idle
from gateway.proxy.upstream import ConnectFailed, UpstreamPool, UpstreamProtocol, UpstreamResponse

if TYPE_CHECKING:
    import ssl

    from gateway.proxy.upstream_config import UpstreamConfig

__all__ = ["PinnedConnection", "PinnedConnections", "PinnedPool"]

log = get_logger("gateway.pinned")

# How long a client connection whose pinned upstream connection closed may stay open while idle: long
# enough for a request sent as the previous answer arrived (a round trip) to reach the gateway and be
# answered, short enough that a client idle since then finds the connection closed before it reuses it.
CLOSE_GRACE_SECONDS = 2.0


class PinnedPool(UpstreamPool):
    """An `UpstreamPool` of exactly one connection, opened once: a second connection is refused."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None, connect_timeout: float,
                 idle_seconds: float, on_lost: Callable[[], None]) -> None:
        super().__init__(url, ssl_context=ssl_context, limit=1, connect_timeout=connect_timeout,
                         idle_seconds=idle_seconds, reuse=True)
        self._opened = False
        self._on_lost = on_lost

    @property
    def opened(self) -> bool:
        return self._opened

    async def _connect(self) -> UpstreamProtocol:
        if self._opened:
            # The authenticated connection is gone; a new one would be another, anonymous client.
            raise ConnectFailed("disconnect")
        self._opened = True
        protocol = await super()._connect()
        closed = protocol.closed
        if closed is None or closed.done():
            self._on_lost()
        else:
            closed.add_done_callback(lambda _: self._on_lost())
        return protocol


@dataclass(slots=True)
class PinnedConnection:
    """The pinned state of one client connection (forgotten when that connection closes)."""

    protocol: Any  # the client connection's server protocol
    pool: PinnedPool | None = None
    user: UserName | None = None  # who NTLM/Negotiate authenticated on this connection
    # Exchange has accepted a connection-bound credential here, whoever it named (sticky: a Kerberos
    # ticket or a token the gateway cannot read authenticates the connection without naming anyone
    # to us, and nothing proves that a later 401 made IIS forget it).
    authenticated: bool = False
    closed: bool = False
    audited: set[tuple[str, ...]] = field(default_factory=set)  # decisions already audited here


class PinnedConnections:
    """Client connection → its pinned upstream connection. Create in the event loop."""

    def __init__(self, config: UpstreamConfig, *, ssl_context: ssl.SSLContext | None) -> None:
        self._url = config.url
        self._ssl = ssl_context
        self._connect_timeout = config.connect_timeout
        # A pinned connection may sit idle as long as its client's connection may (aiohttp's keep-alive).
        self._idle_seconds = max(config.windows_auth_timeout, 3630.0)
        self._by_protocol: dict[Any, PinnedConnection] = {}
        self.opened_total = 0

    @property
    def upstream_connections(self) -> int:
        """Pinned upstream connections opened and not yet closed."""
        return sum(1 for pinned in self._by_protocol.values() if pinned.pool is not None and not pinned.closed)

    def get(self, request: web.BaseRequest) -> PinnedConnection | None:
        return self._by_protocol.get(request.protocol)

    @staticmethod
    def supported(request: web.BaseRequest) -> bool:
        """Pinning needs to learn when the client connection closes (`CloseHooksMixin`)."""
        return isinstance(request.protocol, CloseHooksMixin)

    def is_pinned(self, request: web.BaseRequest) -> bool:
        return request.protocol in self._by_protocol

    def wants(self, request: web.BaseRequest) -> bool:
        """Must this request go over the client connection's pinned upstream connection?"""
        return self.is_pinned(request) or is_connection_auth(request.headers.getall("Authorization", ()))

    def pin(self, request: web.BaseRequest) -> PinnedConnection | None:
        """Mark the client connection as pinned (its upstream connection is opened on first use)."""
        protocol = request.protocol
        pinned = self._by_protocol.get(protocol)
        if pinned is None:
            if not self.supported(request) or getattr(protocol, "transport", None) is None:
                return None
            pinned = self._by_protocol[protocol] = PinnedConnection(protocol)
            add_close_hook(protocol, lambda: self._client_closed(pinned))
        return pinned

    def pool_for(self, request: web.BaseRequest) -> UpstreamPool | None:
        """The client connection's own upstream pool of one connection (pins it if needed).

        None when this server protocol cannot tell when its connection closes: the caller must then
        use a connection of the request's own, closed afterwards (never a pooled one).
        """
        pinned = self.pin(request)
        if pinned is None:
            return None
        if pinned.pool is None:
            pinned.pool = PinnedPool(self._url, ssl_context=self._ssl, connect_timeout=self._connect_timeout,
                                     idle_seconds=self._idle_seconds, on_lost=lambda: self._upstream_closed(pinned))
            self.opened_total += 1
        return pinned.pool

    def after_response(self, request: web.BaseRequest, upstream: UpstreamResponse, *, pinned: bool) -> bool:
        """Learn from the upstream's answer; False when that (pooled) upstream connection must not be reused.

        On a pinned connection: leg 3 answered with anything but 401 makes its user the connection's;
        a new leg 1, or a 401, forgets it. On a pooled one: an NTLM/Negotiate offer pins the client
        connection for its next requests, and the pooled connection is closed rather than reused.
        """
        if pinned:
            state = self.get(request)
            if state is not None:
                values = request.headers.getall("Authorization", ())
                if is_connection_auth(values):  # the lenient test: a tab-spelled Kerberos ticket too
                    credential = parse_authorization(values)
                    state.user = credential.user if credential.user is not None and upstream.status != 401 else None
                    if upstream.status != 401:
                        state.authenticated = True
                elif upstream.status == 401:
                    state.user = None
            return True
        if offers_connection_auth(upstream.headers.getall("WWW-Authenticate", ())):
            self.pin(request)
            return False
        return True

    def connection_user(self, request: web.BaseRequest) -> UserName | None:
        state = self.get(request)
        return state.user if state is not None else None

    def connection_authenticated(self, request: web.BaseRequest) -> bool:
        """Whether Exchange has accepted an NTLM/Negotiate credential on this client connection's
        upstream connection, whoever it named (`connection_user` may still be None)."""
        state = self.get(request)
        return state is not None and state.authenticated

    def _client_closed(self, pinned: PinnedConnection) -> None:
        pinned.closed = True
        self._by_protocol.pop(pinned.protocol, None)
        if pinned.pool is not None:
            pinned.pool.close()

    def _upstream_closed(self, pinned: PinnedConnection) -> None:
        if pinned.closed:
            return
        # Stays in the table until the client connection closes: requests in between get 502.
        pinned.closed = True
        pinned.user = None
        if pinned.pool is not None:
            pinned.pool.close()
        log.debug("pinned_upstream_closed", message="pinned upstream connection closed; closing the client connection")
        close_when_idle(pinned.protocol, CLOSE_GRACE_SECONDS)

    def close(self) -> None:
        """Close every pinned upstream connection (the application is shutting down)."""
        for pinned in list(self._by_protocol.values()):
            self._client_closed(pinned)
