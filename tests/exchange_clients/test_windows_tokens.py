"""The user a Windows-auth credential names, read strictly (gateway.policy.windows_tokens, der, clients).

Two findings of the security review, each as a table of spellings plus properties:

- Class 2: a token may name one user to the gateway and another to Exchange (a decoy NTLM message
  in an unknown or duplicate SPNEGO field, bytes after an element, loose lengths or offsets). The
  gateway reads a token by its grammar or attributes it to nobody.
- Class 3: under a user list, a credential whose user cannot be read is refused (never forwarded);
  only the anonymous request and NTLM leg 1 are challenge-only.

The properties compare the gateway's reading with pyspnego's own (the simulator's acceptor) on
tokens of real pyspnego clients, and on what hypothesis makes of them. pyspnego's token decoder is
private (`spnego._spnego`, `spnego._ntlm_raw.messages`): only these tests use it, as an oracle, and
`test_pyspnego_oracle_is_there` fails first if a pyspnego release moves it.
"""

from __future__ import annotations

import base64
import struct
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.policy.clients import AuthScheme, ClientPolicy, PolicyOutcome, decide, parse_authorization
from gateway.policy.der import DerError, read_elements, read_single
from gateway.policy.windows_tokens import NtlmMessageType, UnreadableToken, read_windows_token, spnego_mech_token
from tests.exchange_clients.spnego_kit import (
    KERBEROS_OID,
    NTLM_OID,
    OEM,
    SPNEGO_OID,
    UNICODE,
    NtlmField,
    der,
    field,
    header,
    init_with,
    mech_types,
    neg_token_init,
    neg_token_resp,
    ntlm_authenticate,
    ntlm_negotiate,
    ntlm_users,
    octets,
    oid,
    real_handshake,
    resp_with,
)

ALICE = ntlm_authenticate("CORP", "alice")  # on the list: the decoy
BOB = ntlm_authenticate("CORP", "bob")  # not on the list: the user Exchange would authenticate
ALICE_ONLY = ClientPolicy.build(allow=True, users=["CORP\\alice"])
NEGOTIATE_LEG = ntlm_negotiate()


def basic_raw(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def _with_field(message: bytes, field_offset: int, length: int, offset: int) -> bytes:
    return message[:field_offset] + struct.pack("<HHI", length, length, offset) + message[field_offset + 8:]


# --- Class 2: what the gateway reads from a credential --------------------------------------------

# (Authorization value, the user the gateway must read: None when it must attribute the token to nobody)
SPELLINGS: list[tuple[str, str | None]] = [
    # the well-formed spellings, for contrast
    (header("NTLM", BOB), "CORP\\bob"),
    (header("Negotiate", BOB), "CORP\\bob"),  # bare NTLM under Negotiate, as Windows accepts
    (header("Negotiate", resp_with(BOB)), "CORP\\bob"),
    (header("Negotiate", init_with(BOB)), "CORP\\bob"),
    (header("Negotiate", init_with(BOB, wrapped=False)), "CORP\\bob"),
    (header("Negotiate", neg_token_resp(field(0, der(0x0A, b"\x01")), field(1, oid(NTLM_OID)),
                                        field(2, octets(BOB)), field(3, octets(b"m" * 16)))), "CORP\\bob"),
    (header("Negotiate", neg_token_init(mech_types(KERBEROS_OID, NTLM_OID), field(1, der(0x03, b"\x00")),
                                        field(2, octets(BOB)), field(3, octets(b"mic")))), "CORP\\bob"),
    (header("ntlm", ntlm_authenticate("CORP", "bob", flags=OEM)), "CORP\\bob"),
    (header("NTLM", ntlm_authenticate("CORP", "bob", flags=UNICODE | OEM)), "CORP\\bob"),
    (header("NTLM", ntlm_authenticate("", "bob@corp.example")), "bob@corp.example"),
    # a decoy for alice in a field the grammar does not have, after or before the real one
    (header("Negotiate", neg_token_resp(field(2, octets(BOB)), field(4, octets(ALICE)))), None),
    (header("Negotiate", neg_token_resp(field(5, octets(ALICE)), field(2, octets(BOB)))), None),
    (header("Negotiate", neg_token_init(mech_types(NTLM_OID), field(2, octets(BOB)), field(7, octets(ALICE)))),
     None),
    # the decoy in a duplicate field: pyspnego (and perhaps Exchange) keeps the last, a loose reader the first
    (header("Negotiate", neg_token_resp(field(2, octets(ALICE)), field(2, octets(BOB)))), None),
    (header("Negotiate", neg_token_init(mech_types(NTLM_OID), field(2, octets(ALICE)), field(2, octets(BOB)))),
     None),
    # fields out of order
    (header("Negotiate", neg_token_resp(field(3, octets(b"mic")), field(2, octets(BOB)))), None),
    (header("Negotiate", neg_token_init(field(2, octets(BOB)), mech_types(NTLM_OID))), None),
    # the decoy where the grammar has a place, but not for an NTLM message: two signatures
    (header("Negotiate", neg_token_resp(field(2, octets(BOB)), field(3, octets(ALICE)))), None),
    (header("Negotiate", neg_token_init(mech_types(NTLM_OID), field(2, octets(BOB)), field(3, octets(ALICE)))),
     None),
    (header("Negotiate", resp_with(BOB + ALICE)), None),
    (header("NTLM", BOB + ALICE), None),
    (header("NTLM", ALICE + BOB), None),
    # bytes after an element, at each level
    (header("Negotiate", resp_with(BOB) + b"\x00"), None),
    (header("Negotiate", resp_with(BOB) + octets(ALICE)), None),
    (header("Negotiate", neg_token_resp(der(0xA2, octets(BOB) + b"\x04\x00"))), None),
    (header("Negotiate", der(0xA1, der(0x30, field(2, octets(BOB))) + der(0x30, b""))), None),
    (header("Negotiate", der(0x60, oid(SPNEGO_OID) + der(0xA0, der(0x30, mech_types(NTLM_OID)
                                                                     + field(2, octets(BOB)))) + b"\x00")), None),
    # lengths DER does not allow: long form for a short length, a leading zero, indefinite
    (header("Negotiate", b"\xa1\x81\x05" + b"\x30\x03\xa2\x01\x00"), None),
    (header("Negotiate", b"\xa1\x82\x00" + bytes([len(der(0x30, field(2, octets(BOB))))])
            + der(0x30, field(2, octets(BOB)))), None),
    (header("Negotiate", b"\xa1\x80" + der(0x30, field(2, octets(BOB))) + b"\x00\x00"), None),
    (header("Negotiate", resp_with(BOB)[:-1]), None),
    # a constructed OCTET STRING, a high tag number, another type where the token belongs
    (header("Negotiate", neg_token_resp(field(2, der(0x24, octets(BOB))))), None),
    (header("Negotiate", neg_token_resp(field(2, b"\x1f\x81\x00" + bytes([0x81, len(BOB)]) + BOB))), None),
    (header("Negotiate", neg_token_resp(field(2, der(0x0C, BOB)))), None),
    # the GSS-API wrapper: another mechanism's OID, or a negTokenResp inside it
    (header("Negotiate", der(0x60, oid(KERBEROS_OID) + der(0xA0, der(0x30, mech_types(NTLM_OID)
                                                                       + field(2, octets(BOB)))))), None),
    (header("Negotiate", der(0x60, oid(SPNEGO_OID) + resp_with(BOB))), None),
    (header("Negotiate", neg_token_init(field(2, octets(BOB)))), None),  # no mechTypes
    (header("Negotiate", neg_token_init(field(0, der(0x30, oid(b"\x2b\x80\x06"))), field(2, octets(BOB)))), None),
    # SPNEGO is Negotiate's, never NTLM's
    (header("NTLM", resp_with(BOB)), None),
    # NTLM fields: an offset outside the message, into the fixed header, a length past the end
    (header("NTLM", _with_field(BOB, 36, 6, 5000)), None),
    (header("NTLM", _with_field(BOB, 36, 8, 0)), None),
    (header("NTLM", _with_field(BOB, 36, 6, len(BOB) - 4)), None),
    (header("NTLM", _with_field(BOB, 44, 8, 0xFFFFFFF0)), None),  # even the workstation
    # an empty field's offset means nothing (MS-NLMP): the name is read, the offset ignored
    (header("NTLM", ntlm_authenticate(NtlmField(b"", offset=0xFFFFFFFF), "bob")), "bob"),
    (header("NTLM", ntlm_authenticate(NtlmField(b"", offset=8), "bob", NtlmField(b"", offset=7))), "bob"),
    # text: odd Unicode length, neither Unicode nor OEM, OEM outside ASCII, lone surrogate
    (header("NTLM", ntlm_authenticate("CORP", NtlmField("bob".encode("utf-16-le") + b"x"))), None),
    (header("NTLM", ntlm_authenticate("CORP", "bob", flags=0)), None),
    (header("NTLM", ntlm_authenticate("CORP", "b\xf6b", flags=OEM, encoding="latin-1")), None),
    (header("NTLM", ntlm_authenticate("CORP", NtlmField(b"\x00\xd8b\x00"))), None),
    # OEM bytes of a Unicode name read as OEM are not the Unicode name
    (header("NTLM", ntlm_authenticate("CORP", NtlmField("bob".encode("utf-16-le")), flags=OEM)), None),
    # anonymous, short, unknown type
    (header("NTLM", ntlm_authenticate("", "")), None),
    (header("NTLM", BOB[:63]), None),
    (header("NTLM", BOB[:8] + struct.pack("<I", 4) + BOB[12:]), None),
    # Basic: only the strict spelling names a user
    (basic_raw(b"CORP\\bob:pw"), "CORP\\bob"),
    ("bAsIc " + base64.b64encode(b"CORP\\bob:pw").decode(), "CORP\\bob"),
    ("Basic " + base64.b64encode(b"alice:x").decode().rstrip("="), None),  # padding left out
    ("Basic " + base64.b64encode(b"alice:x").decode() + "=", None),  # padding added
    ("Basic " + base64.b64encode(b"alice:x").decode() + "Ym9i", None),  # data after the padding
    ("Basic YWxp Y2U6eA==", None),
    ("Basic\t" + base64.b64encode(b"alice:x").decode(), None),
    ("Basic " + base64.b64encode(b"alice:x>?").decode().replace("+", "-").replace("/", "_"), None),
    ("Basic " + base64.b64encode(b"alice:x").decode() + ", Basic " + base64.b64encode(b"bob:y").decode(), None),
    (basic_raw(b"alice"), None),
    (basic_raw(b"alice\x00bob:x"), None),
    (basic_raw(b"CORP\\al\xefce:x"), None),
    ("Basic ", None),
]


@pytest.mark.parametrize(("value", "user"), SPELLINGS)
def test_the_user_a_credential_names(value: str, user: str | None) -> None:
    credential = parse_authorization([value])
    if user is None:
        assert credential.user is None
    else:
        assert credential.user is not None
        assert credential.user.typed == user


@pytest.mark.parametrize(("value", "user"), SPELLINGS)
def test_a_decoy_never_admits(value: str, user: str | None) -> None:
    """Under a list naming alice (every decoy's user), only what is read as alice is allowed."""
    decision = decide(ALICE_ONLY, client_ip="10.0.0.1", credential=parse_authorization([value]))
    expected = PolicyOutcome.ALLOW if user is not None and user.lower() == "corp\\alice" else PolicyOutcome.DENY
    assert decision.outcome is expected
    if user is None:
        assert decision.reason == "user unknown"


# --- Class 3: nothing unattributable goes upstream ------------------------------------------------

# (Authorization values, the decision under a user list, with no user on the connection yet)
FIRST_LEGS: list[tuple[list[str], PolicyOutcome, str]] = [
    ([], PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    ([header("NTLM", NEGOTIATE_LEG)], PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    ([header("Negotiate", NEGOTIATE_LEG)], PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    ([header("Negotiate", init_with(NEGOTIATE_LEG))], PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    ([header("Negotiate", init_with(NEGOTIATE_LEG, wrapped=False))], PolicyOutcome.CHALLENGE_ONLY, "no user yet"),
    # everything else that names nobody
    ([header("Negotiate", der(0x60, oid(KERBEROS_OID) + b"\x01\x00" + der(0x6E, b"ticket")))],
     PolicyOutcome.DENY, "user unknown"),
    ([header("Negotiate", neg_token_init(mech_types(KERBEROS_OID), field(2, octets(der(0x6E, b"ap-req")))))],
     PolicyOutcome.DENY, "user unknown"),
    ([header("Negotiate", neg_token_init(mech_types(NTLM_OID)))], PolicyOutcome.DENY, "user unknown"),
    ([header("Negotiate", neg_token_resp(field(3, octets(b"mic"))))], PolicyOutcome.DENY, "user unknown"),
    ([header("NTLM", BOB[:36] + struct.pack("<HHI", 6, 6, 9999) + BOB[44:])], PolicyOutcome.DENY, "user unknown"),
    ([header("NTLM", ntlm_authenticate("", ""))], PolicyOutcome.DENY, "user unknown"),
    ([header("NTLM", b"NTLMSSP\x00" + struct.pack("<I", 2) + b"\x00" * 40)], PolicyOutcome.DENY, "user unknown"),
    ([header("NTLM", NEGOTIATE_LEG[:24])], PolicyOutcome.DENY, "user unknown"),  # a short leg 1
    ([header("NTLM", NEGOTIATE_LEG + ALICE)], PolicyOutcome.DENY, "user unknown"),  # leg 1 hiding a leg 3
    ([header("NTLM", _with_field(NEGOTIATE_LEG, 16, 4, 900))], PolicyOutcome.DENY, "user unknown"),
    ([header("Negotiate", resp_with(NEGOTIATE_LEG) + b"\x00")], PolicyOutcome.DENY, "user unknown"),
    (["NTLM"], PolicyOutcome.DENY, "user unknown"),
    (["NTLM !!!"], PolicyOutcome.DENY, "user unknown"),
    (["Bearer eyJ0eXAiOiJKV1QifQ.e30.sig"], PolicyOutcome.DENY, "user unknown"),
    (['Digest username="alice"'], PolicyOutcome.DENY, "user unknown"),
    ([""], PolicyOutcome.DENY, "user unknown"),
    (["Basic " + base64.b64encode(b"no-colon").decode()], PolicyOutcome.DENY, "user unknown"),
    ([header("NTLM", ALICE), header("NTLM", BOB)], PolicyOutcome.DENY, "several authorization headers"),
]


@pytest.mark.parametrize(("values", "outcome", "reason"), FIRST_LEGS)
def test_only_a_first_leg_may_name_nobody(values: list[str], outcome: PolicyOutcome, reason: str) -> None:
    decision = decide(ALICE_ONLY, client_ip="10.0.0.1", credential=parse_authorization(values))
    assert (decision.outcome, decision.reason) == (outcome, reason)
    # Without a user list nothing needs a name: the same requests pass (the class's own policy).
    open_decision = decide(ClientPolicy.build(allow=True), client_ip="10.0.0.1",
                           credential=parse_authorization(values))
    assert open_decision.outcome is (PolicyOutcome.DENY if len(values) > 1 else PolicyOutcome.ALLOW)


def test_a_connection_user_never_lends_itself_to_an_unreadable_credential() -> None:
    from gateway.policy.users import parse_username

    credential = parse_authorization([header("Negotiate", neg_token_resp(field(2, octets(BOB)),
                                                                        field(4, octets(ALICE))))])
    decision = decide(ALICE_ONLY, client_ip="10.0.0.1", credential=credential,
                      connection_user=parse_username("CORP\\alice"))
    assert decision.outcome is PolicyOutcome.DENY


# --- The DER reader -------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "tag", "content"), [
    (b"\x04\x00", 0x04, b""),
    (b"\x04\x03abc", 0x04, b"abc"),
    (b"\x04\x81\x80" + b"x" * 128, 0x04, b"x" * 128),
    (b"\x04\x82\x01\x00" + b"x" * 256, 0x04, b"x" * 256),
    (b"\x30\x00", 0x30, b""),
])
def test_der_reads(data: bytes, tag: int, content: bytes) -> None:
    element = read_single(data)
    assert (element.tag, element.content) == (tag, content)


@pytest.mark.parametrize("data", [
    b"", b"\x04", b"\x04\x01", b"\x04\x00\x00", b"\x04\x80", b"\x04\x80abc\x00\x00", b"\x04\x81\x05abcde",
    b"\x04\x82\x00\x05abcde", b"\x04\x81", b"\x04\x84\x00\x00\x00\x01x", b"\x04\x85\x01\x00\x00\x00\x00",
    b"\x1f\x81\x00\x00", b"\x04\xff", b"\x04\x02a",
])
def test_der_refuses(data: bytes) -> None:
    with pytest.raises(DerError):
        read_single(data)


def test_der_elements_cover_exactly() -> None:
    assert [element.content for element in read_elements(b"\x04\x01a\x04\x00")] == [b"a", b""]
    with pytest.raises(DerError):
        read_elements(b"\x04\x01a\x04")


def test_spnego_reads_only_the_mechanism_token() -> None:
    assert spnego_mech_token(init_with(BOB)) == BOB
    assert spnego_mech_token(resp_with(BOB)) == BOB
    assert spnego_mech_token(neg_token_resp(field(0, der(0x0A, b"\x00")))) is None
    with pytest.raises(UnreadableToken):
        spnego_mech_token(neg_token_resp(field(0, der(0x0A, b"\x04"))))  # negState beyond request-mic


# --- Properties: the gateway reads what pyspnego's acceptor reads, or nothing --------------------


def pyspnego_reading(token: bytes) -> tuple[int, str] | None:
    """(NTLM message type, DOMAIN\\user or the bare name) as pyspnego's acceptor would read the token."""
    from spnego._ntlm_raw.messages import Authenticate, NTLMMessage
    from spnego._spnego import NegTokenInit, NegTokenResp, unpack_token

    try:
        unpacked = unpack_token(token)
        if isinstance(unpacked, NegTokenInit):
            inner = unpacked.mech_token
        elif isinstance(unpacked, NegTokenResp):
            inner = unpacked.response_token
        else:
            inner = unpacked
        message = NTLMMessage.unpack(inner)
        if not isinstance(message, Authenticate):
            return struct.unpack("<I", inner[8:12])[0], ""
        domain, user = message.domain_name or "", message.user_name or ""
    except Exception:  # whatever pyspnego cannot unpack, it cannot authenticate either
        return None
    return 3, f"{domain}\\{user}" if domain else user


def gateway_reading(scheme: str, token: bytes) -> tuple[int, str] | None:
    """(1, "") for a leg 1, (3, the user) for a leg 3 the gateway attributes; None for anything else."""
    credential = parse_authorization([header(scheme, token)])
    if credential.user is not None:
        return 3, credential.user.typed
    return (1, "") if credential.ntlm_message == NtlmMessageType.NEGOTIATE.value else None


def test_pyspnego_oracle_is_there() -> None:
    """The private pyspnego names the properties use as their oracle (tests only, never the gateway)."""
    assert pyspnego_reading(resp_with(BOB)) == (3, "CORP\\bob")
    assert pyspnego_reading(init_with(NEGOTIATE_LEG)) == (1, "")
    assert pyspnego_reading(b"garbage") is None


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20).filter(
    lambda name: name.strip(".") == name)
DOMAINS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=15)
PASSWORDS = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
                    min_size=1, max_size=24)
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(domain=DOMAINS, name=NAMES, password=PASSWORDS, protocol=st.sampled_from(["ntlm", "negotiate"]),
       upn=st.booleans())
def test_real_clients_are_read_as_the_acceptor_reads_them(domain: str, name: str, password: str, protocol: str,
                                                         upn: bool) -> None:
    user = f"{name}@{domain.lower()}.example" if upn else f"{domain}\\{name}"
    line = f":{user}:{password}" if upn else f"{domain}:{name}:{password}"
    scheme = "Negotiate" if protocol == "negotiate" else "NTLM"
    with tempfile.TemporaryDirectory() as tmp, ntlm_users(tmp, [line]):
        legs = real_handshake(user, password, protocol=protocol)
    assert legs.principal is not None  # the acceptor authenticated it
    assert gateway_reading(scheme, legs.negotiate) == (NtlmMessageType.NEGOTIATE.value, "")
    assert gateway_reading(scheme, legs.authenticate) == (3, legs.principal)
    assert pyspnego_reading(legs.authenticate) == (3, legs.principal)
    assert decide(ClientPolicy.build(allow=True, users=[user]), client_ip="10.0.0.1",
                  credential=parse_authorization([header(scheme, legs.authenticate)])).outcome is PolicyOutcome.ALLOW


_REAL: dict[str, bytes] = {}


def real_leg(protocol: str, leg: int) -> bytes:
    """Legs of one real handshake per protocol, made once (hypothesis then works on their bytes)."""
    key = f"{protocol}{leg}"
    if key not in _REAL:
        with tempfile.TemporaryDirectory() as tmp, ntlm_users(tmp, ["CORP:bob:BobPass1!"]):
            legs = real_handshake("CORP\\bob", "BobPass1!", protocol=protocol)
        _REAL[f"{protocol}1"], _REAL[f"{protocol}3"] = legs.negotiate, legs.authenticate
    return _REAL[key]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    protocol = draw(st.sampled_from(["ntlm", "negotiate"]))
    token = bytearray(real_leg(protocol, draw(st.sampled_from([1, 3]))))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(token)))
        action = draw(st.sampled_from(["set", "insert", "delete", "decoy"]))
        if action == "set" and position < len(token):
            token[position] = draw(st.integers(0, 255))
        elif action == "insert":
            token[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del token[position:position + draw(st.integers(1, 8))]
        elif action == "decoy":
            token[position:position] = draw(st.sampled_from([ALICE, octets(ALICE), field(4, octets(ALICE))]))
    return ("Negotiate" if protocol == "negotiate" else "NTLM"), bytes(token)


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_a_changed_real_token_is_read_as_pyspnego_reads_it_or_not_at_all(case: tuple[str, bytes]) -> None:
    scheme, token = case
    ours = gateway_reading(scheme, token)
    if ours is None:
        return
    assert ours == pyspnego_reading(token)


@st.composite
def spnego_fields(draw: st.DrawFn) -> tuple[bytes, bool]:
    """SPNEGO-shaped tokens with fields in any order and number, holding bob's real leg 3, the decoy,
    or bytes; True when bob's message is there."""
    real = spnego_mech_token(real_leg("negotiate", 3))
    assert real is not None
    contents = [octets(real), octets(ALICE), octets(b"mic"), der(0x0A, b"\x01"), oid(NTLM_OID),
                der(0x30, oid(NTLM_OID))]
    chosen = draw(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(range(len(contents)))), max_size=5))
    body = b"".join(field(number, contents[index]) for number, index in chosen)
    shape = draw(st.sampled_from(["init", "bare-init", "resp"]))
    token = neg_token_resp(body) if shape == "resp" else neg_token_init(body, wrapped=shape == "init")
    return token, any(index == 0 for _number, index in chosen)


@settings(max_examples=300, deadline=None)
@given(spnego_fields())
def test_any_field_layout_is_read_as_pyspnego_reads_it_or_not_at_all(case: tuple[bytes, bool]) -> None:
    token, has_bob = case
    ours = gateway_reading("Negotiate", token)
    if ours is None:
        return
    assert ours == pyspnego_reading(token)
    if has_bob:  # next to bob's real message, the decoy is never what the gateway reads
        assert ours == (3, "CORP\\bob")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_name_a_user(data: bytes) -> None:
    for token in (data, resp_with(data), b"NTLMSSP\x00" + data):
        credential = parse_authorization([header("Negotiate", token)])
        if credential.user is not None:
            assert pyspnego_reading(token) == (3, credential.user.typed)


def test_the_scheme_is_read_once() -> None:
    assert parse_authorization([header("Negotiate", resp_with(BOB))]).scheme is AuthScheme.NEGOTIATE
    with pytest.raises(UnreadableToken):
        read_windows_token(resp_with(BOB), spnego=False)
