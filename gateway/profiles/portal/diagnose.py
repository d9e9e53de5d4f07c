"""What `monosign-gateway check` says about each portal site's first factor, one finding per line.

- `ldap`: the backend's own `diagnose()` (reach the directory, bind the service account, read
  base_dn, and find `--user` when given): one line per step, the first failure named as the
  backend names it (cannot reach, bad TLS, bad service credentials, user not found, ...);
- `file`: the users file reads and parses (how many users);
- `monosign`: the settings it needs (number matching), as `serve` would refuse them.

Nothing here changes state: the directory gets a service bind and searches, never a user's bind.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.model import GatewayConfig, Profile, Site
from gateway.identity.file_backend import FileFirstFactor
from gateway.identity.ldap_backend import LdapFirstFactor, Problem
from gateway.profiles.portal.first_factors import BackendProblem, build_backend, portal_site_problems
from gateway.settings import Settings

__all__ = ["Finding", "diagnose_portal_sites"]

# What an operator does about each LDAP problem.
_LDAP_FIXES = {
    Problem.CANNOT_REACH: "check `ldap.url` (host, port) and that the gateway may connect to it (firewall)",
    Problem.BAD_TLS: "check `ldap.ca_file` (the CA that signed the directory's certificate) and that the URL's "
                     "host name is in the certificate; ldaps:// needs a TLS port (636), start_tls a plain one",
    Problem.BAD_SERVICE_CREDENTIALS: "check `ldap.bind_dn` and the password in `ldap.bind_password_file`",
    Problem.BASE_DN_NOT_FOUND: "check `ldap.base_dn`, and that the service account may read it",
    Problem.USER_NOT_FOUND: "check `ldap.user_filter` and `ldap.base_dn` (the user must be below it)",
    Problem.AMBIGUOUS_USER: "make `ldap.user_filter` match one entry per user",
    Problem.DIRECTORY_ERROR: "see the directory's own log for the operation the gateway sent",
}


@dataclass(frozen=True, slots=True)
class Finding:
    ok: bool
    title: str
    cause: str | None = None
    fix: str | None = None


async def diagnose_portal_sites(config: GatewayConfig, settings: Settings, user: str | None) -> list[Finding]:
    findings: list[Finding] = []
    refused = {problem.location[1]: problem.message for problem in portal_site_problems(config, settings)}
    for index, site in enumerate(config.sites):
        if site.profile is not Profile.PORTAL:
            continue
        if index in refused:
            findings.append(Finding(False, f"site {site.name}: first factor monosign: {refused[index]}",
                                    fix="set GATEWAY_MFA_NUMBER_MATCHING=true, or another first_factor"))
            continue
        findings += await _diagnose_site(site, user)
    return findings


async def _diagnose_site(site: Site, user: str | None) -> list[Finding]:
    prefix = f"site {site.name}: first factor {site.first_factor}"
    try:
        backend = build_backend(site)
    except BackendProblem as exc:
        return [Finding(False, f"{prefix}: {'.'.join(map(str, exc.location))}: {exc.message}",
                        fix=f"fix site {site.name!r} in the config file (see docs/identity.md)")]
    try:
        if isinstance(backend, LdapFirstFactor):
            return [_ldap_finding(prefix, check.step, check.problem, check.detail)
                    for check in await backend.diagnose(user)]
        if isinstance(backend, FileFirstFactor):
            return [Finding(True, f"{prefix}: {site.users_file} holds {len(backend.users.users)} user(s)")]
        return [Finding(True, f"{prefix}: push number matching is on (GATEWAY_MFA_NUMBER_MATCHING)")]
    finally:
        await backend.aclose()


def _ldap_finding(prefix: str, step: str, problem: Problem | None, detail: str) -> Finding:
    if problem is None:
        return Finding(True, f"{prefix}: {step}: {detail}")
    return Finding(False, f"{prefix}: {step}: {problem.value}", cause=detail, fix=_LDAP_FIXES[problem])
