"""When the second factor cannot happen: Monosign's refusals, outages and misconfiguration, the fail
mode, and a session store that is down. In every case no Exchange session reaches the browser,
unless fail-open was explicitly chosen."""

from __future__ import annotations

import asyncio

import pytest

from gateway.policy.owa_responses import live_cadata
from tests.flow.conftest import CADATA_NAMES, EnvFactory, FlowEnv
from tests.logs import CapturedLogs, events


def assert_no_exchange_session(set_cookies: list[str]) -> None:
    assert not live_cadata(set_cookies), set_cookies


@pytest.mark.parametrize(("user", "status", "text", "audit_reason"), [
    ("carol", 403, "not assigned to this application", "monosign_user_not_assigned"),  # code 22
    ("erin", 403, "Account not found", "monosign_user_not_found"),  # code 21
])
async def test_monosign_refuses_the_user(env: FlowEnv, captured_logs: CapturedLogs, user: str, status: int, text: str,
                                         audit_reason: str) -> None:
    browser = env.browser()
    page = await browser.password(user)
    assert page.status == status
    assert text in page.text
    assert_no_exchange_session(page.set_cookies)
    assert not browser.has_exchange_session()
    assert browser.gateway_cookie is None
    assert (await browser.get("/owa/")).status == 302
    reasons = [event.get("reason") for event in events(captured_logs(), "gateway.audit")]
    assert audit_reason in reasons


async def test_configuration_error_is_loud_and_always_closed(start_env: EnvFactory,
                                                             captured_logs: CapturedLogs) -> None:
    env = await start_env(gateway_fail_mode="open")
    await env.fault("code12")
    page = await env.browser().password("alice")
    assert page.status == 503
    assert "Sign-in is not available" in page.text
    assert_no_exchange_session(page.set_cookies)
    errors = [event for event in events(captured_logs(), "gateway.mfa")
              if event["event"] == "monosign_configuration_error"]
    assert errors
    assert errors[0]["level"] == "error"
    assert "MONOSIGN_API_KEY" in errors[0]["hint"]


@pytest.mark.parametrize("fault", ["refuse", "html502", "slow"])
async def test_monosign_unavailable_fails_closed(start_env: EnvFactory, fault: str) -> None:
    env = await start_env(monosign_timeout=0.5, monosign_connect_timeout=0.5)
    await env.fault(fault, delay=2.0 if fault == "slow" else 0.0, duration=30.0)
    browser = env.browser()
    page = await browser.password("alice")
    assert page.status == 503
    assert "Verification unavailable" in page.text
    assert_no_exchange_session(page.set_cookies)
    assert not browser.has_exchange_session()


async def test_circuit_open_answers_at_once(start_env: EnvFactory) -> None:
    env = await start_env(monosign_breaker_threshold=1, monosign_breaker_cooldown=60)
    await env.fault("refuse", duration=30.0)
    assert (await env.browser().password("alice")).status == 503
    # Informational: every replica shares Monosign, so draining this one would only swap the
    # page below for the load balancer's connection errors. Reported, with the breaker's state.
    async with env.http.get(env.admin_url + "/readyz") as response:
        report = await response.json()
    assert response.status == 200
    assert report["ready"] is True
    assert report["checks"]["monosign"]["ok"] is False
    assert report["checks"]["monosign"]["critical"] is False
    assert report["checks"]["monosign"]["state"] == "open"
    assert "circuit open" in report["checks"]["monosign"]["error"]
    await env.monosign.clear_faults()  # the control API shares the closed listener: reopen in-process
    page = await env.browser().password("bob")  # Monosign is back, but the breaker waits out its cooldown
    assert page.status == 503
    assert page.headers["Retry-After"]
    assert_no_exchange_session(page.set_cookies)


async def test_fail_open_lets_users_in_loudly(start_env: EnvFactory, captured_logs: CapturedLogs) -> None:
    env = await start_env(gateway_fail_mode="open")
    await env.fault("refuse", duration=30.0)
    browser = env.browser()
    page = await browser.password("alice")
    assert page.status == 302
    assert page.location == "http://mail.corp.example/owa/"  # Exchange's own answer, passed through
    assert browser.has_exchange_session()
    assert (await browser.get("/owa/")).status == 200
    lines = captured_logs()
    warnings = [event for event in events(lines, "gateway.owa.login") if event["event"] == "fail_open_bypass"]
    assert warnings
    assert warnings[0]["level"] == "warning"
    assert "fail_open_bypass" in [event["event"] for event in events(lines, "gateway.audit")]
    assert 'gateway_authn_bypasses_total{kind="fail_open"} 1.0' in await env.metrics()


async def test_fail_open_during_the_second_factor(start_env: EnvFactory) -> None:
    env = await start_env(gateway_fail_mode="open")
    browser = env.browser()
    await browser.password("bob")
    await browser.mfa_page()
    await env.fault("refuse", duration=30.0)
    page = await browser.verify("123456")
    assert page.status == 302
    assert page.location == "/owa/"
    assert {name.lower() for name in page.set_cookie_names()} >= CADATA_NAMES
    assert (await browser.get("/owa/")).status == 200


async def test_unreachable_during_the_second_factor_fails_closed(env: FlowEnv) -> None:
    browser = env.browser()
    await browser.password("bob")
    await browser.mfa_page()
    await env.fault("refuse", duration=30.0)
    page = await browser.verify("123456")
    assert page.status == 503
    assert_no_exchange_session(page.set_cookies)
    assert (await browser.get("/owa/")).location == "/_gateway/mfa"


async def test_store_down_is_never_a_pass(start_env: EnvFactory) -> None:
    env = await start_env(gateway_session_store="redis", gateway_redis_url="redis://127.0.0.1:1/0",
                          gateway_session_secret="s" * 40, gateway_redis_timeout=0.5)
    browser = env.browser()
    page = await browser.password("alice")
    assert page.status == 503
    assert "Sign-in service temporarily unavailable" in page.text
    assert "second factor" not in page.text  # the store is down, not Monosign
    assert_no_exchange_session(page.set_cookies)
    browser.cookies["msgw"] = "A" * 22 + "." + "A" * 43  # a well-formed ticket: the store must be asked
    assert (await browser.get("/owa/")).status == 503
    async with env.http.get(env.admin_url + "/readyz") as response:
        report = await response.json()
    assert response.status == 503  # critical: this replica cannot serve, drain it
    assert report["ready"] is False
    assert report["checks"]["store"]["ok"] is False
    assert report["checks"]["store"]["critical"] is True


async def test_a_slow_monosign_does_not_hold_other_requests(start_env: EnvFactory) -> None:
    env = await start_env(monosign_timeout=1.0)
    await env.fault("slow", delay=3.0)
    login = asyncio.create_task(env.browser().password("alice"))
    await asyncio.sleep(0.1)
    public = await env.browser().get("/owa/auth/logon.aspx")
    assert public.status == 200
    assert not login.done()
    assert (await login).status == 503
