"""Redis killed and restarted under two running replicas: not ready and a clear 503 page while it is
down (no Exchange session handed out, no process crashes), and recovery by itself when it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gateway.policy.owa_responses import live_cadata
from tests.scale.replicas import ReplicaEnv, replica_environment

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def _readyz(env: ReplicaEnv, url: str) -> tuple[int, dict[str, object]]:
    async with env.http.get(url, headers={"Host": "mail.corp.example"}) as response:
        return response.status, await response.json()


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_redis_down_then_back(tmp_path: Path) -> None:
    async with replica_environment(tmp_path, gateway_session_cache_seconds=1) as env:
        assert env.redis is not None
        browser = env.browser()
        await browser.sign_in("alice")
        assert (await browser.get("/owa/")).status == 200
        pids = [replica.process.pid for replica in env.replicas]

        env.redis.stop()
        for index in (0, 1):
            env.use(index)
            status, report = await _readyz(env, env.url + "/_gateway/readyz")
            assert status == 503
            assert report == {"status": "not ready"}  # the public listener does not say what is down
            status, report = await _readyz(env, env.admin_url + "/readyz")
            assert status == 503
            checks = report["checks"]
            assert isinstance(checks, dict)
            assert checks["store"]["ok"] is False
            assert checks["monosign"]["ok"] is True  # only the store is named

            # The signed-in user: once the cache bound has passed, a clear page, never the mailbox.
            async def refused() -> bool:
                page = await browser.get("/owa/")
                return page.status == 503

            await _eventually(refused, timeout=5, what="the mailbox to be refused")
            page = await browser.get("/owa/")
            assert "Sign-in service temporarily unavailable" in page.text
            assert page.headers["Cache-Control"].startswith("no-store")
            # Scripts get the same refusal, and a new sign-in gets no Exchange session.
            xhr = await browser.request("POST", "/owa/service.svc?action=GetFolder", navigate=False,
                                        headers={"X-Requested-With": "XMLHttpRequest"})
            assert xhr.status == 503
            newcomer = env.browser()
            login = await newcomer.password("bob")
            assert login.status == 503
            assert not live_cadata(login.set_cookies)
            assert not newcomer.has_exchange_session()

        env.redis.start()  # same port, empty (no persistence): sessions are gone, the service is back
        for index, user in ((0, "bob"), (1, "alice")):
            env.use(index)

            async def ready() -> bool:
                status, _ = await _readyz(env, env.url + "/_gateway/readyz")
                return status == 200

            assert await _eventually(ready, timeout=10, what="readiness after Redis returned") < 10
            fresh = env.browser()
            assert (await fresh.sign_in(user)).location == "/owa/"
            assert (await fresh.get("/owa/")).status == 200
            old = await browser.get("/owa/")
            assert old.location.startswith("/owa/auth/logon.aspx")  # its session died with Redis

        # Nothing crashed or restarted: the same processes served throughout.
        assert [replica.process.pid for replica in env.replicas] == pids
        assert all(replica.process.poll() is None for replica in env.replicas)
        assert "Traceback" not in env.output()
