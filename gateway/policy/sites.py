"""Which site a request is for, from its `Host` (pure, sans-IO).

The `Host` value is read by the edge's own :func:`gateway.policy.edge.normalise_host` (ASCII only,
lower-case, the grammar of a host), then the port is dropped: sites are chosen by host name, the
port belongs to the listener. A host no site lists goes to `default_site` when the configuration
names one; otherwise the request is *misdirected* (421, RFC 9110 §15.5.20). A `Host` that is not a
host at all is *invalid* (400): the default site never absorbs garbage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from gateway.config.model import GatewayConfig, Site, canonical_host
from gateway.policy.edge import normalise_host
from gateway.policy.rules import MEMO_ENTRIES, RuleSet

__all__ = ["HostMatch", "SiteIndex", "SiteSelection", "host_name"]


class HostMatch(StrEnum):
    LISTED = "listed"  # one of the site's hosts
    DEFAULT = "default"  # no site lists it: the default site
    MISDIRECTED = "misdirected"  # no site lists it and there is no default: 421
    INVALID = "invalid"  # not a host: 400


@dataclass(frozen=True, slots=True)
class SiteSelection:
    match: HostMatch
    host: str | None  # the canonical host name, when the value was one
    site: Site | None
    rules: RuleSet | None

    @property
    def status(self) -> int | None:
        """The status to answer without going further, or None when a site was chosen."""
        return {HostMatch.MISDIRECTED: 421, HostMatch.INVALID: 400}.get(self.match)


@lru_cache(maxsize=512)  # every request's Host comes here; bounded, so varied Hosts only evict
def host_name(value: str) -> str | None:
    """The canonical host name of a `Host` value, without port; None when it is not a host."""
    host = normalise_host(value, scheme="")
    if host is None:
        return None
    name = host[: host.index("]") + 1] if host.startswith("[") else host.partition(":")[0]
    try:
        return canonical_host(name)  # the form the configuration's hosts are in (IPv6 compressed, ...)
    except ValueError:
        return None


class SiteIndex:
    """Built once per configuration: host name -> site, and each site's compiled rules."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._rules = {site.name: RuleSet(site.rules) for site in config.sites}
        self._by_host = {host: site for site in config.sites for host in site.hosts}
        self._default = config.site(config.default_site) if config.default_site is not None else None
        self._selections: dict[str, SiteSelection] = {}

    def rules(self, site: Site) -> RuleSet:
        return self._rules[site.name]

    def select(self, host_header: str) -> SiteSelection:
        """The same `Host` always selects the same: answered from a bounded memo after the first time."""
        selection = self._selections.get(host_header)
        if selection is None:
            selection = self._select(host_header)
            if len(self._selections) >= MEMO_ENTRIES:
                self._selections.clear()
            self._selections[host_header] = selection
        return selection

    def _select(self, host_header: str) -> SiteSelection:
        host = host_name(host_header)
        if host is None:
            return SiteSelection(HostMatch.INVALID, None, None, None)
        site = self._by_host.get(host)
        if site is not None:
            return SiteSelection(HostMatch.LISTED, host, site, self._rules[site.name])
        if self._default is not None:
            return SiteSelection(HostMatch.DEFAULT, host, self._default, self._rules[self._default.name])
        return SiteSelection(HostMatch.MISDIRECTED, host, None, None)
