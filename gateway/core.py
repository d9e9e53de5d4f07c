"""The shared request types: what the edge decided about a request, what a forwarded request did,
how a route class is served, and the hook that inspects an upstream's answer.

At the bottom, beside the pure rules: everything above imports these (the forwarder, the pipeline
in `gateway.app`, the features, the assembly) and they import nothing of the gateway's but the
rules' types. The components every request shares are `gateway.state.AppState`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.policy.paths import Target
from gateway.policy.routes import RouteClass

T = TypeVar("T")


@dataclass(slots=True)
class Transfer:
    """What one forwarded request did, for the access log."""

    upstream_seconds: float | None = None
    bytes_out: int = 0
    status: int | None = None


class UpstreamAnswer(Protocol):
    """What an inspector reads of the upstream's answer: status and headers, never the body."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...


# Called with the upstream response and the (already filtered) headers the client will get. It may
# edit those headers, or return a complete response to send instead (the upstream body is then
# discarded). This is where login observation and cookie hold-back plug in.
ResponseInspector = Callable[[UpstreamAnswer, CIMultiDict[str]], Awaitable[web.StreamResponse | None]]


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
    site: SiteRoute | None = None  # a site another profile serves (passthrough); None: the route class's
    # The site whose host a /_gateway/ request came to, for the pages that depend on it (a portal
    # site's sign-in): its name, or "" for the Exchange site (the environment's, as
    # SessionRecord.site says); None when no site was chosen. Set for /_gateway/ requests only.
    host_site: str | None = None


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


@dataclass(frozen=True, slots=True)
class SiteRoute:
    """A site whose requests one route serves, whatever their route class (a passthrough site):
    `label` names it in the access log and the metrics."""

    label: str
    route: Route
    title: str | None = None  # the site's `title`: the brand name on its pages (None: GATEWAY_BRAND_NAME)


@dataclass(frozen=True, slots=True)
class SessionScope:
    """A session group as the sign-in and the session cookie see it: its name, the cookie's
    `Domain`, and the sites whose sessions count on each of its sites."""

    group: str
    cookie_domain: str
    sites: frozenset[str]


class SiteDispatch(Protocol):
    """Chooses a request's site by its `Host` (gateway.assembly.sites, with a configuration file)."""

    def dispatch(self, host_header: str) -> SiteRoute | int | None:
        """The site's route; None for the application's own profile (Exchange); or the status to
        answer at once (421: no site serves this host, 400: not a host)."""
        ...

    def host_site(self, host_header: str) -> str | None:
        """The name of the site `host_header` selects ("" for the Exchange site), or None."""
        ...

    def site_title(self, site: str) -> str | None:
        """The `title` of the site named `site`: its pages' brand name (None: GATEWAY_BRAND_NAME)."""
        ...

    def session_scope(self, site: str) -> SessionScope | None:
        """The session group whose sign-in the site named `site` shares (None: its sessions are its own)."""
        ...

    async def start(self) -> None:
        """Open the sites' upstream connections (in the event loop, before serving)."""
        ...


class SiteProfile(Protocol):
    """How one profile serves the requests of the application's own site (gateway.profiles): the
    pipeline knows a profile only through this. Its third part, what to inspect on the way back,
    is the `UpstreamGuard` its sign-in installs (gateway.state.AppState.upstream_guard)."""

    name: str

    def classify(self, method: str, target: Target) -> RouteClass:
        """The profile's route class of a canonical request (`RouteClass.GATEWAY` for /_gateway/)."""
        ...

    def route(self, request: web.Request, ctx: RequestContext) -> Route:
        """The handler for a classified request (`ctx.route` is set, and is not `GATEWAY`)."""
        ...


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


CONTEXT = web.RequestKey("gateway_request_context", RequestContext)
