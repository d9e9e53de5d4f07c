"""The non-browser classes served by the site's rules decide as the GATEWAY_POLICY_* client policies
did: the same outcome (allow, challenge-only, deny), the same audited reason and the same pinning,
for every policy, request, credential and state of the client connection below (about 75,000)."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest

from gateway.config import sites_from_settings
from gateway.config.exchange import Serving, serving
from gateway.policy.clients import ClientCredential, PolicyOutcome, decide, decide_by_rules, parse_authorization
from gateway.policy.paths import canonicalize
from gateway.policy.routes import RouteClass, classify
from gateway.policy.rules import RuleRequest, RuleSet
from gateway.policy.users import parse_username
from gateway.profiles.exchange.client_routes import client_classes
from tests.config.test_environment import POLICIES, settings_with
from tests.exchange_clients.spnego_kit import header, init_with, ntlm_authenticate, ntlm_negotiate


def _basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()


AUTHORIZATIONS: list[list[str]] = [
    [],
    [_basic("alice")],
    [_basic("CORP\\bob")],
    [_basic("corp\\admin")],
    [_basic("bob@corp.example")],
    [_basic("mallory")],
    [_basic("alıce")],  # outside ASCII: never on a list
    [header("NTLM", ntlm_negotiate())],
    [header("Negotiate", init_with(ntlm_negotiate()))],
    [header("NTLM", ntlm_authenticate("CORP", "alice"))],
    [header("NTLM", ntlm_authenticate("CORP", "admin"))],
    [header("Negotiate", init_with(ntlm_authenticate("CORP", "bob")))],
    ["Negotiate YIIBAAYGKwYBBQUCoIIBADCB/aADCgEBoQ=="],  # Kerberos-like: names nobody
    ["Bearer eyJ0eXAiOiJKV1QifQ.e30.sig"],
    ["NTLM !!!"],
    [_basic("alice"), _basic("mallory")],  # several: refused whatever the policy
]
CREDENTIALS: list[ClientCredential] = [parse_authorization(values) for values in AUTHORIZATIONS]
# (the user an earlier NTLM leg authenticated on the connection, whether Exchange accepted one)
CONNECTIONS: list[tuple[str | None, bool]] = [(None, False), (None, True), ("CORP\\alice", True),
                                              ("corp\\admin", True), ("CORP\\mallory", True)]
PATHS = ["/Microsoft-Server-ActiveSync", "/microsoft-server-activesync/x", "/EWS/Exchange.asmx", "/mapi/emsmdb/",
         "/rpc/rpcproxy.dll", "/OAB/x/oab.xml", "/Autodiscover/Autodiscover.xml", "/powershell", "/PowerShell/x"]
METHODS = ["GET", "POST", "RPC_IN_DATA"]
ADDRESSES = ["10.1.2.3", "192.0.2.8", "198.51.100.1", "::ffff:10.0.0.1", ""]
EXTRA_POLICIES: list[dict[str, Any]] = [
    {"gateway_policy_activesync_users": "alice", "gateway_policy_windows_auth_users": "corp\\alice, bob",
     "gateway_policy_powershell": "allow", "gateway_policy_powershell_users": "corp\\admin"},
]


@pytest.mark.parametrize("policy", POLICIES + EXTRA_POLICIES,
                         ids=lambda policy: ",".join(f"{k}={v}" for k, v in policy.items()) or "defaults")
def test_the_rules_serve_the_clients_as_the_policies_did(monkeypatch: pytest.MonkeyPatch,
                                                         policy: dict[str, Any]) -> None:
    settings = settings_with(monkeypatch, **policy)
    rules = RuleSet(sites_from_settings(settings).sites[0].rules)
    classes = client_classes(settings)
    seen: set[tuple[PolicyOutcome, str]] = set()
    for method, path, ip, credential, (connection_user, authenticated) in itertools.product(
            METHODS, PATHS, ADDRESSES, CREDENTIALS, CONNECTIONS):
        target = canonicalize(path)
        route = classify(method, target)
        assert route in (RouteClass.ACTIVESYNC, RouteClass.WINDOWS_AUTH, RouteClass.POWERSHELL)
        user = parse_username(connection_user) if connection_user is not None else None
        before = decide(classes[route].policy, client_ip=ip, credential=credential, connection_user=user,
                        connection_authenticated=authenticated)
        now = decide_by_rules(rules, RuleRequest(method, target.lower_path, ip, route), credential=credential,
                              connection_user=user, connection_authenticated=authenticated)
        case = (method, path, ip, credential, connection_user, authenticated)
        assert (now.outcome, now.reason) == (before.outcome, before.reason), case
        if now.allowed:
            assert (serving(route, now.action) is Serving.CLIENT_PINNED) is classes[route].pinned, case
        seen.add((now.outcome, now.reason))
    # Agreement means something only if the product reaches the outcomes the policy can give.
    assert any(outcome is PolicyOutcome.ALLOW for outcome, _ in seen)
    assert any(outcome is PolicyOutcome.DENY for outcome, _ in seen)
    if any(key.endswith("_users") for key in policy):
        assert {(PolicyOutcome.CHALLENGE_ONLY, "no user yet"), (PolicyOutcome.ALLOW, "user allowed"),
                (PolicyOutcome.DENY, "user not allowed"), (PolicyOutcome.DENY, "user unknown"),
                (PolicyOutcome.DENY, "connection user unknown")} <= seen
    if any(key.endswith("_networks") for key in policy):
        assert (PolicyOutcome.DENY, "network not allowed") in seen
