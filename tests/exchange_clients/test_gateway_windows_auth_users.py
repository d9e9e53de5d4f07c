"""Under a Windows-auth user list, through the gateway to the simulator's real NTLM acceptor (pyspnego's).

Each crafted credential is built from a real pyspnego client's handshake for bob (not on the list)
and is first sent straight to the simulator, to show that Exchange's acceptor authenticates bob
with it and runs the EWS write; then through the gateway, which must refuse it without forwarding
anything (review findings, class 2: a decoy for alice next to bob's real message; class 3: a
credential the gateway cannot attribute went upstream as "challenge only", body included).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from gateway.policy.der import read_elements, read_single
from gateway.sim.exchange_clients.config import ExchangeClientsConfig
from tests.exchange_clients.conftest import FAST, Stack, StackFactory
from tests.exchange_clients.spnego_kit import der, field, ntlm_authenticate, octets
from tests.exchange_clients.support import Answer, HttpConnection, NtlmClient

EWS = "/EWS/Exchange.asmx"
# A write Exchange would run as whoever it authenticated (the sim records the operation's name).
INBOX_RULE = (b'<?xml version="1.0" encoding="utf-8"?>'
              b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
              b'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
              b'<soap:Body><m:UpdateInboxRules/></soap:Body></soap:Envelope>')
SOAP = [("Content-Type", "text/xml; charset=utf-8")]
DECOY = ntlm_authenticate("CORP", "alice")


@dataclass
class Legs:
    """Bob's real handshake, up to his leg 3 (not sent yet)."""

    scheme: str
    negotiate: bytes
    challenge: bytes
    authenticate: bytes
    session_key: bytes


Craft = Callable[[Legs], bytes]


def _challenge_token(answer: Answer, scheme: str) -> bytes:
    for value in answer.header("WWW-Authenticate"):
        name, _, token = value.partition(" ")
        if name.lower() == scheme.lower() and token:
            return base64.b64decode(token)
    raise AssertionError(f"no {scheme} challenge in {answer.headers}")


def _resp_fields(token: bytes) -> list[bytes]:
    """The tagged fields of a real negTokenResp, re-encoded one by one."""
    sequence = read_single(read_single(token, 0xA1).content, 0x30)
    return [der(element.tag, element.content) for element in read_elements(sequence.content)]


def _resp(fields: list[bytes]) -> bytes:
    return der(0xA1, der(0x30, b"".join(fields)))


def _remic(legs: Legs, message: bytes) -> bytes:
    """Sign a changed NTLM AUTHENTICATE again (MIC at 72, MS-NLMP 3.1.5.1.2), as its client could."""
    zeroed = message[:72] + b"\x00" * 16 + message[88:]
    mic = hmac.new(legs.session_key, legs.negotiate + legs.challenge + zeroed, "md5").digest()
    return message[:72] + mic + message[88:]


def _with_field(message: bytes, field_offset: int, length: int, offset: int) -> bytes:
    return message[:field_offset] + struct.pack("<HHI", length, length, offset) + message[field_offset + 8:]


def _unknown_field_decoy(legs: Legs) -> bytes:
    return _resp([*_resp_fields(legs.authenticate), field(4, octets(DECOY))])


def _duplicate_field_decoy(legs: Legs) -> bytes:
    fields = _resp_fields(legs.authenticate)
    return _resp([field(2, octets(DECOY)), *fields])  # pyspnego keeps the last [2]; a loose reader the first


def _out_of_order(legs: Legs) -> bytes:
    return _resp(list(reversed(_resp_fields(legs.authenticate))))


def _trailing_decoy(legs: Legs) -> bytes:
    return legs.authenticate + octets(DECOY)


def _non_minimal_length(legs: Legs) -> bytes:
    content = read_single(legs.authenticate, 0xA1).content
    return b"\xa1\x84" + len(content).to_bytes(4, "big") + content


def _decoy_after_the_message(legs: Legs) -> bytes:
    return _remic(legs, legs.authenticate + DECOY)


def _workstation_outside(legs: Legs) -> bytes:
    return _remic(legs, _with_field(legs.authenticate, 44, 4, len(legs.authenticate) + 64))


CRAFTS: list[tuple[str, str, Craft]] = [
    ("Negotiate", "decoy in an unknown field", _unknown_field_decoy),
    ("Negotiate", "decoy in a duplicate field", _duplicate_field_decoy),
    ("Negotiate", "fields out of order", _out_of_order),
    ("Negotiate", "decoy after the token", _trailing_decoy),
    ("Negotiate", "non-minimal length", _non_minimal_length),
    ("NTLM", "decoy after the message", _decoy_after_the_message),
    ("NTLM", "workstation outside the message", _workstation_outside),
]


async def _bob_leg3(connection: HttpConnection, scheme: str, craft: Craft) -> tuple[Answer, Answer]:
    """Bob's leg 1 (with the write as its body, as requests-ntlm sends it), then his crafted leg 3."""
    client = NtlmClient("CORP\\bob", scheme=scheme)
    name, value = client.negotiate()
    first = await connection.request("POST", EWS, [*SOAP, (name, value)], INBOX_RULE)
    assert first.status == 401, first
    challenge = _challenge_token(first, scheme)
    authenticate = client.context.step(challenge)
    assert authenticate is not None
    # (Under Negotiate the crafts change only the SPNEGO envelope, which no MIC covers.)
    legs = Legs(scheme, base64.b64decode(value.partition(" ")[2]), challenge, authenticate,
                client.context.session_key)
    token = f"{scheme} {base64.b64encode(craft(legs)).decode()}"
    second = await connection.request("POST", EWS, [*SOAP, ("Authorization", token)], INBOX_RULE)
    return first, second


@pytest.mark.parametrize(("scheme", "name", "craft"), CRAFTS, ids=[name for _scheme, name, _craft in CRAFTS])
async def test_a_credential_exchange_accepts_but_the_gateway_cannot_read_is_never_forwarded(
        make_stack: StackFactory, scheme: str, name: str, craft: Craft) -> None:
    stack = await make_stack(FAST, gateway_policy_windows_auth_users="CORP\\alice")
    # Straight to Exchange: its acceptor authenticates bob and runs the write.
    direct = await HttpConnection.open(int(stack.sim.base_url.rsplit(":", 1)[1]))
    try:
        _first, answer = await _bob_leg3(direct, scheme, craft)
    finally:
        await direct.close()
    assert answer.status == 200, (name, answer.status)
    assert stack.clients.counters.ews_operations == ["UpdateInboxRules"]
    assert stack.clients.acceptors.completed == 1
    seen = len(stack.sim.state.recorder.requests())

    # Through the gateway: leg 1 reaches Exchange without its body; leg 3 does not reach it at all.
    connection = await HttpConnection.open(stack.port)
    try:
        first, refused = await _bob_leg3(connection, scheme, craft)
        assert refused.status == 403
        assert await connection.closed_by_peer(timeout=3)  # the pinned connection of a refused credential ends
    finally:
        await connection.close()
    forwarded = stack.sim.state.recorder.requests()[seen:]
    assert [(record.method, record.body_length or 0) for record in forwarded] == [("POST", 0)]
    assert forwarded[0].authorization == scheme
    assert first.status == 401
    assert stack.clients.counters.ews_operations == ["UpdateInboxRules"]  # only the direct one
    assert stack.clients.acceptors.completed == 1


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
@pytest.mark.parametrize(("users", "status", "operations"), [
    ("CORP\\bob", 200, ["UpdateInboxRules"]),
    ("CORP\\alice", 403, []),
])
async def test_bobs_own_leg3_is_judged_by_its_user(make_stack: StackFactory, scheme: str, users: str, status: int,
                                                   operations: list[str]) -> None:
    stack = await make_stack(FAST, gateway_policy_windows_auth_users=users)
    connection = await HttpConnection.open(stack.port)
    try:
        first, answer = await _bob_leg3(connection, scheme, lambda legs: legs.authenticate)
    finally:
        await connection.close()
    assert (first.status, answer.status) == (401, status)
    assert stack.clients.counters.ews_operations == operations
    leg1 = stack.sim.state.recorder.requests()[0]
    assert (leg1.body_length or 0) == 0  # the first leg never carries the write to Exchange


async def test_a_bearer_token_exchange_accepts_is_never_forwarded(make_stack: StackFactory) -> None:
    stack = await make_stack(ExchangeClientsConfig(bearer_accepted=True),
                             gateway_policy_windows_auth_users="CORP\\alice")
    connection = await HttpConnection.open(stack.port)
    try:
        answer = await connection.request("POST", EWS, [*SOAP, ("Authorization", "Bearer eyJ0eXAiOiJKV1QifQ.e30.sig")],
                                          INBOX_RULE)
    finally:
        await connection.close()
    assert answer.status == 403
    assert stack.sim.state.recorder.requests() == []
    assert stack.clients.counters.ews_operations == []


async def test_anonymous_request_goes_upstream_without_its_body(make_stack: StackFactory) -> None:
    stack = await make_stack(FAST, gateway_policy_windows_auth_users="CORP\\alice")
    connection = await HttpConnection.open(stack.port)
    try:
        challenge = await connection.request("POST", EWS, SOAP, INBOX_RULE)
        assert challenge.status == 401
        assert challenge.header("WWW-Authenticate")
        # The body was read and dropped by the gateway: the connection carries on with the handshake.
        again = await connection.request("POST", EWS, SOAP, INBOX_RULE)
        assert again.status == 401
    finally:
        await connection.close()
    records = stack.sim.state.recorder.requests()
    assert [(record.body_length or 0) for record in records] == [0, 0]
    assert stack.clients.counters.ews_operations == []


def _list_inbox(base_url: str) -> list[str]:
    from exchangelib import DELEGATE, NTLM, Account, Build, Configuration, Credentials, Version

    config = Configuration(service_endpoint=base_url + EWS, credentials=Credentials("CORP\\alice", "AlicePass1!"),
                           auth_type=NTLM, version=Version(build=Build(15, 1, 2507, 6)))
    account = Account("alice@corp.example", config=config, autodiscover=False, access_type=DELEGATE)
    try:
        return [item.subject for item in account.inbox.all()]
    finally:
        account.protocol.close()


async def test_exchangelib_works_under_a_user_list(make_stack: StackFactory) -> None:
    """exchangelib (requests-ntlm) sends its leg 1 with the body: the gateway keeps it, leg 3 carries it."""
    stack: Stack = await make_stack(FAST, gateway_policy_windows_auth_users="CORP\\alice")
    subjects = await asyncio.to_thread(_list_inbox, stack.url)
    assert "Quarterly report (draft)" in subjects
    assert {"GetFolder", "FindItem"} <= set(stack.clients.counters.ews_operations)
    records = stack.sim.state.recorder.requests()
    assert any(record.authorization == "NTLM" and (record.body_length or 0) == 0 for record in records)
