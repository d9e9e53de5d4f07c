"""The familiar-device cookie: a browser that has passed the second factor for a user, signed (sans-IO).

Why: the smart lockout (gateway.mfa.lockout) must not let failures from elsewhere lock a user out
of the browser they always use. That browser is recognised by this cookie, issued when it passes
the second factor: `v1.<device id>.<expiry>.<mac>`, where the device id is 16 random bytes, the
expiry is epoch seconds, and the mac is HMAC-SHA256 over the version, id, expiry and the Monosign
user Id, keyed with a key derived from the server key. So it cannot be forged, moved to another
user (the user Id is in the mac, not in the cookie: the cookie names nobody), or used after it
expires, whatever the browser does with `Max-Age`.

With an https public URL the name carries the `__Host-` prefix (Secure, Path=/, no Domain), as the
session cookie does (gateway.mfa.session_cookie); both are stripped before anything goes upstream.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.policy.cookies import RequestCookies
from gateway.sessions.crypto import server_key_material

SECURE_DEVICE_COOKIE_NAME = "__Host-msgw-device"
PLAIN_DEVICE_COOKIE_NAME = "msgw-device"
_VERSION = "v1"
_KEY_INFO = b"monosign-gateway familiar device cookie v1"
_DEVICE_ID_BYTES = 16
# v1.<22 base64url>.<up to 12 digits>.<43 base64url>: anything else is not ours.
_VALUE = re.compile(r"v1\.([A-Za-z0-9_-]{22})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
_DAY = 86400.0


def _derive(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=_KEY_INFO).derive(material)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class DeviceCookie:
    """Issues and checks familiar-device cookies. `keys[0]` signs; every key is accepted (rotation)."""

    keys: tuple[bytes, ...]
    secure: bool
    lifetime: float  # seconds; 0 disables the cookie

    @classmethod
    def from_secrets(cls, secrets_text: Sequence[str], *, secure: bool, days: float) -> DeviceCookie:
        """Keys derived from the server secrets (the current one first: it signs), or a random key
        without any; `days` the cookie's lifetime (0 disables it)."""
        # Without GATEWAY_SESSION_SECRET the memory store's sessions end at restart; so do these.
        materials: Sequence[bytes] = ([server_key_material(text) for text in secrets_text]
                                      or [secrets.token_bytes(32)])
        return cls(keys=tuple(_derive(material) for material in materials), secure=secure, lifetime=days * _DAY)

    @property
    def enabled(self) -> bool:
        return self.lifetime > 0

    @property
    def name(self) -> str:
        return SECURE_DEVICE_COOKIE_NAME if self.secure else PLAIN_DEVICE_COOKIE_NAME

    def _mac(self, key: bytes, device_id: str, expires: int, user_id: str) -> str:
        message = "\x00".join((_VERSION, device_id, str(expires), user_id)).encode("utf-8")
        return _b64(hmac.new(key, message, hashlib.sha256).digest())

    def issue(self, user_id: str, now: float, device_id: str | None = None) -> tuple[str, str]:
        """(device id, `Set-Cookie` value) for a browser that passed the second factor for `user_id`.
        `device_id`: the browser's current one, kept (its own failure count stays with it)."""
        device = device_id or _b64(secrets.token_bytes(_DEVICE_ID_BYTES))
        expires = int(now + self.lifetime)
        value = f"{_VERSION}.{device}.{expires}.{self._mac(self.keys[0], device, expires, user_id)}"
        secure = "; Secure" if self.secure else ""
        return device, f"{self.name}={value}; Path=/; Max-Age={int(self.lifetime)}{secure}; HttpOnly; SameSite=Lax"

    def device_id(self, value: str | None, user_id: str, now: float) -> str | None:
        """The device id of a cookie value that this gateway issued for `user_id` and that has not
        expired; None for anything else (absent, malformed, another user's, expired, forged)."""
        if not value or not user_id or not self.enabled:
            return None
        match = _VALUE.fullmatch(value)
        if match is None:
            return None
        device, expires_text, mac = match.groups()
        expires = int(expires_text)
        if expires <= now:
            return None
        try:
            base64.urlsafe_b64decode(device + "==")
        except (binascii.Error, ValueError):
            return None
        for key in self.keys:
            if hmac.compare_digest(self._mac(key, device, expires, user_id), mac):
                return device
        return None

    def read(self, cookies: RequestCookies, user_id: str, now: float) -> str | None:
        """The familiar device id the request's cookies carry for `user_id`, or None (also when
        the name appears twice with different values: a planted duplicate must never win)."""
        return self.device_id(cookies.agreed_value(self.name, exact=True), user_id, now)
