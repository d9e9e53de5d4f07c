"""Red team, fourth pass: a pinned connection that Exchange authenticated as someone the gateway
could not name.

A class without a user list (Windows authentication for Outlook, say) forwards any credential,
including one the gateway cannot read: a Kerberos ticket, or an SPNEGO token in a BER spelling that
Windows (and pyspnego) accept and the gateway's strict DER reader does not. Exchange then
authenticates the upstream connection as that credential's user, and the gateway remembers no
user for it. A later request on the same client connection without any `Authorization`, to a class
*with* a user list (PowerShell for admins only), named nobody and so went upstream "challenge only"
(without its body): over a connection IIS had signed in, it ran as that user. Now a request without
a credential on a connection Exchange authenticated as someone unknown is refused, and the
connection closed.
"""

from __future__ import annotations

import pytest

from gateway.policy.clients import AuthScheme, ClientCredential, ClientPolicy, PolicyOutcome, decide
from gateway.policy.users import parse_username
from tests.exchange_clients.conftest import FAST, StackFactory
from tests.exchange_clients.support import HttpConnection
from tests.exchange_clients.test_gateway_windows_auth_users import _bob_leg3, _non_minimal_length

ADMINS = ClientPolicy.build(allow=True, users=["CORP\\admin"])
OPEN = ClientPolicy.build(allow=True)
ADMIN = parse_username("CORP\\admin")
BOB = parse_username("CORP\\bob")


def _credential(scheme: AuthScheme, user: str | None = None, message: int | None = None) -> ClientCredential:
    return ClientCredential(scheme, parse_username(user) if user else None, ntlm_message=message)


@pytest.mark.parametrize(("policy", "credential", "connection_user", "authenticated", "outcome", "reason"), [
    # the hole: nothing in the request, a connection signed in as somebody unknown
    (ADMINS, _credential(AuthScheme.NONE), None, True, PolicyOutcome.DENY, "connection user unknown"),
    # a fresh connection (or one whose handshake only got 401s) still gets its challenge
    (ADMINS, _credential(AuthScheme.NONE), None, False, PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    # a new handshake on the same connection starts with leg 1, which authenticates nobody
    (ADMINS, _credential(AuthScheme.NTLM, message=1), None, True, PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    (ADMINS, _credential(AuthScheme.NEGOTIATE, message=1), None, True, PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    # unreadable credentials stay refused, authenticated connection or not
    (ADMINS, _credential(AuthScheme.NEGOTIATE), None, True, PolicyOutcome.DENY, "user unknown"),
    (ADMINS, _credential(AuthScheme.BEARER), None, True, PolicyOutcome.DENY, "user unknown"),
    (ADMINS, _credential(AuthScheme.OTHER), None, True, PolicyOutcome.DENY, "user unknown"),
    (ADMINS, _credential(AuthScheme.NTLM, message=2), None, True, PolicyOutcome.DENY, "user unknown"),
    # a known connection user is judged as before
    (ADMINS, _credential(AuthScheme.NONE), ADMIN, True, PolicyOutcome.ALLOW, "user allowed"),
    (ADMINS, _credential(AuthScheme.NONE), BOB, True, PolicyOutcome.DENY, "user not allowed"),
    # a readable credential on the request wins over the connection
    (ADMINS, _credential(AuthScheme.BASIC, "CORP\\admin"), None, True, PolicyOutcome.ALLOW, "user allowed"),
    (ADMINS, _credential(AuthScheme.NTLM, "CORP\\bob", 3), None, True, PolicyOutcome.DENY, "user not allowed"),
    # without a user list nothing changes
    (OPEN, _credential(AuthScheme.NONE), None, True, PolicyOutcome.ALLOW, "allowed"),
])
def test_a_connection_signed_in_as_someone_unknown_lends_nobody_a_challenge(
        policy: ClientPolicy, credential: ClientCredential, connection_user: object, authenticated: bool,
        outcome: PolicyOutcome, reason: str) -> None:
    decision = decide(policy, client_ip="203.0.113.7", credential=credential,
                      connection_user=connection_user,  # type: ignore[arg-type]
                      connection_authenticated=authenticated)
    assert (decision.outcome, decision.reason) == (outcome, reason)


@pytest.mark.parametrize("follow_up", ["/powershell", "/PowerShell/?serializationLevel=Full"])
async def test_an_unattributed_sign_in_is_no_way_into_a_class_with_a_user_list(
        make_stack: StackFactory, follow_up: str) -> None:
    stack = await make_stack(FAST, gateway_policy_powershell="allow", gateway_policy_powershell_users="CORP\\alice")
    connection = await HttpConnection.open(stack.port)
    try:
        # EWS has no user list: bob's BER-spelled leg 3 is forwarded, and Exchange signs the
        # connection in as bob while the gateway could read no user from the token.
        first, signed_in = await _bob_leg3(connection, "Negotiate", _non_minimal_length)
        assert (first.status, signed_in.status) == (401, 200)
        assert stack.clients.counters.ews_operations == ["UpdateInboxRules"]
        seen = len(stack.sim.state.recorder.requests())
        # Same connection, no credential, to PowerShell (CORP\\alice only).
        refused = await connection.request("GET", follow_up, [])
        assert refused.status == 403
        assert await connection.closed_by_peer(timeout=3)
    finally:
        await connection.close()
    assert stack.sim.state.recorder.requests()[seen:] == []
