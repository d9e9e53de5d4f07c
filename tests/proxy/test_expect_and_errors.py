"""`Expect: 100-continue` answered after the checks; 502/504 pages; TLS on both sides."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from yarl import URL

from tests.proxy.support import (
    PUBLIC_HOST,
    InProcessGateway,
    Upstream,
    run_gateway,
    run_upstream,
    status_codes,
)

HOST = {"Host": PUBLIC_HOST}


@pytest.fixture
async def gateway(upstream: Upstream) -> AsyncIterator[InProcessGateway]:
    async with run_gateway(upstream[0].url, gateway_upstream_read_timeout=1.0) as running:
        yield running


async def _read_some(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(65536), timeout)
    except TimeoutError:
        return b""


async def test_expect_continue_is_sent_only_after_the_checks(gateway: InProcessGateway, upstream: Upstream) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(f"POST /Microsoft-Server-ActiveSync/echo HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n"
                     "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode())
        await writer.drain()
        first = await _read_some(reader, 2.0)
        assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        await writer.drain()
        final = await _read_some(reader, 2.0)
        assert status_codes(final) == [200]
    finally:
        writer.close()
    seen = upstream[1].seen[-1]
    assert seen.body_len == 5
    assert not seen.header("Expect")


@pytest.mark.parametrize(
    ("target", "host", "expect", "status"),
    [
        ("/owa/service.svc", PUBLIC_HOST, "100-continue", 440),  # needs MFA: refused, no invitation
        ("/powershell/x", PUBLIC_HOST, "100-continue", 403),
        ("/nowhere", PUBLIC_HOST, "100-continue", 404),
        ("/Microsoft-Server-ActiveSync", "evil.example", "100-continue", 400),
        ("/owa/auth/%2e%2e/x", PUBLIC_HOST, "100-continue", 400),
        ("/Microsoft-Server-ActiveSync", PUBLIC_HOST, "something-else", 417),
    ],
)
async def test_refused_requests_get_their_final_status_without_100(
    gateway: InProcessGateway, upstream: Upstream, target: str, host: str, expect: str, status: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nExpect: {expect}\r\n\r\n"
        writer.write(head.encode())
        await writer.drain()
        first = await _read_some(reader, 2.0)
    finally:
        writer.close()
    assert b"100 Continue" not in first
    assert status_codes(first) == [status]
    assert upstream[1].seen == []


async def test_unreachable_upstream_gives_502_page_with_request_id() -> None:
    async with run_upstream() as (dead, _):
        dead_url = dead.url
    async with run_gateway(dead_url) as gateway, aiohttp.ClientSession() as client:
        async with client.get(gateway.url + "/owa/auth/logon.aspx",
                              headers={**HOST, "Accept": "text/html"}) as response:
            assert response.status == 502
            body = await response.text()
            request_id = response.headers["X-Request-Id"]
        assert request_id in body
        assert "Mail server unreachable" in body  # the renderer's branded error page
        assert "Outlook on the web" in body
        assert "127.0.0.1" not in body
        assert dead_url.rsplit(":", 1)[1] not in body
        async with client.get(gateway.url + "/Microsoft-Server-ActiveSync", headers=HOST) as response:
            assert response.status == 502
            assert response.content_type == "text/plain"
        async with client.get(gateway.admin_url + "/metrics") as response:
            assert 'gateway_upstream_errors_total{kind="connect"} 2.0' in await response.text()


async def test_slow_upstream_gives_504(gateway: InProcessGateway) -> None:
    async with aiohttp.ClientSession() as client, client.get(
        gateway.url + "/owa/auth/slow?s=3", headers={**HOST, "Accept": "text/html"}
    ) as response:
        assert response.status == 504
        assert response.headers["X-Request-Id"] in await response.text()


# --- TLS on both sides ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


async def test_tls_listener_and_verified_https_upstream(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    gateway_cert = ca.issue_cert(PUBLIC_HOST)
    cert_file, key_file = tmp_path / "gw.pem", tmp_path / "gw.key"
    gateway_cert.cert_chain_pems[0].write_to_path(str(cert_file))
    gateway_cert.private_key_pem.write_to_path(str(key_file))
    client_context = ssl.create_default_context(cafile=str(ca_file))

    settings = {"gateway_public_url": f"https://{PUBLIC_HOST}", "gateway_upstream_ca_file": str(ca_file),
                "gateway_tls_cert_file": str(cert_file), "gateway_tls_key_file": str(key_file)}
    async with run_upstream(ssl_context=_server_context(ca, "127.0.0.1")) as (upstream, state), \
            run_gateway(upstream.url, **settings) as gateway:
        assert gateway.url.startswith("https://")
        connector = aiohttp.TCPConnector(ssl=client_context, resolver=_StaticResolver(gateway.port))
        async with aiohttp.ClientSession(connector=connector) as client:
            url = URL(f"https://{PUBLIC_HOST}:{gateway.port}/owa/auth/echo")
            async with client.get(url, headers={"Host": PUBLIC_HOST}) as response:
                assert response.status == 200
                echoed = await response.json()
        # The upstream saw the public Host, over TLS verified against its own name (127.0.0.1).
        assert ["Host", PUBLIC_HOST] in echoed["headers"]
        assert ["X-Forwarded-Proto", "https"] in echoed["headers"]
        assert len(state.seen) == 1


async def test_upstream_certificate_failure_gives_502(ca: trustme.CA, tmp_path: Path) -> None:
    other_ca = trustme.CA()
    ca_file = tmp_path / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(ca_file))
    async with run_upstream(ssl_context=_server_context(ca, "127.0.0.1")) as (upstream, state):
        async with run_gateway(upstream.url, gateway_upstream_ca_file=str(ca_file)) as gateway, \
                aiohttp.ClientSession() as client:
            async with client.get(gateway.url + "/owa/auth/echo", headers=HOST) as response:
                assert response.status == 502
            async with client.get(gateway.admin_url + "/metrics") as response:
                assert 'gateway_upstream_errors_total{kind="tls"} 1.0' in await response.text()
            async with client.get(gateway.admin_url + "/readyz") as response:
                assert response.status == 503
                assert "tls" in (await response.json())["checks"]["upstream"]["error"]
        assert state.seen == []


async def test_upstream_tls_verification_can_be_disabled(ca: trustme.CA) -> None:
    async with run_upstream(ssl_context=_server_context(ca, "127.0.0.1")) as (upstream, state):
        async with run_gateway(upstream.url, gateway_upstream_tls_verify=False) as gateway, \
                aiohttp.ClientSession() as client, client.get(gateway.url + "/owa/auth/echo", headers=HOST) as response:
            assert response.status == 200
        assert len(state.seen) == 1


class _StaticResolver(aiohttp.abc.AbstractResolver):
    """Resolves every name to 127.0.0.1, so the client sends SNI and Host for the public name."""

    def __init__(self, port: int) -> None:
        self._port = port

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[aiohttp.abc.ResolveResult]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": 2, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


async def test_upstream_gets_sni_and_is_verified_by_its_own_name(ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = _server_context(ca, "localhost")
    server_names: list[str | None] = []

    def record_sni(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        server_names.append(name)

    context.sni_callback = record_sni  # type: ignore[assignment]
    async with run_upstream(ssl_context=context) as (upstream, state), \
            run_gateway(f"https://localhost:{upstream.port}", gateway_upstream_ca_file=str(ca_file)) as gateway, \
            aiohttp.ClientSession() as client, \
            client.get(gateway.url + "/owa/auth/echo", headers=HOST) as response:
        assert response.status == 200
        echoed = await response.json()
    assert "localhost" in server_names
    assert ["Host", PUBLIC_HOST] in echoed["headers"]  # the public Host, not the upstream's name
    assert len(state.seen) == 1


async def _one_request_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                      connections: list[str]) -> None:
    """Answers the first request of a connection (keep-alive), then drops it at the second."""
    connections.append("opened")
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the second request: vanish without an answer
        connections.append("dropped")
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.transport.abort()


async def test_stale_pooled_connection_is_retried_only_when_safe() -> None:
    connections: list[str] = []
    server = await asyncio.start_server(lambda r, w: _one_request_per_connection(r, w, connections), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with run_gateway(f"http://127.0.0.1:{port}") as gateway, aiohttp.ClientSession() as client:
            for _ in range(2):
                async with client.get(gateway.url + "/owa/auth/x", headers=HOST) as response:
                    assert response.status == 200
                    assert await response.read() == b"ok"
            # The second GET met the dropped connection and was retried on a new one.
            assert connections == ["opened", "dropped", "opened"]
            # The pooled connection now drops a POST: its body is never sent a second time.
            async with client.post(gateway.url + "/Microsoft-Server-ActiveSync", headers=HOST, data=b"1") as post:
                assert post.status == 502
            assert connections == ["opened", "dropped", "opened", "dropped"]
    finally:
        server.close()
        await server.wait_closed()
