"""A fast OWA simulator and a gateway in front of it, both in-process on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.server import Gateway
from gateway.settings import load_settings
from gateway.sim.exchange_clients.config import ExchangeClientsConfig
from gateway.sim.exchange_clients.state import CLIENTS_KEY, ClientsState
from gateway.sim.owa import OwaSimConfig, RunningOwaSim, running_owa_sim

FAST = ExchangeClientsConfig(activesync_max_heartbeat_s=1.0, mapi_pending_period_ms=200,
                             mapi_notification_hold_s=1.5)


@dataclass
class Stack:
    sim: RunningOwaSim
    gateway: Gateway
    port: int  # the gateway's
    url: str

    @property
    def clients(self) -> ClientsState:
        return self.sim.app[CLIENTS_KEY]


@asynccontextmanager
async def gateway_in_front(sim: RunningOwaSim, **overrides: Any) -> AsyncIterator[tuple[Gateway, int]]:
    """A gateway for `sim` whose public URL is its own address (so real clients' Host is allowed)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    settings = load_settings(env_file=None, **{
        "monosign_api_url": "http://127.0.0.1:9",
        "monosign_api_key": "test-app-id",
        "monosign_api_secret": "test-secret-never-logged",
        "gateway_public_url": f"http://127.0.0.1:{port}",
        "gateway_allowed_hosts": ["mail.corp.example"],
        "gateway_listen": f"127.0.0.1:{port}",
        "gateway_admin_listen": "127.0.0.1:0",
        "gateway_upstream_url": sim.base_url,
        **overrides,
    })
    gateway = Gateway(settings)
    try:
        await gateway.start(listen_sockets=[listener])
        yield gateway, port
    finally:
        await gateway.stop()
        listener.close()


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack() -> AsyncIterator[StackFactory]:
    """make_stack(sim_config=..., **gateway settings) -> a simulator and a gateway in front of it."""
    async with AsyncExitStack() as exits:

        async def make(sim_config: ExchangeClientsConfig = FAST, **overrides: Any) -> Stack:
            sim = await exits.enter_async_context(running_owa_sim(OwaSimConfig(exchange_clients=sim_config)))
            gateway, port = await exits.enter_async_context(gateway_in_front(sim, **overrides))
            return Stack(sim, gateway, port, f"http://127.0.0.1:{port}")

        yield make


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()
