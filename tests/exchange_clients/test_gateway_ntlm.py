"""NTLM through the gateway: a real EWS client, interleaved handshakes, leg 3 elsewhere, upstream close."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.exchange_clients.conftest import Stack, StackFactory
from tests.exchange_clients.support import HttpConnection, NtlmClient, ntlm_login

OAB = "/OAB/1234/oab.xml"


def _list_inbox(base_url: str, user: str, password: str, mailbox: str) -> list[str]:
    from exchangelib import DELEGATE, NTLM, Account, Build, Configuration, Credentials, Version

    config = Configuration(service_endpoint=base_url + "/EWS/Exchange.asmx", credentials=Credentials(user, password),
                           auth_type=NTLM, version=Version(build=Build(15, 1, 2507, 6)))
    account = Account(mailbox, config=config, autodiscover=False, access_type=DELEGATE)
    try:
        return [item.subject for item in account.inbox.all()]
    finally:
        account.protocol.close()


async def test_exchangelib_lists_the_inbox_through_the_gateway(stack: Stack) -> None:
    subjects = await asyncio.to_thread(_list_inbox, stack.url, "CORP\\alice", "AlicePass1!", "alice@corp.example")
    assert "Quarterly report (draft)" in subjects
    assert {"GetFolder", "FindItem"} <= set(stack.clients.counters.ews_operations)
    assert stack.clients.acceptors.completed >= 1
    pins = stack.gateway.state.forwarder.pins
    assert pins is not None
    assert pins.opened_total >= 1
    assert not stack.gateway.state.forwarder.pool._idle  # nothing of it went to the shared pool
    metrics = stack.gateway.state.metrics.render().decode()
    assert 'gateway_client_policy_decisions_total{outcome="allow",route_class="windows-auth"}' in metrics
    # exchangelib has closed its connections; the gateway sees each close on its next loop turns.
    for _ in range(100):
        if "gateway_pinned_connections 0.0" in metrics:
            break
        await asyncio.sleep(0.05)
        metrics = stack.gateway.state.metrics.render().decode()
    assert "gateway_pinned_connections 0.0" in metrics


async def test_interleaved_handshakes_never_share_an_upstream_connection(stack: Stack) -> None:
    alice_conn, bob_conn = await HttpConnection.open(stack.port), await HttpConnection.open(stack.port)
    try:
        alice, bob = NtlmClient("CORP\\alice"), NtlmClient("bob@corp.example")
        alice_challenge = await alice_conn.request("GET", OAB, [alice.negotiate()])
        bob_challenge = await bob_conn.request("GET", OAB, [bob.negotiate()])
        assert (alice_challenge.status, bob_challenge.status) == (401, 401)
        bob_done = await bob_conn.request("GET", OAB, [bob.authenticate(bob_challenge)])
        alice_done = await alice_conn.request("GET", OAB, [alice.authenticate(alice_challenge)])
        assert (alice_done.status, bob_done.status) == (200, 200)
        # Later requests ride on each client's own authenticated upstream connection.
        assert (await alice_conn.request("GET", OAB)).status == 200
        assert (await bob_conn.request("GET", OAB)).status == 200
    finally:
        await alice_conn.close()
        await bob_conn.close()
    by_connection: dict[int, set[str]] = {}
    for record in stack.sim.state.recorder.requests():
        request_id = dict((name.lower(), value) for name, value in record.headers).get("x-request-id", "")
        by_connection.setdefault(record.connection, set()).add(request_id)
    assert len(by_connection) == 2, by_connection  # one upstream connection per client connection
    assert sorted(len(ids) for ids in by_connection.values()) == [3, 3]
    assert {user for _, state in stack.clients.acceptors.authenticated() for user in [state.user]} == {
        "CORP\\alice", "bob@corp.example"}


async def test_authenticated_connection_is_not_lent_to_another_client(stack: Stack) -> None:
    alice_conn = await HttpConnection.open(stack.port)
    stranger = await HttpConnection.open(stack.port)
    try:
        assert (await ntlm_login(alice_conn, "GET", OAB, "CORP\\alice")).status == 200
        answer = await stranger.request("GET", OAB)
        assert answer.status == 401
        assert answer.header("WWW-Authenticate") == ["Negotiate", "NTLM"]
    finally:
        await alice_conn.close()
        await stranger.close()


async def test_third_leg_on_a_fresh_client_connection_fails(stack: Stack) -> None:
    first, second = await HttpConnection.open(stack.port), await HttpConnection.open(stack.port)
    try:
        client = NtlmClient("CORP\\alice")
        challenge = await first.request("GET", OAB, [client.negotiate()])
        assert challenge.status == 401
        answer = await second.request("GET", OAB, [client.authenticate(challenge)])
        assert answer.status == 401
        assert stack.clients.acceptors.completed == 0
    finally:
        await first.close()
        await second.close()


async def test_negotiate_wrapped_ntlm_is_pinned_too(stack: Stack) -> None:
    connection = await HttpConnection.open(stack.port)
    try:
        answer = await ntlm_login(connection, "POST", "/autodiscover/autodiscover.xml", "CORP\\carol",
                                  scheme="Negotiate", body=b"<Autodiscover/>")
        assert answer.status == 200
        assert b"Carol Carter" in answer.body
        assert answer.header("WWW-Authenticate")  # the acceptor's last token travels back
    finally:
        await connection.close()


async def test_upstream_close_closes_the_client_connection(stack: Stack) -> None:
    connection = await HttpConnection.open(stack.port)
    try:
        assert (await ntlm_login(connection, "GET", OAB, "CORP\\dave")).status == 200
        authenticated = stack.clients.acceptors.authenticated()
        assert len(authenticated) == 1
        server_protocol, _state = authenticated[0]
        server_protocol.transport.close()  # Exchange drops the authenticated connection
        assert await connection.closed_by_peer(timeout=5)
    finally:
        await connection.close()


async def test_client_close_closes_the_upstream_connection(stack: Stack) -> None:
    connection = await HttpConnection.open(stack.port)
    assert (await ntlm_login(connection, "GET", OAB, "CORP\\dave")).status == 200
    pins = stack.gateway.state.forwarder.pins
    assert pins is not None
    assert pins.upstream_connections == 1
    await connection.close()
    for _ in range(50):
        if not stack.clients.acceptors.authenticated() and pins.upstream_connections == 0:
            break
        await asyncio.sleep(0.1)
    assert pins.upstream_connections == 0
    assert stack.clients.acceptors.authenticated() == []  # the simulator saw its connection end


# OWA and ECP take their session from cookies alone: NTLM there is neither forwarded nor pinned.
@pytest.mark.parametrize(("path", "pinned"), [("/Microsoft-Server-ActiveSync", 1), ("/owa/auth/logon.aspx", 0)])
async def test_ntlm_on_other_paths_is_pinned(make_stack: StackFactory, path: str, pinned: int) -> None:
    stack = await make_stack()
    connection = await HttpConnection.open(stack.port)
    try:
        await connection.request("GET", path, [NtlmClient("CORP\\alice").negotiate()])
    finally:
        await connection.close()
    pins = stack.gateway.state.forwarder.pins
    assert pins is not None
    assert pins.opened_total == pinned


async def test_without_close_hooks_nothing_is_pinned_or_pooled(make_stack: StackFactory) -> None:
    # The gateway's application under a plain aiohttp runner: its protocol cannot report a closed
    # connection, so connection-bound requests get an upstream connection of their own each time.
    from aiohttp import web

    from gateway.app import build_app
    from gateway.assembly import build_state
    from gateway.state import STATE

    stack = await make_stack()
    app = build_app(build_state(stack.gateway.settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    connection = await HttpConnection.open(port)
    try:
        for _ in range(2):
            answer = await connection.request("GET", OAB, [NtlmClient("CORP\\alice").negotiate()])
            assert answer.status == 401  # the challenge; never a 500
        forwarder = app[STATE].forwarder
        assert forwarder.pins is not None
        assert forwarder.pins.opened_total == 0
        assert not forwarder.pool._idle
        assert len({record.connection for record in stack.sim.state.recorder.requests()}) == 2
    finally:
        await connection.close()
        await runner.cleanup()


async def test_pinned_connections_use_tls_to_the_upstream(tmp_path: Path) -> None:
    import ssl

    import trustme

    from gateway.sim.owa import OwaSimConfig, running_owa_sim
    from tests.exchange_clients.conftest import FAST, gateway_in_front

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    async with running_owa_sim(OwaSimConfig(exchange_clients=FAST), ssl_context=server_context) as sim, \
            gateway_in_front(sim, gateway_upstream_ca_file=str(ca_file)) as (gateway, port):
        connection = await HttpConnection.open(port)
        try:
            assert (await ntlm_login(connection, "GET", OAB, "CORP\\alice")).status == 200
            assert (await connection.request("GET", OAB)).status == 200
        finally:
            await connection.close()
        records = sim.state.recorder.requests()
        assert {record.tls for record in records} == {True}
        assert len({record.connection for record in records}) == 1
        assert gateway.state.forwarder.pins is not None
