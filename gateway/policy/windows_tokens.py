"""Who an NTLM or Negotiate (SPNEGO) token names, read strictly (pure, sans-IO).

Why: under a user allow-list the gateway admits a Windows-auth client by the user its NTLM
AUTHENTICATE message names, while Exchange authenticates whoever *its* decoder finds. A loose
reading (the first `NTLMSSP` signature anywhere, offsets taken on trust) let a token carry a decoy
message for an allowed user next to the real one for another user. So a token is read by its
grammar or not at all:

- SPNEGO (RFC 4178) as strict DER (`gateway.policy.der`): a `negTokenInit`, bare or inside the
  GSS-API InitialContextToken (`[APPLICATION 0]` with the SPNEGO OID), or a `negTokenResp`; only
  the fields of the grammar, each at most once and in order, nothing after any element; only
  `mechToken` / `responseToken` is read.
- One `NTLMSSP` signature in the whole token: a second one is a second message, refused.
- NTLM (MS-NLMP 2.2): each payload field's length and offset are honoured as the specification
  says: an empty field's offset is ignored, a non-empty one must lie inside the message, after the
  fixed header. Text is UTF-16LE when NEGOTIATE_UNICODE is set (an odd length is refused), OEM when
  only NEGOTIATE_OEM is (read as ASCII: the code page is the server's, so nothing else is certain),
  and a message with neither is refused, as Windows refuses it.

Whatever cannot be read this way raises `UnreadableToken`; the caller then attributes nothing.

pyspnego (the simulator's acceptor) has no public token decoder, only whole handshakes, and its
private one is lenient (last duplicate wins, trailing bytes ignored); so this small reader is the
gateway's own, and the tests hold it to pyspnego's reading of real clients' tokens.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from gateway.policy.der import DerError, Element, read_elements, read_single

__all__ = ["NTLM_SIGNATURE", "NtlmMessageType", "NtlmReading", "UnreadableToken", "read_ntlm",
           "read_windows_token", "spnego_mech_token"]

NTLM_SIGNATURE = b"NTLMSSP\x00"
SPNEGO_OID = bytes.fromhex("2b0601050502")  # 1.3.6.1.5.5.2

_NEGOTIATE_UNICODE = 0x00000001
_NEGOTIATE_OEM = 0x00000002

_SEQUENCE, _OID, _OCTET_STRING, _BIT_STRING, _ENUMERATED = 0x30, 0x06, 0x04, 0x03, 0x0A
_INITIAL_CONTEXT_TOKEN = 0x60  # [APPLICATION 0], constructed
_NEG_TOKEN_INIT, _NEG_TOKEN_RESP = 0xA0, 0xA1  # NegotiationToken ::= CHOICE { [0], [1] }


def _context(number: int) -> int:
    return 0xA0 | number


class UnreadableToken(ValueError):
    """The token cannot be attributed to a user (the message says why, never the token)."""


class NtlmMessageType(IntEnum):
    NEGOTIATE = 1
    CHALLENGE = 2
    AUTHENTICATE = 3


@dataclass(frozen=True, slots=True)
class NtlmReading:
    """What an NTLM message says: its type and, for AUTHENTICATE, the names (never the responses)."""

    message_type: NtlmMessageType
    domain: str = ""
    user: str = ""
    workstation: str = ""


# --- SPNEGO ---------------------------------------------------------------------------------------


def _check_oid(element: Element) -> bytes:
    content = element.content
    if element.tag != _OID or not content or content[-1] & 0x80:
        raise UnreadableToken("malformed object identifier")
    previous_ended = True
    for octet in content:
        if previous_ended and octet == 0x80:
            raise UnreadableToken("non-minimal object identifier")
        previous_ended = not octet & 0x80
    return content


def _octet_string(element: Element) -> bytes:
    if element.tag != _OCTET_STRING:  # a constructed (0x24) string is not DER
        raise UnreadableToken("expected an octet string")
    return element.content


def _check_mech_types(element: Element) -> None:
    if element.tag != _SEQUENCE:
        raise UnreadableToken("expected the mechanism list")
    mechs = read_elements(element.content)
    if not mechs:
        raise UnreadableToken("empty mechanism list")
    for mech in mechs:
        _check_oid(mech)


def _check_bit_string(element: Element) -> None:
    content = element.content
    if element.tag != _BIT_STRING or not content or content[0] > 7 or (len(content) == 1 and content[0]):
        raise UnreadableToken("malformed bit string")


def _check_neg_state(element: Element) -> None:
    if element.tag != _ENUMERATED or len(element.content) != 1 or element.content[0] > 3:
        raise UnreadableToken("malformed negotiation state")


def _fields(sequence: Element, known: int) -> dict[int, Element]:
    """The explicitly tagged fields [0]..[known-1] of a SEQUENCE: each once, in order, nothing else."""
    if sequence.tag != _SEQUENCE:
        raise UnreadableToken("expected a sequence")
    found: dict[int, Element] = {}
    last = -1
    for field in read_elements(sequence.content):
        number = field.tag - 0xA0
        if not 0 <= number < known:
            raise UnreadableToken("unknown field")
        if number <= last:
            raise UnreadableToken("duplicate or out-of-order field")
        last = number
        found[number] = read_single(field.content)
    return found


def _neg_token_init(content: bytes) -> bytes | None:
    # NegTokenInit ::= SEQUENCE { mechTypes [0], reqFlags [1] OPTIONAL, mechToken [2] OPTIONAL,
    #                             mechListMIC [3] OPTIONAL }
    fields = _fields(read_single(content), 4)
    if 0 not in fields:
        raise UnreadableToken("no mechanism list")
    _check_mech_types(fields[0])
    if 1 in fields:
        _check_bit_string(fields[1])
    if 3 in fields:
        _octet_string(fields[3])
    return _octet_string(fields[2]) if 2 in fields else None


def _neg_token_resp(content: bytes) -> bytes | None:
    # NegTokenResp ::= SEQUENCE { negState [0] OPTIONAL, supportedMech [1] OPTIONAL,
    #                             responseToken [2] OPTIONAL, mechListMIC [3] OPTIONAL }
    fields = _fields(read_single(content), 4)
    if 0 in fields:
        _check_neg_state(fields[0])
    if 1 in fields:
        _check_oid(fields[1])
    if 3 in fields:
        _octet_string(fields[3])
    return _octet_string(fields[2]) if 2 in fields else None


def spnego_mech_token(token: bytes) -> bytes | None:
    """The mechanism token (`mechToken` or `responseToken`) of an SPNEGO token; None when it has none.

    Raises UnreadableToken unless the whole token is strict DER of RFC 4178's grammar.
    """
    try:
        outer = read_single(token)
        if outer.tag == _INITIAL_CONTEXT_TOKEN:
            # InitialContextToken ::= [APPLICATION 0] IMPLICIT SEQUENCE { thisMech, innerContextToken }
            parts = read_elements(outer.content)
            if len(parts) != 2 or _check_oid(parts[0]) != SPNEGO_OID:
                raise UnreadableToken("not an SPNEGO initial token")
            outer = parts[1]
            if outer.tag != _NEG_TOKEN_INIT:
                raise UnreadableToken("initial token without negTokenInit")
        if outer.tag == _NEG_TOKEN_INIT:
            return _neg_token_init(outer.content)
        if outer.tag == _NEG_TOKEN_RESP:
            return _neg_token_resp(outer.content)
    except DerError as exc:
        raise UnreadableToken(f"not DER: {exc}") from None
    raise UnreadableToken("not an SPNEGO token")


# --- NTLM -----------------------------------------------------------------------------------------


def _payload(message: bytes, field_offset: int, header_end: int) -> bytes:
    """A payload field (Len, MaxLen, BufferOffset); MaxLen is ignored on receipt (MS-NLMP 2.2.1)."""
    length, _max_length, offset = struct.unpack_from("<HHI", message, field_offset)
    if length == 0:
        return b""  # an empty field's offset means nothing
    if offset < header_end or offset + length > len(message):
        raise UnreadableToken("field outside the message")
    return message[offset:offset + length]


def _text(raw: bytes, unicode: bool) -> str:
    try:
        if unicode:
            if len(raw) % 2:
                raise UnreadableToken("odd length in a Unicode field")
            return raw.decode("utf-16-le")
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise UnreadableToken("undecodable text") from None


def read_ntlm(message: bytes) -> NtlmReading:
    """Read one NTLM message (the whole of `message`) by MS-NLMP 2.2.1."""
    if not message.startswith(NTLM_SIGNATURE) or len(message) < 12:
        raise UnreadableToken("not an NTLM message")
    (number,) = struct.unpack_from("<I", message, 8)
    try:
        message_type = NtlmMessageType(number)
    except ValueError:
        raise UnreadableToken("unknown NTLM message type") from None
    if message_type is NtlmMessageType.NEGOTIATE:
        # Signature, type, flags, DomainNameFields, WorkstationFields: 32 bytes (Version may follow).
        if len(message) < 32:
            raise UnreadableToken("short NTLM negotiate message")
        for field_offset in (16, 24):
            _payload(message, field_offset, 32)
        return NtlmReading(message_type)
    if message_type is NtlmMessageType.CHALLENGE:
        return NtlmReading(message_type)  # a server's message: it names nobody
    # AUTHENTICATE: LmChallengeResponse, NtChallengeResponse, DomainName, UserName, Workstation,
    # EncryptedRandomSessionKey (8 bytes each from offset 12), NegotiateFlags at 60: 64 bytes.
    if len(message) < 64:
        raise UnreadableToken("short NTLM authenticate message")
    _lm, _nt, domain, user, workstation, _session_key = (_payload(message, offset, 64)
                                                         for offset in (12, 20, 28, 36, 44, 52))
    (flags,) = struct.unpack_from("<I", message, 60)
    if flags & _NEGOTIATE_UNICODE:
        unicode = True
    elif flags & _NEGOTIATE_OEM:
        unicode = False
    else:
        raise UnreadableToken("neither Unicode nor OEM")  # MS-NLMP 2.2.2.5: SEC_E_INVALID_TOKEN
    if not user:
        raise UnreadableToken("no user name")  # anonymous: nobody to attribute
    return NtlmReading(message_type, _text(domain, unicode), _text(user, unicode), _text(workstation, unicode))


def read_windows_token(token: bytes, *, spnego: bool) -> NtlmReading:
    """The NTLM message a token carries: the token itself, or (when `spnego`, as under `Negotiate`)
    the mechanism token of an SPNEGO token. Raises UnreadableToken for anything else (Kerberos too:
    its ticket does not name the user to the gateway)."""
    if token.count(NTLM_SIGNATURE) > 1:
        raise UnreadableToken("more than one NTLM signature")
    if token.startswith(NTLM_SIGNATURE):
        return read_ntlm(token)
    if not spnego:
        raise UnreadableToken("not an NTLM message")
    inner = spnego_mech_token(token)
    if inner is None or not inner.startswith(NTLM_SIGNATURE):
        raise UnreadableToken("no NTLM message in the SPNEGO token")
    return read_ntlm(inner)
