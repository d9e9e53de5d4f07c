"""The portal's pure decisions: what a session opens, the identity and factors it hands upstream."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.model import Action
from gateway.profiles.portal.access import PortalAccess, amr, claims, identity, opens, portal_access
from gateway.profiles.portal.serve import drop_gateway_set_cookies, sign_in_location
from gateway.sessions.base import SessionRecord, SessionState
from gateway.sessions.lifetime import SessionTimeouts

NOW = 1_000_000.0
TIMEOUTS = SessionTimeouts(idle=600, absolute=3600)
SITES = frozenset({"wiki", "docs"})


def record(**fields: Any) -> SessionRecord:
    values: dict[str, Any] = {"state": SessionState.COMPLETE, "site": "wiki", "created_at": NOW - 100,
                              "last_activity": NOW - 10, "mfa_at": NOW - 90, **fields}
    return SessionRecord(**values)


@pytest.mark.parametrize(("session", "expected"), [
    (None, PortalAccess.NO_SESSION),
    (record(), PortalAccess.PASSED),
    (record(state=SessionState.EXEMPT), PortalAccess.PASSED),
    (record(site="docs"), PortalAccess.PASSED),  # a site of the same session group
    (record(state=SessionState.PENDING, mfa_at=None), PortalAccess.NO_SESSION),  # no first factor recorded
    (record(state=SessionState.PENDING, mfa_at=None, first_factor="file"), PortalAccess.FIRST_FACTOR),
    (record(state=SessionState.PENDING, mfa_at=None, first_factor="ldap"), PortalAccess.FIRST_FACTOR),
    # A monosign site's first factor is a typed name: waiting for the push proves nothing.
    (record(state=SessionState.PENDING, mfa_at=None, first_factor="monosign"), PortalAccess.NO_SESSION),
    (record(state=SessionState.PENDING, mfa_at=None, first_factor="exchange"), PortalAccess.NO_SESSION),
    (record(first_factor="monosign"), PortalAccess.PASSED),
    (record(site="crm"), PortalAccess.OTHER_SITE),
    (record(site=""), PortalAccess.OTHER_SITE),  # Exchange's
    (record(site="WIKI"), PortalAccess.OTHER_SITE),
    (record(last_activity=NOW - 600, created_at=NOW - 700, mfa_at=NOW - 700), PortalAccess.IDLE),
    (record(created_at=NOW - 3600, mfa_at=NOW - 3600), PortalAccess.ABSOLUTE),
    (record(state=SessionState.PENDING, mfa_at=None, created_at=NOW - 300), PortalAccess.ABSOLUTE),
    (record(state=SessionState.PENDING, mfa_at=None, created_at=NOW - 299, first_factor="file"),
     PortalAccess.FIRST_FACTOR),
    (record(site="crm", created_at=NOW - 9999), PortalAccess.OTHER_SITE),  # never ended from here
])
def test_portal_access(session: SessionRecord | None, expected: PortalAccess) -> None:
    assert portal_access(session, sites=SITES, now=NOW, timeouts=TIMEOUTS, pending_max=300) is expected


@pytest.mark.parametrize(("action", "access", "expected"), [
    (Action.BYPASS, PortalAccess.NO_SESSION, True),
    (Action.DENY, PortalAccess.PASSED, False),
    (Action.ONE_FACTOR, PortalAccess.FIRST_FACTOR, True),
    (Action.ONE_FACTOR, PortalAccess.PASSED, True),
    (Action.ONE_FACTOR, PortalAccess.OTHER_SITE, False),
    (Action.TWO_FACTOR, PortalAccess.PASSED, True),
    (Action.TWO_FACTOR, PortalAccess.FIRST_FACTOR, False),
    (Action.TWO_FACTOR, PortalAccess.IDLE, False),
    (Action.TWO_FACTOR, PortalAccess.NO_SESSION, False),
    (Action.PINNED, PortalAccess.PASSED, False),
    (None, PortalAccess.PASSED, False),
])
def test_what_a_session_opens(action: Action | None, access: PortalAccess, expected: bool) -> None:
    assert opens(action, access) is expected


@pytest.mark.parametrize(("first", "second", "state", "expected"), [
    ("ldap", "totp", SessionState.COMPLETE, ["pwd", "otp", "mfa"]),
    ("file", "push", SessionState.COMPLETE, ["pwd", "swk", "mfa"]),
    ("monosign", "push", SessionState.COMPLETE, ["swk"]),
    ("ldap", "fail_open", SessionState.COMPLETE, ["pwd"]),
    ("ldap", "exception", SessionState.EXEMPT, ["pwd"]),
    ("ldap", "", SessionState.PENDING, ["pwd"]),
    ("ldap", "totp", SessionState.PENDING, ["pwd"]),  # not passed: its second factor does not count
    ("exchange", "totp", SessionState.COMPLETE, ["pwd", "otp", "mfa"]),
    ("", "", SessionState.COMPLETE, []),
])
def test_amr(first: str, second: str, state: SessionState, expected: list[str]) -> None:
    assert amr(record(first_factor=first, second_factor=second, state=state)) == expected


def test_identity_and_claims_prefer_monosign_s_user_name() -> None:
    session = record(typed_username="ALICE", user_name="alice", email="a@x.test", display_name="Alice A",
                     groups=["Staff", "Wiki-Admins"])
    who = identity(session)
    assert who is not None
    assert who.user.typed == "alice"
    assert who.groups == frozenset({"staff", "wiki-admins"})
    assert claims(session).user == "alice"
    assert claims(record(typed_username="bob")).user == "bob"
    assert claims(record(typed_username="bob")).email is None
    assert identity(record(typed_username="a\\b\\c")) is None  # does not parse: in no list


@pytest.mark.parametrize(("target", "expected"), [
    ("/", "/_gateway/signin?rd=/"),
    ("/a b", "/_gateway/signin?rd=/a%20b"),
    ("/x?y=1&z=2", "/_gateway/signin?rd=/x%3Fy%3D1%26z%3D2"),
    ("//evil.test/", "/_gateway/signin?rd=//evil.test/"),  # rd is validated by the sign-in page, as a path
])
def test_sign_in_location(target: str, expected: str) -> None:
    assert sign_in_location(target) == expected


class _Answer:
    status = 200
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


@pytest.mark.parametrize(("set_cookie", "kept"), [
    ("msgw=x; Path=/", False), ("MSGW=x", False), ("__Host-msgw=x; Secure", False), ("msgw-device=1", False),
    ("msgw-signin=1", False), ("__Host-msgw-device=1", False), (" msgw =x", False),
    # A session group's cookie, in the spellings a browser would store as its own or the gateway reads.
    ("__Secure-msgw-group-corp=x; Domain=example.test; Secure", False), ("__secure-msgw-group-corp=x", False),
    ("__SECURE-MSGW-GROUP-corp=x", False), ("msgw-group-corp=x; Domain=example.test", False),
    ("MSGW-Group-corp=x", False), (" __Secure-msgw-group-corp =x", False), ("\t__Secure-msgw-group-corp=x", False),
    ("__Secure-msgw-group-other=x", False), ("__Secure-msgw-=x", False),
    ("__Secure-app=1", True), ("__Secure-msgwx=1", True),
    ("app=1; Path=/", True), ("msgwx=1", True), ("session=msgw", True),
])
async def test_an_upstream_cannot_set_the_gateway_s_cookies(set_cookie: str, kept: bool) -> None:
    headers: CIMultiDict[str] = CIMultiDict([("Set-Cookie", set_cookie), ("Set-Cookie", "other=1"), ("X", "y")])
    await drop_gateway_set_cookies(_Answer(), headers)
    assert headers.getall("Set-Cookie") == ([set_cookie, "other=1"] if kept else ["other=1"])
    assert headers["X"] == "y"


@given(state=st.sampled_from(list(SessionState)), site=st.sampled_from(["wiki", "docs", "crm", ""]),
       created=st.floats(0, 10_000), idle=st.floats(0, 10_000), mfa=st.none() | st.floats(0, 10_000),
       action=st.sampled_from([*Action, None]))
def test_a_session_opens_only_its_own_sites_within_its_timeouts(state: SessionState, site: str, created: float,
                                                                idle: float, mfa: float | None,
                                                                action: Action | None) -> None:
    session = record(state=state, site=site, created_at=NOW - created, last_activity=NOW - idle,
                     mfa_at=None if mfa is None else NOW - mfa)
    access = portal_access(session, sites=SITES, now=NOW, timeouts=TIMEOUTS, pending_max=300)
    if opens(action, access) and action is not Action.BYPASS:
        assert site in SITES
        assert TIMEOUTS.remaining(session, NOW) > 0
        assert action in (Action.ONE_FACTOR, Action.TWO_FACTOR)
        assert session.passed or (action is Action.ONE_FACTOR and state is SessionState.PENDING
                                  and created < 300)
