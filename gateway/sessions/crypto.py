"""Encryption of session records at rest, and the keyed hashing of counter names.

Each record is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from two inputs: the
session's own secret, which only the browser's cookie holds, and the server key
(`GATEWAY_SESSION_SECRET`), which only the gateway holds. A copy of the store alone opens nothing,
and a copy of the store plus the server key still needs the cookie. The associated data binds the
ciphertext to its storage key and to the format version, so a blob moved to another key, or
written in another format, does not open.

Blob layout: format byte (1) | nonce (12) | ciphertext and tag. The plaintext is padded with
spaces (valid JSON whitespace) to a multiple of 256 bytes so the length does not reveal the length
of a username.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_V1 = 1
_NONCE_BYTES = 12
_PAD_TO = 256
_RECORD_INFO = b"monosign-gateway session record v1"
_COUNTER_INFO = b"monosign-gateway counter names v1"


def _hkdf(material: bytes, *, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(material)


def _associated_data(storage_key: str) -> bytes:
    return b"msgw-session\x00%d\x00" % FORMAT_V1 + storage_key.encode("utf-8")


class RecordCipher:
    """Seals and opens record blobs; `previous` server keys are accepted for opening only."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        if not current:
            raise ValueError("the server key must not be empty")
        self._current = current
        self._previous = tuple(key for key in previous if key and key != current)
        self._counter_key = _hkdf(current, salt=b"", info=_COUNTER_INFO)

    def seal(self, plaintext: bytes, session_secret: bytes, storage_key: str) -> bytes:
        padded = plaintext + b" " * (-len(plaintext) % _PAD_TO)
        nonce = os.urandom(_NONCE_BYTES)
        key = _hkdf(session_secret, salt=self._current, info=_RECORD_INFO)
        sealed = AESGCM(key).encrypt(nonce, padded, _associated_data(storage_key))
        return bytes([FORMAT_V1]) + nonce + sealed

    def open(self, blob: bytes, session_secret: bytes, storage_key: str) -> bytes | None:
        """The plaintext, or None when the blob is not ours, was altered, or the secret is wrong.

        The current key is tried first, then the previous ones; the store seals every write with
        the current key, so records move to it as they are written.
        """
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[0] != FORMAT_V1:
            return None
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        associated = _associated_data(storage_key)
        for server_key in (self._current, *self._previous):
            key = _hkdf(session_secret, salt=server_key, info=_RECORD_INFO)
            try:
                plaintext = AESGCM(key).decrypt(nonce, sealed, associated)
            except InvalidTag:
                continue
            return plaintext.rstrip(b" ")
        return None

    def name_hash(self, *parts: str) -> str:
        """A keyed hash of a counter or claim name (user ids, IPs): a dump shows no usernames.

        Keyed by the current server key only: rotating the key starts counters afresh.
        """
        message = "\x00".join(parts).encode("utf-8")
        return hmac.new(self._counter_key, message, hashlib.sha256).hexdigest()


def server_key_material(secret: str) -> bytes:
    """The server key's bytes, from the operator's `GATEWAY_SESSION_SECRET` text."""
    return secret.encode("utf-8")
