"""Without a file, the environment describes one Exchange site that decides exactly as the gateway
does today: route classes (gateway.policy.routes), the non-browser clients' policies
(gateway.profiles.exchange.client_routes.client_classes with gateway.policy.clients.decide) and GATEWAY_POLICY_ECP."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest

from gateway.config import ENVIRONMENT_SITE, GatewayConfig, Profile, sites_from_settings
from gateway.config.exchange import exchange_rules
from gateway.policy.clients import ClientCredential, PolicyOutcome, decide, parse_authorization
from gateway.policy.paths import canonicalize
from gateway.policy.routes import RouteClass, classify
from gateway.policy.rules import Identity, RuleRequest, RuleSet
from gateway.policy.sites import HostMatch, SiteIndex
from gateway.profiles.exchange.client_routes import client_classes
from gateway.settings import Settings, load_settings
from tests.settings_env import REQUIRED, without_settings


def settings_with(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Settings:
    without_settings(monkeypatch)
    values = {key.lower(): value for key, value in REQUIRED.items()}
    values.update(overrides)
    return load_settings(env_file=None, **values)


def test_one_exchange_site_with_todays_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = sites_from_settings(settings_with(monkeypatch))
    assert config.default_site is None
    (site,) = config.sites
    assert site.name == ENVIRONMENT_SITE
    assert site.profile is Profile.EXCHANGE
    assert site.hosts == ["mail.example.com"]
    assert site.upstream == REQUIRED["GATEWAY_UPSTREAM_URL"]
    assert site.tls is None
    expected = GatewayConfig.model_validate({"sites": [{"name": "x", "hosts": ["x"], "upstream": "http://x",
                                                        "profile": "exchange", "rules": exchange_rules()}]})
    assert site.rules == expected.sites[0].rules


def test_hosts_are_the_public_url_and_the_allowed_hosts_without_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(monkeypatch, gateway_public_url="https://Mail.Example.com:8443",
                             gateway_allowed_hosts="autodiscover.example.com, AUTODISCOVER.example.com:443,[::1]:8443")
    config = sites_from_settings(settings)
    assert sorted(config.sites[0].hosts) == ["[::1]", "autodiscover.example.com", "mail.example.com"]
    index = SiteIndex(config)
    assert index.select("mail.example.com:8443").match is HostMatch.LISTED
    assert index.select("other.example.com").match is HostMatch.MISDIRECTED


POLICIES: list[dict[str, Any]] = [
    {},
    {"gateway_policy_ecp": "deny"},
    {"gateway_policy_activesync": "deny", "gateway_policy_windows_auth": "deny", "gateway_policy_powershell": "allow"},
    {"gateway_policy_activesync_networks": "10.0.0.0/8", "gateway_policy_activesync_users": "alice, CORP\\bob"},
    {"gateway_policy_windows_auth_users": "alice", "gateway_policy_windows_auth_networks": "10.0.0.0/8,192.0.2.0/24"},
    {"gateway_policy_powershell": "allow", "gateway_policy_powershell_users": "corp\\admin",
     "gateway_policy_powershell_networks": "10.0.0.0/8"},
]
PATHS = [
    "/", "/owa/", "/owa/auth/logon.aspx", "/owa/auth.owa", "/owa/auth/owaauth.dll", "/owa/logoff.owa",
    "/owa/service.svc", "/ecp/", "/ecp/auth/logon.aspx", "/ecp", "/ecp/auth.owa", "/owa/healthcheck.htm",
    "/favicon.ico", "/Microsoft-Server-ActiveSync", "/microsoft-server-activesync/x", "/EWS/Exchange.asmx",
    "/mapi/emsmdb/", "/rpc/rpcproxy.dll", "/OAB/x/oab.xml", "/Autodiscover/Autodiscover.xml", "/powershell",
    "/PowerShell/x", "/elsewhere", "/owa.evil", "/_gateway/mfa", "/ecp;x/", "/ecp;x", "/owa;x/", "/ews;x/a",
]
METHODS = ["GET", "POST", "RPC_IN_DATA"]
ADDRESSES = ["10.1.2.3", "192.0.2.8", "198.51.100.1"]


def _basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()


CREDENTIALS: list[ClientCredential] = [
    parse_authorization([]),
    parse_authorization([_basic("alice")]),
    parse_authorization([_basic("CORP\\bob")]),
    parse_authorization([_basic("corp\\admin")]),
    parse_authorization([_basic("mallory")]),
    parse_authorization([_basic("alıce")]),  # outside ASCII: never on a list
]


def todays_outcome(settings: Settings, method: str, path: str, ip: str, credential: ClientCredential) -> str:
    target = canonicalize(path)
    route = classify(method, target)
    if route is RouteClass.GATEWAY:
        return "gateway"
    # gateway.app._ecp_denied: every /ecp path, whatever its class.
    if settings.gateway_policy_ecp == "deny" and (target.lower_path == "/ecp" or target.lower_path.startswith("/ecp/")):
        return "deny"
    clients = client_classes(settings)
    if route in clients:
        decision = decide(clients[route].policy, client_ip=ip, credential=credential)
        if decision.outcome is PolicyOutcome.CHALLENGE_ONLY:
            return "needs identity"
        if decision.outcome is PolicyOutcome.DENY:
            return "deny"
        return "pinned" if clients[route].pinned else "bypass"
    return {RouteClass.OWA_PUBLIC: "bypass", RouteClass.ROOT: "bypass", RouteClass.OTHER: "deny"}.get(
        route, "two_factor")  # owa-login, owa-logoff, owa-app: MFA


def rules_outcome(rules: RuleSet, method: str, path: str, ip: str, credential: ClientCredential) -> str:
    target = canonicalize(path)
    route = classify(method, target)
    if route is RouteClass.GATEWAY:
        return "gateway"  # /_gateway/ is the gateway's own on every site, before any rule
    identity = Identity(credential.user) if credential.user is not None else None
    decision = rules.decide(RuleRequest(method, target.lower_path, ip, route, identity))
    return "needs identity" if decision.action is None else decision.action.value


@pytest.mark.parametrize("policy", POLICIES, ids=lambda policy: ",".join(f"{k}={v}" for k, v in policy.items()))
def test_the_environments_site_decides_as_today(monkeypatch: pytest.MonkeyPatch, policy: dict[str, Any]) -> None:
    settings = settings_with(monkeypatch, **policy)
    rules = RuleSet(sites_from_settings(settings).sites[0].rules)
    seen: set[str] = set()
    for method, path, ip, credential in itertools.product(METHODS, PATHS, ADDRESSES, CREDENTIALS):
        expected = todays_outcome(settings, method, path, ip, credential)
        assert rules_outcome(rules, method, path, ip, credential) == expected, (method, path, ip, credential)
        seen.add(expected)
    # The table reaches every kind of outcome it should, so agreement means something.
    assert {"gateway", "bypass", "two_factor", "deny"} <= seen
    if policy.get("gateway_policy_windows_auth_users") or policy.get("gateway_policy_activesync_users"):
        assert "needs identity" in seen
