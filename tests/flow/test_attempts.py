"""Attempts at the second factor: wrong and malformed codes, lockout per user and per address, CSRF
on the MFA forms, rejected and expired pushes, one push at a time."""

from __future__ import annotations

import asyncio

import pytest

from gateway.mfa.poller import DIRECT_CHECK_SECONDS
from gateway.policy.owa_responses import live_cadata
from tests.flow.conftest import Browser, EnvFactory, FlowEnv
from tests.logs import CapturedLogs, events

# The gateway trusts 127.0.0.1 as a proxy in these tests, so X-Forwarded-For names the client address.
PROXIED = {"gateway_trusted_proxies": "127.0.0.1/32", "gateway_mfa_max_failures": 3}


def from_address(env: FlowEnv, address: str) -> Browser:
    browser = env.browser()
    browser.extra_headers["X-Forwarded-For"] = address
    return browser


async def at_mfa_page(browser: Browser, user: str) -> None:
    assert (await browser.password(user)).location == "/_gateway/mfa"
    assert (await browser.mfa_page()).status == 200


async def test_wrong_and_malformed_codes(env: FlowEnv) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    wrong = await browser.verify("000000")
    assert wrong.status == 200
    assert "That code is not correct" in wrong.text
    assert "4 attempts left" in wrong.text
    assert not live_cadata(wrong.set_cookies)
    verify_calls = len(await env.monosign_calls("verify_code"))
    for malformed in ("12345", "123456789", "١٢٣٤٥٦"):  # too short, too long, not ASCII digits
        page = await browser.verify(malformed)
        assert "Enter only the digits" in page.text
    assert len(await env.monosign_calls("verify_code")) == verify_calls  # never sent to Monosign
    assert (await browser.verify(await env.code("alice"))).location == "/owa/"
    metrics = await env.metrics()
    assert 'gateway_authn_second_factor_total{method="totp",result="failure"} 4.0' in metrics
    assert 'gateway_authn_second_factor_total{method="totp",result="success"} 1.0' in metrics
    assert "gateway_authn_login_duration_seconds_count 1.0" in metrics


async def test_lockout_per_user_across_addresses_and_sessions(start_env: EnvFactory,
                                                              captured_logs: CapturedLogs) -> None:
    # The user's overall count (the high threshold, here 3): failures from two networks add up.
    env = await start_env(**{**PROXIED, "gateway_mfa_max_failures": 10, "gateway_mfa_max_failures_user": 3})
    first, second = from_address(env, "10.0.1.1"), from_address(env, "10.0.2.1")
    await at_mfa_page(first, "CORP\\alice")
    await at_mfa_page(second, "alice@corp.example")  # another form of the same Monosign user
    assert "2 attempts left" in (await first.verify("000001")).text
    assert "1 attempt left" in (await first.verify("000002")).text
    locked = await second.verify("000003")
    assert locked.status == 429
    assert "Try again in 5 minutes" in locked.text
    assert locked.headers["Retry-After"] == "300"
    # Locked: even the right code is not tried, from either address.
    calls = len(await env.monosign_calls("verify_code"))
    assert (await first.verify(await env.code("alice"))).status == 429
    assert (await first.mfa_page()).status == 429
    assert len(await env.monosign_calls("verify_code")) == calls
    # Another user at another address is not affected.
    other = from_address(env, "10.0.0.3")
    await at_mfa_page(other, "bob")
    assert (await other.verify(await env.code("bob"))).location == "/owa/"
    lockouts = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "lockout"]
    assert [event["scope"] for event in lockouts] == ["user"]
    assert 'gateway_authn_lockouts_total{scope="user"} 1.0' in await env.metrics()


async def test_lockout_per_address_across_users(start_env: EnvFactory) -> None:
    env = await start_env(**PROXIED, gateway_mfa_max_failures_ip=3)
    alice, bob = from_address(env, "10.0.0.9"), from_address(env, "10.0.0.9")
    await at_mfa_page(alice, "alice")
    await at_mfa_page(bob, "bob")
    await alice.verify("000001")
    await bob.verify("000002")
    assert (await alice.verify("000003")).status == 429  # three failures from one address
    dave = from_address(env, "10.0.0.9")
    await dave.password("dave")
    assert (await dave.mfa_page()).status == 429
    elsewhere = from_address(env, "10.0.0.10")  # alice has two failures of her own: not locked
    await at_mfa_page(elsewhere, "alice")
    assert (await elsewhere.verify(await env.code("alice"))).location == "/owa/"


async def test_monosign_lockout_is_shown(start_env: EnvFactory) -> None:
    env = await start_env(gateway_mfa_max_failures=20, monosign_options={"lock_after": 2})
    browser = env.browser()
    await at_mfa_page(browser, "bob")
    await browser.verify("000001")
    locked = await browser.verify("000002")
    assert locked.status == 429
    assert "Too many attempts" in locked.text


@pytest.mark.parametrize(("case", "token", "headers"), [
    ("missing token", "", {}),
    ("wrong token", "not-the-token", {}),
    ("foreign origin", None, {"Origin": "https://evil.example"}),
    ("null origin", None, {"Origin": "null"}),
    ("cross-site fetch", None, {"Sec-Fetch-Site": "cross-site"}),
    ("same-site fetch", None, {"Sec-Fetch-Site": "same-site"}),
])
async def test_csrf_on_verify_and_push(env: FlowEnv, case: str, token: str | None, headers: dict[str, str]) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    code = await env.code("alice")
    page = await browser.verify(code, csrf_token=token, headers=headers)
    assert page.status == 403, case
    assert "This form has expired" in page.text
    assert not live_cadata(page.set_cookies)
    assert (await browser.push(csrf_token=token, headers=headers)).status == 403
    assert await env.monosign_calls("verify_code") == []
    assert await env.monosign_calls("start_push") == []
    # The session is intact: the real form still works.
    assert (await browser.verify(code)).location == "/owa/"


async def test_csrf_token_of_another_session_is_refused(env: FlowEnv) -> None:
    attacker, victim = env.browser(), env.browser()
    await at_mfa_page(attacker, "bob")
    await at_mfa_page(victim, "alice")
    assert (await victim.verify("123456", csrf_token=attacker.csrf_token)).status == 403


async def test_a_script_without_fetch_metadata_still_needs_the_token(env: FlowEnv) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    form = {"code": await env.code("alice"), "csrf_token": browser.csrf_token}
    page = await browser.request("POST", "/_gateway/mfa/verify", data=form, navigate=False)
    assert page.location == "/owa/"


async def test_push_and_verify_only_by_post(env: FlowEnv) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    assert (await browser.get("/_gateway/mfa/push")).status == 405
    assert (await browser.get("/_gateway/mfa/verify?code=123456")).status == 405
    assert await env.monosign_calls("start_push") == []


async def wait_status(browser: Browser, wanted: str) -> None:
    for _ in range(80):
        _, body = await browser.status()
        if body["status"] == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"push status never became {wanted}")


async def test_rejected_push_goes_back_to_the_choice(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    await browser.push()
    assert (await browser.push()).status == 303  # a second press sends no second push
    assert len(await env.monosign_calls("start_push")) == 1
    await env.reject("alice")
    await wait_status(browser, "rejected")
    page = await browser.complete()
    assert page.status == 200
    assert "rejected on your phone" in page.text
    assert not live_cadata(page.set_cookies)
    assert (await browser.get("/owa/")).location == "/_gateway/mfa"
    audit = [event["event"] for event in events(captured_logs(), "gateway.audit")]
    assert "push_sent" in audit
    assert "push_rejected" in audit
    # A new push may be sent after the rejection.
    assert (await browser.push()).status == 303
    await env.approve("alice")
    await wait_status(browser, "approved")
    assert (await browser.complete()).location == "/owa/"


async def test_expired_push(start_env: EnvFactory) -> None:
    env = await start_env(monosign_options={"push_ttl": 0.5})
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    await browser.push()
    await wait_status(browser, "expired")
    page = await browser.complete()
    assert "expired before it was approved" in page.text
    assert (await browser.get("/owa/")).location == "/_gateway/mfa"


async def test_complete_without_javascript(env: FlowEnv) -> None:
    """The waiting page's refresh and the "I have approved it" button land on /complete."""
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    await browser.push()
    waiting = await browser.complete()
    assert waiting.status == 200
    assert 'http-equiv="refresh"' in waiting.text
    await env.approve("dave")
    for _ in range(80):
        page = await browser.complete()
        if page.status == 302:
            break
        await asyncio.sleep(0.1)
    assert page.location == "/owa/"
    assert (await browser.get("/owa/")).status == 200


async def poller_has_asked(env: FlowEnv) -> None:
    """Wait for the poller's first Monosign call: its next turn is then half a second away."""
    for _ in range(50):
        if await env.monosign_calls("push_status"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the poller never asked Monosign")


async def test_complete_right_after_the_approval_signs_in(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    """"I have approved it" at once: the gateway asks Monosign itself instead of waiting for its poller."""
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    assert (await browser.push()).status == 303
    await poller_has_asked(env)
    await env.approve("dave")
    page = await browser.complete()
    assert (page.status, page.location) == (302, "/owa/")
    assert live_cadata(page.set_cookies)
    assert (await browser.get("/owa/")).status == 200
    audit = [event["event"] for event in events(captured_logs(), "gateway.audit")]
    assert audit.count("push_approved") == 1


async def test_a_burst_of_complete_requests_is_not_a_burst_of_monosign_calls(
        env: FlowEnv, captured_logs: CapturedLogs) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    await browser.push()
    await poller_has_asked(env)
    before = len(await env.monosign_calls("push_status"))
    waiting = await asyncio.gather(*(browser.complete() for _ in range(20)))
    assert {page.status for page in waiting} == {200}  # not approved yet: the waiting page
    # One direct check for the twenty (at most one per push per second), perhaps one poller turn.
    assert len(await env.monosign_calls("push_status")) - before <= 2

    await env.approve("dave")
    await asyncio.sleep(DIRECT_CHECK_SECONDS + 0.1)
    pages = await asyncio.gather(*(browser.complete() for _ in range(10)))
    signed_in = [page for page in pages if page.status == 302 and page.location == "/owa/"]
    assert len(signed_in) == 1  # the session was rotated once; the others find it changed or gone
    assert all(not live_cadata(page.set_cookies) for page in pages if page not in signed_in)
    audit = [event["event"] for event in events(captured_logs(), "gateway.audit")]
    assert audit.count("push_approved") == 1


async def test_a_burst_of_parallel_guesses_is_counted_one_by_one(start_env: EnvFactory) -> None:
    env = await start_env(gateway_mfa_max_failures=3)
    browsers = [env.browser() for _ in range(4)]
    for browser in browsers:  # four sessions of the same user, as an attacker with the password could open
        await at_mfa_page(browser, "alice")
    pages = await asyncio.gather(*(browser.verify(f"00000{index % 10}") for index, browser in
                                   enumerate(browsers * 3)))
    assert len(await env.monosign_calls("verify_code")) == 3  # the rest found the lock set
    assert sum(page.status == 429 for page in pages) == len(pages) - 2


async def test_pushes_per_user_are_limited(start_env: EnvFactory, captured_logs: CapturedLogs) -> None:
    env = await start_env(gateway_mfa_max_pushes=2, monosign_options={"push_ttl": 0.3})
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    for _ in range(2):  # unanswered pushes are not failures, but they are counted
        assert (await browser.push()).location == "/_gateway/mfa"
        await wait_status(browser, "expired")
        assert "expired before it was approved" in (await browser.complete()).text
    refused = await browser.push()
    assert refused.status == 429
    assert len(await env.monosign_calls("start_push")) == 2
    reasons = [event.get("reason") for event in events(captured_logs(), "gateway.audit")]
    assert "too_many_pushes" in reasons
