"""Push budgets through the whole sign-in: whoever holds the password and spends their pushes does not
stop the user's familiar browser from getting one, nor the user on another network; and the phone
still buzzes a bounded number of times. Real servers: the simulators, the gateway, the store (memory,
and a real redis-server); X-Forwarded-For names each browser's address (127.0.0.1 is a trusted proxy)."""

from __future__ import annotations

import re

from gateway.mfa.lockout import PUSH_USER_FACTOR
from tests.flow.conftest import Browser, FlowEnv, StoreEnv
from tests.flow.test_push_waiting import resend
from tests.flow.test_smart_lockout import at_mfa_page, familiar_browser, from_address
from tests.logs import CapturedLogs, events

MAX_PUSHES = 2
SETTINGS = {"gateway_trusted_proxies": "127.0.0.1/32", "gateway_mfa_max_pushes": MAX_PUSHES}


def pushes_sent(env: FlowEnv, user: str = "alice") -> int:
    """Pushes Monosign sent to the user's phone."""
    found = env.monosign.state.find_user(user)
    assert found is not None
    return sum(1 for push in env.monosign.state.pushes.values() if push.user_id == found.id)


async def press_until_refused(browser: Browser) -> list[int]:
    """"Send request", then "Send again" until the gateway answers 429 (at most ten presses)."""
    statuses = [(await browser.push()).status]
    while statuses[-1] != 429 and len(statuses) < 10:
        statuses.append((await resend(browser)).status)
    return statuses


def refused_scopes(captured_logs: CapturedLogs) -> list[str]:
    return [event["scope"] for event in events(captured_logs(), "gateway.audit")
            if event["event"] == "refused" and event.get("reason") == "too_many_pushes"]


def metric(text: str, name: str, labels: str) -> float:
    found = re.search(rf"^{name}\{{{labels}\}} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_an_attacker_spending_pushes_does_not_stop_the_familiar_browser(
        store_env: StoreEnv, captured_logs: CapturedLogs) -> None:
    env = await store_env(**SETTINGS)
    laptop = await familiar_browser(env, "203.0.113.20")
    # The attacker has alice's password: one network's budget, then another's, until the user's
    # budget for unfamiliar browsers (PUSH_USER_FACTOR x MAX_PUSHES) is spent.
    for network in range(PUSH_USER_FACTOR):
        attacker = from_address(env, f"198.51.{network}.7")
        await at_mfa_page(attacker)
        assert await press_until_refused(attacker) == [303] * MAX_PUSHES + [429]
    elsewhere = from_address(env, "192.0.2.7")  # any other unfamiliar browser: refused now
    await at_mfa_page(elsewhere)
    assert (await elsewhere.push()).status == 429
    assert pushes_sent(env) == PUSH_USER_FACTOR * MAX_PUSHES
    # Alice's familiar laptop (from the attacker's network, even) has a budget of its own.
    laptop.extra_headers["X-Forwarded-For"] = "198.51.0.8"
    await at_mfa_page(laptop)
    assert await press_until_refused(laptop) == [303] * MAX_PUSHES + [429]
    # The phone buzzed a bounded number of times: the unfamiliar browsers' budget, and the laptop's own.
    assert pushes_sent(env) == (PUSH_USER_FACTOR + 1) * MAX_PUSHES
    scopes = refused_scopes(captured_logs)
    assert scopes == ["network", "network", "user", "device"]  # the narrowest spent budget is named
    metrics = await env.metrics()
    assert metric(metrics, "gateway_authn_refusals_total", 'reason="too_many_pushes"') == len(scopes)
    assert metric(metrics, "gateway_authn_second_factor_total", 'method="push",result="locked"') == len(scopes)


async def test_one_networks_pushes_do_not_stop_the_user_elsewhere(store_env: StoreEnv,
                                                                  captured_logs: CapturedLogs) -> None:
    env = await store_env(**SETTINGS)
    attacker = from_address(env, "198.51.100.7")
    await at_mfa_page(attacker)
    assert await press_until_refused(attacker) == [303] * MAX_PUSHES + [429]
    again = from_address(env, "198.51.100.99")  # the same /24, a new session: still that network's budget
    await at_mfa_page(again)
    assert (await again.push()).status == 429
    # The user, on a browser the gateway has never seen, on another network: gets a push.
    user = from_address(env, "203.0.113.20")
    await at_mfa_page(user)
    assert (await user.push()).status == 303
    await env.approve("alice")
    assert (await user.complete()).location == "/owa/"
    assert refused_scopes(captured_logs) == ["network", "network"]


async def test_a_familiar_browser_cannot_spend_another_users_budget(store_env: StoreEnv) -> None:
    """Alice's device cookie makes no other user's sign-in on that browser familiar."""
    env = await store_env(**SETTINGS)
    shared = await familiar_browser(env, "203.0.113.20", "alice")
    await at_mfa_page(shared, "dave")
    assert await press_until_refused(shared) == [303] * MAX_PUSHES + [429]
    stranger = from_address(env, "203.0.113.21")  # dave's user-and-network budget is spent
    await at_mfa_page(stranger, "dave")
    assert (await stranger.push()).status == 429
