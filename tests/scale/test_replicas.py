"""Two gateway replicas (separate processes, separate ports, one Redis) behave as one gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.policy.owa_responses import live_cadata
from tests.flow.conftest import HOST, Browser
from tests.flow.test_attempts import from_address
from tests.scale.replicas import ReplicaEnv, replica_environment

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CACHE_SECONDS = 2.0
# Time for the requests themselves on a busy 2-CPU test machine, on top of the cache bound.
REQUEST_SLACK = 1.0


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ReplicaEnv]:
    async with replica_environment(tmp_path, gateway_session_cache_seconds=CACHE_SECONDS) as running:
        yield running


async def test_password_on_one_replica_code_on_the_other_mailbox_on_both(env: ReplicaEnv) -> None:
    browser = env.browser()
    env.use(0)
    first = await browser.password("alice")
    assert first.status == 302
    assert first.location == "/_gateway/mfa"
    assert not live_cadata(first.set_cookies)
    pending = browser.gateway_cookie
    env.use(1)
    page = await browser.mfa_page()  # replica B finds A's pending session in Redis
    assert page.status == 200
    assert "Alice Archer" in page.text
    final = await browser.verify(await env.code("alice"))
    assert final.status == 302
    assert final.location == "/owa/"
    assert browser.gateway_cookie not in (None, pending)
    for index in (0, 1, 0, 1):
        env.use(index)
        mailbox = await browser.get("/owa/")
        assert mailbox.status == 200, index
        assert "Alice Archer" in mailbox.text
    # The pending cookie was rotated away on B: it opens nothing on A either.
    stale = env.browser()
    stale.cookies[env.cookie_name] = pending or ""
    env.use(0)
    assert (await stale.get("/owa/")).location.startswith("/owa/auth/logon.aspx")


async def test_logoff_on_one_replica_ends_the_session_on_the_other_within_the_cache_bound(env: ReplicaEnv) -> None:
    browser = env.browser()
    env.use(0)
    await browser.sign_in("alice")
    kept = dict(browser.cookies)  # what a second tab (or a thief) still holds after the logoff
    assert (await browser.get("/owa/")).status == 200  # A now has the session in its cache
    env.use(1)
    assert (await browser.get("/owa/")).status == 200
    logoff = await browser.get("/owa/logoff.owa")
    ended_at = time.monotonic()
    assert logoff.status in (200, 302)
    assert browser.gateway_cookie is None
    replay = env.browser()
    replay.cookies.update(kept)
    assert (await replay.get("/owa/")).location.startswith("/owa/auth/logon.aspx")  # on B: at once
    env.use(0)
    while True:
        page = await replay.get("/owa/")
        if page.status != 200:
            break
        assert time.monotonic() - ended_at < CACHE_SECONDS + REQUEST_SLACK, "A serves it past the cache bound"
        await asyncio.sleep(0.1)
    assert page.location.startswith("/owa/auth/logon.aspx")
    assert time.monotonic() - ended_at <= CACHE_SECONDS + REQUEST_SLACK


async def test_lockout_counts_across_replicas(tmp_path: Path) -> None:
    # 127.0.0.1 is trusted as a proxy here, so each browser has an address of its own (X-Forwarded-For)
    # and only the per-user count can lock.
    async with replica_environment(tmp_path, gateway_mfa_max_failures=3, gateway_trusted_proxies="127.0.0.1/32") as env:
        first, second, other = (from_address(env, f"10.0.0.{number}") for number in (1, 2, 3))
        env.use(0)
        await first.password("alice")
        env.use(1)
        await second.password("alice")  # another session of the same user, on the other replica
        env.use(0)
        assert "2 attempts left" in (await first.verify("000001")).text
        env.use(1)
        assert "1 attempt left" in (await second.verify("000002")).text
        env.use(0)
        locked = await first.verify("000003")
        assert locked.status == 429
        calls = len(await env.monosign_calls("verify_code"))
        for index in (0, 1):  # locked everywhere: even the right code is not tried
            env.use(index)
            assert (await second.verify(await env.code("alice"))).status == 429
            assert (await first.mfa_page()).status == 429
        assert len(await env.monosign_calls("verify_code")) == calls == 3
        # Another user on either replica is not affected.
        env.use(1)
        assert (await other.sign_in("bob")).location == "/owa/"


async def _request(env: ReplicaEnv, browser: Browser, index: int, method: str, target: str,
                   data: dict[str, str] | None = None, navigate: bool = True) -> tuple[int, str]:
    replica = env.replicas[index]
    headers = {"Host": HOST, "Cookie": "; ".join(f"{name}={value}" for name, value in browser.cookies.items())}
    if navigate:
        headers["Sec-Fetch-Mode"] = "navigate"
        headers["Accept"] = "text/html"
    else:
        headers["X-Requested-With"] = "XMLHttpRequest"
    if method == "POST":
        headers.update({"Origin": env.settings.gateway_public_url, "Sec-Fetch-Site": "same-origin"})
    async with env.http.request(method, replica.url + target, headers=headers, data=data,
                                allow_redirects=False) as response:
        return response.status, await response.text()


async def test_hundreds_of_parallel_requests_on_one_session_through_both_replicas(env: ReplicaEnv) -> None:
    browser = env.browser()
    await browser.sign_in("alice")
    results = await asyncio.gather(*(
        _request(env, browser, index % 2, "GET", "/owa/", navigate=index % 3 != 0) for index in range(300)
    ))
    assert [status for status, _ in results] == [200] * 300
    assert all("Alice Archer" in text for _, text in results)
    for index in (0, 1):  # the session survived the storm on both replicas
        env.use(index)
        assert (await browser.get("/owa/")).status == 200
    output = env.output()
    assert "Traceback" not in output
    assert '"level": "error"' not in output


async def test_parallel_wrong_codes_through_both_replicas_are_counted_exactly(tmp_path: Path) -> None:
    attempts = 60
    async with replica_environment(tmp_path, gateway_mfa_max_failures=100, gateway_mfa_max_failures_user=100,
                                   gateway_mfa_max_failures_ip=100) as env:
        browser = env.browser()
        await browser.password("bob")
        await browser.mfa_page()
        results = await asyncio.gather(*(
            _request(env, browser, index % 2, "POST", "/_gateway/mfa/verify",
                     data={"code": f"{index:06d}", "csrf_token": browser.csrf_token})
            for index in range(attempts)
        ))
        assert [status for status, _ in results] == [200] * attempts
        assert all("That code is not correct" in text for _, text in results)
        assert len(await env.monosign_calls("verify_code")) == attempts
        user = env.monosign.state.find_user("bob")
        assert user is not None
        store = env.store()
        try:  # no lost update: the shared counters saw every failure
            assert await store.count("mfa-fail-user", user.id) == attempts
            assert await store.count("mfa-fail-ip", "127.0.0.1") == attempts
        finally:
            await store.aclose()
        failures = 0.0
        for index in (0, 1):
            env.use(index)
            for line in (await env.metrics()).splitlines():
                if line.startswith('gateway_authn_second_factor_total{method="totp",result="failure"}'):
                    failures += float(line.rsplit(" ", 1)[1])
        assert failures == attempts
        # 100 - 60 left, as either replica says.
        env.use(1)
        assert "39 attempts left" in (await browser.verify("999999")).text


async def test_a_copy_of_redis_opens_nothing(env: ReplicaEnv) -> None:
    """Everything Redis holds, presented as cookies, gets no one in: the session needs the browser's secret."""
    browser = env.browser()
    await browser.sign_in("alice")
    assert (await browser.get("/owa/")).status == 200
    assert env.redis is not None
    with env.redis.client() as client:
        dump = {key: client.hgetall(key) if client.type(key) == b"hash" else client.get(key)
                for key in client.keys("*")}
    session_keys = [key for key in dump if key.startswith(b"msgw:s:")]
    assert len(session_keys) == 1
    session_id = browser.gateway_cookie.split(".", 1)[0] if browser.gateway_cookie else ""
    blob = repr(dump).encode()
    assert session_id.encode() not in blob  # the store keys are hashes of the id, never the id
    for name, value in browser.cookies.items():
        assert value.encode() not in blob, name  # no cookie value, Exchange's or ours, is in Redis
    # An attacker with the dump (but not a browser's cookie) tries every value from it as a cookie.
    attacker = env.browser()
    candidates = [key.decode().rsplit(":", 1)[1] for key in dump]
    for fields in dump.values():
        if isinstance(fields, dict):
            candidates += [value.hex() for value in fields.values()]
    for index, candidate in enumerate(candidates):
        attacker.cookies = {env.cookie_name: candidate[:22] + "." + candidate[22:65]}
        env.use(index % 2)
        page = await attacker.get("/owa/")
        assert page.status == 302
        assert page.location.startswith("/owa/auth/logon.aspx")
    # No cookie at all: no access on either replica, while the real browser still gets in.
    for index in (0, 1):
        env.use(index)
        assert (await env.browser().get("/owa/")).location.startswith("/owa/auth/logon.aspx")
        assert (await browser.get("/owa/")).status == 200


async def _status_until_final(browser: Browser, env: ReplicaEnv, replicas: tuple[int, ...], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    turn = 0
    while time.monotonic() < deadline:
        env.use(replicas[turn % len(replicas)])
        turn += 1
        status, body = await browser.status()
        assert status == 200
        if body["status"] != "pending":
            return str(body["status"])
        await asyncio.sleep(0.2)
    return "pending"


async def test_push_started_on_one_replica_completes_on_the_other(env: ReplicaEnv) -> None:
    browser = env.browser()
    env.use(0)
    await browser.password("alice")
    await browser.mfa_page()
    assert (await browser.push()).status == 303
    await env.approve("alice")
    assert await _status_until_final(browser, env, (1, 0), timeout=10) == "approved"
    env.use(1)
    final = await browser.complete()
    assert final.status == 302
    assert final.location == "/owa/"
    for index in (0, 1):
        env.use(index)
        assert (await browser.get("/owa/")).status == 200


async def test_a_push_survives_the_death_of_the_replica_that_polled_it(env: ReplicaEnv) -> None:
    browser = env.browser()
    env.use(0)
    await browser.password("alice")
    await browser.mfa_page()
    assert (await browser.push()).status == 303
    env.replicas[0].process.kill()  # the poller dies with it; its lease runs out on its own
    await env.approve("alice")
    # Replica B's status requests take over the polling once A's lease has lapsed.
    assert await _status_until_final(browser, env, (1,), timeout=30) == "approved"
    final = await browser.complete()
    assert final.location == "/owa/"
    assert (await browser.get("/owa/")).status == 200
