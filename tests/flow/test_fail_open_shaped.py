"""GATEWAY_FAIL_MODE=open cannot be opened by whoever signs in: only a Monosign that does not answer
at all lets users in. Odd answers (that a shaped input could provoke) and odd inputs fail closed.

Real servers: the OWA and Monosign simulators, the gateway in-process."""

from __future__ import annotations

import pytest

from gateway.sim.owa import OwaSimConfig, SimUser, demo_users
from tests.flow.conftest import EXTRA_OWA_USERS, EnvFactory
from tests.flow.test_failures import assert_no_exchange_session
from tests.logs import CapturedLogs, events

THRESHOLD = 2


@pytest.mark.parametrize("fault", ["html500", "html502", "garbage"])
async def test_odd_answers_fail_closed_and_never_open_the_breaker(start_env: EnvFactory, fault: str) -> None:
    env = await start_env(gateway_fail_mode="open", monosign_breaker_threshold=THRESHOLD)
    await env.fault(fault)
    for _ in range(THRESHOLD * 3):
        browser = env.browser()
        page = await browser.password("alice")
        assert page.status == 503, page.text[:300]
        assert_no_exchange_session(page.set_cookies)
        assert not browser.has_exchange_session()
    bypasses = [line for line in (await env.metrics()).splitlines()
                if line.startswith('gateway_authn_bypasses_total{kind="fail_open"}')]
    assert all(line.endswith(" 0.0") for line in bypasses), bypasses
    # The breaker never opened: Monosign was asked every time (and is asked again now).
    assert len(await env.monosign_calls("fault")) == THRESHOLD * 3
    await env.monosign.clear_faults()
    assert (await env.browser().password("alice")).location == "/_gateway/mfa"


async def test_odd_answer_during_the_second_factor_fails_closed(start_env: EnvFactory) -> None:
    env = await start_env(gateway_fail_mode="open", monosign_breaker_threshold=THRESHOLD)
    browser = env.browser()
    await browser.password("bob")
    await browser.mfa_page()
    await env.fault("html500")
    for _ in range(THRESHOLD * 2):
        page = await browser.verify("123456")
        assert page.status == 503
        assert_no_exchange_session(page.set_cookies)
    assert (await browser.get("/owa/")).location == "/_gateway/mfa"


# Names Exchange accepts (the OWA simulator has these mailboxes) but that are outside the grammar of
# a name for Monosign: refused before any call, with a clear page, even in fail-open mode.
ODD_NAMES = ("mallory*", "mallory(x)", "mallory;x", "mallory<b>", 'mallory"x', "mallory%25", "mallory?x=1",
             "mallory|x", "mallory,x", "mallory=x")


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_an_odd_user_name_is_refused_before_monosign(start_env: EnvFactory, captured_logs: CapturedLogs,
                                                           name: str) -> None:
    owa = OwaSimConfig(users=(*demo_users(), *EXTRA_OWA_USERS, SimUser(username=name, password="MalloryPass1!",
                                                                      display_name="Mallory")),
                       redirect_scheme="request")
    env = await start_env(owa=owa, gateway_fail_mode="open")
    browser = env.browser()
    page = await browser.password(name, "MalloryPass1!")
    assert page.status == 400
    assert "This sign-in cannot be checked" in page.text
    assert_no_exchange_session(page.set_cookies)
    assert not browser.has_exchange_session()
    assert await env.monosign_calls() == []
    refusals = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "refused"]
    assert [event["reason"] for event in refusals] == ["monosign_input_refused"]
