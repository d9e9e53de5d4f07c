"""A portal site's sign-in, end to end over loopback: the form, the `file` first factor, the MFA
pages (code and push) and the landing on `rd` with the session cookie; sign-out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.mfa.flow import FLOW
from gateway.sessions.base import SessionRecord, SessionState
from tests.flow.conftest import FlowEnv
from tests.portal.kit import APP_HOST, PortalBrowser, form_action, portal_environment, portal_site


async def _record(env: FlowEnv, browser: PortalBrowser) -> SessionRecord | None:
    cookie = browser.gateway_cookie
    assert cookie is not None
    return await env.gateway.state.feature(FLOW).store.load(cookie)


async def test_password_then_code_lands_on_rd_with_a_session(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        browser = PortalBrowser(env)
        form = await browser.signin_page("/reports/q3?year=2026")
        assert form.status == 200
        assert form.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert form_action(form) == "/_gateway/signin?rd=%2Freports%2Fq3%3Fyear%3D2026"
        assert {'name="username"', 'name="password"', 'name="csrf_token"'} <= set(
            re.findall(r'name="[a-z_]+"', form.text))
        first = await browser.sign_in_form("alice", rd="/reports/q3?year=2026")
        assert first.status == 302, first.text[:400]
        assert first.location == "/_gateway/mfa"
        assert browser.gateway_cookie is not None
        pending = await _record(env, browser)
        assert pending is not None
        assert pending.state is SessionState.PENDING
        assert (pending.site, pending.first_factor, pending.user_name) == ("app", "file", "alice")
        assert pending.groups == ["staff", "team-alice"]
        assert (pending.display_name, pending.email) == ("Alice (directory)", "alice@directory.example")
        assert pending.destination == "/reports/q3?year=2026"
        assert pending.upstream_set_cookies == []

        mfa = await browser.mfa_page()
        assert mfa.status == 200
        assert "Alice (directory)" in mfa.text
        final = await browser.verify(await env.code("alice"))
        assert final.status == 302, final.text[:400]
        assert final.location == "/reports/q3?year=2026"
        record = await _record(env, browser)
        assert record is not None
        assert record.state is SessionState.COMPLETE
        assert (record.site, record.first_factor, record.second_factor) == ("app", "file", "totp")
        # No Exchange cookie to replay: only the gateway's own.
        assert final.set_cookie_names() <= {"msgw", "msgw-device"}

        # Signed in: the form sends the browser on, to where it asked.
        again = await browser.signin_page("/wiki")
        assert (again.status, again.location) == (303, "/wiki")


async def test_password_then_push(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        browser = PortalBrowser(env)
        first = await browser.sign_in_form("alice")
        assert (first.status, first.location) == (302, "/_gateway/mfa")
        await browser.mfa_page()
        sent = await browser.push()
        assert (sent.status, sent.location) == (303, "/_gateway/mfa")
        await env.approve("alice")
        final = await browser.complete()
        assert (final.status, final.location) == (302, "/")
        record = await _record(env, browser)
        assert record is not None
        assert record.second_factor == "push"
        assert record.passed


async def test_wrong_password_and_unknown_user_get_the_same_page(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        pages = []
        for user, password in (("alice", "not her password"), ("nobody", "whatever"), ("alice", "")):
            browser = PortalBrowser(env)
            page = await browser.sign_in_form(user, password, rd="/x")
            assert page.status == 200
            assert browser.gateway_cookie is None
            pages.append(re.sub(r'value="[^"]*"', "", page.text.replace(user, "USER")).replace(
                re.search(r"<code>([^<]+)</code>", page.text).group(1), "RID"))  # type: ignore[union-attr]
        assert "The user name or password is not correct." in pages[0]
        assert pages[0] == pages[1] == pages[2]
        failed = await env.metrics()
        assert "gateway_authn_first_factor_failures_total 3.0" in failed


async def test_sign_out_ends_the_session(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        browser = PortalBrowser(env)
        await browser.sign_in_form("alice")
        await browser.mfa_page()
        await browser.verify(await env.code("alice"))
        cookie = browser.gateway_cookie
        assert cookie is not None
        out = await browser.get("/_gateway/signout")
        assert (out.status, out.location) == (303, "/_gateway/signin?signed_out=1")
        assert "msgw" in out.set_cookie_names()
        assert browser.gateway_cookie is None
        browser.cookies["msgw"] = cookie  # the old cookie is worth nothing now
        assert await _record(env, browser) is None
        page = await browser.get(out.location)
        assert page.status == 200
        assert "You have signed out." in page.text


async def test_the_sign_in_pages_are_a_portal_sites_only(tmp_path: Path) -> None:
    files = {"name": "files", "hosts": ["files.corp.example"], "upstream": "http://127.0.0.1:9",
             "profile": "passthrough", "rules": [{"action": "bypass"}]}
    async with portal_environment(tmp_path, sites=[portal_site("app", APP_HOST), files]) as env:
        browser = PortalBrowser(env, host="files.corp.example")
        for method, target in (("GET", "/_gateway/signin"), ("POST", "/_gateway/signin"),
                               ("GET", "/_gateway/signout")):
            page = await browser.request(method, target, data={"username": "alice"} if method == "POST" else None)
            assert page.status == 404, (method, target)
        assert (await PortalBrowser(env).get("/_gateway/signin")).status == 200


@pytest.mark.redis
async def test_on_the_redis_store(tmp_path: Path) -> None:
    from tests.redis_server import RedisServer

    with RedisServer.running(tmp_path / "redis") as server:
        async with portal_environment(tmp_path, gateway_session_store="redis", gateway_redis_url=server.url,
                                      gateway_session_secret="portal-redis-secret-" + "x" * 32,
                                      gateway_mfa_max_failures=2) as env:
            browser = PortalBrowser(env)
            assert (await browser.sign_in_form("alice", rd="/r")).status == 302
            await browser.mfa_page()
            final = await browser.verify(await env.code("alice"))
            assert (final.status, final.location) == (302, "/r")
            record = await _record(env, browser)
            assert record is not None
            assert (record.site, record.groups, record.second_factor) == ("app", ["staff", "team-alice"], "totp")
            statuses = [(await PortalBrowser(env).sign_in_form("bob", "no")).status for _ in range(3)]
            assert statuses == [200, 429, 429]


async def test_the_mfa_page_speaks_of_the_site_and_links_its_own_sign_out(tmp_path: Path) -> None:
    async with portal_environment(tmp_path) as env:
        browser = PortalBrowser(env)
        await browser.sign_in_form("alice")
        mfa = await browser.mfa_page()
        assert "One more step to continue." in mfa.text
        assert 'href="/_gateway/signout"' in mfa.text
        assert "/owa/" not in mfa.text
