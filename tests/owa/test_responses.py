"""Exchange's responses: cadata hold-back, login outcome, timeouts, the binding hash."""

from __future__ import annotations

import hashlib

import pytest

from gateway.policy.owa_responses import (
    LoginOutcome,
    binding_hash,
    cadata_cookies,
    cookie_date,
    is_cadata_cookie,
    is_exchange_timeout,
    live_cadata,
    login_outcome,
    logon_reason,
    parse_set_cookie,
    request_binding,
    sets_foreign_session,
)

NOW = 1_800_000_000.0  # 2027-01-15
LOGON = "https://mail.contoso.com/owa/auth/logon.aspx?url=https%3a%2f%2fmail.contoso.com%2fowa%2f"
CADATA = "RJ4kb2EK3m6G1sL8xrF5n0Y0qN3Hj9tK5wz6u+0m3d7KcS2VvJtJ4zTfHq3n1pQ8Yk9u2lXoE4vB7cW1aZ0sQ=="
KEY = "m" * 340 + "Q=="
IV = "i" * 340 + "A=="
SIG = "s" * 340 + "w=="
TTL = "050xk/3ZQ74/4KRg+1oR5Q=="

# A successful auth.owa answer, as Exchange writes it for a browser that supports SameSite=None.
SUCCESS_COOKIES = [
    f"cadata={CADATA}; path=/;SameSite=None; secure; HttpOnly",
    f"cadataTTL={TTL}; path=/;SameSite=None; secure; HttpOnly",
    f"cadataKey={KEY}; path=/;SameSite=None; secure; HttpOnly",
    f"cadataIV={IV}; path=/;SameSite=None; secure; HttpOnly",
    f"cadataSig={SIG}; path=/;SameSite=None; secure; HttpOnly",
]
# What Exchange sends when it deletes them (failed login, timeout, logoff): empty value, 30 years ago.
DELETIONS = [
    f"{name}=; expires=Thu, 01-Jan-1970 00:00:00 GMT; path=/"
    for name in ("cadata", "cadataKey", "cadataIV", "cadataSig", "cadataTTL")
]
OTHER = [
    "X-BackEndCookie=S-1-5-21-1-2-3-500=u56Lnp2ejJqBx8nK; expires=Sat, 15-Jan-2028 10:00:00 GMT; path=/owa; secure",
    "X-OWA-CANARY=5wtFCRe9ckqpzpB-ff7NKTDReaAJW9oIz0DCLzp4AvwXn5yMANLpERb4OmHvdCOd6tIbOS1UdAA.; path=/; secure",
    "ClientId=3186DDAB19A54C6289E26474B5A72EC9; expires=Sat, 15-Jan-2028 10:00:00 GMT; path=/; secure; HttpOnly",
    "PBack=0; path=/",
    "cadataExtra=1; path=/",  # only the five exact names are Exchange's session
]


def test_cadata_cookies_held_back_byte_for_byte() -> None:
    mixed = [OTHER[0], *SUCCESS_COOKIES[:2], OTHER[1], *SUCCESS_COOKIES[2:], *OTHER[2:]]
    assert cadata_cookies(mixed) == SUCCESS_COOKIES
    assert [value for value in mixed if not is_cadata_cookie(value)] == OTHER


@pytest.mark.parametrize(
    "value",
    [
        "CADATA=x; path=/",  # ASP.NET reads cookie names case-insensitively
        "CadataKey=x",
        " cadataIV = x ; path=/owa",
        "cadataSig=x; Path=/ecp; Domain=contoso.com",
        "cadataTTL=",
        "cadata=; expires=Thu, 01-Jan-1970 00:00:00 GMT; path=/",  # deletions too: they go with the rest
        "cadata",  # no "=": held back rather than guessed about
    ],
)
def test_any_spelling_of_a_cadata_cookie_is_held_back(value: str) -> None:
    assert cadata_cookies([value]) == [value]
    assert is_cadata_cookie(value)


def test_parse_set_cookie_copes_with_samesite_smuggled_into_path() -> None:
    cookie = parse_set_cookie(SUCCESS_COOKIES[0])
    assert (cookie.name, cookie.value) == ("cadata", CADATA)
    assert cookie.attributes == (("path", "/"), ("samesite", "None"), ("secure", ""), ("httponly", ""))


def test_live_cadata_leaves_out_deletions() -> None:
    assert live_cadata(SUCCESS_COOKIES, now=NOW) == {
        "cadata": CADATA, "cadatattl": TTL, "cadatakey": KEY, "cadataiv": IV, "cadatasig": SIG,
    }
    assert live_cadata(DELETIONS, now=NOW) == {}
    assert live_cadata([*SUCCESS_COOKIES, DELETIONS[0]], now=NOW).keys() == {
        "cadatattl", "cadatakey", "cadataiv", "cadatasig",
    }
    assert live_cadata(["cadata=x; Max-Age=0", "cadataKey=y; max-age=-1"], now=NOW) == {}
    future = "cadata=x; expires=Wed, 01-Jan-2048 00:00:00 GMT"
    assert live_cadata([future], now=NOW) == {"cadata": "x"}


@pytest.mark.parametrize(
    ("status", "location", "cookies", "outcome"),
    [
        (302, "https://mail.contoso.com/owa/", SUCCESS_COOKIES, LoginOutcome.SUCCESS),
        (302, "/owa/#path=/mail", SUCCESS_COOKIES[::2] + SUCCESS_COOKIES[1::2], LoginOutcome.SUCCESS),
        (302, "https://mail.contoso.com/owa/auth/logon.aspx?url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=2",
         [], LoginOutcome.FAILED),
        (302, "https://mail.contoso.com/owa/auth/logon.aspx?url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=2",
         DELETIONS, LoginOutcome.FAILED),
        (302, "https://mail.contoso.com/OWA/Auth/Logon.aspx?replaceCurrent=1&reason=2&url=x", [], LoginOutcome.FAILED),
        (302, "/owa/auth/logon.aspx?url=x&reason=4", [], LoginOutcome.FAILED),  # change-password logoff
        (302, "/owa/auth/logon.aspx?url=x&reason=0", SUCCESS_COOKIES, LoginOutcome.OTHER),
        (302, "/owa/auth/logon.aspx?url=x&reason=3", [], LoginOutcome.OTHER),
        (302, "https://mail.contoso.com/owa/", [], LoginOutcome.OTHER),  # no session set up
        (302, "https://mail.contoso.com/owa/", SUCCESS_COOKIES[:1], LoginOutcome.OTHER),  # cadataKey missing
        (302, "https://mail.contoso.com/owa/", DELETIONS, LoginOutcome.OTHER),
        (302, "/owa/auth/errorFE.aspx?httpCode=500", [], LoginOutcome.OTHER),
        (302, None, SUCCESS_COOKIES, LoginOutcome.OTHER),
        (400, None, [], LoginOutcome.OTHER),  # a form Exchange refused
        (200, None, SUCCESS_COOKIES, LoginOutcome.OTHER),  # CAS redirect form
        (301, "https://mail.contoso.com/owa/", SUCCESS_COOKIES, LoginOutcome.OTHER),
        (500, None, [], LoginOutcome.OTHER),
    ],
)
def test_login_outcome(status: int, location: str | None, cookies: list[str], outcome: LoginOutcome) -> None:
    assert login_outcome(status, location, cookies, now=NOW) is outcome


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://mail.contoso.com/owa/auth/logon.aspx?url=https%3a%2f%2fmail.contoso.com%2fowa%2f&reason=0", 0),
        ("https://mail.contoso.com/owa/auth/logon.aspx?replaceCurrent=1&reason=3&url=x", 3),
        ("https://mail.contoso.com/owa/auth/logon.aspx?replaceCurrent=1&url=x", 0),
        ("/owa/auth/logon.aspx?Reason=2", 2),
        ("/owa/auth/logon.aspx?reason=abc", None),
        ("/owa/auth/logoff.aspx?Cmd=logoff&src=exch", None),
        ("https://mail.contoso.com/owa/", None),
        ("/ecp/auth/logon.aspx?reason=2", None),  # ECP has no logon page of its own
        ("", None),
        (None, None),
    ],
)
def test_logon_reason(location: str | None, reason: int | None) -> None:
    assert logon_reason(location) == reason


@pytest.mark.parametrize(
    ("status", "location", "timeout"),
    [
        (440, None, True),
        (302, f"{LOGON}&reason=3", True),
        (302, f"{LOGON}&reason=0", False),
        (302, "https://mail.contoso.com/owa/auth/logon.aspx?url=x&reason=2", False),
        (200, "https://mail.contoso.com/owa/auth/logon.aspx?reason=3", False),
        (302, "https://mail.contoso.com/owa/", False),
        (200, None, False),
        (401, None, False),
    ],
)
def test_is_exchange_timeout(status: int, location: str | None, timeout: bool) -> None:
    assert is_exchange_timeout(status, location) is timeout


def expected_hash(cadata: str, key: str) -> str:
    return hashlib.sha256(f"{cadata}\x00{key}".encode()).hexdigest()


def test_binding_hash_from_the_login_response_matches_the_requests_that_follow() -> None:
    bound = binding_hash(SUCCESS_COOKIES, now=NOW)
    assert bound == expected_hash(CADATA, KEY)
    # The browser sends the cookies back, with Exchange's and OWA's others around them.
    header = (f"X-BackEndCookie=S-1-5-21-1=u56Lnp2e; PrivateComputer=true; PBack=0; cadata={CADATA}; "
              f"cadataTTL={TTL}; cadataKey={KEY}; cadataIV={IV}; cadataSig={SIG}; UC=3cfc4a83ac234a47")
    assert request_binding(header) == bound
    # cadataTTL is re-issued on activity: the binding does not change with it.
    assert request_binding(header.replace(TTL, "AAAAAAAAAAAAAAAAAAAAAA==")) == bound
    # A new Exchange login (new cadata) is a different binding.
    assert request_binding(header.replace(CADATA, "Zm9v" + CADATA[4:])) != bound
    assert request_binding(header.replace(KEY, "n" + KEY[1:])) != bound


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("cadata=a", None),
        ("cadataKey=b", None),
        ("cadata=; cadataKey=b", None),
        ("cadata=a; cadataKey=b", expected_hash("a", "b")),
        (["cadata=a", "cadataKey=b"], expected_hash("a", "b")),  # HTTP/2 splits the Cookie header
        ("CADATA=a; CadataKey=b", expected_hash("a", "b")),
        ("cadata=a;cadataKey=b==", expected_hash("a", "b==")),
        ("cadata=a; cadataKey=b; cadata=a", expected_hash("a", "b")),  # the same value twice is no doubt
        ("cadata=a; cadataKey=b; cadata=c", None),  # which one would Exchange read? not guessed
        ("cadata=a; cadataKey=b; CADATA=c", None),
        ("xcadata=a; cadataKey=b", None),
    ],
)
def test_request_binding(header: str | list[str] | None, expected: str | None) -> None:
    assert request_binding(header) == expected


def test_binding_hash_none_without_a_live_session() -> None:
    assert binding_hash(DELETIONS, now=NOW) is None
    assert binding_hash(SUCCESS_COOKIES[:1], now=NOW) is None
    assert binding_hash(OTHER, now=NOW) is None


def test_binding_never_collides_across_the_separator() -> None:
    assert request_binding("cadata=ab; cadataKey=c") != request_binding("cadata=a; cadataKey=bc")


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("Thu, 01-Jan-1970 00:00:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),
        ("Sun Nov  6 08:49:37 1994", 784111777.0),
        ("not a date", None),
        ("Thu, 32-Jan-1970 00:00:00 GMT", None),
        ("Thu, 01-Jan-1970 25:00:00 GMT", None),
    ],
)
def test_cookie_date(text: str, epoch: float | None) -> None:
    assert cookie_date(text) == epoch


# --- sets_foreign_session -------------------------------------------------------------------------------

_BOUND = binding_hash(["cadata=A; path=/", "cadataKey=K; path=/"])
_GONE = "Thu, 01-Jan-1970 00:00:00 GMT"


@pytest.mark.parametrize(("set_cookies", "bound", "foreign"), [
    ([], _BOUND, False),
    (["cadataTTL=T2; path=/; HttpOnly"], _BOUND, False),  # Exchange re-issuing the expiry: same session
    (["X-OWA-CANARY=c; path=/"], _BOUND, False),
    ([f"cadata=; expires={_GONE}; path=/", f"cadataKey=; expires={_GONE}; path=/"], _BOUND, False),  # a logoff
    (["cadata=A; path=/", "cadataKey=K; path=/"], _BOUND, False),  # the bound session itself
    (["cadata=B; path=/", "cadataKey=K2; path=/", "cadataTTL=T; path=/"], _BOUND, True),  # another sign-in
    (["cadata=B; path=/"], _BOUND, True),  # half a session is not the bound one either
    (["CADATAKEY=K2; path=/"], _BOUND, True),
    (["cadata=A; path=/", "cadataKey=K; path=/"], None, True),  # nothing bound: any session is foreign
])
def test_sets_foreign_session(set_cookies: list[str], bound: str | None, foreign: bool) -> None:
    assert sets_foreign_session(set_cookies, bound) is foreign
