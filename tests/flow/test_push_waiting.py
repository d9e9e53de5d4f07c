"""Waiting for a push, over HTTP: the time left, "Send again" (within the push limits and CSRF), cancel /
"Use a code instead" (a later approval of the forgotten push counts for nothing), and a code pasted
with spaces."""

from __future__ import annotations

import asyncio
import re

import pytest

from gateway.policy.owa_responses import live_cadata
from tests.flow.conftest import Browser, EnvFactory, FlowEnv, Page
from tests.logs import CapturedLogs, events

COUNTDOWN = re.compile(r'data-countdown="(\d+)"[^>]*>The request expires in (\d+):(\d\d)\.</p>')


async def at_mfa_page(browser: Browser, user: str) -> None:
    assert (await browser.password(user)).location == "/_gateway/mfa"
    assert (await browser.mfa_page()).status == 200


async def wait_status(browser: Browser, wanted: str) -> None:
    for _ in range(80):
        _, body = await browser.status()
        if body["status"] == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"push status never became {wanted}")


async def post(browser: Browser, path: str, fields: dict[str, str], *, token: str | None = None,
               headers: dict[str, str] | None = None) -> Page:
    return await browser.request("POST", path, data={"csrf_token": browser.csrf_token if token is None else token,
                                                     **fields}, headers=headers)


async def resend(browser: Browser, *, token: str | None = None, headers: dict[str, str] | None = None) -> Page:
    return await post(browser, "/_gateway/mfa/push", {"resend": "1"}, token=token, headers=headers)


def pushes_of(env: FlowEnv) -> list[str]:
    return [push.request_id for push in sorted(env.monosign.state.pushes.values(), key=lambda push: push.created)]


async def test_the_waiting_page_shows_the_time_left(env: FlowEnv) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    assert "The request expires in" not in (await browser.mfa_page()).text  # nothing is waiting yet
    await browser.push()
    for page in (await browser.mfa_page(), await browser.complete()):  # the page, and the no-script refresh
        found = COUNTDOWN.search(page.text)
        assert found is not None, page.text[:2000]
        seconds, minutes, rest = (int(group) for group in found.groups())
        assert 0 < seconds <= 60  # the simulator's pushes live 60 s
        assert minutes * 60 + rest == seconds


async def test_send_again_replaces_the_waiting_push(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    await browser.push()
    assert (await browser.push()).status == 303  # "Send request" twice: still one push
    assert len(pushes_of(env)) == 1
    again = await resend(browser)
    assert (again.status, again.location) == (303, "/_gateway/mfa")
    first, second = pushes_of(env)
    # The first push, approved late on the phone, does not sign in: the session waits for the second.
    env.monosign.state.answer_push(first, approve=True)
    await asyncio.sleep(0.6)
    assert (await browser.complete()).status == 200
    assert not browser.has_exchange_session()
    env.monosign.state.answer_push(second, approve=True)
    await wait_status(browser, "approved")
    assert (await browser.complete()).location == "/owa/"
    sent = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "push_sent"]
    assert [event.get("replaced_push_request_id") for event in sent] == [None, first]


async def test_send_again_after_the_approval_finishes_instead(env: FlowEnv) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    await browser.push()
    await env.approve("dave")
    await wait_status(browser, "approved")
    again = await resend(browser)
    assert again.location == "/_gateway/mfa/complete"
    assert len(pushes_of(env)) == 1
    assert (await browser.complete()).location == "/owa/"


async def test_send_again_counts_against_the_push_limit(start_env: EnvFactory, captured_logs: CapturedLogs) -> None:
    env = await start_env(gateway_mfa_max_pushes=2)
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    await browser.push()
    assert (await resend(browser)).status == 303
    refused = await resend(browser)
    assert refused.status == 429
    assert len(pushes_of(env)) == 2
    assert "too_many_pushes" in [event.get("reason") for event in events(captured_logs(), "gateway.audit")]


@pytest.mark.parametrize(("case", "token", "headers"), [
    ("missing token", "", {}),
    ("wrong token", "not-the-token", {}),
    ("foreign origin", None, {"Origin": "https://evil.example"}),
    ("cross-site fetch", None, {"Sec-Fetch-Site": "cross-site"}),
])
async def test_send_again_and_cancel_need_the_forms_token_and_origin(env: FlowEnv, case: str, token: str | None,
                                                                     headers: dict[str, str]) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "dave")
    await browser.push()
    assert (await resend(browser, token=token, headers=headers)).status == 403, case
    cancelled = await post(browser, "/_gateway/mfa/cancel", {}, token=token, headers=headers)
    assert cancelled.status == 403, case
    assert len(pushes_of(env)) == 1
    _, body = await browser.status()
    assert body["status"] == "pending"  # still waiting for the one push


@pytest.mark.parametrize(("then", "location"), [({"then": "code"}, "/_gateway/mfa#code"), ({}, "/_gateway/mfa")])
async def test_cancel_forgets_the_push(env: FlowEnv, captured_logs: CapturedLogs, then: dict[str, str],
                                       location: str) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    await browser.push()
    page = await post(browser, "/_gateway/mfa/cancel", then)
    assert (page.status, page.location) == (303, location)
    idle = await browser.mfa_page()
    assert "Send request" in idle.text  # the choice again
    assert "The request expires in" not in idle.text
    _, body = await browser.status()
    assert body["status"] == "expired"  # nothing to wait for
    # Approving the forgotten push on the phone signs nobody in.
    await env.approve("alice")
    await asyncio.sleep(0.6)
    assert (await browser.complete()).location == "/_gateway/mfa"
    assert not browser.has_exchange_session()
    assert (await browser.get("/owa/")).location == "/_gateway/mfa"
    assert "push_cancelled" in [event["event"] for event in events(captured_logs(), "gateway.audit")]
    # The code still works after a cancel.
    assert (await browser.verify(await env.code("alice"))).location == "/owa/"


async def test_cancel_without_a_push_is_harmless(env: FlowEnv) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "alice")
    page = await post(browser, "/_gateway/mfa/cancel", {"then": "code"})
    assert page.location == "/_gateway/mfa#code"
    assert (await browser.get("/_gateway/mfa/cancel")).status == 405


@pytest.mark.parametrize("spacing", ["{0}{1} {2}{3}", "{0} {1}", " {0} {1} ", "{0}  {1}", "{0}\t{1}"])
async def test_a_code_pasted_with_spaces_is_accepted(env: FlowEnv, spacing: str) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "bob")
    code = await env.code("bob")
    halves = (code[:3], code[3:]) if "{2}" not in spacing else (code[:2], code[2:3], code[3:5], code[5:])
    page = await browser.verify(spacing.format(*halves))
    assert page.location == "/owa/", page.text[:500]
    assert live_cadata(page.set_cookies)


@pytest.mark.parametrize("typed", ["123-456", "12 34 5", "1234 56789", "123 45a", "123.456", "\uff11\uff12\uff13456"])
async def test_other_separators_and_lengths_are_still_refused(env: FlowEnv, typed: str) -> None:
    browser = env.browser()
    await at_mfa_page(browser, "bob")
    page = await browser.verify(typed)
    assert "Enter only the digits" in page.text
    assert await env.monosign_calls("verify_code") == []
