"""The one place that wires features into an application's state, from one table per profile.

    state = build_state(settings)          # the exchange profile, with the MFA flow
    app = gateway.app.build_app(state)

Nothing below this module imports a feature (`gateway.mfa`, `gateway.profiles.exchange`, `gateway.profiles`,
`gateway.profiles.exchange.client_routes`); tests/test_layers.py keeps it so. A profile is a table: the
profile's `SiteProfile` (classifies a request, chooses its handler; gateway.profiles), its route
class → `Route` handlers (the MFA-guarded classes refuse, fail closed, until the flow replaces
them), the components every application of the profile gets, and its second factor (left out by
`mfa=False`, for tests of the bare proxy).

`install_mfa` replaces the fail-closed stand-ins of the owa-login, owa-logoff and owa-app routes and
the plain forwarding of owa-public (gateway.profiles.exchange.public), adds the MFA pages (rendered by the
application's own `state.renderer`, whose static files `build_state` already serves), applies the
cookie rules to every other forwarded route, adds the `store` (critical) and `monosign`
(informational) readiness checks and the Monosign metrics, and closes it all at shutdown.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.app import healthz, public_readyz
from gateway.assembly.sites import Sites, exchange_site, install_sites
from gateway.config.environment import sites_from_settings
from gateway.config.model import GatewayConfig, Site
from gateway.core import GatewayPages, Handler, Route, SiteProfile
from gateway.mfa import handlers
from gateway.mfa.config import MfaConfig
from gateway.mfa.device_cookie import DeviceCookie
from gateway.mfa.flow import FLOW, MfaFlow
from gateway.mfa.lockout import Lockout, LockoutPolicy
from gateway.mfa.session_cookie import SessionCookie
from gateway.monosign import CircuitBreaker, MonosignClient
from gateway.monosign.contract import ApiPaths, ResultCodes
from gateway.monosign.metrics import register_monosign_metrics
from gateway.observability.metrics import Metrics
from gateway.observability.readiness import Readiness, ReadinessCollector
from gateway.pages import static_routes
from gateway.pages.brand import Brand
from gateway.pages.renderer import URLS, PageRenderer
from gateway.policy.edge import allowed_host_set, loopback_aliases
from gateway.policy.routes import RouteClass
from gateway.policy.rules import RuleSet
from gateway.profiles.exchange import ExchangeProfile, exchange_mfa_routes, exchange_routes
from gateway.profiles.exchange.client_routes import install_client_routes
from gateway.profiles.exchange.cookie_rules import FlowUpstreamGuard
from gateway.profiles.portal import signin
from gateway.profiles.portal.endpoints import install_portal_endpoints
from gateway.profiles.portal.first_factors import FirstFactors
from gateway.profiles.portal.portal import PORTAL, Portal, SigninCookie, form_keys
from gateway.proxy.forwarder import Forwarder
from gateway.proxy.upstream_config import UpstreamConfig
from gateway.sessions.base import SessionStore
from gateway.sessions.factory import StoreConfig, build_store
from gateway.settings import Settings
from gateway.state import AppState


@dataclass(frozen=True, slots=True)
class Profile:
    """How one kind of site is served: the profile itself (`SiteProfile`: classify, choose the
    handler), its handlers by route class, what every application of the profile gets (the
    components install more handlers), and its second factor (which installs the rest, and the
    inspection of upstream answers)."""

    name: str
    serving: Callable[[Settings], SiteProfile]
    routes: Callable[[Settings], dict[RouteClass, Route]]
    components: tuple[Callable[[AppState], object], ...]
    second_factor: Callable[[AppState], object]


# The MFA flow's pages: (method, path, handler).
MFA_PAGES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", URLS["mfa"], handlers.show),
    ("POST", URLS["verify"], handlers.verify),
    ("POST", URLS["push"], handlers.push),
    ("POST", URLS["cancel"], handlers.cancel),
    ("GET", URLS["status"], handlers.status),
    ("GET", URLS["complete"], handlers.complete),
)


def session_cookie(settings: Settings) -> SessionCookie:
    """The host-only session cookie of the public URL's scheme."""
    return SessionCookie(secure=settings.public_is_https)


def device_cookie(settings: Settings) -> DeviceCookie:
    """The familiar-device cookie, keyed from GATEWAY_SESSION_SECRET (and the previous one)."""
    configured = (settings.gateway_session_secret, settings.gateway_session_secret_previous)
    return DeviceCookie.from_secrets([secret.get_secret_value() for secret in configured if secret is not None],
                                     secure=settings.public_is_https, days=settings.gateway_mfa_device_days)


def mfa_config(settings: Settings) -> MfaConfig:
    """What the second-factor flow (and the sign-ins built on it) needs of the settings."""
    return MfaConfig(
        public_url=settings.gateway_public_url,
        idle_timeout=settings.gateway_session_idle_timeout,
        absolute_timeout=settings.gateway_session_absolute_timeout,
        lockout=LockoutPolicy(
            max_failures=settings.gateway_mfa_max_failures,
            max_failures_user=settings.gateway_mfa_max_failures_user,
            max_failures_ip=settings.gateway_mfa_max_failures_ip,
            network_prefix_v4=settings.gateway_mfa_network_prefix_v4,
            network_prefix_v6=settings.gateway_mfa_network_prefix_v6,
        ),
        lockout_seconds=settings.gateway_mfa_lockout_seconds,
        max_pushes=settings.gateway_mfa_max_pushes,
        fail_mode=settings.gateway_fail_mode,
        form_timeout=settings.gateway_header_timeout,
        login_max_body=settings.gateway_login_max_body,
        code_length=settings.gateway_mfa_code_length,
        number_matching=settings.gateway_mfa_number_matching,
        monosign_timeout=settings.monosign_timeout,
        store_timeout=settings.gateway_redis_timeout,
        user_exceptions=tuple(settings.monosign_user_exceptions),
    )


def install_mfa(state: AppState, *, monosign: MonosignClient, store: SessionStore) -> MfaFlow:
    """Install the flow; the returned object is also kept in the state, under `FLOW`."""
    flow = MfaFlow(state, config=mfa_config(state.settings), monosign=monosign, store=store,
                   session_cookie=session_cookie(state.settings), device_cookie=device_cookie(state.settings))
    state.provide(FLOW, flow)
    state.routes.update(exchange_mfa_routes())
    state.upstream_guard = FlowUpstreamGuard(flow)

    for method, path, handler in MFA_PAGES:
        state.pages.add(method, path, handler)

    # Informational: Monosign is shared by every replica, so draining this one for it would drain
    # them all; users get the "unavailable" page (or fail-open) instead (observability.readiness).
    state.readiness.add("monosign", monosign.readiness_check, critical=False)
    state.readiness.add("store", store.readiness_problem)
    register_monosign_metrics(monosign, state.metrics.registry)
    state.closers.append(flow.aclose)
    return flow


def install_mfa_from_settings(state: AppState) -> MfaFlow:
    """`install_mfa` with the Monosign client and store the settings describe."""
    settings = state.settings
    return install_mfa(state, monosign=monosign_client(settings),
                       store=build_store(store_config(settings)))


# A portal site's sign-in pages: (method, path, handler).
PORTAL_PAGES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", URLS["signin"], signin.show),
    ("POST", URLS["signin"], signin.submit),
    ("GET", URLS["signout"], signin.sign_out),
    ("POST", URLS["signout"], signin.confirm_sign_out),
)


def install_portal(state: AppState, sites: Sites) -> Portal:
    """The portal profile's sign-in (gateway.profiles.portal) on the file's portal sites: a
    first-factor backend per site, rebuilt as reloads change them (ConfigError when one cannot be
    built), and the sign-in pages, which answer 404 on any other site's hosts. Needs the MFA flow."""
    flow = state.feature(FLOW)
    settings = state.settings
    first_factors = FirstFactors(str(settings.gateway_config_file or "<config>"))
    sites.add_listener(first_factors.follow)
    # The first factor's failures, in the smart lockout's model with its own counters (a typed
    # account's failures are not a Monosign user's second-factor failures).
    lockout = Lockout(flow.store, policy=flow.lockout.policy, seconds=flow.lockout.seconds, clock=flow.clock,
                      counting="signin")
    portal = Portal(first_factors, lockout=lockout, cookie=SigninCookie(secure=settings.public_is_https),
                    keys=form_keys(settings.gateway_session_secret, settings.gateway_session_secret_previous))
    state.provide(PORTAL, portal)
    for method, path, handler in PORTAL_PAGES:
        state.pages.add(method, path, handler)
    state.closers.append(portal.aclose)
    return portal


EXCHANGE = Profile(
    name="exchange",
    serving=ExchangeProfile,
    routes=exchange_routes,
    components=(install_client_routes,),
    second_factor=install_mfa_from_settings,
)


def monosign_client(settings: Settings) -> MonosignClient:
    """The Monosign client the MONOSIGN_* settings describe (one per process, shared)."""
    verify: ssl.SSLContext | bool = settings.monosign_tls_verify
    if settings.monosign_tls_verify and settings.monosign_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.monosign_ca_file))
    return MonosignClient(
        base_url=settings.monosign_api_url,
        api_key=settings.monosign_api_key.get_secret_value(),
        api_secret=settings.monosign_api_secret.get_secret_value(),
        paths=ApiPaths(
            user_lookup=settings.monosign_path_user_lookup,
            push_start=settings.monosign_path_push_start,
            push_status=settings.monosign_path_push_status,
            verify=settings.monosign_path_verify,
        ),
        codes=ResultCodes(
            user_not_found=settings.monosign_code_user_not_found,
            invalid_code=settings.monosign_code_invalid_code,
            locked=settings.monosign_code_locked,
            push_unknown=settings.monosign_code_push_unknown,
        ),
        user_source=settings.monosign_user_source,
        connect_timeout=settings.monosign_connect_timeout,
        timeout=settings.monosign_timeout,
        max_connections=settings.monosign_max_connections,
        verify=verify,
        breaker=CircuitBreaker(settings.monosign_breaker_threshold, settings.monosign_breaker_cooldown),
    )


def page_renderer(settings: Settings) -> PageRenderer:
    """The renderer of every page the gateway answers itself, as the GATEWAY_BRAND_*, GATEWAY_LANGUAGE
    and GATEWAY_TEMPLATES_DIR settings describe it."""
    language = settings.gateway_language.value
    return PageRenderer(brand=Brand.from_settings(settings), templates_dir=settings.gateway_templates_dir,
                        forced_language=None if language == "auto" else language)


def store_config(settings: Settings) -> StoreConfig:
    return StoreConfig(
        kind=settings.gateway_session_store,
        secret=settings.gateway_session_secret,
        previous_secret=settings.gateway_session_secret_previous,
        cache_seconds=settings.gateway_session_cache_seconds,
        redis_url=settings.gateway_redis_url,
        redis_timeout=settings.gateway_redis_timeout,
        redis_ca_file=settings.gateway_redis_ca_file,
        redis_prefix=settings.gateway_redis_prefix,
        memory_max_entries=settings.gateway_memory_store_max_entries,
    )


def upstream_config(settings: Settings) -> UpstreamConfig:
    return UpstreamConfig(
        url=settings.gateway_upstream_url,
        pool_size=settings.gateway_upstream_pool_size,
        connect_timeout=settings.gateway_upstream_connect_timeout,
        read_timeout=settings.gateway_upstream_read_timeout,
        long_poll_timeout=settings.gateway_timeout_owa_notifications,
        windows_auth_timeout=settings.gateway_timeout_windows_auth,
        ca_file=settings.gateway_upstream_ca_file,
        tls_verify=settings.gateway_upstream_tls_verify,
    )


def own_site_of(settings: Settings, config: GatewayConfig | None) -> Site:
    """The site the application's own pipeline serves: the file's exchange site, else the environment's."""
    site = exchange_site(config) if config is not None else None
    return site if site is not None else sites_from_settings(settings).sites[0]


def build_state(settings: Settings, *, metrics: Metrics | None = None, mfa: bool = True,
                profile: Profile = EXCHANGE, config: GatewayConfig | None = None) -> AppState:
    """The shared state. `mfa=False` leaves the MFA-guarded routes refusing everything (tests of
    the bare proxy); otherwise the MFA flow is installed with the clients the settings describe.
    `config` (GATEWAY_CONFIG_FILE's) adds its passthrough and portal sites, chosen by Host
    (gateway.assembly.sites), and forward auth and the assertion keys (gateway.profiles.portal); its
    exchange site's upstream and rules replace the environment's (ConfigError when it has two)."""
    metrics = metrics or Metrics()
    scheme = "https" if settings.public_is_https else "http"
    networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in settings.gateway_trusted_proxies)
    own_site = own_site_of(settings, config)
    forwarder = Forwarder(replace(upstream_config(settings), url=own_site.upstream), metrics)
    readiness = Readiness()
    readiness.add("upstream", forwarder.check)
    metrics.registry.register(ReadinessCollector(readiness))
    pages = GatewayPages()
    pages.add("GET", "/_gateway/healthz", healthz)
    pages.add("GET", "/_gateway/readyz", public_readyz)
    renderer = page_renderer(settings)
    for path, handler in static_routes(renderer).items():
        pages.add("GET", path, handler)
    state = AppState(
        settings=settings,
        metrics=metrics,
        forwarder=forwarder,
        readiness=readiness,
        routes=profile.routes(settings),
        pages=pages,
        renderer=renderer,
        allowed_hosts=allowed_host_set(settings.allowed_hosts, scheme=scheme),
        public_scheme=scheme,
        loopback_aliases=loopback_aliases(settings.public_host, scheme=scheme) - allowed_host_set(
            settings.allowed_hosts, scheme=scheme),
        trusted_networks=networks,
        profile=profile.serving(settings),
        site_rules=RuleSet(own_site.rules),
    )
    for install in profile.components:
        install(state)
    if mfa:
        profile.second_factor(state)
    if config is not None:
        sites = install_sites(state, config)
        install_portal_endpoints(state, lambda: sites.portals)
        if mfa:
            install_portal(state, sites)
    return state
