"""A portal site's first factor, one backend per site, following the configuration as it is reloaded.

`FirstFactors.follow` is a listener of `gateway.assembly.sites.Sites`: it gets the configuration in force
at start-up and each one a reload swaps in, before any request is served with it. A site whose
first factor is written as before keeps its backend (LDAP connections, the users file already read);
a new or changed one gets a new backend, built here, in full, before the configuration is served: a
backend that cannot be built (the users file invalid, the service account's password file gone)
refuses the whole configuration with a located ConfigError, and the old one stays. A backend that
is replaced or whose site is gone is closed `RETIRE_SECONDS` later, once the sign-ins that had already
started with it are over; everything is closed at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from pathlib import Path

from gateway.config.ldap import LdapConfig
from gateway.config.loader import ConfigError, ConfigProblem
from gateway.config.model import FirstFactorKind, GatewayConfig, Location, Profile, Site
from gateway.identity.base import FirstFactor
from gateway.identity.file_backend import FileFirstFactor
from gateway.identity.ldap_backend import LdapFirstFactor
from gateway.identity.monosign_only import MonosignOnlyFirstFactor, monosign_only_problems
from gateway.identity.users_file import UsersFileError
from gateway.observability.logging import get_logger
from gateway.settings import Settings

__all__ = ["RETIRE_SECONDS", "FirstFactors", "SiteFirstFactor", "backend_problems", "build_backend",
           "portal_site_problems"]

log = get_logger("gateway.profiles.portal")

# A replaced backend stays open this long for the sign-ins already using it (an LDAP bind is bounded
# by the directory's time-out, at most 120 s).
RETIRE_SECONDS = 130.0

# What a site's first factor is made from: a site written the same keeps its backend.
FirstFactorSpec = tuple[FirstFactorKind, LdapConfig | None, Path | None]


@dataclass(frozen=True, slots=True)
class SiteFirstFactor:
    name: str
    first_factor: FirstFactorKind
    backend: FirstFactor
    spec: FirstFactorSpec


class BackendProblem(Exception):
    """A backend that cannot be built: the key it comes from (below the site) and why."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def build_backend(site: Site) -> FirstFactor:
    """The site's first-factor backend (BackendProblem when it cannot be used as written)."""
    kind = site.first_factor
    if kind is FirstFactorKind.FILE:
        assert site.users_file is not None  # the model requires it
        try:
            return FileFirstFactor.open(site.users_file)
        except OSError as exc:
            raise BackendProblem(("users_file",), f"cannot read {str(site.users_file)!r} "
                                                  f"({exc.strerror or exc})") from None
        except UsersFileError as exc:
            raise BackendProblem(("users_file",), f"{site.users_file}: {exc}") from None
    if kind is FirstFactorKind.LDAP:
        assert site.ldap is not None
        try:
            return LdapFirstFactor(site.ldap)
        except ssl.SSLError as exc:
            raise BackendProblem(("ldap", "ca_file"), f"not a usable CA file ({exc.reason or exc})") from None
        except OSError as exc:
            raise BackendProblem(("ldap",), f"cannot read a file it names ({exc.strerror or exc}: "
                                            f"{exc.filename})") from None
    assert kind is FirstFactorKind.MONOSIGN
    return MonosignOnlyFirstFactor()


def backend_problems(config: GatewayConfig, source: str) -> list[ConfigProblem]:
    """What `FirstFactors.follow` would refuse in `config` (for `serve` and `check`, before anything
    runs). The backends built to see it are dropped unused: building one opens no connection and
    starts no thread."""
    try:
        FirstFactors(source).follow(config)
    except ConfigError as exc:
        return exc.problems
    return []


def _spec(site: Site) -> FirstFactorSpec:
    assert site.first_factor is not None
    return site.first_factor, site.ldap, site.users_file


class FirstFactors:
    """The portal sites in force, by name, each with its first-factor backend (the sign-in side;
    gateway.profiles.portal.serve serves the sites' requests)."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._sites: dict[str, SiteFirstFactor] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._retired: list[FirstFactor] = []

    def site(self, name: str | None) -> SiteFirstFactor | None:
        """The portal site called `name` (None: not a portal site, or none)."""
        return self._sites.get(name) if name else None

    def follow(self, config: GatewayConfig) -> None:
        """Serve `config`'s portal sites from now on (ConfigError: the sites in force stay)."""
        sites: dict[str, SiteFirstFactor] = {}
        built: list[FirstFactor] = []
        problems: list[ConfigProblem] = []
        for index, site in enumerate(config.sites):
            if site.profile is not Profile.PORTAL:
                continue
            spec = _spec(site)
            kept = self._sites.get(site.name)
            if kept is not None and kept.spec == spec:
                sites[site.name] = kept
                continue
            try:
                backend = build_backend(site)
            except BackendProblem as exc:
                problems.append(ConfigProblem(self._source, None, ("sites", index, *exc.location), exc.message))
                continue
            built.append(backend)
            sites[site.name] = SiteFirstFactor(site.name, spec[0], backend, spec)
        if problems:
            self._retire(built)
            raise ConfigError(problems)
        kept_backends = {id(site.backend) for site in sites.values()}
        self._retire([site.backend for site in self._sites.values() if id(site.backend) not in kept_backends])
        self._sites = sites
        if built:
            log.info("portal_sites_loaded", sites=[f"{site.name} ({site.first_factor.value})"
                                                   for site in sites.values()])

    def _retire(self, backends: list[FirstFactor]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._retired += backends  # not serving yet: closed at shutdown
            return
        for backend in backends:
            task = loop.create_task(self._close_later(backend))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_later(self, backend: FirstFactor) -> None:
        try:
            await asyncio.sleep(RETIRE_SECONDS)
        finally:
            await backend.aclose()

    async def aclose(self) -> None:
        for task in list(self._closing):
            task.cancel()  # closes its backend now
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for backend in [*self._retired, *(site.backend for site in self._sites.values())]:
            await backend.aclose()
        self._retired = []
        self._sites = {}


def portal_site_problems(config: GatewayConfig, settings: Settings) -> list[ConfigProblem]:
    """What the settings forbid a portal site: the `monosign` first factor without number matching
    (gateway.identity.monosign_only: a push to anyone who types a name is push fatigue by design)."""
    source = str(settings.gateway_config_file or "<config>")
    problems: list[ConfigProblem] = []
    for index, site in enumerate(config.sites):
        if site.first_factor is not FirstFactorKind.MONOSIGN:
            continue
        # Pushes are always limited: per user and network, per user, and per familiar browser
        # (GATEWAY_MFA_MAX_PUSHES, at least 1; gateway.mfa.lockout's push budgets), and each sign-in
        # attempt counts per client address (gateway.profiles.portal.signin).
        for problem in monosign_only_problems(push_number_matching=settings.gateway_mfa_number_matching,
                                              push_rate_limited=True):
            problems.append(ConfigProblem(source, None, ("sites", index, "first_factor"), problem))
    return problems
