"""Table tests for gateway.policy.clients: credentials, NTLM identities, ActiveSync devices, decisions."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
import spnego

from gateway.policy.clients import (
    AuthScheme,
    ClientCredential,
    ClientPolicy,
    PolicyOutcome,
    activesync_device,
    decide,
    is_connection_auth,
    is_held_command,
    offers_connection_auth,
    parse_authorization,
)
from gateway.policy.users import parse_username
from gateway.policy.windows_tokens import NtlmMessageType, UnreadableToken, read_windows_token
from tests.exchange_clients.spnego_kit import resp_with


def basic(user: str, password: str = "secret") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def ntlm_type3(domain: str, user: str, workstation: str = "WS01", *, unicode: bool = True) -> bytes:
    """A structurally valid NTLM AUTHENTICATE message (responses are zeros: only the names matter)."""
    encode = (lambda s: s.encode("utf-16-le")) if unicode else (lambda s: s.encode("ascii"))
    payload_fields = [b"\x00" * 24, b"\x00" * 24, encode(domain), encode(user), encode(workstation), b""]
    offset = 64
    header = b"NTLMSSP\x00" + struct.pack("<I", 3)
    fields = b""
    payload = b""
    for raw in payload_fields:
        fields += struct.pack("<HHI", len(raw), len(raw), offset + len(payload))
        payload += raw
    flags = 0x00000001 if unicode else 0x00000002
    return header + fields + struct.pack("<I", flags) + payload


@pytest.mark.parametrize(("values", "scheme", "user"), [
    ([], AuthScheme.NONE, None),
    ([basic("CORP\\alice")], AuthScheme.BASIC, "corp\\alice"),
    ([basic("alice@corp.example")], AuthScheme.BASIC, "alice@corp.example"),
    ([basic("bob", "pa:ss:word")], AuthScheme.BASIC, "bob"),
    (["basic " + base64.b64encode(b"carol:x").decode()], AuthScheme.BASIC, "carol"),
    (["Basic not-base64!"], AuthScheme.BASIC, None),
    (["Basic " + base64.b64encode(b"no-colon").decode()], AuthScheme.BASIC, None),
    (["Basic " + base64.b64encode(b"\xff\xfe:x").decode()], AuthScheme.BASIC, None),
    (["Basic " + base64.b64encode(b"a\\b\\c:x").decode()], AuthScheme.BASIC, None),
    (["Bearer abc"], AuthScheme.BEARER, None),
    (["Digest x"], AuthScheme.OTHER, None),
    ([basic("alice"), basic("bob")], AuthScheme.AMBIGUOUS, None),
    (["NTLM " + base64.b64encode(ntlm_type3("CORP", "alice")).decode()], AuthScheme.NTLM, "corp\\alice"),
    (["NTLM " + base64.b64encode(ntlm_type3("", "bob@corp.example")).decode()], AuthScheme.NTLM, "bob@corp.example"),
    (["NTLM " + base64.b64encode(ntlm_type3("CORP", "dave", unicode=False)).decode()], AuthScheme.NTLM, "corp\\dave"),
    # SPNEGO-wrapped: the NTLM message sits inside an ASN.1 envelope.
    (["Negotiate " + base64.b64encode(resp_with(ntlm_type3("CORP", "carol"))).decode()], AuthScheme.NEGOTIATE,
     "corp\\carol"),
    (["Negotiate YIIKerberosTicketBytes"], AuthScheme.NEGOTIATE, None),
    (["NTLM !!!"], AuthScheme.NTLM, None),
])
def test_parse_authorization(values: list[str], scheme: AuthScheme, user: str | None) -> None:
    credential = parse_authorization(values)
    assert credential.scheme is scheme
    if user is None:
        assert credential.user is None
    else:
        assert credential.user is not None
        assert user in credential.user.forms


def test_password_never_kept() -> None:
    credential = parse_authorization([basic("alice", "TopSecret99")])
    assert "TopSecret99" not in repr(credential)


@pytest.mark.parametrize("message", [
    b"", b"NTLMSSP\x00", b"NTLMSSP\x00" + struct.pack("<I", 3) + b"\x00" * 10,
    # user field pointing past the end
    ntlm_type3("CORP", "alice")[:36] + struct.pack("<HHI", 10, 10, 5000) + ntlm_type3("CORP", "alice")[44:],
    # empty user name
    ntlm_type3("CORP", ""),
])
def test_malformed_ntlm_names_nobody(message: bytes) -> None:
    with pytest.raises(UnreadableToken):
        read_windows_token(message, spnego=False)
    assert parse_authorization(["NTLM " + base64.b64encode(message).decode()]).user is None


def test_real_ntlm_handshake_names_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "ntlm-users"
    store.write_text("CORP:alice:AlicePass1!\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(store))
    client = spnego.client("CORP\\alice", "AlicePass1!", protocol="ntlm")
    server = spnego.server(protocol="ntlm")
    negotiate = client.step()
    assert negotiate is not None
    assert parse_authorization(["NTLM " + base64.b64encode(negotiate).decode()]).ntlm_message == 1
    challenge = server.step(negotiate)
    assert challenge is not None
    assert read_windows_token(challenge, spnego=False).message_type is NtlmMessageType.CHALLENGE
    authenticate = client.step(challenge)
    assert authenticate is not None
    credential = parse_authorization(["NTLM " + base64.b64encode(authenticate).decode()])
    assert credential.ntlm_message == 3
    assert credential.user is not None
    assert "corp\\alice" in credential.user.forms
    assert credential.workstation


@pytest.mark.parametrize(("values", "expected"), [
    (["NTLM TlRMTVNTUAAB"], True), (["negotiate abc"], True), (["Basic abc"], False), ([], False),
    (["Bearer x", "NTLM y"], True), (["NTLMv2 x"], False),
])
def test_is_connection_auth(values: list[str], expected: bool) -> None:
    assert is_connection_auth(values) is expected


@pytest.mark.parametrize(("values", "expected"), [
    (["Negotiate", "NTLM"], True), (['Basic realm="mail"'], False), (['Basic realm="x", NTLM'], True),
    (["NTLM TlRMTVNTUAACAAAA"], True), ([], False), (["Bearer"], False),
])
def test_offers_connection_auth(values: list[str], expected: bool) -> None:
    assert offers_connection_auth(values) is expected


def _encoded_query(command: int, device_id: bytes, device_type: bytes, user: bytes | None) -> str:
    raw = bytes([141, command]) + struct.pack("<H", 0x0409) + bytes([len(device_id)]) + device_id
    raw += bytes([4]) + b"\x01\x02\x03\x04" + bytes([len(device_type)]) + device_type
    if user is not None:
        raw += bytes([8, len(user)]) + user
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(("query", "device_id", "device_type", "command", "user"), [
    ("Cmd=Ping&User=alice&DeviceId=ABC123&DeviceType=iPhone", "ABC123", "iPhone", "Ping", "alice"),
    ("cmd=Sync&deviceid=X&devicetype=Android", "X", "Android", "Sync", None),
    ("Cmd=Ping&DeviceId=%0Aevil%1B&DeviceType=x", "evil", "x", "Ping", None),
    ("", None, None, None, None),
    (_encoded_query(18, b"\xde\xad\xbe\xef", b"SmartPhone", b"bob"), "DEADBEEF", "SmartPhone", "Ping", "bob"),
    (_encoded_query(0, b"\x01", b"WP", None), "01", "WP", "Sync", None),
    (base64.b64encode(b"\x8d\x12").decode(), None, None, None, None),
])
def test_activesync_device(query: str, device_id: str | None, device_type: str | None, command: str | None,
                           user: str | None) -> None:
    device = activesync_device(query)
    assert (device.device_id, device.device_type, device.command, device.user_hint) == (
        device_id, device_type, command, user)


# Held by Exchange until something changes: ended at the start of the shutdown drain (gateway.proxy.drain).
@pytest.mark.parametrize(("query", "held"), [
    ("Cmd=Ping&User=alice&DeviceId=ABC123&DeviceType=iPhone", True),
    ("cmd=ping&deviceid=X&devicetype=Android", True),
    ("CMD=PING&DeviceId=X&DeviceType=Y", True),
    ("DeviceId=X&Cmd=Ping&DeviceType=Y", True),
    (_encoded_query(18, b"\x01", b"SmartPhone", b"bob"), True),
    ("Cmd=Sync&DeviceId=X&DeviceType=Y", False),
    ("Cmd=SendMail&DeviceId=X&DeviceType=Y", False),
    ("Cmd=Pingx&DeviceId=X&DeviceType=Y", False),
    ("Cmd=&DeviceId=X&DeviceType=Y", False),
    ("", False),
    (_encoded_query(0, b"\x01", b"WP", None), False),
    (_encoded_query(19, b"\x01", b"WP", None), False),
])
def test_is_held_command(query: str, held: bool) -> None:
    assert is_held_command(activesync_device(query)) is held


ALICE = ClientCredential(AuthScheme.BASIC, parse_username("CORP\\alice"))
BOB_NTLM = ClientCredential(AuthScheme.NTLM, parse_username("bob@corp.example"), ntlm_message=3)
TYPE1 = ClientCredential(AuthScheme.NTLM, ntlm_message=1)
NOBODY = ClientCredential(AuthScheme.NONE)
KERBEROS = ClientCredential(AuthScheme.NEGOTIATE)
OPEN = ClientPolicy.build(allow=True)
DENIED = ClientPolicy.build(allow=False)
OFFICE = ClientPolicy.build(allow=True, networks=["10.0.0.0/8", "2001:db8::/32"])
ALICE_ONLY = ClientPolicy.build(allow=True, users=["CORP\\alice"])
BARE_BOB = ClientPolicy.build(allow=True, users=["bob"])


@pytest.mark.parametrize(("policy", "ip", "credential", "connection_user", "outcome", "reason"), [
    (OPEN, "203.0.113.5", NOBODY, None, PolicyOutcome.ALLOW, "allowed"),
    (DENIED, "10.0.0.1", ALICE, None, PolicyOutcome.DENY, "class denied"),
    (OPEN, "10.0.0.1", ClientCredential(AuthScheme.AMBIGUOUS), None, PolicyOutcome.DENY,
     "several authorization headers"),
    (OFFICE, "10.1.2.3", NOBODY, None, PolicyOutcome.ALLOW, "allowed"),
    (OFFICE, "::ffff:10.1.2.3", NOBODY, None, PolicyOutcome.ALLOW, "allowed"),
    (OFFICE, "2001:db8::1", ALICE, None, PolicyOutcome.ALLOW, "allowed"),
    (OFFICE, "11.0.0.1", ALICE, None, PolicyOutcome.DENY, "network not allowed"),
    (OFFICE, "not-an-ip", ALICE, None, PolicyOutcome.DENY, "network not allowed"),
    (ALICE_ONLY, "1.2.3.4", ALICE, None, PolicyOutcome.ALLOW, "user allowed"),
    (ALICE_ONLY, "1.2.3.4", BOB_NTLM, None, PolicyOutcome.DENY, "user not allowed"),
    (ALICE_ONLY, "1.2.3.4", NOBODY, None, PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    (ALICE_ONLY, "1.2.3.4", TYPE1, None, PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    # a credential that names nobody the gateway can read is never forwarded (Exchange would run it)
    (ALICE_ONLY, "1.2.3.4", KERBEROS, None, PolicyOutcome.DENY, "user unknown"),
    (ALICE_ONLY, "1.2.3.4", KERBEROS, parse_username("CORP\\alice"), PolicyOutcome.DENY, "user unknown"),
    # later requests on an NTLM-authenticated connection carry no header: the connection's user counts
    (ALICE_ONLY, "1.2.3.4", NOBODY, parse_username("CORP\\alice"), PolicyOutcome.ALLOW, "user allowed"),
    (ALICE_ONLY, "1.2.3.4", NOBODY, parse_username("bob@corp.example"), PolicyOutcome.DENY, "user not allowed"),
    # a domain-qualified entry never admits the same account name of another domain
    (ALICE_ONLY, "1.2.3.4", ClientCredential(AuthScheme.BASIC, parse_username("EVIL\\alice")), None,
     PolicyOutcome.DENY, "user not allowed"),
    (BARE_BOB, "1.2.3.4", BOB_NTLM, None, PolicyOutcome.ALLOW, "user allowed"),
    # a name Windows may read as another account never matches the list (Kelvin sign: "k" to us)
    (ClientPolicy.build(allow=True, users=["kim"]), "1.2.3.4",
     ClientCredential(AuthScheme.NTLM, parse_username("\u212aim"), ntlm_message=3), None,
     PolicyOutcome.DENY, "user name outside ASCII"),
    (BARE_BOB, "1.2.3.4", ClientCredential(AuthScheme.BASIC, parse_username("bob\u00a0")), None,
     PolicyOutcome.DENY, "user name outside ASCII"),
])
def test_decide(policy: ClientPolicy, ip: str, credential: ClientCredential, connection_user: object,
                outcome: PolicyOutcome, reason: str) -> None:
    decision = decide(policy, client_ip=ip, credential=credential,
                      connection_user=connection_user)  # type: ignore[arg-type]
    assert (decision.outcome, decision.reason) == (outcome, reason)
    assert decision.allowed is (outcome is not PolicyOutcome.DENY)
