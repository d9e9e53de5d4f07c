"""The session cookie's value: `<id>.<secret>`, both random, base64url without padding.

The id (16 bytes) locates the record: the store key is its SHA-256, so a dump of the store does not
even list live ids. The secret (32 bytes) never leaves the cookie: with the server key it derives
the record's encryption key. Parsing is strict (exact length, alphabet and canonical encoding) and
never raises: anything else is simply not a ticket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass

ID_BYTES = 16
SECRET_BYTES = 32
_ID_CHARS = 22      # base64url length of 16 bytes, no padding
_SECRET_CHARS = 43  # base64url length of 32 bytes, no padding
TICKET_LENGTH = _ID_CHARS + 1 + _SECRET_CHARS
_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{_ID_CHARS}}}\.[A-Za-z0-9_-]{{{_SECRET_CHARS}}}")


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Ticket:
    id: bytes
    secret: bytes

    @classmethod
    def new(cls) -> Ticket:
        return cls(secrets.token_bytes(ID_BYTES), secrets.token_bytes(SECRET_BYTES))

    @property
    def value(self) -> str:
        """The cookie value."""
        return f"{_encode(self.id)}.{_encode(self.secret)}"

    @property
    def storage_id(self) -> str:
        """What the store is keyed by: the id's SHA-256, never the id itself."""
        return hashlib.sha256(self.id).hexdigest()

    @property
    def proof(self) -> bytes:
        """A one-way digest of the secret, kept beside the record: writes and deletes must present
        it, so knowing an id without its secret changes nothing. It reveals nothing of the secret."""
        return hashlib.sha256(b"monosign-gateway session proof v1\x00" + self.secret).digest()

    def __repr__(self) -> str:  # never print the secret (or the id) by accident
        return "Ticket(<redacted>)"


def parse_ticket(value: object) -> Ticket | None:
    """The ticket in a cookie value, or None when it is not exactly one of ours."""
    if not isinstance(value, str) or len(value) != TICKET_LENGTH or not _SHAPE.fullmatch(value):
        return None
    id_text, _, secret_text = value.partition(".")
    try:
        ticket = Ticket(_decode(id_text), _decode(secret_text))
    except (binascii.Error, ValueError):
        return None
    # Base64 has spare bits in the last character; only the canonical spelling is accepted, so
    # that one session has exactly one cookie value.
    if ticket.value != value:
        return None
    return ticket
