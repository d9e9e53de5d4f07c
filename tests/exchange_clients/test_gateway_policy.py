"""Each client policy (allow, deny, networks, users) for each non-browser class, through the gateway,
with its audit event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gateway.sim.exchange_clients.config import ExchangeClientsConfig
from tests.exchange_clients.conftest import FAST, StackFactory
from tests.exchange_clients.spnego_kit import header, init_with, ntlm_negotiate
from tests.exchange_clients.support import Answer, HttpConnection, NtlmClient, basic, ntlm_login
from tests.logs import capturing_logs, events
from tests.proxy.support import PUBLIC_HOST, run_gateway, run_upstream

ACTIVESYNC = "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob&DeviceId=PHONE7&DeviceType=iPhone"
EWS = "/EWS/Exchange.asmx"
OAB = "/OAB/1234/oab.xml"
SHELL = "/powershell"


async def _one(port: int, method: str, target: str, headers: list[tuple[str, str]] | None = None) -> Answer:
    connection = await HttpConnection.open(port)
    try:
        return await connection.request(method, target, headers or [])
    finally:
        await connection.close()


def _decisions(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("event") == "client_policy"]


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """The JSON log lines written in the block, as an operator reads them (filled when it ends).

    The product's own logging set-up, not structlog's test capture: loggers cached by an earlier
    test's configuration would bypass the latter and the capture would silently stay empty.
    """
    parsed: list[dict[str, Any]] = []
    with capturing_logs() as read:
        try:
            yield parsed
        finally:
            parsed.extend(events(read()))


# (class setting prefix, request that the simulator answers 200 to bob, status when it reaches Exchange)
CLASSES = {
    "activesync": ("POST", ACTIVESYNC, lambda: [("Authorization", basic("CORP\\bob"))], 200),
    "windows_auth": ("POST", "/autodiscover/autodiscover.xml", lambda: [("Authorization", basic("CORP\\bob"))], 200),
    # PowerShell wants Kerberos, which the simulator never grants: reaching it means a 401.
    "powershell": ("GET", SHELL, lambda: [("Authorization", basic("CORP\\bob"))], 401),
}


@pytest.mark.parametrize("name", sorted(CLASSES))
async def test_allow_and_deny(make_stack: StackFactory, name: str) -> None:
    method, target, headers, reached = CLASSES[name]
    allowed = await make_stack(**{f"gateway_policy_{name}": "allow"})
    denied = await make_stack(**{f"gateway_policy_{name}": "deny"})
    with capture_logs() as logs:
        assert (await _one(allowed.port, method, target, headers())).status == reached
        assert (await _one(denied.port, method, target, headers())).status == 403
    assert denied.sim.state.recorder.requests() == []
    outcomes = [(entry["route_class"], entry["outcome"], entry["reason"]) for entry in _decisions(logs)]
    route = name.replace("_", "-")
    assert outcomes == [(route, "allow", "allowed"), (route, "deny", "class denied")]


def test_powershell_is_denied_by_default() -> None:
    from gateway.settings import RoutePolicy, Settings

    assert Settings.model_fields["gateway_policy_powershell"].default is RoutePolicy.DENY


@pytest.mark.parametrize("name", sorted(CLASSES))
async def test_networks(make_stack: StackFactory, name: str) -> None:
    method, target, headers, reached = CLASSES[name]
    inside = await make_stack(**{f"gateway_policy_{name}": "allow",
                                 f"gateway_policy_{name}_networks": "10.0.0.0/8, 127.0.0.0/8"})
    outside = await make_stack(**{f"gateway_policy_{name}": "allow",
                                  f"gateway_policy_{name}_networks": "10.0.0.0/8,2001:db8::/32"})
    with capture_logs() as logs:
        assert (await _one(inside.port, method, target, headers())).status == reached
        assert (await _one(outside.port, method, target, headers())).status == 403
    assert outside.sim.state.recorder.requests() == []
    assert [entry["reason"] for entry in _decisions(logs)] == ["allowed", "network not allowed"]
    assert {entry["client_ip"] for entry in _decisions(logs)} == {"127.0.0.1"}


@pytest.mark.parametrize("name", sorted(CLASSES))
async def test_users_with_basic(make_stack: StackFactory, name: str) -> None:
    method, target, _headers, reached = CLASSES[name]
    stack = await make_stack(**{f"gateway_policy_{name}": "allow", f"gateway_policy_{name}_users": "CORP\\bob, dave"})
    with capture_logs() as logs:
        assert (await _one(stack.port, method, target, [("Authorization", basic("CORP\\bob"))])).status == reached
        # A bare entry admits the account in any form; a qualified one only its own domain's form.
        assert (await _one(stack.port, method, target, [("Authorization", basic("dave@corp.example"))])).status \
            == reached
        assert (await _one(stack.port, method, target, [("Authorization", basic("bob@corp.example"))])).status == 403
        assert (await _one(stack.port, method, target, [("Authorization", basic("CORP\\alice"))])).status == 403
        # Nobody named yet: only the challenge comes back.
        anonymous = await _one(stack.port, method, target)
    assert anonymous.status == 401
    assert anonymous.header("WWW-Authenticate")
    decisions = _decisions(logs)
    assert [(entry["user"], entry["outcome"]) for entry in decisions] == [
        ("CORP\\bob", "allow"), ("dave@corp.example", "allow"), ("bob@corp.example", "deny"),
        ("CORP\\alice", "deny"), (None, "challenge-only")]
    assert all("password" not in str(entry).lower() and "BobPass" not in str(entry) for entry in decisions)


async def test_activesync_audit_names_the_device(make_stack: StackFactory) -> None:
    stack = await make_stack()
    with capture_logs() as logs:
        answer = await _one(stack.port, "POST", ACTIVESYNC, [("Authorization", basic("CORP\\bob"))])
    assert answer.status == 200
    (decision,) = _decisions(logs)
    assert (decision["user"], decision["device_id"], decision["device_type"], decision["command"]) == (
        "CORP\\bob", "PHONE7", "iPhone", "FolderSync")
    assert decision["audit"] is True


async def test_an_unattributable_credential_never_reaches_exchange(make_stack: StackFactory) -> None:
    # A bearer token names nobody the gateway can check, and Exchange would accept it: refused here.
    stack = await make_stack(ExchangeClientsConfig(bearer_accepted=True),
                             gateway_policy_windows_auth_users="CORP\\alice")
    with capture_logs() as logs:
        answer = await _one(stack.port, "GET", OAB, [("Authorization", "Bearer eyJ0eXAiOiJKV1QifQ.e30.sig")])
    assert answer.status == 403
    assert b"<OAB>" not in answer.body
    assert stack.sim.state.recorder.requests() == []
    assert [entry["reason"] for entry in _decisions(logs)] == ["user unknown"]


@pytest.mark.parametrize("authorization", [[], [("Authorization", header("NTLM", ntlm_negotiate()))],
                                           [("Authorization", header("Negotiate", init_with(ntlm_negotiate())))]])
async def test_challenge_only_goes_without_its_body_and_brings_back_only_the_challenge(
        authorization: list[tuple[str, str]]) -> None:
    # An upstream that answers a nameless request with content (Exchange does not): the answer is
    # withheld, and the body never left the gateway.
    async with run_upstream() as (upstream, state), \
            run_gateway(upstream.url, gateway_policy_windows_auth_users="CORP\\alice") as gateway:
        with capture_logs() as logs:
            connection = await HttpConnection.open(gateway.port, host=PUBLIC_HOST)
            try:
                answer = await connection.request("POST", EWS, [("Content-Type", "text/xml"), *authorization],
                                                  b"<soap>a write</soap>")
            finally:
                await connection.close()
    assert answer.status == 403
    assert b"a write" not in answer.body
    (seen,) = state.seen
    assert (seen.body_len, seen.header("Content-Length")) == (0, ["0"])
    assert [entry["reason"] for entry in _decisions(logs)] == ["no user yet", "answer beyond the challenge"]


async def test_windows_auth_users_with_ntlm(make_stack: StackFactory) -> None:
    stack = await make_stack(FAST, gateway_policy_windows_auth_users="CORP\\alice")
    alice = await HttpConnection.open(stack.port)
    bob = await HttpConnection.open(stack.port)
    try:
        with capture_logs() as logs:
            assert (await ntlm_login(alice, "GET", OAB, "CORP\\alice")).status == 200
            # Later requests carry no credential: the connection's NTLM user is what counts.
            assert (await alice.request("GET", OAB)).status == 200
            assert (await alice.request("GET", EWS)).status == 200
            bob_client = NtlmClient("CORP\\bob")
            challenge = await bob.request("GET", OAB, [bob_client.negotiate()])
            assert challenge.status == 401  # leg 1 names nobody: the challenge passes
            refused = await bob.request("GET", OAB, [bob_client.authenticate(challenge)])
            assert refused.status == 403
            assert await bob.closed_by_peer(timeout=3)  # the pinned connection of a refused user ends
    finally:
        await alice.close()
        await bob.close()
    decisions = [(entry["user"], entry["outcome"], entry["auth_scheme"]) for entry in _decisions(logs)]
    assert decisions == [
        (None, "challenge-only", "ntlm"),
        ("CORP\\alice", "allow", "ntlm"),
        (None, "challenge-only", "ntlm"),
        ("CORP\\bob", "deny", "ntlm"),
    ]
    assert stack.clients.acceptors.completed == 1  # bob's leg 3 never reached Exchange
