"""End-to-end forwarding through a real gateway to a real upstream, both on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from tests.proxy.support import (
    GZIP_BODY,
    PUBLIC_HOST,
    InProcessGateway,
    Upstream,
    raw_exchange,
    run_gateway,
    run_upstream,
    status_codes,
)

HOST = {"Host": PUBLIC_HOST}
PUBLIC = "/owa/auth"  # GET/HEAD here is owa-public: forwarded without a session
OPEN = "/Microsoft-Server-ActiveSync"  # any method, allowed by default


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


def _url(gateway: InProcessGateway, target: str) -> URL:
    return URL(gateway.url + target, encoded=True)


async def test_hop_by_hop_and_forwarding_headers_are_replaced(
    gateway: InProcessGateway, upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    headers = {
        **HOST,
        "Connection": "keep-alive, X-Secret",
        "X-Secret": "s",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic eDp5",
        "Proxy-Connection": "keep-alive",
        "Trailer": "X-T",
        "Upgrade": "h2c",
        "X-Forwarded-For": "6.6.6.6",
        "X_Forwarded_For": "7.7.7.7",
        "X-FORWARDED-HOST": "evil.example",
        "Forwarded": "for=8.8.8.8;host=evil.example",
        "X-Real-IP": "9.9.9.9",
        "X-Original-URL": "/powershell",
        "X-Request-Id": "client-chosen",
        "X-Custom": "kept",
    }
    async with client.get(_url(gateway, f"{PUBLIC}/echo"), headers=headers) as response:
        assert response.status == 200
        gateway_id = response.headers["X-Request-Id"]
    seen = upstream[1].seen[-1]
    names = {name.lower() for name, _ in seen.headers}
    for dropped in ("x-secret", "keep-alive", "te", "proxy-authorization", "proxy-connection", "trailer", "upgrade",
                    "x_forwarded_for", "x-real-ip", "x-original-url"):
        assert dropped not in names, dropped
    assert seen.header("X-Forwarded-For") == ["127.0.0.1"]
    assert seen.header("X-Forwarded-Host") == [PUBLIC_HOST]
    assert seen.header("X-Forwarded-Proto") == ["http"]
    assert seen.header("Forwarded") == [f"for=127.0.0.1;proto=http;host={PUBLIC_HOST}"]
    assert seen.header("X-Request-Id") == [gateway_id] != ["client-chosen"]
    assert seen.header("Host") == [PUBLIC_HOST]
    assert seen.header("X-Custom") == ["kept"]


async def test_no_headers_are_invented(gateway: InProcessGateway, upstream: Upstream) -> None:
    request = f"GET {PUBLIC}/echo HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nX-Only: this\r\n\r\n".encode()
    await raw_exchange(gateway.port, request, timeout=0.5)
    seen = upstream[1].seen[-1]
    names = sorted(name.lower() for name, _ in seen.headers)
    assert names == sorted(["host", "x-only", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                            "forwarded", "x-request-id"])


async def test_trusted_proxy_chain_and_request_id_are_kept(upstream: Upstream,
                                                           client: aiohttp.ClientSession) -> None:
    async with run_gateway(upstream[0].url, gateway_trusted_proxies="127.0.0.0/8") as gateway:
        headers = {**HOST, "X-Forwarded-For": "203.0.113.9", "X-Request-Id": "lb-1234", "X_Bad": "x"}
        async with client.get(_url(gateway, f"{PUBLIC}/echo"), headers=headers) as response:
            assert response.headers["X-Request-Id"] == "lb-1234"
        seen = upstream[1].seen[-1]
        assert seen.header("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
        assert seen.header("X-Request-Id") == ["lb-1234"]
        assert not seen.header("X_Bad")
        # An invalid id from the trusted proxy is replaced, not passed on.
        async with client.get(_url(gateway, f"{PUBLIC}/echo"), headers={**HOST, "X-Request-Id": "bad id\t!"}) as bad:
            assert bad.headers["X-Request-Id"] != "bad id\t!"
            assert len(bad.headers["X-Request-Id"]) == 32


async def test_response_hop_by_hop_headers_removed(gateway: InProcessGateway, client: aiohttp.ClientSession) -> None:
    async with client.get(_url(gateway, f"{PUBLIC}/hop"), headers=HOST) as response:
        assert response.status == 200
        for dropped in ("X-Secret-Resp", "Keep-Alive", "Proxy-Authenticate", "Trailer"):
            assert dropped not in response.headers, dropped
        assert response.headers["X-Kept"] == "yes"
        assert response.headers["Set-Cookie"] == "a=1; Path=/"
        assert await response.read() == b"hop"


@pytest.mark.parametrize(("code", "reason"), [(440, "Login Timeout"), (449, "Retry With"), (299, "Odd But Fine")])
async def test_non_standard_statuses_pass_with_their_reason(gateway: InProcessGateway, code: int, reason: str) -> None:
    request = (f"GET {PUBLIC}/status?code={code}&reason={reason.replace(' ', '+')} HTTP/1.1\r\n"
               f"Host: {PUBLIC_HOST}\r\n\r\n").encode()
    response = await raw_exchange(gateway.port, request, timeout=0.5)
    assert response.startswith(f"HTTP/1.1 {code} {reason}\r\n".encode())
    assert response.endswith(b"status body")


async def test_gzip_passes_byte_identical(gateway: InProcessGateway, client: aiohttp.ClientSession) -> None:
    async with client.get(_url(gateway, f"{PUBLIC}/gzip"), headers={**HOST, "Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Content-Length"] == str(len(GZIP_BODY))
        assert await response.read() == GZIP_BODY


async def test_chunked_response_passes(gateway: InProcessGateway) -> None:
    request = f"GET {PUBLIC}/chunked HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode()
    response = await raw_exchange(gateway.port, request, timeout=0.5)
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"content-length" not in head.lower()
    decoded = b"".join(body.split(b"\r\n")[1::2])
    assert decoded == b"".join(f"part {index}\n".encode() for index in range(5))


async def test_chunked_upload_stays_chunked_and_content_length_stays(
    gateway: InProcessGateway, upstream: Upstream
) -> None:
    body = b"hello world"
    chunked = (f"POST {OPEN}/echo HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nTransfer-Encoding: chunked\r\n\r\n"
               f"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").encode()
    await raw_exchange(gateway.port, chunked, timeout=0.5)
    seen = upstream[1].seen[-1]
    assert seen.header("Transfer-Encoding") == ["chunked"]
    assert not seen.header("Content-Length")
    assert (seen.body_len, seen.body_sha256) == (len(body), hashlib.sha256(body).hexdigest())
    sized = (f"POST {OPEN}/echo HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    await raw_exchange(gateway.port, sized, timeout=0.5)
    seen = upstream[1].seen[-1]
    assert seen.header("Content-Length") == [str(len(body))]
    assert not seen.header("Transfer-Encoding")
    assert seen.body_len == len(body)


async def test_head_keeps_content_length_without_body(gateway: InProcessGateway) -> None:
    request = f"HEAD {PUBLIC}/gzip HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode()
    response = await raw_exchange(gateway.port, request, timeout=0.5)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"content-length: {len(GZIP_BODY)}".encode() in head.lower()
    assert body == b""


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        ("/owa/auth/%7euser/a%2dz", "/owa/auth/~user/a-z"),  # unreserved escapes decoded once
        ("/owa/auth/a%3fb?x=%2F..%2f&y", "/owa/auth/a%3Fb?x=%2F..%2f&y"),  # reserved kept; query untouched
        ("/OWA/Auth/Logon.aspx", "/OWA/Auth/Logon.aspx"),  # case kept, classified case-insensitively
    ],
)
async def test_canonical_target_is_forwarded_exactly(
    gateway: InProcessGateway, upstream: Upstream, target: str, forwarded: str
) -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode()
    response = await raw_exchange(gateway.port, request, timeout=0.5)
    assert status_codes(response) == [200]
    assert upstream[1].seen[-1].raw_path == forwarded


@pytest.mark.parametrize(
    "target",
    ["/owa/auth/../../powershell", "/owa/auth/%2e%2e/x", "/owa/auth/a%2fb", "//evil.example/x",
     "/owa/auth/a%5cb", "/owa/auth/x%00", "/owa./auth/x", "/owa/auth/a%252fb"],
)
async def test_ambiguous_targets_are_rejected_at_the_edge(
    gateway: InProcessGateway, upstream: Upstream, target: str
) -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode()
    response = await raw_exchange(gateway.port, request, timeout=0.5)
    assert status_codes(response) == [400]
    assert upstream[1].seen == []


def test_yarl_does_not_renormalise_an_encoded_target() -> None:
    for target in ("/owa/auth/a%3Fb?x=%2F..%2f&y=%41", "/a/%2E/b", "/a/./../b", "/%7e"):
        url = URL("http://127.0.0.1:1" + target, encoded=True)
        assert url.raw_path_qs == target


@pytest.mark.parametrize(
    "host",
    ["evil.example", "mail.example.test.evil.example", "mail.example.test:@evil.example",
     "mail.example.test:80@evil.example", "mail.example.test:8080", "a b"],
)
async def test_unknown_or_invalid_hosts_are_refused(
    gateway: InProcessGateway, upstream: Upstream, host: str
) -> None:
    request = f"GET {PUBLIC}/echo HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    response = await raw_exchange(gateway.port, request, timeout=0.5)
    assert status_codes(response) == [400]
    assert upstream[1].seen == []


async def test_host_is_case_and_default_port_insensitive(gateway: InProcessGateway) -> None:
    for host in ("MAIL.Example.TEST", "mail.example.test:80"):
        request = f"GET {PUBLIC}/echo HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        assert status_codes(await raw_exchange(gateway.port, request, timeout=0.5)) == [200]


async def test_route_classes_without_a_session_fail_closed(
    gateway: InProcessGateway, upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    cases = [
        ("GET", "/owa/", {"Accept": "text/html"}, 302),  # a navigation: to Exchange's logon page
        ("POST", "/owa/service.svc?action=GetFolder", {}, 440),  # OWA's scripts expect 440
        ("POST", "/owa/auth.owa", {}, 400),  # not a logon form Exchange would read the same way
        ("GET", "/ecp/", {"Accept": "text/html"}, 302),
        ("GET", "/PowerShell/", {}, 403),
        ("GET", "/nothing-here", {}, 404),
        ("GET", "/_gateway/nothing", {}, 404),
        ("POST", "/_gateway/healthz", {}, 405),
    ]
    for method, target, headers, expected in cases:
        async with client.request(method, _url(gateway, target), headers={**HOST, **headers},
                                  allow_redirects=False) as response:
            assert response.status == expected, (method, target)
            assert response.headers["X-Request-Id"]
            if expected == 302:
                logon = "/owa/auth/logon.aspx?url=http%3A%2F%2Fmail.example.test"
                assert response.headers["Location"].startswith(logon)
                continue
            body = await response.text()
            assert response.headers["X-Request-Id"] in body
            if headers.get("Accept") == "text/html":
                assert response.content_type == "text/html"
                assert "Outlook on the web" in body  # the branded page of the one renderer
    assert upstream[1].seen == []


async def test_root_redirects_to_owa(gateway: InProcessGateway, client: aiohttp.ClientSession) -> None:
    async with client.get(_url(gateway, "/"), headers=HOST, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/owa/"


async def test_route_policies_deny(upstream: Upstream, client: aiohttp.ClientSession) -> None:
    async with run_gateway(upstream[0].url, gateway_policy_activesync="deny", gateway_policy_windows_auth="deny",
                           gateway_policy_ecp="deny") as gateway:
        for target in (f"{OPEN}/echo", "/EWS/Exchange.asmx", "/ecp/auth/x.js"):
            async with client.get(_url(gateway, target), headers=HOST) as response:
                assert response.status == 403, target
    assert upstream[1].seen == []


async def test_windows_auth_connections_are_pinned_not_pooled(
    gateway: InProcessGateway, upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        async with client.post(_url(gateway, "/EWS/echo"), headers={**HOST, "Authorization": "NTLM TlRMTVNTUAAB"},
                               data=b"x") as response:
            assert response.status == 200
            assert json.loads(await response.read())["method"] == "POST"
    # One client connection: one upstream connection of its own (gateway.proxy.pinned; the full
    # NTLM behaviour is tested in tests/exchange_clients), never the shared pool's.
    assert len({seen.peer for seen in upstream[1].seen}) == 1
    assert not gateway.gateway.state.forwarder.pool._idle


async def test_other_requests_reuse_pooled_connections(
    gateway: InProcessGateway, upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    for _ in range(5):
        async with client.get(_url(gateway, f"{PUBLIC}/echo"), headers=HOST) as response:
            assert response.status == 200
            await response.read()
    assert len({seen.peer for seen in upstream[1].seen}) == 1


async def test_admin_and_gateway_health_endpoints(gateway: InProcessGateway, client: aiohttp.ClientSession) -> None:
    async with client.get(gateway.admin_url + "/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
    async with client.get(gateway.admin_url + "/readyz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ready", "ready": True, "checks": {
            "upstream": {"ok": True, "critical": True},
            "monosign": {"ok": True, "critical": False, "state": "closed"},
            "store": {"ok": True, "critical": True}}}
    async with client.get(_url(gateway, "/_gateway/healthz"), headers=HOST) as response:
        assert response.status == 200
    async with client.get(_url(gateway, "/_gateway/readyz"), headers=HOST) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ready"}  # the checks only on the admin listener
    async with client.get(gateway.admin_url + "/metrics") as response:
        text = await response.text()
    assert 'gateway_requests_total{route_class="gateway",status="200"} 2.0' in text
    assert "gateway_requests_in_flight" in text
    assert "gateway_request_duration_seconds_bucket" in text


async def test_readiness_names_the_missing_upstream_while_liveness_stays_up(client: aiohttp.ClientSession) -> None:
    async with run_upstream() as (upstream, _):
        dead_url = upstream.url
    async with run_gateway(dead_url) as gateway:
        async with client.get(gateway.admin_url + "/healthz") as response:
            assert response.status == 200
        async with client.get(gateway.admin_url + "/readyz") as response:
            assert response.status == 503
            report = await response.json()
        assert report["status"] == "not ready"
        assert report["checks"]["upstream"]["ok"] is False
        assert "127.0.0.1" not in report["checks"]["upstream"]["error"]
        # The public listener says not ready, and not what is down.
        async with client.get(_url(gateway, "/_gateway/readyz"), headers=HOST) as response:
            assert response.status == 503
            assert response.headers["Cache-Control"] == "no-store"
            body = await response.text()
        assert json.loads(body) == {"status": "not ready"}
        for detail in ("upstream", "connect", "checks", "error", "monosign", "store"):
            assert detail not in body
