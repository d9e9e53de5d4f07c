"""Outlook Anywhere (RPC over HTTP v2, `/rpc/rpcproxy.dll`): `RPC_IN_DATA` and `RPC_OUT_DATA` channels.

A virtual connection is two requests, usually on two TCP connections: `RPC_OUT_DATA` (a 76-byte
body, the CONN/A1 RTS packet) whose *response* streams for the channel's life, and `RPC_IN_DATA`
(announcing `Content-Length: 1073741824`, starting with the CONN/B1 packet) whose *request body*
streams for the channel's life. Both carry the 16-byte virtual-connection cookie at the same
offset of their first packet; the simulator pairs them by it and writes every IN byte after the
CONN/B1 packet to the OUT channel as it arrives. It acts on the first bytes of the endless body,
so a proxy that waits for the whole request (a gigabyte that never comes) shows up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.sim.exchange_clients.auth import Caller, answer, authenticate
from gateway.sim.exchange_clients.state import ClientsState

if TYPE_CHECKING:
    from gateway.sim.owa.state import OwaSimState, RequestContext

RTS_PACKET_TYPE = 20
COOKIE_OFFSET = 32  # common header (16), RTS flags and count (4), Version command (8), cookie type (4)
CONN_A1_LENGTH = 76
CONN_B1_LENGTH = 104
READ_SIZE = 64 * 1024


def rts_cookie(packet: bytes) -> bytes | None:
    """The virtual-connection cookie of a CONN/A1 or CONN/B1 packet, or None for anything else."""
    if len(packet) < COOKIE_OFFSET + 16 or packet[0] != 5 or packet[2] != RTS_PACKET_TYPE:
        return None
    return packet[COOKIE_OFFSET:COOKIE_OFFSET + 16]


async def handle(request: web.Request, owa: OwaSimState, clients: ClientsState, ctx: RequestContext
                 ) -> web.StreamResponse:
    caller = await authenticate(request, owa, clients, ctx, windows=True, basic="rpc" in clients.config.basic_vdirs)
    if not isinstance(caller, Caller):
        refusal = caller
        if request.method == "RPC_IN_DATA" and request.content_length:
            refusal.force_close()  # IIS does not wait for a gigabyte it refused
        return refusal
    if request.method == "RPC_OUT_DATA":
        return await _out_channel(request, clients, caller)
    if request.method == "RPC_IN_DATA":
        return await _in_channel(request, clients, caller)
    # GET and friends: what IIS answers an authenticated browser.
    return answer(caller, web.Response(status=200, text="", content_type="text/html"))


async def _read_exactly(request: web.Request, count: int) -> bytes:
    with contextlib.suppress(asyncio.IncompleteReadError):
        return await request.content.readexactly(count)
    return b""


async def _out_channel(request: web.Request, clients: ClientsState, caller: Caller) -> web.StreamResponse:
    cookie = rts_cookie(await _read_exactly(request, min(request.content_length or 0, CONN_A1_LENGTH)))
    if cookie is None:
        return answer(caller, web.Response(status=400, text="Bad Request"))
    channel = clients.rpc_channel(cookie)
    if channel.has_out:
        return answer(caller, web.Response(status=409, text="OUT channel already open"))
    channel.has_out = True
    response = answer(caller, web.StreamResponse(status=200, reason="Success", headers={
        "Content-Type": "application/rpc", "Cache-Control": "private"}))
    assert isinstance(response, web.StreamResponse)
    response.content_length = clients.config.rpc_out_content_length
    try:
        await response.prepare(request)
        while True:
            chunk = await channel.queue.get()
            if chunk is None:
                break
            await response.write(chunk)
            clients.counters.rpc_out_bytes += len(chunk)
    finally:
        channel.has_out = False
        if not channel.has_in:
            clients.rpc_channels.pop(cookie, None)
    return response


async def _in_channel(request: web.Request, clients: ClientsState, caller: Caller) -> web.StreamResponse:
    loop = asyncio.get_running_loop()
    first = await _read_exactly(request, CONN_B1_LENGTH)
    cookie = rts_cookie(first)
    if cookie is None:
        return answer(caller, web.Response(status=400, text="Bad Request"))
    clients.counters.rpc_in_chunks.append((loop.time(), len(first)))
    clients.counters.rpc_in_bytes += len(first)
    channel = clients.rpc_channel(cookie)
    channel.has_in = True
    try:
        while True:
            try:
                chunk = await request.content.readany()
            except ConnectionError:
                break  # the client dropped the channel: how IN channels usually end
            if not chunk:
                break
            clients.counters.rpc_in_chunks.append((loop.time(), len(chunk)))
            clients.counters.rpc_in_bytes += len(chunk)
            await channel.queue.put(chunk)
    finally:
        channel.has_in = False
        with contextlib.suppress(asyncio.QueueFull):
            channel.queue.put_nowait(None)  # the OUT channel ends with its IN channel
        if not channel.has_out:
            clients.rpc_channels.pop(cookie, None)
    return answer(caller, web.Response(status=200, reason="Success", content_type="application/rpc"))
