"""The non-browser endpoints' state, one per simulator application."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from gateway.sim.exchange_clients.config import ExchangeClientsConfig
from gateway.sim.exchange_clients.ntlm import NtlmAcceptors


@dataclass
class ClientsCounters:
    """What tests assert on (in-process), besides the request log."""

    basic_failures: int = 0
    activesync_pings: list[tuple[str | None, str | None, float]] = field(default_factory=list)  # device, type, held s
    mapi_pending_sent: list[float] = field(default_factory=list)  # loop times each PENDING was written
    rpc_in_bytes: int = 0
    rpc_in_chunks: list[tuple[float, int]] = field(default_factory=list)  # (loop time, bytes) as they arrived
    rpc_out_bytes: int = 0
    ews_operations: list[str] = field(default_factory=list)


@dataclass
class RpcChannel:
    """One Outlook Anywhere virtual connection: IN bytes queued for the OUT channel with the same cookie."""

    queue: asyncio.Queue[bytes | None]
    has_in: bool = False
    has_out: bool = False


@dataclass
class ClientsState:
    config: ExchangeClientsConfig
    acceptors: NtlmAcceptors = field(default_factory=NtlmAcceptors)
    counters: ClientsCounters = field(default_factory=ClientsCounters)
    rpc_channels: dict[bytes, RpcChannel] = field(default_factory=dict)
    credential_token: int | None = None
    # The heartbeat each device asked for last (a Ping without a body reuses it).
    heartbeats: dict[str, float] = field(default_factory=dict)

    def rpc_channel(self, cookie: bytes) -> RpcChannel:
        channel = self.rpc_channels.get(cookie)
        if channel is None:
            channel = self.rpc_channels[cookie] = RpcChannel(asyncio.Queue(self.config.rpc_channel_queue))
        return channel


CLIENTS_KEY = web.AppKey("exchange_clients_state", ClientsState)
