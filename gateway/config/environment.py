"""The configuration without a file: the environment's one Exchange site, exactly as before.

`GATEWAY_UPSTREAM_URL` is its upstream, `GATEWAY_PUBLIC_URL`'s host and `GATEWAY_ALLOWED_HOSTS` its
hosts (without ports: sites are chosen by host name), and the `GATEWAY_POLICY_*` settings its rules
(`gateway.config.exchange`). There is no default site: an unknown Host is refused, as it always was.
"""

from __future__ import annotations

from gateway.config.exchange import exchange_rules
from gateway.config.model import GatewayConfig
from gateway.policy.edge import normalise_host
from gateway.settings import RoutePolicy, Settings

__all__ = ["ENVIRONMENT_SITE", "sites_from_settings"]

ENVIRONMENT_SITE = "exchange"


def sites_from_settings(settings: Settings) -> GatewayConfig:
    """One `exchange` site from the environment-only settings."""
    scheme = "https" if settings.public_is_https else "http"
    hosts: list[str] = []
    for value in sorted(settings.allowed_hosts):
        host = normalise_host(value, scheme=scheme)
        if host is not None:
            host = _without_port(host)
            if host not in hosts:
                hosts.append(host)
    rules = exchange_rules(
        ecp=settings.gateway_policy_ecp is RoutePolicy.ALLOW,
        activesync=settings.gateway_policy_activesync is RoutePolicy.ALLOW,
        activesync_networks=settings.gateway_policy_activesync_networks,
        activesync_users=settings.gateway_policy_activesync_users,
        windows_auth=settings.gateway_policy_windows_auth is RoutePolicy.ALLOW,
        windows_auth_networks=settings.gateway_policy_windows_auth_networks,
        windows_auth_users=settings.gateway_policy_windows_auth_users,
        powershell=settings.gateway_policy_powershell is RoutePolicy.ALLOW,
        powershell_networks=settings.gateway_policy_powershell_networks,
        powershell_users=settings.gateway_policy_powershell_users,
    )
    return GatewayConfig.model_validate({"sites": [{
        "name": ENVIRONMENT_SITE,
        "hosts": hosts,
        "upstream": settings.gateway_upstream_url,
        "profile": "exchange",
        "rules": rules,
    }]})


def _without_port(host: str) -> str:
    """`normalise_host`'s `name[:port]` without the port (an IPv6 literal keeps its brackets)."""
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.rpartition(":")[0] if ":" in host else host
