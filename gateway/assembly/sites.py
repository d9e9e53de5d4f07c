"""Several sites on one listener, chosen by `Host`: `Sites` builds each site's route from its profile.

With `GATEWAY_CONFIG_FILE`, `Sites` is the application's `SiteDispatch`. It chooses a request's site
with `gateway.policy.sites.SiteIndex` (the canonical host name, any port):

- an `exchange` site is the application's own pipeline, as without a file (`dispatch` answers
  None), served with the site's own rules (`AppState.site_rules`, swapped with the rest) and its
  own upstream (the application's forwarder: `GATEWAY_UPSTREAM_URL` is the default of the
  environment-only configuration). One exchange site per file (`check_exchange_site`); a reload
  may change its rules, not its upstream (the forwarder holds pinned connections: a restart does);
- a `passthrough` site's requests are served by `gateway.profiles.passthrough` (its rules, then the
  forwarder or a 403);
- a `portal` site's requests are served by `gateway.profiles.portal.serve` (its rules, the session,
  the identity handed upstream); `portals` is the configuration as forward auth sees it;
- a host no site lists goes to `default_site`, else is answered 421.

`swap` installs another configuration (a reload): requests read the dispatch table once, when they
start, so those in flight finish on the configuration they started with. Forwarders are kept by
upstream URL across swaps (connections in flight keep theirs) and closed at shutdown. Components
built per site elsewhere (a portal site's first factor) follow swaps through `add_listener`: a
listener that raises ConfigError refuses the new configuration, and the old one stays.

Part of the assembly: the one place that wires profiles into sites.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.environment import sites_from_settings
from gateway.config.loader import ConfigError, ConfigProblem
from gateway.config.model import GatewayConfig, Profile, Site
from gateway.core import SessionScope, SiteRoute
from gateway.observability.logging import get_logger
from gateway.observability.readiness import Check
from gateway.policy.sites import SiteIndex
from gateway.profiles.passthrough import PASSTHROUGH_LABEL, passthrough_route, site_upstream
from gateway.profiles.portal.first_factors import portal_site_problems
from gateway.profiles.portal.serve import PORTAL_LABEL, PortalSites
from gateway.proxy.forwarder import Forwarder
from gateway.proxy.upstream_config import UpstreamConfig
from gateway.settings import Settings
from gateway.state import AppState

__all__ = ["ConfigListener", "Sites", "check_exchange_site", "exchange_site", "install_sites"]

# The logger keeps its name from before the module moved: operators filter on it.
log = get_logger("gateway.passthrough")


def exchange_site(config: GatewayConfig) -> Site | None:
    """The file's exchange site (the application's own pipeline serves it), if it has one."""
    return next((site for site in config.sites if site.profile is Profile.EXCHANGE), None)


def check_exchange_site(config: GatewayConfig, settings: Settings, *, serving_upstream: str | None = None) -> None:
    """Refuse (ConfigError) a file whose exchange site the running pipeline would not serve as written:
    a second one, or (a reload, `serving_upstream` given) another upstream than the one it serves."""
    source = str(settings.gateway_config_file or "<config>")
    problems: list[ConfigProblem] = []
    exchange = [(index, site) for index, site in enumerate(config.sites) if site.profile is Profile.EXCHANGE]
    for index, _site in exchange[1:]:
        problems.append(ConfigProblem(source, None, ("sites", index, "profile"),
                                      "only one exchange site is served for now"))
    for index, site in exchange[:1]:
        if serving_upstream is not None and site.upstream != serving_upstream:
            problems.append(ConfigProblem(source, None, ("sites", index, "upstream"),
                                          f"the exchange site's upstream changes with a restart, not a reload "
                                          f"(serving {serving_upstream})"))
    problems += portal_site_problems(config, settings)
    if problems:
        raise ConfigError(problems)


# Called with each configuration about to be served (the first one when added); may refuse it by
# raising ConfigError.
ConfigListener = Callable[[GatewayConfig], None]


class Sites:
    """The sites of one configuration, by host; `swap` replaces them as a whole."""

    def __init__(self, state: AppState, config: GatewayConfig) -> None:
        self._state = state
        self._forwarders: dict[UpstreamConfig, Forwarder] = {}
        self._started = False
        self.portals: PortalSites
        self._listeners: list[ConfigListener] = []
        self._table = self._build(config)
        site = exchange_site(config)
        # What the application's forwarder serves (gateway.assembly.build_state gave it the site's).
        self._exchange_upstream = site.upstream if site is not None else \
            sites_from_settings(state.settings).sites[0].upstream
        self._serve_exchange_site(config)

    def add_listener(self, listener: ConfigListener) -> None:
        """Follow the configuration: `listener` gets the current one now, and each one swapped in."""
        listener(self.config)
        self._listeners.append(listener)

    def host_site(self, host_header: str) -> str | None:
        site = self._table[0].select(host_header).site
        if site is None:
            return None
        return "" if site.profile is Profile.EXCHANGE else site.name

    def site_title(self, site: str) -> str | None:
        try:
            return self.config.site(site).title
        except KeyError:
            return None  # "" (the environment's Exchange site), or a site a reload just removed

    def session_scope(self, site: str) -> SessionScope | None:
        return self.portals.scope(site)

    @property
    def config(self) -> GatewayConfig:
        return self._table[0].config

    def dispatch(self, host_header: str) -> SiteRoute | int | None:
        index, routes = self._table  # read once: a swap replaces the pair
        selection = index.select(host_header)
        if selection.site is None:
            return selection.status or 421
        return routes.get(selection.site.name)

    def swap(self, config: GatewayConfig) -> None:
        """Serve `config` to requests that start from now on (ConfigError: the old one stays)."""
        check_exchange_site(config, self._state.settings, serving_upstream=self._exchange_upstream)
        for listener in self._listeners:
            listener(config)
        self._table = self._build(config)
        self._serve_exchange_site(config)

    def _serve_exchange_site(self, config: GatewayConfig) -> None:
        site = exchange_site(config)
        if site is not None:
            self._state.site_rules = self._table[0].rules(site)

    def _build(self, config: GatewayConfig) -> tuple[SiteIndex, dict[str, SiteRoute]]:
        index = SiteIndex(config)
        portals = PortalSites(index, self._state)
        routes: dict[str, SiteRoute] = {}
        for site in config.sites:
            if site.profile is Profile.PASSTHROUGH:
                routes[site.name] = SiteRoute(PASSTHROUGH_LABEL, passthrough_route(index.rules(site),
                                                                                   self._forwarder(site)), site.title)
            elif site.profile is Profile.PORTAL:
                routes[site.name] = SiteRoute(PORTAL_LABEL, portals.route(site, self._forwarder(site)), site.title)
        self.portals = portals
        return index, routes

    def _forwarder(self, site: Site) -> Forwarder:
        upstream = site_upstream(site, self._state.forwarder.config)
        forwarder = self._forwarders.get(upstream)
        if forwarder is None:
            state = self._state
            forwarder = self._forwarders[upstream] = Forwarder(upstream, state.metrics, drain=state.drain)
            if self._started:
                forwarder.open()
        return forwarder

    def upstream_checks(self) -> dict[str, Check]:
        """Readiness (informational, docs/deployment.md): each site's upstream but Exchange's (the
        critical `upstream`), as `upstream:SITE`, for the configuration in force."""
        return {f"upstream:{site.name}": self._forwarder(site).check
                for site in self.config.sites if site.profile is not Profile.EXCHANGE}

    async def start(self) -> None:
        self._started = True
        for forwarder in self._forwarders.values():
            forwarder.open()

    async def close(self) -> None:
        for forwarder in self._forwarders.values():
            await forwarder.close()


def install_sites(state: AppState, config: GatewayConfig) -> Sites:
    """Serve the file's sites from the application (ConfigError when its Exchange site does not fit)."""
    check_exchange_site(config, state.settings)
    sites = Sites(state, config)
    state.sites = sites
    state.closers.append(sites.close)
    # Informational: one site's upstream down must not drain a replica that serves every other site.
    state.readiness.add_group(sites.upstream_checks, critical=False)
    log.info("sites_loaded", sites=[f"{site.name} ({site.profile.value})" for site in config.sites],
             digest=config.digest)
    return sites
