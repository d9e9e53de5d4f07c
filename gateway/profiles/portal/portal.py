"""`Portal`: what a portal site's sign-in pages share: each site's first-factor backend, the sign-in
form's keys and pre-session cookie, and the first factor's lockout.

One object per application, built by `gateway.assembly.install_portal` and kept in the `AppState`
under `PORTAL`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from gateway.core import FeatureKey
from gateway.mfa.lockout import Lockout
from gateway.policy.cookies import request_cookies
from gateway.policy.signin_csrf import (
    PLAIN_SIGNIN_COOKIE_NAME,
    SECURE_SIGNIN_COOKIE_NAME,
    SIGNIN_TOKEN_SECONDS,
    valid_browser_id,
)
from gateway.profiles.portal.first_factors import FirstFactors
from gateway.sessions.crypto import server_key_material
from gateway.state import STATE

__all__ = ["PORTAL", "Portal", "SigninCookie", "portal_of"]

_KEY_INFO = b"monosign-gateway portal sign-in form v1"
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


def _derive(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=_KEY_INFO).derive(material)


def form_keys(*configured: SecretStr | None) -> tuple[bytes, ...]:
    """The sign-in form's MAC keys, from GATEWAY_SESSION_SECRET (and the previous one, accepted
    during a rotation); without one, a random key: forms shown before a restart must be shown again."""
    materials: Sequence[bytes] = ([server_key_material(secret.get_secret_value())
                                   for secret in configured if secret is not None] or [secrets.token_bytes(32)])
    return tuple(_derive(material) for material in materials)


@dataclass(frozen=True, slots=True)
class SigninCookie:
    """The pre-session cookie the sign-in form's token is bound to (gateway.policy.signin_csrf).

    `SameSite=Strict`: another site's form post never carries it. `__Host-` with https, like the
    session cookie; named `msgw-...`, as the gateway's cookies that no upstream may see are."""

    secure: bool

    @property
    def name(self) -> str:
        return SECURE_SIGNIN_COOKIE_NAME if self.secure else PLAIN_SIGNIN_COOKIE_NAME

    def _attributes(self) -> str:
        return "; Path=/; Secure; HttpOnly; SameSite=Strict" if self.secure else "; Path=/; HttpOnly; SameSite=Strict"

    def set_header(self, browser_id: str) -> str:
        return f"{self.name}={browser_id}; Max-Age={int(SIGNIN_TOKEN_SECONDS)}{self._attributes()}"

    def expire_header(self) -> str:
        return f"{self.name}=; Max-Age=0; Expires={_EXPIRED}{self._attributes()}"

    def read(self, request: web.Request) -> str | None:
        """The request's pre-session value when it is one of ours in shape (None: absent, odd, or two)."""
        value = request_cookies(request).agreed_value(self.name, exact=True)
        return value if valid_browser_id(value) else None


class Portal:
    """What the sign-in pages share: the sites' first factors, the form's MAC keys (`form_keys`), the
    pre-session cookie and the sign-in failures' lockout."""

    def __init__(self, first_factors: FirstFactors, *, keys: tuple[bytes, ...], cookie: SigninCookie,
                 lockout: Lockout) -> None:
        self.first_factors = first_factors
        self.keys = keys
        self.cookie = cookie
        self.lockout = lockout

    async def aclose(self) -> None:
        await self.first_factors.aclose()


PORTAL = FeatureKey("portal", Portal)


def portal_of(request: web.Request) -> Portal:
    return request.app[STATE].feature(PORTAL)
