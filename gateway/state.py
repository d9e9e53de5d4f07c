"""`AppState`: the components every request of one application shares, kept under `STATE`.

Above the components it names (the forwarder, the readiness checks, the metrics, the page renderer)
and below the pipeline; `gateway.assembly.build_state` makes it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from aiohttp import web

from gateway.core import FeatureKey, GatewayPages, Route, SiteDispatch, SiteProfile, UpstreamGuard
from gateway.observability.metrics import Metrics
from gateway.observability.readiness import Readiness
from gateway.pages.renderer import PageRenderer
from gateway.policy.routes import RouteClass
from gateway.policy.rules import RuleSet
from gateway.proxy.drain import Drain
from gateway.proxy.forwarder import Forwarder
from gateway.settings import Settings

T = TypeVar("T")


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
    # The profile of the application's own site: classifies its requests and chooses their handlers
    # (from `routes`, the handlers by route class that the profile's components install).
    profile: SiteProfile
    # The rules of the application's own site: the environment's (GATEWAY_POLICY_*), or the
    # configuration file's site of that profile; a reload swaps them (gateway.assembly.sites.Sites).
    site_rules: RuleSet
    upstream_guard: UpstreamGuard | None = None
    # With a configuration file: the sites, chosen by Host (None: every request is the profile's).
    sites: SiteDispatch | None = None
    # Run when the main application shuts down (close clients, cancel background tasks).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _features: dict[FeatureKey[Any], object] = field(default_factory=dict)

    @property
    def drain(self) -> Drain:
        """The shutdown drain, as the requests see it (gateway.server starts it on SIGTERM)."""
        return self.forwarder.drain

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


@lru_cache(maxsize=4096)
def _peer_in(peer_ip: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    return any(address in network for network in networks)
