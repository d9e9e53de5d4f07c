"""The signed identity assertion (`X-Monosign-Assertion`): a short-lived ES256 JWT and its JWKS.

An upstream that cannot be sure every request comes through the gateway (another path to it exists,
or it sits behind more than one proxy) should not trust plain identity headers. The assertion proves
the identity instead, like Pomerium's and Cloudflare Access's: a JWT signed with ES256 (P-256),
verifiable offline with the public keys published at `/_gateway/jwks.json`.

- Claims: `iss` the gateway's public URL, `aud` the site, `sub` the Monosign user id, `name`, `email`,
  `groups`, `amr` (the factors used, RFC 8176 values), `iat`, `nbf`, `exp` (60 s later) and a random
  `jti`. Upstreams must check `iss`, `aud` and `exp`.
- Keys come from PEM files. The first is the signing key (private); the others are only published,
  so a rotation is: add the new key first and keep the old one listed for at least the assertion's
  lifetime plus the upstreams' JWKS cache time, then drop it. `kid` is the key's RFC 7638 thumbprint.
- Signing and encoding are PyJWT's (on `cryptography`); nothing here implements JOSE by hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gateway.policy.identity_headers import IdentityClaims

__all__ = ["ASSERTION_LIFETIME", "AssertionKeyError", "AssertionKeys", "AssertionSigner"]

ASSERTION_LIFETIME = 60
ALGORITHM = "ES256"


class AssertionKeyError(ValueError):
    """A key file that cannot serve for ES256 assertions; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class _PublishedKey:
    kid: str
    public: ec.EllipticCurvePublicKey


def _thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, without white space."""
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _load(path: Path, *, private: bool) -> ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AssertionKeyError(f"{path}: cannot read ({exc.strerror or exc})") from None
    key: Any
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        if private:
            raise AssertionKeyError(
                f"{path}: not an unencrypted PEM private key (the signing key comes first)"
            ) from None
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise AssertionKeyError(f"{path}: not a PEM key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise AssertionKeyError(f"{path}: not a P-256 (prime256v1) key, which ES256 needs")
    return key


class AssertionKeys:
    """The signing key and every key published in the JWKS (the signing key's public half first)."""

    def __init__(self, signing: ec.EllipticCurvePrivateKey, previous: Sequence[ec.EllipticCurvePublicKey] = ()):
        self._signing = signing
        published = [signing.public_key(), *previous]
        self._published = tuple(_PublishedKey(_thumbprint(key), key) for key in published)
        if len({key.kid for key in self._published}) != len(self._published):
            raise AssertionKeyError("the same key is listed twice")

    @classmethod
    def from_files(cls, paths: Sequence[Path]) -> AssertionKeys:
        if not paths:
            raise AssertionKeyError("no key file: the first one listed signs the assertions")
        signing = _load(paths[0], private=True)
        assert isinstance(signing, ec.EllipticCurvePrivateKey)
        previous = []
        for path in paths[1:]:
            key = _load(path, private=False)
            previous.append(key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key)
        return cls(signing, previous)

    @property
    def signing_kid(self) -> str:
        return self._published[0].kid

    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode(payload, self._signing, algorithm=ALGORITHM, headers={"kid": self.signing_kid, "typ": "JWT"})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JWKS document (no private members)."""
        keys = []
        for key in self._published:
            jwk = ECAlgorithm.to_jwk(key.public, as_dict=True)
            keys.append({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"],
                         "use": "sig", "alg": ALGORITHM, "kid": key.kid})
        return {"keys": keys}


@dataclass(frozen=True, slots=True)
class AssertionSigner:
    """Assertions for one site: `issuer` is the gateway's public URL, `audience` the site's name."""

    keys: AssertionKeys
    issuer: str
    audience: str
    lifetime: int = ASSERTION_LIFETIME

    def assertion(self, *, subject: str, claims: IdentityClaims, factors: Sequence[str], now: float) -> str:
        issued = int(now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "preferred_username": claims.user,
            "amr": list(factors),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        if claims.name:
            payload["name"] = claims.name
        if claims.email:
            payload["email"] = claims.email
        if claims.groups:
            payload["groups"] = list(claims.groups)
        return self.keys.sign(payload)
