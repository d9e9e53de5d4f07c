"""The sign-in form under attack, over loopback: login CSRF (the token, the pre-session cookie, the
Origin), open redirects through `rd`, a session carried to another site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from gateway.mfa.flow import FLOW
from tests.flow.conftest import FlowEnv
from tests.portal.kit import APP_HOST, PASSWORDS, WIKI_HOST, PortalBrowser, form_action, portal_environment


async def _no_sign_in_happened(env: FlowEnv, browser: PortalBrowser) -> None:
    assert browser.gateway_cookie is None
    assert "gateway_authn_first_factor_failures_total 0.0" in await env.metrics()
    assert await env.monosign_calls("lookup_user") == []


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[FlowEnv]:
    async with portal_environment(tmp_path) as running:
        yield running


# --- Login CSRF ---------------------------------------------------------------------------------------------


async def test_a_form_post_without_a_token_is_refused(env: FlowEnv) -> None:
    browser = PortalBrowser(env)
    await browser.signin_page()
    page = await browser.post_signin({"username": "alice", "password": PASSWORDS["alice"]})
    assert page.status == 403
    await _no_sign_in_happened(env, browser)


@pytest.mark.parametrize("token", ["", "x", "1.AAAA", "9999999999." + "A" * 43])
async def test_a_made_up_token_is_refused(env: FlowEnv, token: str) -> None:
    browser = PortalBrowser(env)
    await browser.signin_page()
    page = await browser.post_signin({"username": "alice", "password": PASSWORDS["alice"], "csrf_token": token})
    assert page.status == 403
    await _no_sign_in_happened(env, browser)


async def test_a_token_is_worth_nothing_to_another_browser(env: FlowEnv) -> None:
    # The attacker's own form and token, posted from the victim's browser (which has its own cookie, or none).
    attacker = PortalBrowser(env)
    token = (await attacker.signin_page()).csrf_token
    for victim_cookies in ({}, {"msgw-signin": "B" * 43}):
        victim = PortalBrowser(env, cookies=dict(victim_cookies))
        page = await victim.post_signin({"username": "mallory", "password": "x", "csrf_token": token})
        assert page.status == 403
        await _no_sign_in_happened(env, victim)


async def test_a_token_is_worth_nothing_on_another_site(env: FlowEnv) -> None:
    wiki = PortalBrowser(env, host=WIKI_HOST)
    token = (await wiki.signin_page()).csrf_token
    app = PortalBrowser(env, cookies=dict(wiki.cookies))
    page = await app.post_signin({"username": "alice", "password": PASSWORDS["alice"], "csrf_token": token})
    assert page.status == 403
    await _no_sign_in_happened(env, app)


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": f"http://{WIKI_HOST}"},  # another site of the same gateway
    {"Origin": f"https://{APP_HOST}"},  # the site's host, but not the public URL's scheme
    {"Origin": f"http://{APP_HOST}:8080"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
async def test_a_cross_origin_post_is_refused_even_with_a_good_token(env: FlowEnv, headers: dict[str, str]) -> None:
    browser = PortalBrowser(env)
    page = await browser.sign_in_form("alice", headers=headers)
    assert page.status == 403
    await _no_sign_in_happened(env, browser)


@pytest.mark.parametrize(("referer", "status"), [
    ("http://evil.example/login", 403),
    (f"http://{WIKI_HOST}/_gateway/signin", 403),
    (f"http://{APP_HOST}/_gateway/signin?rd=%2F", 302),
    (None, 302),  # a client that sends neither: the token alone
])
async def test_without_origin_the_referer_must_be_the_site(env: FlowEnv, referer: str | None, status: int) -> None:
    browser = PortalBrowser(env)
    token = (await browser.signin_page()).csrf_token
    headers = {"Referer": referer} if referer is not None else {}
    page = await browser.request("POST", "/_gateway/signin", navigate=False, headers=headers,
                                 data={"username": "alice", "password": PASSWORDS["alice"], "csrf_token": token})
    assert page.status == status


async def test_the_same_form_from_the_site_itself_passes(env: FlowEnv) -> None:
    browser = PortalBrowser(env)
    page = await browser.sign_in_form("alice", headers={"Sec-Fetch-Site": "same-origin"})
    assert (page.status, page.location) == (302, "/_gateway/mfa")


# --- rd: always the site's own origin -------------------------------------------------------------------------

RD_TABLE = [
    ("/reports?q=1#top", "/reports?q=1#top"),
    (f"http://{APP_HOST}/reports?a=1", "/reports?a=1"),
    (f"HTTP://{APP_HOST.upper()}/y", "/y"),
    ("http://evil.example/x", "/"),
    (f"https://{APP_HOST}/x", "/"),
    (f"http://{WIKI_HOST}/x", "/"),
    (f"http://{APP_HOST}@evil.example/", "/"),
    ("//evil.example", "/"),
    ("///evil.example", "/"),
    ("/\\evil.example", "/"),
    ("\\\\evil.example", "/"),
    ("%2F%2Fevil.example", "/"),
    ("/%2F%2Fevil.example", "/"),
    ("/%5Cevil.example", "/"),
    ("/%252F%252Fevil.example", "/"),
    ("/\t/evil.example", "/"),
    ("/%09/evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("JaVaScRiPt:alert(1)", "/"),
    ("data:text/html,hi", "/"),
    ("/x\r\nSet-Cookie: a=b", "/"),
    ("/x%0d%0aSet-Cookie:%20a=b", "/"),
    ("/./evil.example", "/"),
    ("/../evil.example", "/"),
    ("\uff0f\uff0fevil.example", "/"),
    ("evil.example", "/"),
    ("", "/"),
]


@pytest.mark.parametrize(("rd", "expected"), RD_TABLE, ids=[repr(rd) for rd, _ in RD_TABLE])
async def test_rd_always_lands_on_the_sites_own_origin(tmp_path: Path, rd: str, expected: str) -> None:
    # An excepted user is signed in by the first factor alone: the 302 is the landing itself.
    async with portal_environment(tmp_path, monosign_user_exceptions=["alice"]) as env:
        browser = PortalBrowser(env)
        form = await browser.get(f"/_gateway/signin?rd={quote(rd, safe='')}")
        assert form.status == 200
        assert form_action(form) == f"/_gateway/signin?rd={quote(expected, safe='')}"
        landed = await browser.post_signin({"username": "alice", "password": PASSWORDS["alice"],
                                            "csrf_token": form.csrf_token},
                                           action=f"/_gateway/signin?rd={quote(rd, safe='')}")
        assert (landed.status, landed.location) == (302, expected)
        assert browser.gateway_cookie is not None
        again = await browser.get(f"/_gateway/signin?rd={quote(rd, safe='')}")
        assert (again.status, again.location) == (303, expected)


# --- A session belongs to its site --------------------------------------------------------------------------


async def test_a_session_of_one_site_is_no_session_on_another(env: FlowEnv) -> None:
    app = PortalBrowser(env)
    assert (await app.sign_in_form("alice", rd="/a")).status == 302
    pending_page = await app.mfa_page()
    assert pending_page.status == 200
    cookie = app.gateway_cookie
    assert cookie is not None

    # The same cookie on the other site's host (a shared cookie domain, a stolen cookie): nobody there.
    wiki = PortalBrowser(env, host=WIKI_HOST, cookies={"msgw": cookie})
    mfa = await wiki.get("/_gateway/mfa")
    assert (mfa.status, mfa.location) == (303, "/_gateway/signin?rd=%2F")
    verify = await wiki.verify(await env.code("alice"), csrf_token=app.csrf_token)
    assert (verify.status, verify.location) == (303, "/_gateway/signin?rd=%2F")
    status, body = await wiki.status()
    assert (status, body) == (401, {"status": "expired"})
    assert (await wiki.signin_page()).status == 200  # the form, not "signed in already"
    await wiki.get("/_gateway/signout")
    store = env.gateway.state.feature(FLOW).store
    assert await store.load(cookie) is not None  # the other site's sign-out ended nothing of app's

    # Passed on app, still nothing on wiki.
    final = await app.verify(await env.code("alice"))
    assert (final.status, final.location) == (302, "/a")
    wiki.cookies["msgw"] = app.cookies["msgw"]
    assert (await wiki.signin_page()).status == 200
    assert (await app.signin_page()).status == 303


async def test_the_mfa_pages_send_a_browser_without_session_to_the_sites_sign_in(env: FlowEnv) -> None:
    page = await PortalBrowser(env).get("/_gateway/mfa")
    assert (page.status, page.location) == (303, "/_gateway/signin?rd=%2F")


async def test_a_typed_name_is_shown_escaped(env: FlowEnv) -> None:
    browser = PortalBrowser(env)
    page = await browser.sign_in_form('"><script>alert(1)</script>', "x")
    assert page.status == 200
    assert "<script>alert(1)" not in page.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
