"""Red team, second pass: the MFA handlers themselves.

The attacker knows alice's password and holds a pending session of their own; they try the MFA
endpoints with every method, body and header shape, replay a code alice used, and run two sign-ins
of the same user side by side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.flow.conftest import Browser, FlowEnv, flow_environment
from tests.logs import CapturedLogs, events


@pytest.fixture
async def env() -> AsyncIterator[FlowEnv]:
    async with flow_environment() as running:
        yield running


async def at_mfa_page(browser: Browser, user: str = "alice") -> None:
    assert (await browser.password(user)).location == "/_gateway/mfa"
    assert (await browser.mfa_page()).status == 200


def exchange_session(browser: Browser) -> bool:
    return browser.has_exchange_session()


async def test_a_code_alice_used_does_not_pass_a_second_session(env: FlowEnv,
                                                                 captured_logs: CapturedLogs) -> None:
    """Monosign's simulator refuses a replayed code; the gateway must not depend on that."""
    alice, attacker = env.browser(), env.browser()
    await at_mfa_page(alice)
    await at_mfa_page(attacker)
    code = await env.code("alice")
    assert (await alice.verify(code)).location == "/owa/"
    env.monosign.state.last_timecode.clear()  # a Monosign that would accept the code again
    replay = await attacker.verify(code)
    assert replay.status == 200, replay.location
    assert "That code is not correct" in replay.text
    assert not exchange_session(attacker)
    failed = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "code_failed"]
    assert [event["reason"] for event in failed] == ["replayed"]


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "GET"])
async def test_the_post_endpoints_take_only_post(env: FlowEnv, method: str) -> None:
    browser = env.browser()
    await at_mfa_page(browser)
    for path in ("/_gateway/mfa/verify", "/_gateway/mfa/push"):
        page = await browser.request(method, f"{path}?code={await env.code('alice')}&csrf_token={browser.csrf_token}",
                                     headers={"X-HTTP-Method-Override": "POST"})
        assert page.status == 405, (method, path)
    assert await env.monosign_calls("verify_code") == []
    assert await env.monosign_calls("start_push") == []
    assert not exchange_session(browser)


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", '{"code": "CODE", "csrf_token": "TOKEN"}'),
    ("multipart/form-data; boundary=x",
     '--x\r\nContent-Disposition: form-data; name="code"\r\n\r\nCODE\r\n--x\r\n'
     'Content-Disposition: form-data; name="csrf_token"\r\n\r\nTOKEN\r\n--x--\r\n'),
    ("text/plain", "code=CODE&csrf_token=TOKEN"),
    ("application/x-www-form-urlencoded; charset=utf-16", "code=CODE&csrf_token=TOKEN"),
    ("application/x-www-form-urlencoded", "code=CODE&csrf_token=TOKEN&code=000000"),
    ("application/x-www-form-urlencoded", "code=000000&code=CODE&csrf_token=TOKEN"),
    ("application/x-www-form-urlencoded", "code=CODE&csrf_token=TOKEN&csrf_token=TOKEN"),
    ("application/x-www-form-urlencoded", "code=CODE&csrf_token=TOKEN%00"),
    ("application/x-www-form-urlencoded", "code=CODE&csrf_token=" + "T" * 5000),
])
async def test_only_a_plain_form_is_read(env: FlowEnv, content_type: str, body: str) -> None:
    browser = env.browser()
    await at_mfa_page(browser)
    payload = body.replace("CODE", await env.code("alice")).replace("TOKEN", browser.csrf_token)
    page = await browser.request("POST", "/_gateway/mfa/verify", data=payload.encode(),
                                 headers={"Content-Type": content_type})
    assert page.status in (403, 413), page.status
    assert await env.monosign_calls("verify_code") == []
    assert not exchange_session(browser)


async def test_the_pending_cookie_opens_nothing_once_the_session_moved_on(env: FlowEnv) -> None:
    """After the second factor the session id changes: the old (pending) cookie is dead for every
    MFA endpoint, and cannot pick up the held Exchange cookies a second time."""
    browser = env.browser()
    await at_mfa_page(browser)
    pending = dict(browser.cookies)
    token = browser.csrf_token
    assert (await browser.verify(await env.code("alice"))).location == "/owa/"
    old = env.browser()
    old.cookies = pending
    for page in (await old.get("/_gateway/mfa"), await old.complete(),
                 await old.verify(await env.code("alice"), csrf_token=token),
                 await old.push(csrf_token=token)):
        assert page.status in (302, 303), page.status
        assert "/owa/auth/logon.aspx" in page.location
        assert not exchange_session(old)
    assert (await old.get("/owa/")).status == 302


async def test_two_sign_ins_of_one_user_pass_one_at_a_time(env: FlowEnv) -> None:
    """alice approving the push of her own sign-in completes that one, not the attacker's."""
    alice, attacker = env.browser(), env.browser()
    await at_mfa_page(attacker)
    assert (await attacker.push()).status == 303
    await at_mfa_page(alice)
    assert (await alice.push()).status == 303
    await env.approve("alice")  # the newest push: alice's own
    assert (await alice.complete()).location == "/owa/"
    page = await attacker.complete()
    assert page.status == 200  # still waiting
    assert not exchange_session(attacker)
    assert (await attacker.get("/owa/")).location == "/_gateway/mfa"
