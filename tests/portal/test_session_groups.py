"""A session group through the real gateway: two portal sites under one parent domain share one
sign-in (the group's cookie, `Domain=<cookie_domain>`), a third site under the same domain but outside
the group does not accept it; signing out on one signs out on all. Over http and over https
(trustme: one certificate for every host, the browser checks it by SNI)."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from gateway.policy.owa_responses import parse_set_cookie
from gateway.sim.app.server import running_app_sim
from tests.flow.conftest import FlowEnv, Page
from tests.portal.jar import JarBrowser, domain_attribute
from tests.portal.kit import APP_HOST, PASSWORDS, WIKI_HOST, portal_environment, portal_site
from tests.portal.support import CRM_HOST, get_raw, running_portal
from tests.portal.support import WIKI_HOST as SUPPORT_WIKI_HOST

OUTSIDE_HOST = "crm.corp.example"  # under the group's domain, in no group
GROUP = {"session_groups": [{"name": "corp", "cookie_domain": "corp.example"}]}
PUBLIC_HOST = "mail.corp.example"


@asynccontextmanager
async def group_environment(tmp_path: Path, *, https: bool) -> AsyncIterator[tuple[FlowEnv, JarBrowser, Any]]:
    settings: dict[str, Any] = {}
    context: ssl.SSLContext | None = None
    if https:
        ca = trustme.CA()
        cert = ca.issue_cert(PUBLIC_HOST, APP_HOST, WIKI_HOST, OUTSIDE_HOST)
        cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
        cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
        settings = {"gateway_public_url": f"https://{PUBLIC_HOST}", "gateway_tls_cert_file": tmp_path / "cert.pem",
                    "gateway_tls_key_file": tmp_path / "key.pem"}
        context = ssl.create_default_context()
        ca.configure_trust(context)
    async with running_app_sim() as app:
        sites = [portal_site("app", APP_HOST, upstream=app.base_url, session_group="corp"),
                 portal_site("wiki", WIKI_HOST, upstream=app.base_url, session_group="corp"),
                 portal_site("crm", OUTSIDE_HOST, upstream=app.base_url)]
        async with portal_environment(tmp_path, sites=sites, extra=GROUP, **settings) as env:
            yield env, JarBrowser(env, ssl=context), app


def group_cookie_name(https: bool) -> str:
    return "__Secure-msgw-group-corp" if https else "msgw-group-corp"


def session_set_cookies(page: Page, name: str) -> list[str]:
    return [value for value in page.set_cookies if parse_set_cookie(value).name == name]


def echoed_cookies(page: Page) -> list[str]:
    return [value for name, value in json.loads(page.text)["headers"] if name.lower() == "cookie"]


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
async def test_one_sign_in_opens_every_site_of_the_group_and_one_sign_out_ends_it(tmp_path: Path,
                                                                                  https: bool) -> None:
    name = group_cookie_name(https)
    async with group_environment(tmp_path, https=https) as (_env, browser, app):
        final = await browser.sign_in(APP_HOST, rd="/reports?q=1")
        assert final.location == "/reports?q=1"
        # The rotation at the end of the second factor sets the group's cookie, for the whole domain.
        (rotated,) = session_set_cookies(final, name)
        assert domain_attribute(rotated) == "corp.example"
        assert ("Secure" in rotated.split("; ")) is https
        assert not any(parse_set_cookie(value).name in ("msgw", "__Host-msgw") for value in final.set_cookies)
        session = browser.cookies_for(WIKI_HOST)[name]

        for host in (APP_HOST, WIKI_HOST):  # both open, with the user's identity, no second sign-in
            page = await browser.get(host, "/_app/echo")
            assert page.status == 200, (host, page.status, page.text[:200])
            received = dict(json.loads(page.text)["headers"])
            assert received["Remote-User"] == "alice"
            assert all(name.lower() not in value.lower() and "msgw" not in value.lower()
                       for value in echoed_cookies(page))
        # The wiki's sign-in page knows the browser is signed in already.
        page = await browser.get(WIKI_HOST, "/_gateway/signin?rd=%2Fpage")
        assert (page.status, page.location) == (303, "/page")

        # The site outside the group receives the cookie (it is under the domain) and ignores it.
        assert name in browser.cookies_for(OUTSIDE_HOST)
        page = await browser.get(OUTSIDE_HOST, "/page")
        assert (page.status, page.location) == (302, "/_gateway/signin?rd=/page")
        page = await browser.get(OUTSIDE_HOST, "/_gateway/signin")
        assert page.status == 200
        assert 'name="password"' in page.text
        assert (await browser.get(OUTSIDE_HOST, "/_app/echo", navigate=False,
                                  headers={"Accept": "application/json"})).status == 401

        # Sign out on the wiki: the session ends for the group, the cookie expires with its Domain.
        page = await browser.get(WIKI_HOST, "/_gateway/signout")
        assert page.status == 303
        (expired,) = session_set_cookies(page, name)
        assert domain_attribute(expired) == "corp.example"
        assert parse_set_cookie(expired).is_deletion(0)
        assert name not in browser.cookies_for(APP_HOST)
        for host in (APP_HOST, WIKI_HOST):
            page = await browser.get(host, "/page")
            assert (page.status, page.location) == (302, "/_gateway/signin?rd=/page")
            # The old value, replayed, is no session either: it ended in the store.
            page = await browser.get(host, "/page", headers={"Cookie": f"{name}={session}"})
            assert (page.status, page.location) == (302, "/_gateway/signin?rd=/page")
        paths = [path for path in app.state.paths if path != "/_app/echo"]
        assert paths == []  # nothing but the two echoes reached the application


async def test_a_host_only_session_of_a_group_site_opens_nothing_else(tmp_path: Path) -> None:
    """The site outside the group signs in with its host-only cookie, which no other host receives."""
    async with group_environment(tmp_path, https=False) as (_env, browser, _app):
        await browser.sign_in(OUTSIDE_HOST, "bob", rd="/page")
        assert "msgw" in browser.cookies_for(OUTSIDE_HOST)
        assert browser.cookies_for(APP_HOST) == {}
        assert (await browser.get(OUTSIDE_HOST, "/page")).status == 200
        page = await browser.get(APP_HOST, "/page")
        assert (page.status, page.location) == (302, "/_gateway/signin?rd=/page")


@pytest.mark.browser
async def test_a_session_group_in_chromium(tmp_path: Path) -> None:
    """The same in a real browser: Chromium itself stores the Domain cookie and sends it to the other
    host of the group (the hosts are mapped to the loopback listener by its resolver rules)."""
    from playwright.async_api import async_playwright, expect

    from tests.browser import CHROMIUM_ARGS
    from tests.tools import require_chromium

    executable = require_chromium()
    rules = ", ".join(f"MAP {host} 127.0.0.1" for host in (APP_HOST, WIKI_HOST, OUTSIDE_HOST))
    async with group_environment(tmp_path, https=False) as (env, _browser, _app), async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=executable,
                                                    args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"])
        try:
            context = await chromium.new_context(locale="en-US")
            context.set_default_timeout(15_000)
            page = await context.new_page()
            app_base, wiki_base = f"http://{APP_HOST}:{env.port}", f"http://{WIKI_HOST}:{env.port}"
            await page.goto(f"{app_base}/_gateway/signin?rd=%2Freports")
            await page.fill("#username", "alice")
            await page.fill("#password", PASSWORDS["alice"])
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{app_base}/_gateway/mfa")
            await page.fill("#code", await env.code("alice"))
            await page.locator("form[action='/_gateway/mfa/verify'] button[type=submit]").click()
            await page.wait_for_url(f"{app_base}/reports")
            cookies = {cookie["name"]: cookie for cookie in await context.cookies()}
            assert cookies["msgw-group-corp"]["domain"] == ".corp.example"

            answer = await page.goto(f"{wiki_base}/_app/echo")
            assert answer is not None
            assert answer.status == 200
            assert dict(json.loads(await answer.text())["headers"])["Remote-User"] == "alice"
            await page.goto(f"http://{OUTSIDE_HOST}:{env.port}/page")
            await expect(page).to_have_url(f"http://{OUTSIDE_HOST}:{env.port}/_gateway/signin?rd=/page")

            await page.goto(f"{wiki_base}/_gateway/signout")
            await page.goto(f"{app_base}/page")
            await expect(page).to_have_url(f"{app_base}/_gateway/signin?rd=/page")
            assert "msgw-group-corp" not in {cookie["name"] for cookie in await context.cookies()}
            await context.close()
        finally:
            await chromium.close()


async def test_forward_auth_reads_the_group_s_cookie(tmp_path: Path) -> None:
    """`/_gateway/auth` decides with the cookie of the original host's site: the group's for a site of
    the group (made on another of its sites), never the host-only one there."""
    group = {"session_groups": [{"name": "corp", "cookie_domain": "example.test"}]}
    async with running_portal(tmp_path, wiki={"session_group": "corp"}, extra=group,
                              gateway_trusted_proxies=["127.0.0.1/32"]) as portal:
        data = json.loads(portal.config_file.read_text())
        data["sites"][2]["session_group"] = "corp"
        portal.config_file.write_text(json.dumps(data))
        assert portal.gateway.gateway.live is not None
        assert portal.gateway.gateway.live.reload().changed
        grouped = await portal.session(site="crm", cookie_name="msgw-group-corp")
        host_only = await portal.session(site="wiki")
        for host in (SUPPORT_WIKI_HOST, CRM_HOST):
            described = (f"X-Original-URL: http://{host}/page", "X-Original-Method: GET")
            status, headers, _ = await get_raw(portal, "/_gateway/auth", *described, f"Cookie: {grouped}")
            assert status == 200
            assert ("Remote-User", "alice") in headers
            status, _, _ = await get_raw(portal, "/_gateway/auth", *described, f"Cookie: {host_only}")
            assert status == 401
