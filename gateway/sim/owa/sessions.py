"""The simulator's FBA sessions: what the five cadata cookies stand for, and when they expire.

Exchange encrypts the credential and the expiry into the cookies; the simulator instead keeps a
server-side table from `cadata` to the session, which makes tampering and replay detectable and
countable. Timing follows FbaModule: the issued `cadataTTL` lasts 1.5 x timeout and only it is
re-issued, on user activity, once half of the timeout has passed.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.sim.owa.config import SimUser
from gateway.sim.owa.wire import CADATA_COOKIES

PRIVATE_COMPUTER_FLAG = 4

# Sizes seen in real traffic: cadata ~128 base64 characters, cadataTTL 24, the RSA blobs 344.
_CADATA_BYTES = 96
_TTL_BYTES = 16
_RSA_BLOB_BYTES = 256


def _b64_token(size: int) -> str:
    return base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def canary_token() -> str:
    """76 characters of base64url ending in '.', like OWA's X-OWA-CANARY."""
    return secrets.token_urlsafe(56)[:75] + "."


def session_timeout(flags: int, *, public_timeout_s: float, private_timeout_s: float) -> float:
    return private_timeout_s if flags & PRIVATE_COMPUTER_FLAG else public_timeout_s


def ttl_lifetime(timeout_s: float) -> float:
    """An issued cadataTTL is valid for 3 x (timeout / 2)."""
    return 3 * (timeout_s / 2)


def ttl_due_for_reissue(expiry: float, timeout_s: float, now: float) -> bool:
    """FbaModule: re-issue when `expiry - 2 x reissueInterval < now` (half the timeout has passed)."""
    return expiry - 2 * (timeout_s / 2) < now


class Verdict(StrEnum):
    ABSENT = "absent"        # no cadata cookie at all
    VALID = "valid"
    EXPIRED = "expired"      # a genuine session whose cadataTTL has run out
    TAMPERED = "tampered"    # cookies that the simulator never issued together
    ENDED = "ended"          # a genuine session that was logged off


@dataclass(slots=True)
class OwaSession:
    user: SimUser
    flags: int
    timeout_s: float
    cadata: str = field(default_factory=lambda: _b64_token(_CADATA_BYTES))
    key: str = field(default_factory=lambda: _b64_token(_RSA_BLOB_BYTES))
    iv: str = field(default_factory=lambda: _b64_token(_RSA_BLOB_BYTES))
    sig: str = field(default_factory=lambda: _b64_token(_RSA_BLOB_BYTES))
    # Every cadataTTL issued for this session -> its expiry (monotonic seconds).
    ttl_expiry: dict[str, float] = field(default_factory=dict)
    canary: str = field(default_factory=canary_token)
    client_id: str = field(default_factory=lambda: secrets.token_hex(16).upper())
    user_context: str = field(default_factory=lambda: secrets.token_hex(16))
    backend_cookie: str = field(default_factory=lambda: secrets.token_urlsafe(45))

    def cookie_values(self, ttl: str) -> dict[str, str]:
        return {"cadata": self.cadata, "cadataTTL": ttl, "cadataKey": self.key,
                "cadataIV": self.iv, "cadataSig": self.sig}


@dataclass(frozen=True, slots=True)
class SessionCheck:
    verdict: Verdict
    session: OwaSession | None = None
    reissue_ttl: bool = False


class SessionTable:
    def __init__(self) -> None:
        self._sessions: dict[str, OwaSession] = {}
        self._ended: set[str] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user: SimUser, flags: int, timeout_s: float, now: float) -> tuple[OwaSession, str]:
        """A new session and its first cadataTTL."""
        session = OwaSession(user=user, flags=flags, timeout_s=timeout_s)
        self._sessions[session.cadata] = session
        return session, self.issue_ttl(session, now)

    def issue_ttl(self, session: OwaSession, now: float) -> str:
        # Drop tokens that expired long ago; a replayed old token then counts as tampered, not expired.
        for token, expiry in list(session.ttl_expiry.items()):
            if expiry + ttl_lifetime(session.timeout_s) < now:
                del session.ttl_expiry[token]
        token = _b64_token(_TTL_BYTES)
        session.ttl_expiry[token] = now + ttl_lifetime(session.timeout_s)
        return token

    def end(self, session: OwaSession) -> None:
        if self._sessions.pop(session.cadata, None) is not None:
            self._ended.add(session.cadata)

    def clear(self) -> None:
        self._sessions.clear()
        self._ended.clear()

    def check(self, cookies: Mapping[str, str], *, now: float, user_activity: bool) -> SessionCheck:
        presented = [name for name in CADATA_COOKIES if name in cookies]
        if not presented:
            return SessionCheck(Verdict.ABSENT)
        cadata = cookies.get("cadata", "")
        session = self._sessions.get(cadata)
        if session is None:
            return SessionCheck(Verdict.ENDED if cadata in self._ended else Verdict.TAMPERED)
        if len(presented) != len(CADATA_COOKIES) or not all(
            hmac.compare_digest(cookies[name].encode(), expected.encode())
            for name, expected in (("cadataKey", session.key), ("cadataIV", session.iv), ("cadataSig", session.sig))
        ):
            return SessionCheck(Verdict.TAMPERED)
        expiry = session.ttl_expiry.get(cookies["cadataTTL"])
        if expiry is None:
            return SessionCheck(Verdict.TAMPERED)
        if now >= expiry:
            return SessionCheck(Verdict.EXPIRED, session)
        reissue = user_activity and ttl_due_for_reissue(expiry, session.timeout_s, now)
        return SessionCheck(Verdict.VALID, session, reissue)
