"""Login CSRF for a portal site's sign-in form (sans-IO): a token bound to the browser and the site.

Why: without it, another site could post its own user name and password to the sign-in form and
sign the victim's browser in as the attacker (login CSRF), whose later input the attacker then
reads. There is no session yet to bind a token to, so the browser gets a random pre-session value
in a cookie (`__Host-msgw-signin`, or `msgw-signin` over plain http) when the form is shown, and the
form carries `<issued>.<mac>`: HMAC-SHA256, keyed from the server key, over the site, that value and
the time it was issued. A token is good only with that very cookie, on that site, for
`SIGNIN_TOKEN_SECONDS`; the handler also checks `Origin` / `Sec-Fetch-Site` (gateway.mfa.csrf).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

__all__ = ["PLAIN_SIGNIN_COOKIE_NAME", "SECURE_SIGNIN_COOKIE_NAME", "SIGNIN_TOKEN_SECONDS", "new_browser_id",
           "signin_token", "token_problem"]

SECURE_SIGNIN_COOKIE_NAME = "__Host-msgw-signin"
PLAIN_SIGNIN_COOKIE_NAME = "msgw-signin"
# How long a shown sign-in form may be posted: long enough to find a password, short for a stolen form.
SIGNIN_TOKEN_SECONDS = 900.0
# A token may claim to be this much from the future (another replica's clock).
_CLOCK_SKEW = 60.0
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_TOKEN = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def new_browser_id() -> str:
    """The pre-session cookie's value: 32 random bytes, base64url."""
    return secrets.token_urlsafe(32)


def valid_browser_id(value: str | None) -> bool:
    return value is not None and _BROWSER_ID.fullmatch(value) is not None


def _mac(key: bytes, site: str, browser_id: str, issued: int) -> str:
    message = f"signin-v1\x00{site}\x00{browser_id}\x00{issued}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def signin_token(key: bytes, *, site: str, browser_id: str, now: float) -> str:
    """The form's `csrf_token` for this browser (its pre-session cookie) on this site."""
    issued = int(now)
    return f"{issued}.{_mac(key, site, browser_id, issued)}"


def token_problem(keys: Sequence[bytes], *, site: str, browser_id: str | None, token: str | None,
                  now: float) -> str | None:
    """Why a posted token does not prove the form was shown to this browser on this site (a short
    reason for the audit log), or None. Every key is tried (the current one and the previous)."""
    if not valid_browser_id(browser_id):
        return "no_signin_cookie"
    assert browser_id is not None
    match = _TOKEN.fullmatch(token or "")
    if match is None:
        return "csrf_token"
    issued = int(match.group(1))
    if not any(hmac.compare_digest(_mac(key, site, browser_id, issued), match.group(2)) for key in keys):
        return "csrf_token"
    if issued > now + _CLOCK_SKEW or now - issued > SIGNIN_TOKEN_SECONDS:
        return "csrf_token_expired"
    return None
