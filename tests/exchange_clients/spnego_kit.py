"""Builders for hand-made NTLM and SPNEGO tokens (the spellings a real client never sends), and the
real three legs of a pyspnego client against a pyspnego acceptor."""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import spnego

SPNEGO_OID = bytes.fromhex("2b0601050502")
NTLM_OID = bytes.fromhex("2b06010401823702020a")
KERBEROS_OID = bytes.fromhex("2a864886f712010202")
UNICODE, OEM = 0x00000001, 0x00000002


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def octets(content: bytes) -> bytes:
    return der(0x04, content)


def oid(content: bytes) -> bytes:
    return der(0x06, content)


def field(number: int, inner: bytes) -> bytes:
    """An explicitly tagged field [number] of a SPNEGO sequence."""
    return der(0xA0 | number, inner)


def neg_token_init(*fields: bytes, wrapped: bool = True) -> bytes:
    """`fields` as built by `field`; inside the GSS-API InitialContextToken unless `wrapped=False`."""
    init = der(0xA0, der(0x30, b"".join(fields)))
    return der(0x60, oid(SPNEGO_OID) + init) if wrapped else init


def neg_token_resp(*fields: bytes) -> bytes:
    return der(0xA1, der(0x30, b"".join(fields)))


def mech_types(*mechs: bytes) -> bytes:
    return field(0, der(0x30, b"".join(oid(mech) for mech in mechs)))


def init_with(mech_token: bytes, *, wrapped: bool = True) -> bytes:
    return neg_token_init(mech_types(NTLM_OID), field(2, octets(mech_token)), wrapped=wrapped)


def resp_with(response_token: bytes) -> bytes:
    return neg_token_resp(field(2, octets(response_token)))


@dataclass(frozen=True)
class NtlmField:
    """One payload field as written in the message: its bytes, and optionally lies about them."""

    data: bytes
    length: int | None = None  # the Len written (default: len(data))
    offset: int | None = None  # the BufferOffset written (default: where the data is)


def ntlm_authenticate(domain: str | NtlmField, user: str | NtlmField, workstation: str | NtlmField = "WS01", *,
                      flags: int = UNICODE, encoding: str | None = None) -> bytes:
    """An NTLM AUTHENTICATE message (responses are zeros: only the names matter to the gateway)."""
    text_encoding = encoding or ("utf-16-le" if flags & UNICODE else "ascii")

    def as_field(value: str | NtlmField) -> NtlmField:
        return value if isinstance(value, NtlmField) else NtlmField(value.encode(text_encoding))

    fields = [NtlmField(b"\x00" * 24), NtlmField(b"\x00" * 24), as_field(domain), as_field(user),
              as_field(workstation), NtlmField(b"")]
    header = b"NTLMSSP\x00" + struct.pack("<I", 3)
    descriptors = b""
    payload = b""
    for item in fields:
        length = len(item.data) if item.length is None else item.length
        offset = 64 + len(payload) if item.offset is None else item.offset
        descriptors += struct.pack("<HHI", length, length, offset)
        payload += item.data
    return header + descriptors + struct.pack("<I", flags) + payload


def ntlm_negotiate(flags: int = UNICODE | OEM | 0x00000200) -> bytes:
    return b"NTLMSSP\x00" + struct.pack("<II", 1, flags) + struct.pack("<HHI", 0, 0, 0) * 2


def header(scheme: str, token: bytes) -> str:
    return f"{scheme} {base64.b64encode(token).decode()}"


@contextmanager
def ntlm_users(tmp: str, lines: Sequence[str]) -> Iterator[None]:
    """pyspnego's acceptor reads its users from the file NTLM_USER_FILE names (process-wide)."""
    path = os.path.join(tmp, "ntlm-users")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    previous = os.environ.get("NTLM_USER_FILE")
    os.environ["NTLM_USER_FILE"] = path
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = previous


@dataclass(frozen=True)
class Handshake:
    """The client's two legs of one real handshake, and who the acceptor authenticated with them."""

    negotiate: bytes
    authenticate: bytes
    principal: str | None


def real_handshake(user: str, password: str, *, protocol: str, hostname: str = "mail.corp.example") -> Handshake:
    """A pyspnego client against a pyspnego acceptor (the simulator's), leg by leg."""
    client = spnego.client(user, password, protocol=protocol, hostname=hostname)
    server = spnego.server(protocol=protocol)
    negotiate = client.step()
    assert negotiate is not None
    challenge = server.step(negotiate)
    assert challenge is not None
    authenticate = client.step(challenge)
    assert authenticate is not None
    server.step(authenticate)
    return Handshake(negotiate, authenticate, str(server.client_principal) if server.complete else None)
