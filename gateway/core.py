"""The shared request types: what the edge decided about a request, how a route class is served,
and the components every request shares.

Everything above imports these (the pipeline in `gateway.app`, the features, the assembly); this
module imports no feature. It sits above the components it names (the forwarder, the readiness
checks, the metrics, the page renderer) and below the pipeline (see tests/test_layers.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web
from multidict import CIMultiDict

from gateway.observability.metrics import Metrics
from gateway.observability.readiness import Readiness
from gateway.pages.renderer import PageRenderer
from gateway.policy.paths import Target
from gateway.policy.routes import RouteClass
from gateway.proxy.forwarder import Forwarder, ResponseInspector, Transfer
from gateway.settings import Settings

T = TypeVar("T")


@dataclass(slots=True)
class RequestContext:
    """What the edge decided about one request; handlers read it, the access log reports it."""

    request_id: str
    started: float
    peer_ip: str  # the TCP peer
    client_ip: str  # the client, as far as trusted proxies tell (else the peer)
    peer_trusted: bool
    target: Target | None = None
    route: RouteClass | None = None
    rejection: tuple[int, str] | None = None  # (status, reason) decided at the edge
    moved_to: str | None = None  # a loopback alias of a loopback public URL: redirected there
    transfer: Transfer = field(default_factory=Transfer)


Handler = Callable[[web.Request, RequestContext], Awaitable[web.StreamResponse]]
# Decides, before the body is read, whether the client may be invited to send it (100 Continue).
ContinueCheck = Callable[[web.Request, RequestContext], Awaitable[bool]]


async def always(request: web.Request, ctx: RequestContext) -> bool:
    return True


async def never(request: web.Request, ctx: RequestContext) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Route:
    """How one route class is served: the handler, and whether `100 Continue` may be sent."""

    handle: Handler
    may_continue: ContinueCheck = never


class UpstreamGuard(Protocol):
    """Applied to every request the default handlers forward (the MFA flow installs one): may edit
    the upstream request headers (drop the gateway's cookie) and returns the response inspector."""

    def prepare(self, request: web.Request, ctx: RequestContext, headers: CIMultiDict[str]
                ) -> ResponseInspector | None: ...


class GatewayPages:
    """`/_gateway/*` pages, by exact lower-case canonical path and method."""

    def __init__(self) -> None:
        self._pages: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        if not path.startswith("/_gateway/"):
            raise ValueError("gateway pages live under /_gateway/")
        methods = self._pages.setdefault(path.lower(), {})
        methods[method.upper()] = handler
        if method.upper() == "GET":
            methods.setdefault("HEAD", handler)

    def find(self, method: str, lower_path: str) -> Handler | int:
        """The handler, or the status to answer: 404 (no such page) or 405 (not with this method)."""
        methods = self._pages.get(lower_path)
        if methods is None:
            return 404
        return methods.get(method, 405)


class FeatureKey(Generic[T]):
    """A typed key for a component a feature keeps on `AppState` (the MFA flow, say): the core
    cannot name the feature's type without importing it, so the key carries it."""

    __slots__ = ("kind", "name")

    def __init__(self, name: str, kind: type[T]) -> None:
        self.name = name
        self.kind = kind

    def __repr__(self) -> str:
        return f"FeatureKey({self.name!r})"


@dataclass(slots=True)
class AppState:
    """Components shared by all requests of one application. Stored under `STATE`."""

    settings: Settings
    metrics: Metrics
    forwarder: Forwarder
    readiness: Readiness
    routes: dict[RouteClass, Route]
    pages: GatewayPages
    renderer: PageRenderer  # every page the gateway answers itself, errors included
    allowed_hosts: frozenset[str]
    public_scheme: str
    # Other loopback names of a loopback public URL (the demo): redirected to the public URL.
    loopback_aliases: frozenset[str]
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    upstream_guard: UpstreamGuard | None = None
    # Run when the main application shuts down (close clients, cancel background tasks).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _features: dict[FeatureKey[Any], object] = field(default_factory=dict)

    def peer_is_trusted(self, peer_ip: str) -> bool:
        return _peer_in(peer_ip, self.trusted_networks)

    def provide(self, key: FeatureKey[T], component: T) -> None:
        """Keep a feature's component (once: a second one would be a wiring mistake)."""
        if key in self._features:
            raise ValueError(f"{key.name} is already installed")
        self._features[key] = component

    def feature(self, key: FeatureKey[T]) -> T:
        """The component kept under `key`; KeyError when the feature is not installed."""
        component = self._features[key]
        assert isinstance(component, key.kind)
        return component


STATE = web.AppKey("gateway_state", AppState)
CONTEXT = web.RequestKey("gateway_request_context", RequestContext)


@lru_cache(maxsize=4096)
def _peer_in(peer_ip: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    return any(address in network for network in networks)
