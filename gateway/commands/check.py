"""`monosign-gateway check`: validate the settings, reach Monosign and the upstream, explain each failure.

One line per check: ✓ passed, ✗ failed (followed by its cause and the fix), ! a warning. The exit
status is 0 only when nothing failed. Nothing here changes state anywhere: Monosign gets user lookups
only, the upstream one GET of its logon page.
"""

from __future__ import annotations

import argparse
import io
import ssl
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.commands.arguments import describe_settings_sources

if TYPE_CHECKING:
    from gateway.config.model import GatewayConfig
    from gateway.monosign import MonosignError, MonosignUser
    from gateway.settings import Settings

# A user name nobody has: Monosign answering "user not found" (21) for it proves the key pair works.
SENTINEL_USER = "monosign-gateway-check-7c1e0d9b"
LOGON_PATH = "/owa/auth/logon.aspx"
CERT_EXPIRY_WARNING_DAYS = 14


class Mark(StrEnum):
    OK = "✓"
    FAIL = "✗"
    WARN = "!"


@dataclass(frozen=True, slots=True)
class CheckResult:
    mark: Mark
    title: str
    cause: str | None = None
    fix: str | None = None

    def render(self) -> str:
        lines = [f"{self.mark} {self.title}"]
        if self.cause:
            lines.append(f"    cause: {self.cause}")
        if self.fix:
            lines.append(f"    fix:   {self.fix}")
        return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    describe_settings_sources(parser)
    parser.add_argument("--env-file", type=Path, default=Path(".env"), metavar="PATH",
                        help="settings file to read besides the environment (default: .env)")
    parser.add_argument("--user", metavar="NAME",
                        help="also look this user up in Monosign and check they are assigned to the application")
    parser.add_argument("--verbose", action="store_true", help="also print the log lines of each call")


# --- Monosign: pure mapping of outcomes to results ------------------------------------------------------
def monosign_key_result(url: str, error: MonosignError | None) -> CheckResult:
    """The key-pair check: a lookup of SENTINEL_USER. 21 (or any user answer) proves the pair is accepted."""
    from gateway.monosign import (
        ErrorPage,
        InvalidApplicationKey,
        MonosignUnreachable,
        UnexpectedResponse,
        UserNotAssigned,
        UserNotFound,
    )

    if error is None or isinstance(error, UserNotFound | UserNotAssigned):
        return CheckResult(Mark.OK, f"Monosign API at {url} answers and accepts the key pair")
    if isinstance(error, InvalidApplicationKey):
        return CheckResult(Mark.FAIL, f"Monosign API at {url} rejects the key pair",
                           cause="code 12 Invalid Application Key",
                           fix=("check MONOSIGN_API_KEY / MONOSIGN_API_SECRET: the id and secret of an access key "
                                "of type Rest API, from the application's Keys tab in Monosign"))
    if isinstance(error, MonosignUnreachable):
        return CheckResult(Mark.FAIL, f"Monosign API at {url} cannot be reached from this host",
                           cause=error.detail, fix=error.operator_hint)
    if isinstance(error, ErrorPage):
        return CheckResult(Mark.FAIL, f"Monosign API at {url} answers with an error page",
                           cause=error.detail, fix=error.operator_hint)
    if isinstance(error, UnexpectedResponse):
        return CheckResult(Mark.FAIL, f"Monosign API at {url} answers outside the contract",
                           cause=error.detail,
                           fix=("check that MONOSIGN_API_URL is the API's base URL (not the portal), and the "
                                "MONOSIGN_PATH_* / MONOSIGN_CODE_* settings (docs/monosign-api.md)"))
    return CheckResult(Mark.FAIL, f"Monosign API at {url} gave an unexpected answer", cause=error.detail,
                       fix=error.operator_hint)


def monosign_user_results(name: str, user: MonosignUser | None, error: MonosignError | None,
                          settings: Settings) -> list[CheckResult]:
    from gateway.monosign import UserNotAssigned, UserNotFound

    if user is not None:
        methods = ", ".join(user.mfa_methods) or "none"
        results = [CheckResult(Mark.OK, f"Monosign user {name!r}: found as {user.user_name}"
                                        f"{f' <{user.email}>' if user.email else ''}, assigned to the "
                                        f"application, methods: {methods}")]
        if not (user.has_push or user.has_totp):
            results.append(CheckResult(Mark.WARN, f"Monosign user {name!r} has no Push or Totp method",
                                       fix="enrol the Monofor Identity app for this user in Monosign"))
        known = {name.casefold(), user.user_name.casefold(), (user.email or "").casefold()}
        if any(entry.casefold() in known for entry in settings.monosign_user_exceptions):
            results.append(CheckResult(Mark.WARN, f"{name!r} is in MONOSIGN_USER_EXCEPTIONS: no second factor"))
        return results
    if isinstance(error, UserNotAssigned):
        return [CheckResult(Mark.FAIL, f"Monosign user {name!r} is not assigned to the application",
                            cause="code 22 Permission Denied (This user not assigned to this application.)",
                            fix=("assign the user or their group to the application in Monosign; the application "
                                 "must allow 'Assigned Users and Defined Sources'"))]
    if isinstance(error, UserNotFound):
        source = settings.monosign_user_source
        return [CheckResult(Mark.FAIL, f"Monosign has no user {name!r}", cause="code 21 user not found",
                            fix=(f"check the spelling; MONOSIGN_USER_SOURCE is {source!r}" if source else
                                 "check the spelling; with several user sources, set MONOSIGN_USER_SOURCE"))]
    assert error is not None
    return [CheckResult(Mark.FAIL, f"Monosign lookup of {name!r} failed", cause=error.detail,
                        fix=error.operator_hint)]


async def check_monosign(settings: Settings, user_name: str | None) -> list[CheckResult]:
    from gateway.assembly import monosign_client
    from gateway.monosign import MonosignError

    results: list[CheckResult] = []
    async with monosign_client(settings) as client:
        try:
            await client.lookup_user(SENTINEL_USER)
            error: MonosignError | None = None
        except MonosignError as exc:
            error = exc
        key_result = monosign_key_result(settings.monosign_api_url, error)
        results.append(key_result)
        if user_name is None or key_result.mark is Mark.FAIL:
            return results
        try:
            found = await client.lookup_user(user_name)
            results.extend(monosign_user_results(user_name, found, None, settings))
        except MonosignError as exc:
            results.extend(monosign_user_results(user_name, None, exc, settings))
    return results


# --- Upstream ------------------------------------------------------------------------------------------------
def _connect_failure(what: str, exc: BaseException, host: str, port: int, timeout: float) -> CheckResult:
    import socket

    if isinstance(exc, socket.gaierror):
        return CheckResult(Mark.FAIL, f"upstream {what}: {host} does not resolve", cause=exc.strerror or str(exc),
                           fix="check GATEWAY_UPSTREAM_URL's host name and the gateway host's DNS resolver")
    if isinstance(exc, ConnectionRefusedError):
        return CheckResult(Mark.FAIL, f"upstream {what}: {host}:{port} refuses connections", cause="connection refused",
                           fix="check GATEWAY_UPSTREAM_URL's port, that Exchange (IIS) listens there, and the firewall")
    if isinstance(exc, TimeoutError):
        return CheckResult(Mark.FAIL, f"upstream {what}: no answer from {host}:{port} within {timeout:g}s",
                           cause="timed out",
                           fix="a firewall may be dropping the packets; GATEWAY_UPSTREAM_CONNECT_TIMEOUT sets the wait")
    return CheckResult(Mark.FAIL, f"upstream {what}: {host}:{port} cannot be reached",
                       cause=str(exc) or type(exc).__name__, fix="check GATEWAY_UPSTREAM_URL, routing and the firewall")


def _tls_failure(exc: ssl.SSLError, host: str) -> CheckResult:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CheckResult(Mark.FAIL, f"upstream TLS: the certificate of {host} is not accepted",
                           cause=exc.verify_message or str(exc),
                           fix=("set GATEWAY_UPSTREAM_CA_FILE to the CA bundle that signed Exchange's certificate, "
                                "and use a host name in GATEWAY_UPSTREAM_URL that the certificate names"))
    return CheckResult(Mark.FAIL, f"upstream TLS: the handshake with {host} failed", cause=exc.reason or str(exc),
                       fix="check that the upstream speaks TLS on this port (plain HTTP needs http:// in the URL)")


def _expiry_result(host: str, certificate: dict[str, object] | None, verified: bool) -> list[CheckResult]:
    import time

    if not verified:
        return [CheckResult(Mark.WARN, f"upstream TLS: connected to {host}, certificate NOT checked",
                            fix="GATEWAY_UPSTREAM_TLS_VERIFY=false; set GATEWAY_UPSTREAM_CA_FILE and turn it back on")]
    not_after = certificate.get("notAfter") if certificate else None
    if not isinstance(not_after, str):
        return [CheckResult(Mark.OK, f"upstream TLS: the certificate of {host} is valid")]
    expires = ssl.cert_time_to_seconds(not_after)
    days = (expires - time.time()) / 86400
    when = time.strftime("%Y-%m-%d", time.gmtime(expires))
    result = CheckResult(Mark.OK, f"upstream TLS: the certificate of {host} is valid (expires {when})")
    if days < CERT_EXPIRY_WARNING_DAYS:
        return [result, CheckResult(Mark.WARN, f"upstream TLS: the certificate of {host} expires in {days:.0f} days",
                                    fix="renew Exchange's certificate")]
    return [result]


async def check_upstream(settings: Settings) -> list[CheckResult]:
    import asyncio
    from urllib.parse import urlsplit

    import aiohttp

    from gateway.assembly import upstream_config

    url = settings.gateway_upstream_url
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    timeout = settings.gateway_upstream_connect_timeout
    results: list[CheckResult] = []

    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return [_connect_failure("TCP", exc, host, port, timeout)]
    writer.close()
    results.append(CheckResult(Mark.OK, f"upstream TCP: {host}:{port} accepts connections"))

    # The TLS context the gateway itself uses (GATEWAY_UPSTREAM_CA_FILE, GATEWAY_UPSTREAM_TLS_VERIFY).
    context = upstream_config(settings).ssl_context()
    if context is not None:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout)
        except ssl.SSLError as exc:
            results.append(_tls_failure(exc, host))
            return results
        except (OSError, TimeoutError) as exc:
            results.append(_connect_failure("TLS", exc, host, port, timeout))
            return results
        ssl_object = writer.get_extra_info("ssl_object")
        certificate = ssl_object.getpeercert() if ssl_object is not None else None
        writer.close()
        results.extend(_expiry_result(host, certificate, settings.gateway_upstream_tls_verify))
    else:
        results.append(CheckResult(
            Mark.WARN, f"upstream is plain http:// ({url})",
            cause="Exchange's Extended Protection binds Windows authentication to the TLS channel",
            fix=("use https:// to Exchange (the gateway re-encrypts); over plain HTTP, EWS, MAPI, Outlook Anywhere "
                 "and Autodiscover fail once Extended Protection is on"),
        ))

    client_timeout = aiohttp.ClientTimeout(connect=timeout, sock_read=settings.gateway_upstream_read_timeout,
                                           total=timeout + 30)
    target = f"{url}{LOGON_PATH}"
    try:
        async with aiohttp.ClientSession(timeout=client_timeout) as session, \
                session.get(target, ssl=context if context is not None else False,
                            allow_redirects=False) as response:
            status = response.status
            location = response.headers.get("Location", "")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        results.append(CheckResult(Mark.FAIL, f"upstream GET {LOGON_PATH} failed",
                                   cause=str(exc) or type(exc).__name__,
                                   fix="check that GATEWAY_UPSTREAM_URL is the Exchange server and serves HTTP"))
        return results
    if status == 200 or 300 <= status < 400:
        shown = f"{status} to {location}" if location else str(status)
        results.append(CheckResult(Mark.OK, f"upstream GET {LOGON_PATH}: {shown}"))
    else:
        results.append(CheckResult(Mark.FAIL, f"upstream GET {LOGON_PATH}: HTTP {status}",
                                   cause="Exchange answers its logon page with 200 (or a redirect)",
                                   fix=("point GATEWAY_UPSTREAM_URL at the Exchange server (front end) whose /owa "
                                        "serves forms-based authentication, not at another site")))
    return results


# --- The configuration file ----------------------------------------------------------------------------------
def config_file_results(settings: Settings) -> list[CheckResult]:
    """GATEWAY_CONFIG_FILE, when set: validated completely, every problem with its line."""
    from gateway.config import ConfigError, load_config

    path = settings.gateway_config_file
    if path is None:
        return []
    try:
        config = load_config(path)
    except ConfigError as exc:
        return [*(CheckResult(Mark.FAIL, f"config file: {problem}") for problem in exc.problems),
                CheckResult(Mark.FAIL, f"config file: {path} is not usable",
                            fix="fix the lines above; see docs/sites.md, and try requests with "
                                "`monosign-gateway explain`")]
    from gateway.commands.serve import config_file_problems

    served = config_file_problems(settings)  # what `serve` adds: one exchange site, TLS loads
    if served:
        return [*(CheckResult(Mark.FAIL, f"config file: {problem}") for problem in served),
                CheckResult(Mark.FAIL, f"config file: {path} is valid, but serve cannot use it",
                            fix="see docs/sites.md, \"What serve does today\"")]
    rules = sum(len(site.rules) for site in config.sites)
    return [CheckResult(Mark.OK, f"config file: {path} is valid: {len(config.sites)} site(s), {rules} rule(s), "
                                 f"digest {config.digest[:12]}"),
            *(CheckResult(Mark.WARN, f"config file: the secret {name} is written in the file itself",
                          fix=f"write {name}_FILE: PATH (a file only the gateway can read) instead, or set it in "
                              "the environment; otherwise keep the configuration file as secret as the key")
              for name in config.settings.clear_secrets)]


def _loadable_config(settings: Settings) -> GatewayConfig | None:
    """The configuration file's sites, for the checks that go on from them; None without a file or
    when it does not load (`config_file_results` says why, with its lines)."""
    from gateway.config import ConfigError, load_config

    if settings.gateway_config_file is None:
        return None
    try:
        return load_config(settings.gateway_config_file)
    except ConfigError:
        return None


async def check_site_upstreams(settings: Settings) -> list[CheckResult]:
    """Each site's upstream answers HTTP (any status), as the gateway's readiness asks it (an exchange
    site's only when it is not GATEWAY_UPSTREAM_URL, which `check` reaches first). One line per site."""
    from gateway.assembly import upstream_config
    from gateway.config.model import Profile
    from gateway.observability.metrics import Metrics
    from gateway.profiles.passthrough import site_upstream
    from gateway.proxy.forwarder import Forwarder

    config = _loadable_config(settings)
    if config is None:
        return []
    results: list[CheckResult] = []
    for site in config.sites:
        if site.profile is Profile.EXCHANGE and site.upstream == settings.gateway_upstream_url:
            continue  # GATEWAY_UPSTREAM_URL's, checked above
        forwarder = Forwarder(site_upstream(site, upstream_config(settings)), Metrics())
        await forwarder.start()
        try:
            problem = await forwarder.check()
        finally:
            await forwarder.close()
        if problem is None:
            results.append(CheckResult(Mark.OK, f"site {site.name}: upstream {site.upstream} answers"))
        else:
            results.append(CheckResult(Mark.FAIL, f"site {site.name}: {problem} at {site.upstream}",
                                       fix=f"check the `upstream` of site {site.name!r} in the config file"))
    return results


async def check_portal_sites(settings: Settings, user_name: str | None) -> list[CheckResult]:
    """Each portal site's first factor (gateway.profiles.portal.diagnose): the directory, the users
    file, or the settings the monosign first factor needs; `--user` is also looked up in LDAP."""
    from gateway.profiles.portal.diagnose import diagnose_portal_sites

    config = _loadable_config(settings)
    if config is None:
        return []
    return [CheckResult(Mark.OK if finding.ok else Mark.FAIL, finding.title, cause=finding.cause, fix=finding.fix)
            for finding in await diagnose_portal_sites(config, settings, user_name)]


# --- The command ---------------------------------------------------------------------------------------------
# Said after the settings' problems: why nothing else follows (a note, not one more failure to count).
SETTINGS_UNUSABLE_NOTE = ("    The settings are not usable, so nothing else was checked: fix the lines above in the "
                          "environment, the .env file or the configuration file's settings: "
                          "(see docs/configuration.md).")


def _settings_results(env_file: Path) -> tuple[Settings | None, list[CheckResult]]:
    from gateway.settings import SettingsError, load_settings

    if env_file != Path(".env") and not env_file.is_file():
        return None, [CheckResult(Mark.FAIL, f"settings: --env-file {env_file}: no such file")]
    try:
        settings = load_settings(env_file=env_file)
    except SettingsError as exc:
        return None, [CheckResult(Mark.FAIL, f"settings: {problem}") for problem in exc.problems]
    source = f"{env_file} and the environment" if env_file.is_file() else "the environment"
    if settings.gateway_config_file is not None:
        source += f", and {settings.gateway_config_file}"
    results = [CheckResult(Mark.OK, f"settings: valid (read from {source})")]
    for warning in settings.plain_http_warnings():
        if not warning.startswith("GATEWAY_UPSTREAM_URL"):  # said, with its consequence, by the upstream checks
            results.append(CheckResult(Mark.WARN, f"settings: {warning}"))
    results += config_file_results(settings)
    return settings, results


def _runtime_results() -> list[CheckResult]:
    from gateway._compat import AiohttpInternalsChanged, verify_internals

    try:
        verify_internals()
    except AiohttpInternalsChanged as exc:
        return [CheckResult(Mark.FAIL, "runtime: the installed aiohttp does not fit the gateway", cause=str(exc),
                            fix="reinstall from the locks (./dev setup, or rebuild the image)")]
    return []


async def _run_checks(args: argparse.Namespace) -> int:
    settings, results = _settings_results(args.env_file)
    results[:0] = _runtime_results()
    for result in results:
        print(result.render(), flush=True)
    if settings is None:
        print(SETTINGS_UNUSABLE_NOTE, flush=True)
    else:
        for section in (check_monosign(settings, args.user), check_upstream(settings),
                        check_site_upstreams(settings), check_portal_sites(settings, args.user)):
            section_results = await section
            for result in section_results:
                print(result.render(), flush=True)
            results.extend(section_results)
    print(summary(results))
    return 0 if not any(result.mark is Mark.FAIL for result in results) else 1


def summary(results: list[CheckResult]) -> str:
    """The last line: how many of the listed checks failed (each ✗ line is one)."""
    failed = sum(result.mark is Mark.FAIL for result in results)
    return "All checks passed." if not failed else f"{failed} check{'s' if failed > 1 else ''} failed."


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from gateway.observability.logging import configure_logging

    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    configure_logging(level="debug" if args.verbose else "info", fmt="console")
    if not args.verbose:
        # The results say it all; the per-call log lines are for --verbose.
        logging.getLogger().setLevel(logging.CRITICAL + 1)
    return asyncio.run(_run_checks(args))

