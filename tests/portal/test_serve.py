"""A portal site served through the real gateway: rules, sessions, identity headers, the assertion."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from gateway.policy.identity_headers import header_key
from gateway.sessions.base import SessionState
from tests.portal.support import (
    CRM_HOST,
    ISSUER,
    WIKI_HOST,
    Portal,
    echoed,
    header,
    request,
    running_portal,
    split,
    write_key,
)
from tests.proxy.support import raw_exchange
from tests.redis_server import RedisServer

IDENTITY_KEYS = {header_key(name) for name in ("Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups",
                                                "X-Monosign-Assertion")}
BROWSER = ("Accept: text/html,application/xhtml+xml", "Sec-Fetch-Mode: navigate")
API = ("Accept: application/json",)
EMPTY_BODY = "Content-Length: 0"

# Every client spelling of an identity header that some server reads as the real one: case, `_` for
# `-`, no separator, other punctuation, white space around the value; the assertion header too.
SPOOFED = [
    "Remote-User: mallory", "remote-user: mallory", "REMOTE-USER: mallory", "rEmOtE-uSeR: mallory",
    "Remote_User: mallory", "remote_user: mallory", "REMOTE_USER: mallory", "RemoteUser: mallory",
    "Remote.User: mallory", "Remote--User: mallory", "Remote-User:    mallory   ", "Remote-User:\tmallory",
    "Remote-Email: mallory@evil.test", "Remote_Email: mallory@evil.test", "remote-name: Mallory",
    "Remote-Groups: wiki-admins", "REMOTE_GROUPS: wiki-admins", "Remote-Groups: wiki-admins, admins",
    "X-Monosign-Assertion: forged", "x_monosign_assertion: forged", "X-MONOSIGN-ASSERTION: forged",
]
# ... and over ten copies of one.
DUPLICATES = ["Remote-User: mallory"] * 12 + ["remote_user: mallory"] * 3


async def get(portal: Portal, target: str, *extra: str, host: str = WIKI_HOST, method: str = "GET"
              ) -> tuple[int, list[tuple[str, str]], bytes]:
    return split(await raw_exchange(portal.port, request(target, host, *extra, method=method), timeout=10))


def identity_headers(received: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in received if header_key(name) in IDENTITY_KEYS]


@pytest.mark.parametrize("spoofed", [[line] for line in SPOOFED] + [DUPLICATES, SPOOFED])
async def test_bypass_removes_every_spelling_and_sets_none(tmp_path: Path, spoofed: list[str]) -> None:
    async with running_portal(tmp_path) as portal:
        cookie = await portal.session(groups=["wiki-admins"])
        for extra in ([], [f"Cookie: {cookie}"]):  # signed in or not: a bypass hands no identity
            status, _, body = await get(portal, "/_app/echo", *spoofed, *extra, EMPTY_BODY, "X-Kept: yes",
                                        method="PUT")
            assert status == 200
            received = echoed(body)
            assert identity_headers(received) == []
            assert ("X-Kept", "yes") in received
            assert not any("mallory" in value or value == "forged" for _, value in received)


@pytest.mark.parametrize("spoofed", [[line] for line in SPOOFED] + [DUPLICATES, SPOOFED])
async def test_a_passed_session_gets_only_the_gateway_s_identity(tmp_path: Path, spoofed: list[str]) -> None:
    async with running_portal(tmp_path) as portal:
        cookie = await portal.session(user="alice", groups=["Wiki-Admins", "staff,ops"])
        status, _, body = await get(portal, "/_app/echo", *spoofed, f"Cookie: {cookie}")
        assert status == 200
        received = identity_headers(echoed(body))
        assert sorted(name for name, _ in received) == ["Remote-Email", "Remote-Groups", "Remote-Name", "Remote-User",
                                                        "X-Monosign-Assertion"]
        values = dict(received)
        assert values["Remote-User"] == "alice"
        assert values["Remote-Email"] == "alice@example.test"
        assert values["Remote-Name"] == "Alice"
        assert values["Remote-Groups"] == "Wiki-Admins,staff%2Cops"
        assert not any("mallory" in value or value == "forged" for _, value in echoed(body))


async def test_the_assertion_verifies_with_the_published_keys(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        status, headers, body = await get(portal, "/_gateway/jwks.json", host=CRM_HOST)
        assert status == 200
        assert header(headers, "Cache-Control") == ["public, max-age=300"]
        jwks = jwt.PyJWKSet.from_dict(json.loads(body))
        assert len(jwks.keys) == 2  # the signing key and the previous one
        tokens = []
        for second_factor, expected in (("totp", ["pwd", "otp", "mfa"]), ("push", ["pwd", "swk", "mfa"])):
            cookie = await portal.session(user="bob", groups=["staff"], second_factor=second_factor)
            for _ in range(2):
                _, _, body = await get(portal, "/_app/echo", f"Cookie: {cookie}")
                (token,) = [value for name, value in echoed(body) if name == "X-Monosign-Assertion"]
                tokens.append(token)
                kid = jwt.get_unverified_header(token)["kid"]
                claims = jwt.decode(token, jwks[kid].key, algorithms=["ES256"], audience="wiki", issuer=ISSUER,
                                    options={"require": ["exp", "iat", "iss", "aud", "sub"]})
                assert claims["sub"] == "id-bob"
                assert claims["amr"] == expected
                assert claims["exp"] - claims["iat"] == 60
                assert claims["preferred_username"] == "bob"
                assert claims["groups"] == ["staff"]
            with pytest.raises(jwt.InvalidAudienceError):
                jwt.decode(token, jwks[kid].key, algorithms=["ES256"], audience="crm", issuer=ISSUER)
        # Signed once per session and reused (its data path does not sign every request); each session its own.
        assert tokens[0] == tokens[1]
        assert tokens[2] == tokens[3]
        assert tokens[0] != tokens[2]


@pytest.mark.parametrize("target", ["/", "/page", "/admin/x?y=1&z=%2F", "/_app/echo"])
async def test_without_a_session_a_browser_is_sent_to_sign_in_and_an_api_client_gets_401(tmp_path: Path,
                                                                                        target: str) -> None:
    async with running_portal(tmp_path) as portal:
        status, headers, _ = await get(portal, target, *BROWSER)
        assert status == 302
        (location,) = header(headers, "Location")
        assert location.startswith("/_gateway/signin?rd=")  # relative: never built from the Host
        assert parse_qs(urlsplit(location).query)["rd"] == [target]
        status, headers, _body = await get(portal, target, *API)
        assert status == 401
        assert header(headers, "WWW-Authenticate") == [f'MonosignGateway realm="gateway", sign_in="{location}"']
        status, _, _ = await get(portal, target, "Accept: text/html", "X-Requested-With: XMLHttpRequest")
        assert status == 401
        status, _, _ = await get(portal, target, *BROWSER, EMPTY_BODY, method="POST")
        assert status == 401
        assert portal.app.state.requests == 0


async def test_one_factor_takes_a_pending_session_two_factor_does_not(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        pending = await portal.session(state=SessionState.PENDING)
        status, _, body = await get(portal, "/_app/echo", f"Cookie: {pending}", EMPTY_BODY, method="PATCH")
        assert status == 200
        assert dict(identity_headers(echoed(body)))["Remote-User"] == "alice"
        assert (await get(portal, "/drafts/x", f"Cookie: {pending}"))[0] == 200
        status, headers, _ = await get(portal, "/page", f"Cookie: {pending}", *BROWSER)
        assert (status, header(headers, "Location")) == (302, ["/_gateway/signin?rd=/page"])
        assert (await get(portal, "/page", f"Cookie: {pending}", *API))[0] == 401
        complete = await portal.session(state=SessionState.COMPLETE)
        exempt = await portal.session(state=SessionState.EXEMPT, second_factor="exception")
        for cookie in (complete, exempt):
            assert (await get(portal, "/page", f"Cookie: {cookie}"))[0] == 200
            assert (await get(portal, "/drafts", f"Cookie: {cookie}"))[0] == 200


async def test_a_session_of_another_site_is_no_session(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        for site in ("crm", ""):  # another portal site's, Exchange's
            cookie = await portal.session(site=site)
            status, headers, _ = await get(portal, "/page", f"Cookie: {cookie}", *BROWSER)
            assert status == 302
            assert header(headers, "Set-Cookie") == []  # another site's session is left alone
            assert (await get(portal, "/page", f"Cookie: {cookie}", *API))[0] == 401
        crm = await portal.session(site="crm")
        assert (await get(portal, "/page", f"Cookie: {crm}", host=CRM_HOST))[0] == 200
        assert portal.app.state.requests == 1


async def test_a_session_group_shares_sessions_between_its_sites(tmp_path: Path) -> None:
    group = {"session_groups": [{"name": "intranet", "cookie_domain": "example.test"}]}
    async with running_portal(tmp_path, wiki={"session_group": "intranet"}, extra=group) as portal:
        crm = await portal.session(site="crm", cookie_name="msgw-group-intranet")  # crm is not in the group
        assert (await get(portal, "/page", f"Cookie: {crm}", *API))[0] == 401
        data = json.loads(portal.config_file.read_text())
        data["sites"][2]["session_group"] = "intranet"
        portal.config_file.write_text(json.dumps(data))
        assert portal.gateway.gateway.live is not None
        assert portal.gateway.gateway.live.reload().changed
        assert (await get(portal, "/page", f"Cookie: {crm}", *API))[0] == 200
        # A group site reads the group's cookie only: the host-only one is another host's session.
        host_only = await portal.session(site="crm")
        assert (await get(portal, "/page", f"Cookie: {host_only}", *API))[0] == 401


async def test_rules_with_groups_are_decided_with_the_session_s_user(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        admin = await portal.session(groups=["wiki-admins"])  # any case: groups compare lower-cased
        staff = await portal.session(user="carol", groups=["staff"])
        pending_admin = await portal.session(state=SessionState.PENDING, groups=["Wiki-Admins"])
        assert (await get(portal, "/admin/users", f"Cookie: {admin}"))[0] == 200
        assert (await get(portal, "/admin/users", f"Cookie: {staff}", *BROWSER))[0] == 403
        assert (await get(portal, "/admin/users", f"Cookie: {pending_admin}", *API))[0] == 401
        assert (await get(portal, "/admin/users", *BROWSER))[0] == 302
        assert (await get(portal, "/closed", f"Cookie: {admin}"))[0] == 403
        assert list(portal.app.state.paths) == ["/admin/users"]


async def test_idle_and_absolute_timeouts_end_the_session(tmp_path: Path) -> None:
    async with running_portal(tmp_path, gateway_session_idle_timeout=600,
                              gateway_session_absolute_timeout=3600) as portal:
        now = portal.flow.clock()
        idle = await portal.session(last_activity=now - 601, created_at=now - 700, mfa_at=now - 700)
        old = await portal.session(last_activity=now, created_at=now - 3601, mfa_at=now - 3601)
        pending = await portal.session(state=SessionState.PENDING, created_at=now - 601, last_activity=now)
        for cookie in (idle, old):
            status, headers, _ = await get(portal, "/page", f"Cookie: {cookie}", *BROWSER)
            assert status == 302
            assert [value for value in header(headers, "Set-Cookie") if "Max-Age=0" in value]
            value = cookie.partition("=")[2]
            assert await portal.flow.store.load(value) is None  # ended, not only refused
        assert (await get(portal, "/drafts", f"Cookie: {pending}", *API))[0] == 401
        assert portal.app.state.requests == 0


async def test_activity_is_recorded_without_a_store_write_per_request(tmp_path: Path) -> None:
    async with running_portal(tmp_path, gateway_session_idle_timeout=600) as portal:
        now = portal.flow.clock()
        cookie = await portal.session(last_activity=now - 120, created_at=now - 300, mfa_at=now - 300)
        value = cookie.partition("=")[2]
        assert (await get(portal, "/page", f"Cookie: {cookie}"))[0] == 200
        record = await portal.flow.store.load(value)
        assert record is not None
        assert record.last_activity >= now
        version = record.version
        for _ in range(3):
            assert (await get(portal, "/page", f"Cookie: {cookie}"))[0] == 200
        record = await portal.flow.store.load(value)
        assert record is not None
        assert record.version == version


async def test_the_gateway_s_cookies_never_reach_the_application(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        session = await portal.session()
        name = portal.flow.cookie.name
        cookies = (f"Cookie: app=1; {session}; msgw-device=d; __Host-msgw=x; MSGW-SIGNIN=s; Msgw-Device=e; "
                   "msgwx=kept; theme=dark")
        for method, extra in (("GET", [cookies]), ("PUT", [cookies, EMPTY_BODY]), ("PATCH", [cookies, EMPTY_BODY])):
            status, _, body = await get(portal, "/_app/echo", *extra, method=method)
            assert status == 200, method
            assert header(echoed(body), "Cookie") == ["app=1; msgwx=kept; theme=dark"], method
            assert name not in json.dumps(echoed(body)).replace("msgwx", "")


async def test_a_replaced_assertion_key_is_picked_up_by_a_reload(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        _, _, body = await get(portal, "/_gateway/jwks.json")
        before = {key["kid"] for key in json.loads(body)["keys"]}
        write_key(tmp_path / "assertion.pem")
        live = portal.gateway.gateway.live
        assert live is not None
        assert live.files_changed()
        assert live.reload().changed
        _, _, body = await get(portal, "/_gateway/jwks.json")
        after = {key["kid"] for key in json.loads(body)["keys"]}
        assert len(after) == 2
        assert len(after & before) == 1  # the previous key stays; the signing key is the new one
        cookie = await portal.session()
        _, _, body = await get(portal, "/_app/echo", f"Cookie: {cookie}")
        (token,) = [value for name, value in echoed(body) if name == "X-Monosign-Assertion"]
        assert jwt.get_unverified_header(token)["kid"] in after - before


async def test_a_store_that_cannot_be_asked_refuses_everything_but_bypass(tmp_path: Path) -> None:
    with RedisServer.running(tmp_path / "redis") as redis_server:
        async with running_portal(tmp_path, gateway_session_store="redis", gateway_redis_url=redis_server.url,
                                  gateway_session_secret="s" * 40, gateway_session_cache_seconds=0,
                                  gateway_redis_timeout=1.0, gateway_trusted_proxies=["127.0.0.1/32"]) as portal:
            cookie = await portal.session()
            assert (await get(portal, "/page", f"Cookie: {cookie}"))[0] == 200
            redis_server.stop()
            assert (await get(portal, "/page", f"Cookie: {cookie}", *BROWSER))[0] == 503
            assert (await get(portal, "/drafts", f"Cookie: {cookie}", *API))[0] == 503
            described = (f"X-Original-URL: http://{WIKI_HOST}/page", "X-Original-Method: GET")
            assert (await get(portal, "/_gateway/auth", *described, f"Cookie: {cookie}"))[0] == 503
            assert (await get(portal, "/public/x"))[0] == 200  # a bypass needs no session
            assert portal.app.state.paths[-1] == "/public/x"
            assert list(portal.app.state.paths).count("/page") == 1
