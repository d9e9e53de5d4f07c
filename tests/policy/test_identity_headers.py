"""Identity headers: every client spelling removed, the gateway's values set once, values header-safe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.policy.identity_headers import (
    IdentityClaims,
    IdentityHeaderNames,
    IdentityHeaders,
    header_key,
    header_value,
)

POLICY = IdentityHeaders()
ALICE = IdentityClaims(user="alice", email="alice@corp.example", name="Alice Doe", groups=("staff", "wiki-admins"))

# Spellings a client may use so that some reader upstream takes them for an identity header.
CLIENT_SPELLINGS = [
    "Remote-User", "remote-user", "REMOTE-USER", "rEmOtE-uSeR", "Remote_User", "remote_user", "REMOTE_USER",
    "Remote-User ", " Remote-User", "Remote-User\t", "Remote.User", "RemoteUser", "remote__user", "Remote--User",
    "Remote-Email", "remote_email", "Remote-Name", "REMOTE_NAME", "Remote-Groups", "remote_groups",
    "X-Monosign-Assertion", "x_monosign_assertion", "X-MONOSIGN-ASSERTION",
]


@pytest.mark.parametrize("spelling", CLIENT_SPELLINGS)
def test_every_client_spelling_is_removed(spelling: str) -> None:
    headers = CIMultiDict([("Accept", "*/*"), (spelling, "mallory"), (spelling, "eve"), ("Cookie", "a=b")])
    removed = POLICY.strip(headers)
    assert removed == [spelling, spelling]
    assert list(headers.items()) == [("Accept", "*/*"), ("Cookie", "a=b")]


@pytest.mark.parametrize("spelling", CLIENT_SPELLINGS)
def test_a_passed_session_sends_only_the_gateway_values_once(spelling: str) -> None:
    headers = CIMultiDict([(spelling, "mallory"), ("Remote-User", "eve"), ("remote_user", "bob")])
    POLICY.apply(headers, ALICE)
    identity = [(name, value) for name, value in headers.items() if POLICY.is_identity_header(name)]
    assert identity == [("Remote-User", "alice"), ("Remote-Email", "alice@corp.example"),
                        ("Remote-Name", "Alice Doe"), ("Remote-Groups", "staff,wiki-admins")]


def test_without_a_session_nothing_is_set_and_everything_is_removed() -> None:
    headers = CIMultiDict([("Remote-User", "mallory"), ("REMOTE_GROUPS", "admins")])
    assert POLICY.apply(headers, None) == ["Remote-User", "REMOTE_GROUPS"]
    assert not headers


@pytest.mark.parametrize("name", ["Remote-Users", "X-Remote-User", "Remote", "User", "Accept", "X-Forwarded-User"])
def test_other_headers_are_kept(name: str) -> None:
    headers = CIMultiDict([(name, "value")])
    assert POLICY.strip(headers) == []
    assert headers[name] == "value"


def test_configured_names_are_the_ones_stripped_and_set() -> None:
    policy = IdentityHeaders(IdentityHeaderNames(user="X-Forwarded-User", email=None, name=None, groups=None))
    headers = CIMultiDict([("x_forwarded_user", "mallory"), ("Remote-User", "kept: not configured")])
    policy.apply(headers, ALICE)
    assert list(headers.items()) == [("Remote-User", "kept: not configured"), ("X-Forwarded-User", "alice")]


def test_a_name_without_letters_or_digits_is_refused() -> None:
    with pytest.raises(ValueError, match="letters or digits"):
        IdentityHeaders(IdentityHeaderNames(user="-_-"))


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("alice", "alice"),
        ("CORP\\alice", "CORP\\alice"),
        ("alice@corp.example", "alice@corp.example"),
        ("Alice Doe", "Alice Doe"),
        ("J\u00fcrgen", "J%C3%BCrgen"),
        ("\u0130lker", "%C4%B0lker"),
        ("a\r\nSet-Cookie: x=y", "a%0D%0ASet-Cookie: x=y"),
        ("a\nb", "a%0Ab"),
        ("nul\x00", "nul%00"),
        ("tab\there", "tab%09here"),
        ("100%", "100%25"),
        ("%41", "%2541"),
        (" padded ", "padded"),
        ("del\x7f", "del%7F"),
    ],
)
def test_values_are_header_safe_and_reversible(given: str, sent: str) -> None:
    assert header_value(given) == sent


def test_groups_are_one_list_and_a_comma_in_a_name_is_encoded() -> None:
    claims = IdentityClaims(user="alice", groups=("a,b", "Gr\u00fcn", " ", "c"))
    assert dict(POLICY.values(claims))["Remote-Groups"] == "a%2Cb,Gr%C3%BCn,c"


@given(st.text())
def test_no_value_can_break_the_header(text: str) -> None:
    value = header_value(text)
    assert value.isascii()
    assert not any(char in value for char in "\r\n\x00")
    assert all(0x20 <= ord(char) < 0x7F for char in value)


@given(st.text(alphabet=st.characters(codec="ascii"), min_size=1))
def test_the_key_ignores_case_and_punctuation(name: str) -> None:
    assert header_key(name) == header_key(name.upper().replace("-", "_"))
