"""Several gateways behind "any load balancer": `python -m gateway serve` subprocesses on their own
ports, the same `GATEWAY_SESSION_SECRET`, one real redis-server, in front of the OWA and Monosign
simulators (in this process, on loopback).

    async with replica_environment(tmp_path) as env:
        browser = env.browser()          # the flow tests' browser-like client
        env.use(0); await browser.password("alice")
        env.use(1); await browser.verify(await env.code("alice"))

`env` is the flow tests' `FlowEnv` whose `url` (and `admin_url`, `port`) `use(i)` points at replica i,
so every helper of tests/flow works unchanged; `env.replicas[i]` is the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.assembly import store_config
from gateway.sessions.factory import build_store
from gateway.sessions.store import EncryptedSessionStore
from gateway.settings import Settings, load_settings
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import MonosignSimState
from gateway.sim.monosign_users import demo_users as monosign_demo_users
from gateway.sim.owa import running_owa_sim
from tests.flow.conftest import API_KEY, API_SECRET, PUBLIC_URL, FlowEnv, owa_config
from tests.proxy.support import GatewayProcess, clean_environment
from tests.redis_server import RedisServer

SESSION_SECRET = "replica-test-session-secret-5b0d-0123456789"


@dataclass
class ReplicaEnv(FlowEnv):
    replicas: list[GatewayProcess] = field(default_factory=list)
    redis: RedisServer | None = None

    def use(self, index: int) -> FlowEnv:
        replica = self.replicas[index]
        self.url, self.admin_url, self.port = replica.url, replica.admin_url, replica.port
        return self

    def store(self) -> EncryptedSessionStore:
        """A store client of our own on the replicas' Redis and key (to look at what they wrote)."""
        return build_store(store_config(self.settings))

    def output(self) -> str:
        return "\n".join("\n".join(replica.lines) + replica.stderr for replica in self.replicas)


def replica_settings(monosign_url: str, upstream_url: str, redis_url: str, **overrides: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "monosign_api_url": monosign_url, "monosign_api_key": API_KEY, "monosign_api_secret": API_SECRET,
        "monosign_timeout": 2.0, "monosign_connect_timeout": 1.0,
        "gateway_public_url": PUBLIC_URL, "gateway_upstream_url": upstream_url,
        "gateway_listen": "127.0.0.1:0", "gateway_admin_listen": "127.0.0.1:0",
        "gateway_session_store": "redis", "gateway_redis_url": redis_url,
        "gateway_session_secret": SESSION_SECRET, "gateway_redis_timeout": 0.5,
        **overrides,
    }
    return {key.upper(): str(value) for key, value in values.items()}


@asynccontextmanager
async def replica_environment(directory: Path, *, count: int = 2, monosign_options: dict[str, Any] | None = None,
                              **settings_overrides: Any) -> AsyncIterator[ReplicaEnv]:
    """`count` gateway processes sharing one Redis; keyword arguments are gateway settings."""
    options = {"push_ttl": 60.0, "lock_after": 1000, **(monosign_options or {})}
    state = MonosignSimState(monosign_demo_users(), api_key=API_KEY, api_secret=API_SECRET, **options)
    async with AsyncExitStack() as stack:
        redis = stack.enter_context(RedisServer.running(directory / "redis"))
        monosign = await stack.enter_async_context(MonosignSimulator(state))
        owa_sim = await stack.enter_async_context(running_owa_sim(owa_config()))
        values = replica_settings(monosign.url, owa_sim.base_url, redis.url, **settings_overrides)
        replicas = []
        for index in range(count):
            cwd = directory / f"replica-{index}"
            cwd.mkdir()
            replica = GatewayProcess(clean_environment(values), cwd)
            stack.push_async_callback(asyncio.to_thread, replica.stop)
            replicas.append(replica)
        for replica in replicas:
            await asyncio.to_thread(replica.wait_started, 60)
        settings: Settings = load_settings(env_file=None, **{key.lower(): value for key, value in values.items()})
        http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()))
        env = ReplicaEnv(gateway=None, url="", admin_url="", port=0, settings=settings,  # type: ignore[arg-type]
                         owa=owa_sim, monosign=monosign, http=http, replicas=replicas, redis=redis)
        env.use(0)
        yield env
