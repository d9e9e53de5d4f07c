"""Red team, fourth pass: new spellings of ideas fixed before, table by table.

- Explicit logon: overlong UTF-8 in three and four bytes (`%E0%80%AF`, `%F0%80%80%AF` for `/`), not
  only two, is read as the character it spells.
- The expired-password page: a segment is matched percent-decoded (`expiredpassword.aspx%3Bx` is
  `expiredpassword.aspx;x` to IIS).
"""

from __future__ import annotations

import pytest

from gateway.policy.explicit_logon import autodiscover_path_confusion, iis_reading
from gateway.policy.paths import canonicalize
from gateway.profiles.exchange.password_change import is_password_change

AD = "/autodiscover/autodiscover.json"

OVERLONG_CONFUSED = [
    f"{AD}?@evil.com%E0%80%AFmapi%E0%80%AFnspi",          # `/` in three bytes
    f"{AD}?@evil.com%F0%80%80%AFmapi",                    # `/` in four bytes
    f"{AD}?%E0%81%80evil.com/mapi/nspi",                  # `@` in three bytes
    f"{AD}?%F0%80%81%80evil.com/owa/",                    # `@` in four bytes
    f"{AD}?%E0%81%80evil.com%E0%80%AFpowershell",
    f"{AD}?@evil.com%E0%81%9Cmapi",                       # `\\` in three bytes
    f"{AD}?x=%E0%81%81utodiscover.json",                  # `a` of the marker in three bytes
    f"{AD}?x=%F0%80%81%B0owershell",                      # `p` of the marker in four bytes
    f"{AD}?@evil.com%25E0%2580%25AFmapi",                 # and encoded once more
    f"{AD}?@evil.com%E0%80%afmapi",                       # lower-case hex
    "/EWS/Exchange.asmx?x=%E0%81%85ws/exchange.asmx",     # the request's own path, `e` in three bytes
    f"{AD}?%E0%81%80evil.com&x=%E0%80%AF",                 # across `&`
]
CLEAN = [
    f"{AD}?Email=alice%40corp.example&Protocol=ActiveSync",
    f"{AD}?x=%E2%82%AC",                                  # a real three-byte character (€)
    f"{AD}?x=%F0%9F%98%80",                               # a real four-byte character
    f"{AD}?x=%E0%A4%85",                                  # Devanagari, three bytes, not overlong
]


@pytest.mark.parametrize("target", OVERLONG_CONFUSED)
def test_overlong_utf8_in_any_length_is_read(target: str) -> None:
    assert autodiscover_path_confusion(canonicalize(target)) is True


@pytest.mark.parametrize("target", CLEAN)
def test_real_multibyte_characters_pass(target: str) -> None:
    assert autodiscover_path_confusion(canonicalize(target)) is False


@pytest.mark.parametrize(("text", "read"), [
    ("%C0%AF", "/"), ("%E0%80%AF", "/"), ("%F0%80%80%AF", "/"), ("%C1%80", "@"), ("%E0%81%80", "@"),
    ("%F0%80%81%80", "@"), ("%E0%82%A9", "\u00a9"), ("%E2%82%AC", "\u20ac"), ("%F0%9F%98%80", "\U0001f600"),
    ("%E0%80", "\u00e0\u0080"),  # a cut sequence: Latin-1, no marker out of nothing
])
def test_iis_reading_of_overlong_forms(text: str, read: str) -> None:
    assert iis_reading(text) == read


@pytest.mark.parametrize(("method", "target", "expected"), [
    ("POST", "/owa/auth/expiredpassword.aspx", True),
    ("POST", "/OWA/Auth/ExpiredPassword.aspx", True),
    ("POST", "/owa/auth/expiredpassword.aspx/", True),
    ("POST", "/owa/auth/expiredpassword.aspx/x", True),
    ("POST", "/owa/auth/expiredpassword.aspx;x", True),
    ("POST", "/owa/auth/expiredpassword.aspx%3Bx", True),
    ("POST", "/owa/auth/expiredpassword.aspx%3bx=1", True),
    ("POST", "/owa/auth/expiredpassword.aspx%3A%3A$DATA", True),
    ("POST", "/owa/auth/expiredpassword.aspx%3a$DATA", True),
    ("POST", "/owa/auth/%65xpiredpassword%2Easpx", True),
    ("POST", "/ecp/auth/expiredpassword.aspx", True),
    ("POST", "/owa/alice@corp.example/auth/expiredpassword.aspx", True),
    ("PUT", "/owa/auth/expiredpassword.aspx", True),
    ("post", "/owa/auth/expiredpassword.aspx", True),
    ("GET", "/owa/auth/expiredpassword.aspx%3Bx", False),
    ("POST", "/owa/auth/expiredpassword.aspxx", False),
    ("POST", "/owa/auth/xexpiredpassword.aspx", False),
])
def test_the_expired_password_page_in_every_spelling(method: str, target: str, expected: bool) -> None:
    assert is_password_change(method, canonicalize(target)) is expected
