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

Also `Authorization` spellings (scheme case, tabs, base64 variants, two credentials): a value whose
first word is NTLM or Negotiate is pinned whatever white space follows it, and read strictly.
"""

from __future__ import annotations

import base64

import pytest

from gateway.policy.clients import (
    AuthScheme,
    ClientCredential,
    ClientPolicy,
    PolicyOutcome,
    decide,
    is_connection_auth,
    parse_authorization,
)
from gateway.policy.users import parse_username
from tests.exchange_clients.conftest import FAST, StackFactory
from tests.exchange_clients.spnego_kit import ntlm_authenticate, ntlm_negotiate, resp_with
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


# --- Authorization spellings --------------------------------------------------------------------

ALICE_ONLY = ClientPolicy.build(allow=True, users=["CORP\\alice"])
ALICE3 = base64.b64encode(ntlm_authenticate("CORP", "alice")).decode()
BOB3 = base64.b64encode(ntlm_authenticate("CORP", "bob")).decode()
TYPE1 = base64.b64encode(ntlm_negotiate()).decode()
ALICE_BASIC = base64.b64encode(b"CORP\\alice:pw").decode()
ALICE_SPNEGO = base64.b64encode(resp_with(ntlm_authenticate("CORP", "alice"))).decode()


@pytest.mark.parametrize(("values", "pinned", "outcome"), [
    ([f"NTLM {ALICE3}"], True, PolicyOutcome.ALLOW),
    ([f"ntlm {ALICE3}"], True, PolicyOutcome.ALLOW),
    ([f"NeGoTiAtE {ALICE_SPNEGO}"], True, PolicyOutcome.ALLOW),
    ([f"NTLM  {ALICE3}"], True, PolicyOutcome.ALLOW),                        # two spaces: one reading
    ([f"NTLM {TYPE1}"], True, PolicyOutcome.CHALLENGE_ONLY),
    # a tab for the space: read by nobody, but pinned (a lenient server would authenticate with it)
    ([f"NTLM\t{ALICE3}"], True, PolicyOutcome.DENY),
    ([f"Negotiate\t{TYPE1}"], True, PolicyOutcome.DENY),
    ([f"Negotiate\t\t{ALICE_SPNEGO}"], True, PolicyOutcome.DENY),
    # base64 variants: whitespace inside, URL-safe alphabet, padding missing or extra, a second credential
    ([f"NTLM {ALICE3[:40]} {ALICE3[40:]}"], True, PolicyOutcome.DENY),
    ([f"NTLM {ALICE3.replace('/', '_').replace('+', '-')}x"], True, PolicyOutcome.DENY),
    ([f"Negotiate {ALICE_SPNEGO[:-2]}"], True, PolicyOutcome.DENY),            # cut: padding missing
    ([f"NTLM {ALICE3}=="], True, PolicyOutcome.DENY),                          # superfluous padding
    ([f"NTLM {ALICE3}===="], True, PolicyOutcome.DENY),
    ([f"Basic {ALICE_BASIC}="], False, PolicyOutcome.DENY),                    # superfluous padding
    ([f"Basic {ALICE_BASIC[:-3]}{chr(ord(ALICE_BASIC[-3]) + 1)}=="], False, PolicyOutcome.DENY),  # stray low bits
    ([f"NTLM {BOB3}, Basic {ALICE_BASIC}"], True, PolicyOutcome.DENY),
    ([f"Basic {ALICE_BASIC}, NTLM {BOB3}"], False, PolicyOutcome.DENY),
    # two headers: never a guess, whatever they say
    ([f"NTLM {ALICE3}", f"Basic {ALICE_BASIC}"], True, PolicyOutcome.DENY),
    ([f"Basic {ALICE_BASIC}", f"Basic {ALICE_BASIC}"], False, PolicyOutcome.DENY),
    ([f"Basic {ALICE_BASIC}"], False, PolicyOutcome.ALLOW),
    ([f"Basic\t{ALICE_BASIC}"], False, PolicyOutcome.DENY),
    (["Kerberos YIIB"], False, PolicyOutcome.DENY),
    ([""], False, PolicyOutcome.DENY),
])
def test_authorization_spellings(values: list[str], pinned: bool, outcome: PolicyOutcome) -> None:
    assert is_connection_auth(values) is pinned
    decision = decide(ALICE_ONLY, client_ip="203.0.113.7", credential=parse_authorization(values))
    assert decision.outcome is outcome, decision
