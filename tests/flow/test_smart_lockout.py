"""The smart lockout through the whole sign-in: an attacker who holds a user's password cannot lock the
user out, one colleague's typos do not cost another their attempts, and a familiar browser keeps
working. Real servers: the simulators, the gateway, the store (memory, and a real redis-server)."""

from __future__ import annotations

from gateway.policy.owa_responses import parse_set_cookie
from tests.flow.conftest import Browser, EnvFactory, FlowEnv, StoreEnv
from tests.logs import CapturedLogs, events

# 127.0.0.1 is trusted as a proxy, so X-Forwarded-For names each browser's address.
SETTINGS = {"gateway_trusted_proxies": "127.0.0.1/32", "gateway_mfa_max_failures": 3,
            "gateway_mfa_max_failures_user": 6, "gateway_mfa_max_failures_ip": 5}
DEVICE_COOKIE = "msgw-device"


def from_address(env: FlowEnv, address: str, browser: Browser | None = None) -> Browser:
    browser = browser or env.browser()
    browser.extra_headers["X-Forwarded-For"] = address
    return browser


async def at_mfa_page(browser: Browser, user: str = "alice") -> None:
    assert (await browser.password(user)).location == "/_gateway/mfa"
    assert (await browser.mfa_page()).status == 200


async def fail(browser: Browser, times: int) -> list[int]:
    return [(await browser.verify("000000")).status for _ in range(times)]


async def familiar_browser(env: FlowEnv, address: str, user: str = "alice") -> Browser:
    """A browser that has passed the second factor for `user` once, then signed out (it keeps only
    the familiar-device cookie)."""
    browser = from_address(env, address)
    final = await browser.sign_in(user)
    [device] = [value for value in final.set_cookies if value.startswith(f"{DEVICE_COOKIE}=")]
    assert device.endswith("; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax")
    await browser.get("/owa/logoff.owa")
    browser.cookies = {DEVICE_COOKIE: browser.cookies[DEVICE_COOKIE]}
    return browser


async def test_an_attacker_with_the_password_does_not_lock_the_user_out(store_env: StoreEnv,
                                                                        captured_logs: CapturedLogs) -> None:
    env = await store_env(**SETTINGS)
    attacker = from_address(env, "198.51.100.7")
    await at_mfa_page(attacker)
    assert await fail(attacker, 3) == [200, 200, 429]
    assert (await attacker.mfa_page()).status == 429  # the attacker's network is paused
    # The user, on a browser the gateway has never seen, from another network: not locked out.
    user = from_address(env, "203.0.113.20")
    await at_mfa_page(user)
    assert (await user.verify(await env.code("alice"))).location == "/owa/"
    lockouts = [event["scope"] for event in events(captured_logs(), "gateway.audit") if event["event"] == "lockout"]
    assert lockouts == ["network"]


async def test_a_familiar_browser_survives_the_users_overall_lockout(store_env: StoreEnv) -> None:
    env = await store_env(**SETTINGS)
    laptop = await familiar_browser(env, "203.0.113.20")
    # An attacker spreads guesses over networks until the user's overall count (6) is reached.
    for network in range(3):
        attacker = from_address(env, f"198.51.{network}.7")
        await at_mfa_page(attacker)
        await fail(attacker, 2)
    stranger = from_address(env, "203.0.113.21")  # the user on a browser the gateway does not know
    await stranger.password("alice")
    assert (await stranger.mfa_page()).status == 429
    # The familiar browser is judged by its own count only: not locked out.
    await at_mfa_page(laptop)
    assert (await laptop.verify(await env.code("alice"))).location == "/owa/"


async def test_a_familiar_browser_has_its_own_low_count(start_env: EnvFactory) -> None:
    env = await start_env(**SETTINGS)
    laptop = await familiar_browser(env, "203.0.113.20")
    await at_mfa_page(laptop)
    page = await laptop.verify("000000")
    assert "2 attempts left" in page.text
    assert await fail(laptop, 2) == [200, 429]


async def test_a_familiar_cookie_is_for_its_user_only(start_env: EnvFactory) -> None:
    env = await start_env(**SETTINGS)
    shared = await familiar_browser(env, "203.0.113.20", "alice")
    attacker = from_address(env, "203.0.113.99")  # bob's password, in alice's office network
    await at_mfa_page(attacker, "bob")
    assert await fail(attacker, 3) == [200, 200, 429]
    # Alice's device cookie does not make bob's sign-in on that browser familiar: it is locked too.
    await shared.password("bob")
    assert (await shared.mfa_page()).status == 429


async def test_a_colleagues_mistakes_do_not_cost_another_user_attempts(start_env: EnvFactory) -> None:
    """The whole office behind one NAT address (the review's report: 'fewer attempts left')."""
    env = await start_env(**SETTINGS)
    carol = from_address(env, "192.0.2.10")
    await at_mfa_page(carol, "alice")
    await fail(carol, 2)
    bob = from_address(env, "192.0.2.10")
    await at_mfa_page(bob, "bob")
    assert "2 attempts left" in (await bob.verify("000000")).text  # his own 3 - 1, not 3 - 3


async def test_the_device_cookie_never_reaches_the_upstream(start_env: EnvFactory) -> None:
    env = await start_env(**SETTINGS)
    browser = from_address(env, "203.0.113.20")
    final = await browser.sign_in("alice")
    device = next(parse_set_cookie(value) for value in final.set_cookies if value.startswith(DEVICE_COOKIE))
    assert device.value.startswith("v1.")
    assert DEVICE_COOKIE in browser.cookies
    assert (await browser.get("/owa/")).status == 200
    requests = await env.owa_requests()
    assert requests
    assert all(DEVICE_COOKIE not in [name.lower() for name in request["cookie_names"]] for request in requests)


async def test_no_device_cookie_when_disabled(start_env: EnvFactory) -> None:
    env = await start_env(**SETTINGS, gateway_mfa_device_days=0)
    final = await from_address(env, "203.0.113.20").sign_in("alice")
    assert not [value for value in final.set_cookies if value.startswith(DEVICE_COOKIE)]


async def test_no_device_cookie_without_a_second_factor(start_env: EnvFactory) -> None:
    """Fail-open lets the user in without a second factor: that does not make the browser familiar."""
    env = await start_env(**SETTINGS, gateway_fail_mode="open")
    browser = from_address(env, "203.0.113.20")
    await at_mfa_page(browser, "bob")
    await env.fault("refuse", duration=30.0)
    page = await browser.verify("123456")
    assert page.location == "/owa/"
    assert not [value for value in page.set_cookies if value.startswith(DEVICE_COOKIE)]
