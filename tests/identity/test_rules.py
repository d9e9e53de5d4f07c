"""Pure parts of the first factors: user names, LDAP filter escaping, bind names, AD sub-codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.identity import FailureKind, InvalidUserName, validate_username
from gateway.identity.ldap_rules import (
    IN_CHAIN_GROUP_FILTER,
    account_part,
    bind_name,
    classify_ad_bind_failure,
    escape_filter_value,
    fill_filter,
    first_rdn_value,
    template_fields,
)
from gateway.policy.users import MAX_USERNAME_LENGTH


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("alice", "alice"),
        ("  alice\t", "alice"),
        ("CORP\\alice", "CORP\\alice"),
        ("corp/alice", "corp/alice"),
        ("alice@corp.example", "alice@corp.example"),
        ("j.doe(ext)", "j.doe(ext)"),
        ("*", "*"),  # printable ASCII: allowed here, escaped wherever it is used
        ("a" * MAX_USERNAME_LENGTH, "a" * MAX_USERNAME_LENGTH),
    ],
)
def test_valid_usernames(typed: str, expected: str) -> None:
    assert validate_username(typed).typed == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "a" * (MAX_USERNAME_LENGTH + 1),
        "ali\x00ce",
        "alice\r\nX-Injected: 1",
        "ali\u200bce",  # zero-width space (format character)
        "\u00a0alice",  # NBSP is not trimmed, and is not ASCII
        "alıce",  # dotless i
        "ａｌｉｃｅ",  # fullwidth
        "a@b@c",
        "CORP\\a\\b",
        "CORP\\",
        "@corp.example",
        "CORP\\alice@corp.example",
    ],
)
def test_refused_usernames(typed: str) -> None:
    with pytest.raises(InvalidUserName) as refused:
        validate_username(typed)
    assert typed.strip() not in str(refused.value) or not typed.strip()


def test_non_ascii_names_when_the_backend_allows_them() -> None:
    assert validate_username("Jürgen", allow_non_ascii=True).typed == "Jürgen"
    with pytest.raises(InvalidUserName):
        validate_username("Jürgen")
    with pytest.raises(InvalidUserName):  # control characters stay refused
        validate_username("Jür\x07gen", allow_non_ascii=True)


@given(st.text(max_size=300))
def test_an_accepted_name_is_trimmed_printable_ascii(typed: str) -> None:
    try:
        name = validate_username(typed)
    except InvalidUserName:
        return
    assert name.typed.isascii()
    assert name.typed.isprintable()
    assert name.typed == name.typed.strip()
    assert 0 < len(name.typed) <= MAX_USERNAME_LENGTH


# The typed name in a filter: whatever is typed, the filter has exactly one assertion whose value is
# the typed text, and no wildcard, no extra parenthesis, no NUL survives.
INJECTIONS = [
    ("*", r"(uid=\2a)"),
    ("a*", r"(uid=a\2a)"),
    (")(uid=*", r"(uid=\29\28uid=\2a)"),
    ("admin)(|(uid=*", r"(uid=admin\29\28|\28uid=\2a)"),
    ("*)(objectClass=*", r"(uid=\2a\29\28objectClass=\2a)"),
    ("\\2a", r"(uid=\5c2a)"),
    ("\\", r"(uid=\5c)"),
    ("alice\x00", r"(uid=alice\00)"),
    ("alice)(&)", r"(uid=alice\29\28&\29)"),
    ("(|(uid=alice)(uid=bob))", r"(uid=\28|\28uid=alice\29\28uid=bob\29\29)"),
    ("alice\\29", r"(uid=alice\5c29)"),
    ("ali(ce", r"(uid=ali\28ce)"),
    ("Müller", "(uid=Müller)"),  # UTF-8 goes as it is (RFC 4515 allows it)
]


@pytest.mark.parametrize(("typed", "expected"), INJECTIONS)
def test_filter_values_are_escaped(typed: str, expected: str) -> None:
    assert fill_filter("(uid={username})", {"username": typed}) == expected


@given(st.text())
def test_escaped_values_hold_no_filter_metacharacter(value: str) -> None:
    escaped = escape_filter_value(value)
    assert not set(escaped) & set("*()\x00")
    # Every backslash starts one of the five escapes.
    assert escaped.replace("\\5c", "").replace("\\2a", "").replace("\\28", "").replace("\\29", "") \
        .replace("\\00", "").count("\\") == 0


def test_template_fields() -> None:
    assert template_fields("(|(sAMAccountName={account})(userPrincipalName={username}))") == {"account", "username"}
    assert template_fields(IN_CHAIN_GROUP_FILTER) == {"dn"}
    for bad in ["(uid={username!r})", "(uid={username:>10})", "(uid={0})", "(uid={username.x})"]:
        with pytest.raises(ValueError, match="plain"):
            template_fields(bad)


@pytest.mark.parametrize(
    ("typed", "mode", "domain", "expected"),
    [
        ("alice", "upn", "corp.example", "alice@corp.example"),
        ("alice", "down_level", "CORP", "CORP\\alice"),
        ("alice@corp.example", "down_level", "CORP", "alice@corp.example"),
        ("alice@other.example", "upn", "corp.example", "alice@other.example"),
        ("CORP\\alice", "upn", "corp.example", "CORP\\alice"),
        ("corp/alice", "down_level", "CORP", "corp\\alice"),
        ("alice", "upn", None, None),
        ("alice", "down_level", None, None),
        ("CORP\\alice", "down_level", None, "CORP\\alice"),
        ("Alice.Smith", "upn", "corp.example", "Alice.Smith@corp.example"),
    ],
)
def test_bind_names(typed: str, mode: str, domain: str | None, expected: str | None) -> None:
    assert bind_name(validate_username(typed), mode, domain) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "account"),
    [("alice", "alice"), ("CORP\\Alice", "Alice"), ("corp/alice", "alice"), ("Alice@corp.example", "Alice")],
)
def test_account_part(typed: str, account: str) -> None:
    assert account_part(validate_username(typed)) == account


AD_MESSAGE = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {}, v4563"


@pytest.mark.parametrize(
    ("message", "kind", "reason"),
    [
        (AD_MESSAGE.format("52e"), FailureKind.BAD_CREDENTIALS, "wrong password (AD 52e)"),
        (AD_MESSAGE.format("525"), FailureKind.BAD_CREDENTIALS, "unknown user (AD 525)"),
        (AD_MESSAGE.format("775"), FailureKind.BAD_CREDENTIALS, "account locked out (AD 775)"),
        (AD_MESSAGE.format("533"), FailureKind.ACCOUNT_DISABLED, "account disabled (AD 533)"),
        (AD_MESSAGE.format("532"), FailureKind.ACCOUNT_DISABLED, "password expired (AD 532)"),
        (AD_MESSAGE.format("701"), FailureKind.ACCOUNT_DISABLED, "account expired (AD 701)"),
        (AD_MESSAGE.format("773"), FailureKind.ACCOUNT_DISABLED, "password must be reset (AD 773)"),
        (AD_MESSAGE.format("530"), FailureKind.ACCOUNT_DISABLED, "logon not permitted at this time (AD 530)"),
        (AD_MESSAGE.format("531"), FailureKind.ACCOUNT_DISABLED, "logon not permitted at this workstation (AD 531)"),
        (AD_MESSAGE.format("52E"), FailureKind.BAD_CREDENTIALS, "wrong password (AD 52e)"),
        (AD_MESSAGE.format("999"), FailureKind.BAD_CREDENTIALS, "bind refused (invalid credentials)"),
        ("", FailureKind.BAD_CREDENTIALS, "bind refused (invalid credentials)"),  # OpenLDAP says nothing
        ("invalidCredentials", FailureKind.BAD_CREDENTIALS, "bind refused (invalid credentials)"),
    ],
)
def test_ad_bind_sub_codes(message: str, kind: FailureKind, reason: str) -> None:
    assert classify_ad_bind_failure(message) == (kind, reason)


@pytest.mark.parametrize(
    ("dn", "name"),
    [
        ("cn=staff,ou=groups,dc=example,dc=org", "staff"),
        ("CN=Domain Users,CN=Users,DC=corp,DC=example", "Domain Users"),
        ("cn=Smith\\, J (IT),ou=g", "Smith, J (IT)"),
        ("cn=M\\C3\\BCller,ou=g", "Müller"),
        ("cn=a\\+b+ou=x,dc=y", "a+b"),
        ("cn= padded ,ou=g", "padded"),
        ("not a dn", "not a dn"),
        ("cn=,ou=g", "cn=,ou=g"),
    ],
)
def test_group_names_from_dns(dn: str, name: str) -> None:
    assert first_rdn_value(dn) == name
