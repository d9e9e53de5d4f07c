"""Long-lived Exchange traffic through the gateway: ActiveSync Ping, MAPI PENDING, Outlook Anywhere channels,
and the extension-method connections' refusals seen from a client of the gateway."""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway.sim.exchange_clients.activesync import PING_NO_CHANGES, ping_request
from tests.exchange_clients.conftest import Stack, StackFactory
from tests.exchange_clients.support import HttpConnection, NtlmClient, basic
from tests.exchange_clients.test_extension_methods import REFUSED_HEADS
from tests.exchange_clients.test_sim_endpoints import conn_packet
from tests.proxy.support import status_codes

RPC = "/rpc/rpcproxy.dll?SIMCAS01:6001"


async def test_activesync_ping_is_held_for_its_heartbeat(stack: Stack) -> None:
    connection = await HttpConnection.open(stack.port)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        answer = await connection.request(
            "POST", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=bob&DeviceId=DEV42&DeviceType=Android",
            [("Authorization", basic("CORP\\bob")), ("Content-Type", "application/vnd.ms-sync.wbxml"),
             ("MS-ASProtocolVersion", "14.1")], ping_request(900))
        held = loop.time() - started
    finally:
        await connection.close()
    assert answer.status == 200
    assert answer.body == PING_NO_CHANGES
    assert 0.9 <= held < 4, held  # the simulator's shrunk cap of the requested 900 s
    assert stack.clients.counters.activesync_pings[-1][:2] == ("DEV42", "Android")


async def test_activesync_449_passes_through(make_stack: StackFactory) -> None:
    from gateway.sim.exchange_clients.config import ExchangeClientsConfig

    stack = await make_stack(ExchangeClientsConfig(activesync_provision_required=True))
    connection = await HttpConnection.open(stack.port)
    try:
        answer = await connection.request("POST", "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=A&DeviceType=B",
                                          [("Authorization", basic("alice"))])
    finally:
        await connection.close()
    assert answer.status == 449


async def test_activesync_read_timeout_is_the_class_setting(make_stack: StackFactory) -> None:
    # A Ping held longer than GATEWAY_TIMEOUT_ACTIVESYNC: the gateway gives up with 504.
    stack = await make_stack(gateway_timeout_activesync=0.3)
    connection = await HttpConnection.open(stack.port)
    try:
        answer = await connection.request(
            "POST", "/Microsoft-Server-ActiveSync?Cmd=Ping&DeviceId=A&DeviceType=B",
            [("Authorization", basic("alice"))], ping_request(60))
    finally:
        await connection.close()
    assert answer.status == 504


async def test_mapi_pending_chunks_arrive_as_they_are_produced(stack: Stack) -> None:
    loop = asyncio.get_running_loop()
    connection = await HttpConnection.open(stack.port)
    extra = [("X-RequestType", "NotificationWait"), ("Content-Type", "application/mapi-http"),
             ("X-RequestId", "{A}:1"), ("X-ClientInfo", "{B}:1")]
    try:
        client = NtlmClient("CORP\\alice")
        challenge = await connection.request("POST", "/mapi/emsmdb/?MailboxId=a@corp.example",
                                             [*extra, client.negotiate()])
        connection.next_cycle()
        await connection.send_head("POST", "/mapi/emsmdb/?MailboxId=a@corp.example",
                                   [*extra, client.authenticate(challenge)], content_length=4)
        await connection.send_body(b"wait")
        await connection.end_body()
        head = await connection.read_head()
        assert head.status_code == 200
        arrivals: list[float] = []
        body = b""
        while (chunk := await connection.read_chunk()) is not None:
            body += chunk
            arrivals.extend(loop.time() for _ in range(chunk.count(b"PENDING\r\n")))
    finally:
        await connection.close()
    produced = stack.clients.counters.mapi_pending_sent
    assert len(produced) >= 3
    assert len(arrivals) == len(produced)
    delays = [arrived - sent for sent, arrived in zip(produced, arrivals, strict=True)]
    assert max(delays) < 1.0, delays  # each PENDING within a second of being written, not at the end
    assert body.endswith(b"\x00\x00\x00\x00\x04\x00\x00\x00")


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_rpc_in_data_streams_and_is_echoed_on_rpc_out_data(stack: Stack, auth: str) -> None:
    loop = asyncio.get_running_loop()
    cookie = os.urandom(16)
    out_channel, in_channel = await HttpConnection.open(stack.port), await HttpConnection.open(stack.port)
    common = [("User-Agent", "MSRPC"), ("Accept", "application/rpc"), ("Cache-Control", "no-cache")]
    try:
        if auth == "basic":
            out_auth = in_auth = [("Authorization", basic("CORP\\alice"))]
        else:
            # NTLM's legs are RPC_* requests too, on each channel's own connection.
            out_client, in_client = NtlmClient("CORP\\alice"), NtlmClient("CORP\\alice")
            out_challenge = await out_channel.request("RPC_OUT_DATA", RPC, [*common, out_client.negotiate()])
            in_challenge = await in_channel.request("RPC_IN_DATA", RPC, [*common, in_client.negotiate()])
            out_channel.next_cycle()
            in_channel.next_cycle()
            out_auth = [out_client.authenticate(out_challenge)]
            in_auth = [in_client.authenticate(in_challenge)]
        await out_channel.send_head("RPC_OUT_DATA", RPC, [*common, *out_auth], content_length=76)
        await out_channel.send_body(conn_packet(cookie, inbound=False))
        await out_channel.end_body()
        head = await out_channel.read_head()
        assert head.status_code == 200
        assert dict(head.headers)[b"content-length"] == b"1073741824"
        await in_channel.send_head("RPC_IN_DATA", RPC, [*common, *in_auth], content_length=1073741824)
        await in_channel.send_body(conn_packet(cookie, inbound=True))
        for index in range(5):
            payload = f"PDU {index} ".encode() * 50
            sent = loop.time()
            await in_channel.send_body(payload)
            received = b""
            while len(received) < len(payload):
                chunk = await out_channel.read_chunk(timeout=2)
                assert chunk is not None
                received += chunk
            assert received == payload
            assert loop.time() - sent < 1.0
            await asyncio.sleep(0.05)
    finally:
        await in_channel.close()
        await out_channel.close()
    counters = stack.clients.counters
    assert counters.rpc_in_bytes == 104 + 5 * 300  # the simulator acted on the first bytes of the gigabyte


@pytest.mark.parametrize("name", sorted(set(REFUSED_HEADS) - {"other method", "placeholder itself",
                                                               "lower-case token"}))
async def test_refused_extension_requests_never_reach_the_upstream(stack: Stack, name: str) -> None:
    head = REFUSED_HEADS[name].replace(b"Host: a", b"Host: mail.corp.example")
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
    try:
        writer.write(head)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(65536), 3)
    finally:
        writer.close()
    assert status_codes(response) == [400], response
    assert b"RPC_" not in response  # the refusal does not echo the request
    assert stack.sim.state.recorder.requests() == []
