"""The OWA simulator's non-browser side, directly (no gateway): NTLM per connection, EWS with a real
client, ActiveSync, MAPI, Outlook Anywhere, OAB, Autodiscover, PowerShell."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator

import pytest

from gateway.sim.exchange_clients.activesync import PING_NO_CHANGES, ping_heartbeat, ping_request
from gateway.sim.exchange_clients.config import ExchangeClientsConfig
from gateway.sim.exchange_clients.rpc import rts_cookie
from gateway.sim.exchange_clients.state import CLIENTS_KEY, ClientsState
from gateway.sim.owa import OwaSimConfig, RunningOwaSim, running_owa_sim
from tests.exchange_clients.support import HttpConnection, NtlmClient, basic, ntlm_login

EWS = "/EWS/Exchange.asmx"
FAST = ExchangeClientsConfig(activesync_max_heartbeat_s=1.0, mapi_pending_period_ms=200,
                             mapi_notification_hold_s=1.1)


@pytest.fixture
async def sim() -> AsyncIterator[RunningOwaSim]:
    async with running_owa_sim(OwaSimConfig(exchange_clients=FAST)) as running:
        yield running


def clients(sim: RunningOwaSim) -> ClientsState:
    return sim.app[CLIENTS_KEY]


async def test_anonymous_request_gets_the_windows_challenges(sim: RunningOwaSim) -> None:
    connection = await HttpConnection.open(sim.port)
    try:
        answer = await connection.request("POST", EWS)
        assert answer.status == 401
        assert answer.header("WWW-Authenticate") == ["Negotiate", "NTLM"]
        shell = await connection.request("GET", "/powershell")
        assert (shell.status, shell.header("WWW-Authenticate")) == (401, ["Negotiate"])
    finally:
        await connection.close()
    # Extension methods only open a connection of their own (see gateway.proxy.extension_methods).
    connection = await HttpConnection.open(sim.port)
    try:
        rpc = await connection.request("RPC_OUT_DATA", "/rpc/rpcproxy.dll?SIMCAS01:6001")
        assert rpc.header("WWW-Authenticate") == ["Negotiate", "NTLM", 'Basic realm="mail.corp.example"']
    finally:
        await connection.close()


@pytest.mark.parametrize(("user", "scheme"), [("CORP\\alice", "NTLM"), ("bob@corp.example", "NTLM"),
                                              ("CORP\\carol", "Negotiate")])
async def test_ntlm_authenticates_the_connection(sim: RunningOwaSim, user: str, scheme: str) -> None:
    connection = await HttpConnection.open(sim.port)
    try:
        answer = await ntlm_login(connection, "GET", "/OAB/1234/oab.xml", user, scheme=scheme)
        assert answer.status == 200
        assert b"<OAB>" in answer.body
        # Later requests on the same connection need no Authorization (IIS keeps the connection's user).
        again = await connection.request("GET", "/OAB/1234/oab.xml")
        assert again.status == 200
    finally:
        await connection.close()
    other = await HttpConnection.open(sim.port)
    try:
        assert (await other.request("GET", "/OAB/1234/oab.xml")).status == 401
    finally:
        await other.close()


async def test_third_leg_on_another_connection_fails(sim: RunningOwaSim) -> None:
    first, second = await HttpConnection.open(sim.port), await HttpConnection.open(sim.port)
    try:
        client = NtlmClient("CORP\\alice")
        challenge = await first.request("GET", "/mapi/emsmdb/", [client.negotiate()])
        assert challenge.status == 401
        answer = await second.request("GET", "/mapi/emsmdb/", [client.authenticate(challenge)])
        assert answer.status == 401
        assert clients(sim).acceptors.completed == 0
    finally:
        await first.close()
        await second.close()


async def test_wrong_password_fails(sim: RunningOwaSim) -> None:
    connection = await HttpConnection.open(sim.port)
    try:
        client = NtlmClient("CORP\\alice", "wrong")
        challenge = await connection.request("GET", "/OAB/x/oab.xml", [client.negotiate()])
        answer = await connection.request("GET", "/OAB/x/oab.xml", [client.authenticate(challenge)])
        assert answer.status == 401
    finally:
        await connection.close()


def _list_inbox(base_url: str, user: str, password: str) -> list[str]:
    from exchangelib import DELEGATE, NTLM, Account, Build, Configuration, Credentials, Version

    config = Configuration(service_endpoint=base_url + EWS, credentials=Credentials(user, password),
                           auth_type=NTLM, version=Version(build=Build(15, 1, 2507, 6)))
    account = Account("alice@corp.example", config=config, autodiscover=False, access_type=DELEGATE)
    subjects = [item.subject for item in account.inbox.all()]
    account.protocol.close()
    return subjects


async def test_exchangelib_lists_the_inbox(sim: RunningOwaSim) -> None:
    subjects = await asyncio.to_thread(_list_inbox, sim.base_url, "CORP\\alice", "AlicePass1!")
    assert "Quarterly report (draft)" in subjects
    assert len(subjects) == 4
    assert {"GetFolder", "FindItem"} <= set(clients(sim).counters.ews_operations)


async def test_autodiscover_with_basic(sim: RunningOwaSim) -> None:
    connection = await HttpConnection.open(sim.port)
    try:
        answer = await connection.request("POST", "/autodiscover/autodiscover.xml",
                                          [("Authorization", basic("alice@corp.example"))], b"<Autodiscover/>")
        assert answer.status == 200
        assert b"<DisplayName>Alice Archer</DisplayName>" in answer.body
        refused = await connection.request("POST", "/autodiscover/autodiscover.xml",
                                           [("Authorization", basic("alice", "nope"))], b"<Autodiscover/>")
        assert refused.status == 401
    finally:
        await connection.close()


async def test_activesync_options_and_ping_held_for_the_heartbeat(sim: RunningOwaSim) -> None:
    connection = await HttpConnection.open(sim.port)
    try:
        assert (await connection.request("OPTIONS", "/Microsoft-Server-ActiveSync")).header(
            "WWW-Authenticate") == ['Basic realm="mail.corp.example"']
        options = await connection.request("OPTIONS", "/Microsoft-Server-ActiveSync",
                                           [("Authorization", basic("CORP\\bob"))])
        assert options.status == 200
        assert "14.1" in options.header("MS-ASProtocolVersions")[0]
        loop = asyncio.get_running_loop()
        started = loop.time()
        ping = await connection.request(
            "POST", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=bob&DeviceId=PHONE1&DeviceType=iPhone",
            [("Authorization", basic("CORP\\bob")), ("Content-Type", "application/vnd.ms-sync.wbxml")],
            ping_request(600))
        held = loop.time() - started
        assert ping.status == 200
        assert ping.body == PING_NO_CHANGES
        assert 0.9 <= held < 3, held  # the requested 600 s, shrunk to the simulator's 1 s cap
        assert clients(sim).counters.activesync_pings[-1][:2] == ("PHONE1", "iPhone")
    finally:
        await connection.close()


def test_ping_heartbeat_parsing() -> None:
    assert ping_heartbeat(ping_request(480)) == 480
    assert ping_heartbeat(b"") is None
    assert ping_heartbeat(b"\x03\x01\x6a\x00\x00\x0d\x45\x01") is None


async def test_activesync_449_knob() -> None:
    config = OwaSimConfig(exchange_clients=ExchangeClientsConfig(activesync_provision_required=True))
    async with running_owa_sim(config) as sim:
        connection = await HttpConnection.open(sim.port)
        try:
            answer = await connection.request("POST", "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=A&DeviceType=B",
                                              [("Authorization", basic("alice"))])
            assert answer.status == 449
        finally:
            await connection.close()


async def test_mapi_streams_pending(sim: RunningOwaSim) -> None:
    connection = await HttpConnection.open(sim.port)
    try:
        extra = [("X-RequestType", "NotificationWait"), ("Content-Type", "application/mapi-http"),
                 ("X-RequestId", "{1}:1"), ("X-ClientInfo", "{2}:1")]
        client = NtlmClient("CORP\\dave")
        challenge = await connection.request("POST", "/mapi/emsmdb/?MailboxId=x", [*extra, client.negotiate()])
        connection.next_cycle()
        await connection.send_head("POST", "/mapi/emsmdb/?MailboxId=x", [*extra, client.authenticate(challenge)],
                                   content_length=4)
        await connection.send_body(b"wait")
        await connection.end_body()
        head = await connection.read_head()
        assert head.status_code == 200
        assert dict(head.headers)[b"x-pendingperiod"] == b"200"
        pieces = []
        while (chunk := await connection.read_chunk()) is not None:
            pieces.append(chunk)
        body = b"".join(pieces)
        assert body.startswith(b"PROCESSING\r\nPENDING\r\n")
        assert body.count(b"PENDING\r\n") >= 3  # every 200 ms of a 1.1 s hold (fewer if the machine is busy)
        assert b"DONE\r\nX-ResponseCode: 0\r\n" in body
    finally:
        await connection.close()


def conn_packet(cookie: bytes, *, inbound: bool) -> bytes:
    """A CONN/A1 (76 bytes, OUT channel) or CONN/B1 (104 bytes, IN channel) RTS packet."""
    length = 104 if inbound else 76
    header = bytes([5, 0, 20, 3, 0x10, 0, 0, 0]) + struct.pack("<HHI", length, 0, 0)
    commands = struct.pack("<II", 6, 1) + struct.pack("<I", 3) + cookie + struct.pack("<I", 3) + os.urandom(16)
    body = struct.pack("<HH", 0, 6 if inbound else 4) + commands
    body += struct.pack("<II", 4, 1073741824) + struct.pack("<II", 5, 300000) + struct.pack("<I", 12) + os.urandom(
        16) if inbound else struct.pack("<II", 0, 65536)
    packet = header + body
    assert len(packet) == length, len(packet)
    return packet


def test_rts_cookie() -> None:
    cookie = os.urandom(16)
    assert rts_cookie(conn_packet(cookie, inbound=False)) == cookie
    assert rts_cookie(conn_packet(cookie, inbound=True)) == cookie
    assert rts_cookie(b"GET / HTTP/1.1\r\n" * 4) is None


async def test_rpc_in_data_is_echoed_on_rpc_out_data(sim: RunningOwaSim) -> None:
    cookie = os.urandom(16)
    out_channel, in_channel = await HttpConnection.open(sim.port), await HttpConnection.open(sim.port)
    auth = [("Authorization", basic("CORP\\alice")), ("User-Agent", "MSRPC"), ("Accept", "application/rpc")]
    try:
        await out_channel.send_head("RPC_OUT_DATA", "/rpc/rpcproxy.dll?SIMCAS01:6001", auth, content_length=76)
        await out_channel.send_body(conn_packet(cookie, inbound=False))
        await out_channel.end_body()
        head = await out_channel.read_head()
        assert head.status_code == 200
        await in_channel.send_head("RPC_IN_DATA", "/rpc/rpcproxy.dll?SIMCAS01:6001", auth,
                                   content_length=1073741824)
        await in_channel.send_body(conn_packet(cookie, inbound=True))
        for index in range(3):
            payload = f"rpc payload {index}".encode()
            await in_channel.send_body(payload)
            assert await out_channel.read_chunk(timeout=2) == payload
    finally:
        await in_channel.close()
        await out_channel.close()
