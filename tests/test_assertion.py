"""The signed identity assertion: ES256 JWTs an upstream verifies offline with the published JWKS."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.assertion import AssertionKeyError, AssertionKeys, AssertionSigner
from gateway.policy.identity_headers import IdentityClaims

ALICE = IdentityClaims(user="alice", email="alice@corp.example", name="Alice Doe", groups=("staff",))


def pem_file(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, public: bool = False) -> Path:
    if public:
        data = key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    path.write_bytes(data)
    return path


def verify(token: str, jwks: dict[str, object], *, audience: str = "wiki", leeway: float = 0) -> dict[str, object]:
    """What an upstream does: pick the key by kid from the JWKS, check signature, iss, aud and exp."""
    kid = jwt.get_unverified_header(token)["kid"]
    keys = jwt.PyJWKSet.from_json(json.dumps(jwks))
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(token, key.key, algorithms=["ES256"], audience=audience,
                      issuer="https://gw.example.com", leeway=leeway)


@pytest.fixture
def signing(tmp_path: Path) -> Path:
    return pem_file(tmp_path / "new.pem", ec.generate_private_key(ec.SECP256R1()))


def test_an_assertion_verifies_with_the_published_keys_and_carries_the_claims(signing: Path) -> None:
    keys = AssertionKeys.from_files([signing])
    signer = AssertionSigner(keys, issuer="https://gw.example.com", audience="wiki")
    now = time.time()
    token = signer.assertion(subject="u-1234", claims=ALICE, factors=["pwd", "mfa", "otp"], now=now)
    claims = verify(token, keys.jwks())
    assert claims["sub"] == "u-1234"
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@corp.example"
    assert claims["groups"] == ["staff"]
    assert claims["amr"] == ["pwd", "mfa", "otp"]
    assert claims["exp"] == claims["iat"] + 60  # type: ignore[operator]
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


def test_two_assertions_differ_by_jti(signing: Path) -> None:
    signer = AssertionSigner(AssertionKeys.from_files([signing]), issuer="https://gw.example.com", audience="wiki")
    first, second = (jwt.decode(signer.assertion(subject="u", claims=ALICE, factors=["pwd"], now=time.time()),
                                options={"verify_signature": False}) for _ in range(2))
    assert first["jti"] != second["jti"]


@pytest.mark.parametrize(
    ("audience", "issuer", "age"),
    [("crm", "https://gw.example.com", 0), ("wiki", "https://evil.example", 0), ("wiki", "https://gw.example.com", 61)],
    ids=["other-site", "other-issuer", "expired"],
)
def test_an_upstream_refuses_another_sites_or_an_old_assertion(signing: Path, audience: str, issuer: str,
                                                               age: float) -> None:
    keys = AssertionKeys.from_files([signing])
    token = AssertionSigner(keys, issuer=issuer, audience=audience).assertion(
        subject="u", claims=ALICE, factors=["pwd"], now=time.time() - age)
    with pytest.raises(jwt.InvalidTokenError):
        verify(token, keys.jwks())


def test_rotation_publishes_the_old_key_until_it_is_dropped(tmp_path: Path, signing: Path) -> None:
    old = pem_file(tmp_path / "old.pem", ec.generate_private_key(ec.SECP256R1()))
    before = AssertionKeys.from_files([old])
    token = AssertionSigner(before, issuer="https://gw.example.com", audience="wiki").assertion(
        subject="u", claims=ALICE, factors=["pwd"], now=time.time())
    during = AssertionKeys.from_files([signing, old])
    assert [key["kid"] for key in during.jwks()["keys"]] == [during.signing_kid, before.signing_kid]
    assert verify(token, during.jwks())["sub"] == "u"  # issued before the rotation, still valid
    public_only = pem_file(tmp_path / "old-public.pem", serialization.load_pem_private_key(
        old.read_bytes(), None), public=True)  # type: ignore[arg-type]
    assert AssertionKeys.from_files([signing, public_only]).jwks() == during.jwks()
    after = AssertionKeys.from_files([signing])
    with pytest.raises(StopIteration):
        verify(token, after.jwks())


def test_the_jwks_holds_no_private_member_and_the_kid_is_the_thumbprint(signing: Path) -> None:
    keys = AssertionKeys.from_files([signing])
    (jwk,) = keys.jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "use", "alg", "kid"}
    assert jwk["kid"] == jwt.PyJWK(jwk).key_id
    assert len(jwk["kid"]) == 43  # base64url SHA-256


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: pem_file(p, ec.generate_private_key(ec.SECP384R1())), "not a P-256"),
        (lambda p: pem_file(p, rsa.generate_private_key(public_exponent=65537, key_size=2048)), "not a P-256"),
        (lambda p: pem_file(p, ec.generate_private_key(ec.SECP256R1()), public=True), "not an unencrypted PEM private"),
        (lambda p: p.write_text("not a key") and p, "not an unencrypted PEM private"),
        (lambda p: p, "cannot read"),
    ],
    ids=["p384", "rsa", "public-first", "garbage", "missing"],
)
def test_an_unusable_signing_key_is_refused_naming_the_file(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path / "key.pem")  # type: ignore[operator]
    with pytest.raises(AssertionKeyError, match=message) as refused:
        AssertionKeys.from_files([path])
    assert "key.pem" in str(refused.value)


def test_the_same_key_twice_and_no_key_are_refused(signing: Path) -> None:
    with pytest.raises(AssertionKeyError, match="twice"):
        AssertionKeys.from_files([signing, signing])
    with pytest.raises(AssertionKeyError, match="no key file"):
        AssertionKeys.from_files([])
