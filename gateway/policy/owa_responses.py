"""What Exchange's responses say about the OWA session, sans-IO.

- Which `Set-Cookie`s carry the Exchange session (`cadata*`): the gateway holds them back until the
  second factor passes (DESIGN principle 2), whatever the response that carries them.
- Whether a credential POST succeeded (302 to the destination with live `cadata` cookies) or failed
  (302 to `logon.aspx?…reason=2`), and whether a response says Exchange's session timed out
  (`reason=3`, or 440 Login Timeout).
- The binding hash: SHA-256 over `cadata` and `cadataKey`, which stay the same for a whole Exchange
  session (`cadataTTL` is re-issued on activity, so it is left out). A complete gateway session is
  bound to it; a request whose cookies hash differently belongs to another Exchange login.

Cookie names are compared case-insensitively because ASP.NET reads cookies that way: a browser keeps
`CADATA` and `cadata` apart, Exchange does not.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, urlsplit

from gateway.policy.cookies import RequestCookies

# Lower case; see the module docstring for why names are compared case-insensitively.
CADATA_COOKIE_NAMES = frozenset({"cadata", "cadatakey", "cadataiv", "cadatasig", "cadatattl"})
# The two that identify an Exchange session for its whole life (cadataTTL is re-issued on activity).
BINDING_COOKIE_NAMES = ("cadata", "cadatakey")
LOGON_PAGE_PATH = "/owa/auth/logon.aspx"


class LogonReason:
    """Exchange's `reason` values on the logon page (FbaModule)."""

    NONE = 0
    LOGOFF = 1
    INVALID_CREDENTIALS = 2
    TIMEOUT = 3
    CHANGE_PASSWORD_LOGOFF = 4


class LoginOutcome(StrEnum):
    SUCCESS = "success"  # 302 to the destination with live cadata + cadataKey
    FAILED = "failed"  # 302 to logon.aspx with reason=2 (or 4): wrong user name or password
    OTHER = "other"  # anything else (400 for a bad form, errorFE, CAS redirect forms, 5xx)


@dataclass(frozen=True, slots=True)
class SetCookie:
    name: str  # as sent (case kept)
    value: str
    attributes: tuple[tuple[str, str], ...]  # (lower-cased name, value) in order

    @property
    def key(self) -> str:
        return self.name.lower()

    def is_deletion(self, now: float) -> bool:
        """Exchange deletes a cookie with an empty value and an expiry 30 years ago."""
        if not self.value:
            return True
        for name, value in self.attributes:
            if name == "max-age" and value.strip().lstrip("-").isdigit() and int(value) <= 0:
                return True
            if name == "expires":
                expires = cookie_date(value)
                if expires is not None and expires <= now:
                    return True
        return False


_DATE_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def cookie_date(text: str) -> float | None:
    """Parse a cookie `Expires` date as browsers do (RFC 6265 §5.1.1); None when it is not a date.

    Covers `Thu, 01-Jan-1970 00:00:00 GMT` (ASP.NET), `Thu, 01 Jan 1970 00:00:00 GMT` and the rest.
    """
    clock: tuple[int, int, int] | None = None
    day = month = year = None
    for token in _DATE_DELIMITERS.split(text):
        if clock is None and (match := re.match(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?!\d)", token)):
            clock = (int(match[1]), int(match[2]), int(match[3]))
        elif day is None and (match := re.match(r"(\d{1,2})(?!\d)", token)):
            day = int(match[1])
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (match := re.match(r"(\d{2,4})(?!\d)", token)):
            year = int(match[1])
    if clock is None or day is None or month is None or year is None:
        return None
    year += 1900 if 70 <= year <= 99 else 2000 if year <= 69 else 0
    hour, minute, second = clock
    if year < 1601 or not 1 <= day <= 31 or hour > 23 or minute > 59 or second > 59:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def parse_set_cookie(header_value: str) -> SetCookie:
    """Split one Set-Cookie value into name, value and attributes, as browsers do (RFC 6265 §5.2).

    A value without `=` gives an empty name in browsers; it is taken as the name here so that a bare
    `cadata` is still recognised (and held back) rather than slipping past as a nameless cookie.
    Exchange's `path=/;SameSite=None` is two attributes, like any other.
    """
    pair, *attribute_parts = header_value.split(";")
    name, sep, value = pair.partition("=")
    attributes = []
    for part in attribute_parts:
        attribute_name, _, attribute_value = part.partition("=")
        if attribute_name.strip():
            attributes.append((attribute_name.strip().lower(), attribute_value.strip()))
    return SetCookie(name=name.strip(), value=value.strip() if sep else "", attributes=tuple(attributes))


def is_cadata_cookie(header_value: str) -> bool:
    """Whether this Set-Cookie value sets (or deletes) one of Exchange's session cookies."""
    return parse_set_cookie(header_value).key in CADATA_COOKIE_NAMES


def cadata_cookies(set_cookie_values: Iterable[str]) -> list[str]:
    """The Set-Cookie values to hold back: every cadata* cookie, any case, any path, deletions too."""
    return [value for value in set_cookie_values if is_cadata_cookie(value)]


def live_cadata(set_cookie_values: Iterable[str], *, now: float | None = None) -> dict[str, str]:
    """Lower-cased name → value of the cadata cookies that set a session (deletions left out).

    When one name is set twice the last wins, as in a browser's cookie store.
    """
    moment = time.time() if now is None else now
    live: dict[str, str] = {}
    for header_value in set_cookie_values:
        cookie = parse_set_cookie(header_value)
        if cookie.key in CADATA_COOKIE_NAMES:
            if cookie.is_deletion(moment):
                live.pop(cookie.key, None)
            else:
                live[cookie.key] = cookie.value
    return live


def logon_reason(location: str | None) -> int | None:
    """The `reason` of a redirect to Exchange's logon page (0 when absent), or None for any other target."""
    if not location:
        return None
    parts = urlsplit(location.strip())
    if parts.path.lower() != LOGON_PAGE_PATH:
        return None
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() == "reason":
            return int(value) if value.isdigit() and len(value) < 4 else None
    return LogonReason.NONE


def login_outcome(
    status: int, location: str | None, set_cookie_values: Sequence[str], *, now: float | None = None
) -> LoginOutcome:
    """Classify Exchange's answer to a credential POST (`/owa/auth.owa`, `/owa/auth/owaauth.dll`)."""
    if status != 302 or not location:
        return LoginOutcome.OTHER
    reason = logon_reason(location)
    if reason in (LogonReason.INVALID_CREDENTIALS, LogonReason.CHANGE_PASSWORD_LOGOFF):
        return LoginOutcome.FAILED
    if reason is not None:
        return LoginOutcome.OTHER
    live = live_cadata(set_cookie_values, now=now)
    if all(live.get(name) for name in BINDING_COOKIE_NAMES):
        return LoginOutcome.SUCCESS
    return LoginOutcome.OTHER


def is_exchange_timeout(status: int, location: str | None) -> bool:
    """Exchange says its session is over: 440 Login Timeout, or a redirect to the logon page with reason=3.

    Exchange also answers 440 to a POST that carries no session at all; for a gateway session that
    means the same thing: Exchange no longer knows this browser.
    """
    if status == 440:
        return True
    return 300 <= status < 400 and logon_reason(location) == LogonReason.TIMEOUT


def binding_hash(set_cookie_values: Iterable[str], *, now: float | None = None) -> str | None:
    """The binding hash of the session a login response sets up, or None without live cadata + cadataKey."""
    live = live_cadata(set_cookie_values, now=now)
    return _hash_binding(live.get("cadata"), live.get("cadatakey"))


def sets_foreign_session(set_cookie_values: Iterable[str], bound_hash: str | None, *,
                         now: float | None = None) -> bool:
    """Whether a response sets up an Exchange session other than the one a gateway session is bound to.

    True when it sets a live `cadata` or `cadataKey` and the pair it sets does not hash to
    `bound_hash` (or there is no bound session). A lone `cadataTTL` is Exchange re-issuing the
    expiry of the current session on activity, never a new one.
    """
    live = live_cadata(set_cookie_values, now=now)
    if not any(name in live for name in BINDING_COOKIE_NAMES):
        return False
    binding = _hash_binding(live.get("cadata"), live.get("cadatakey"))
    return bound_hash is None or binding is None or not hmac.compare_digest(binding, bound_hash)


def request_binding(cookie_header: str | Sequence[str] | RequestCookies | None) -> str | None:
    """The same hash from a request's Cookie header(s), or None when it cannot be told exactly.

    None when cadata or cadataKey is missing or empty, or when one of them appears twice with
    different values (which one Exchange would read is not something to guess). Read by the same
    rule that decides what goes upstream (`gateway.policy.cookies`): a name only some readers would
    take for `cadata` is neither read here nor forwarded.
    """
    if cookie_header is None:
        return None
    if isinstance(cookie_header, RequestCookies):
        cookies = cookie_header
    else:
        cookies = RequestCookies([cookie_header] if isinstance(cookie_header, str) else cookie_header)
    return _hash_binding(cookies.agreed_value("cadata"), cookies.agreed_value("cadatakey"))


def _hash_binding(cadata: str | None, cadata_key: str | None) -> str | None:
    if not cadata or not cadata_key:
        return None
    # NUL cannot occur in a cookie value, so the two values cannot be shifted into one another.
    return hashlib.sha256(f"{cadata}\x00{cadata_key}".encode("utf-8", "surrogateescape")).hexdigest()
