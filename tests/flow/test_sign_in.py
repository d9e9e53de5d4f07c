"""The OWA sign-in end to end: password, second factor (code or push), mailbox; and what never leaks."""

from __future__ import annotations

import asyncio
import re

from gateway.policy.owa_responses import live_cadata
from tests.flow.conftest import API_SECRET, CADATA_NAMES, PASSWORDS, FlowEnv
from tests.logs import CapturedLogs, events


async def test_code_sign_in_holds_exchange_session_until_the_second_factor(env: FlowEnv) -> None:
    browser = env.browser()
    logon = await browser.get("/owa/")
    assert logon.status == 302
    assert logon.location.startswith("/owa/auth/logon.aspx?url=http%3A%2F%2Fmail.corp.example%2Fowa%2F&reason=0")
    assert (await browser.get(logon.location)).status == 200  # Exchange's logon page, through the gateway

    first = await browser.password("alice")
    assert first.status == 302
    assert first.location == "/_gateway/mfa"
    assert not live_cadata(first.set_cookies), first.set_cookies
    assert not browser.has_exchange_session()
    pending_cookie = browser.gateway_cookie
    assert pending_cookie is not None

    # Pending: the mailbox is not reachable, navigations go to the MFA page, scripts get 440.
    assert (await browser.get("/owa/")).location == "/_gateway/mfa"
    xhr = await browser.request("POST", "/owa/service.svc?action=GetFolder", navigate=False,
                                headers={"X-Requested-With": "XMLHttpRequest"})
    assert xhr.status == 440

    page = await browser.mfa_page()
    assert page.status == 200
    assert "Alice Archer" in page.text
    final = await browser.verify(await env.code("alice"))
    assert final.status == 302
    assert final.location == "/owa/"
    assert {name.lower() for name in final.set_cookie_names()} >= CADATA_NAMES
    assert browser.gateway_cookie not in (None, pending_cookie)  # rotated at the change of privilege

    mailbox = await browser.get("/owa/")
    assert mailbox.status == 200
    assert "Alice Archer" in mailbox.text

    # The held cookies were replayed byte for byte: Exchange accepts them as its own session.
    logins = [r for r in await env.owa_requests() if r["target"].lower() == "/owa/" and r["status"] == 200]
    assert logins


async def test_push_sign_in_polls_monosign_once_per_push(env: FlowEnv) -> None:
    browser = env.browser()
    await browser.password("alice")
    await browser.mfa_page()
    sent = await browser.push()
    assert sent.status == 303
    assert sent.location == "/_gateway/mfa"
    waiting = await browser.mfa_page()
    assert "data-status-url" in waiting.text

    for _ in range(10):
        status, body = await browser.status()
        assert (status, body) == (200, {"status": "pending"})
    await env.approve("alice")
    for _ in range(50):
        status, body = await browser.status()
        if body["status"] != "pending":
            break
        await asyncio.sleep(0.1)
    assert body == {"status": "approved"}
    final = await browser.complete()
    assert final.status == 302
    assert final.location == "/owa/"
    assert (await browser.get("/owa/")).status == 200
    # Dozens of browser polls, a handful of Monosign calls: one poller with back-off.
    assert len(await env.monosign_calls("push_status")) <= 8


async def test_no_secret_reaches_a_log_line(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    browser = env.browser()
    first = await browser.password("bob")
    pending_cookie = browser.gateway_cookie
    code = await env.code("bob")
    await browser.mfa_page()
    await browser.verify("000000")
    final = await browser.verify(code)
    assert final.status == 302
    cadata = [value for name, value in browser.cookies.items() if name.lower() in CADATA_NAMES]
    assert cadata
    lines = captured_logs()
    assert any('"audit": true' in line for line in lines)
    secrets = [PASSWORDS["bob"], code, API_SECRET, pending_cookie, browser.gateway_cookie, browser.csrf_token,
               *cadata]
    assert all(secrets)
    for line in lines:
        for secret in secrets:
            assert secret not in line, line
    audit = [event["event"] for event in events(lines, "gateway.audit")]
    assert audit.count("first_factor_ok") == 1
    assert {"mfa_started", "code_failed", "code_ok"} <= set(audit)
    assert first.status == 302


async def test_mfa_page_assets_and_headers(env: FlowEnv) -> None:
    browser = env.browser()
    await browser.password("alice")
    page = await browser.mfa_page()
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    for url in re.findall(r'(?:href|src)="(/_gateway/static/[^"]+)"', page.text):
        asset = await browser.request("GET", url.replace("&amp;", "&"), navigate=False)
        assert asset.status == 200, url
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    assert (await browser.request("GET", "/_gateway/static/../app.py", navigate=False)).status in (400, 404)
    assert (await browser.request("GET", "/_gateway/static/nothing.js", navigate=False)).status == 404
