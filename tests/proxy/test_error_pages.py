"""The gateway's error answers over real sockets: the one renderer's branded, translated page for
browsers, plain text for everything else, with or without the MFA flow installed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from gateway.pages.i18n import load_translations
from gateway.pages.renderer import CONTENT_SECURITY_POLICY
from tests.proxy.support import (
    PUBLIC_HOST,
    Upstream,
    raw_exchange,
    run_gateway,
    status_codes,
)

HOST = {"Host": PUBLIC_HOST}
BROWSER = {**HOST, "Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
TEXTS = load_translations()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_pages_are_branded_translated_and_locked_down_without_the_mfa_flow(
    upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    async with run_gateway(upstream[0].url, mfa=False) as gateway:
        async with client.get(gateway.url + "/nowhere", headers={**BROWSER, "Accept-Language": "tr-TR,tr;q=0.9"}
                              ) as response:
            assert response.status == 404
            body = await response.text()
            headers = response.headers
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Content-Language"] == "tr"
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
        assert TEXTS["tr"]["error.404.title"] in body
        assert headers["X-Request-Id"] in body
        assert "<style" not in body
        # The page's style sheets are served by the gateway itself, MFA flow or not.
        sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', body)
        assert len(sheets) == 2
        for sheet in sheets:
            async with client.get(gateway.url + sheet.replace("&amp;", "&"), headers=HOST) as response:
                assert response.status == 200, sheet
                assert response.content_type == "text/css"

        async with client.get(gateway.url + "/owa/", headers=BROWSER) as response:
            assert response.status == 403
            assert TEXTS["en"]["error.mfa-not-configured.title"] in await response.text()
        async with client.post(gateway.url + "/owa/service.svc?action=GetFolder", headers=HOST) as response:
            assert (response.status, response.reason) == (440, "Login Timeout")
            assert response.content_type == "text/plain"
            text = await response.text()
            assert text.startswith(f"440 {TEXTS['en']['error.440.title']}\n")
            assert text.endswith(f"Reference: {response.headers['X-Request-Id']}\n")
    assert upstream[1].seen == []


async def test_plain_text_for_clients_that_do_not_ask_for_html_in_the_configured_language(
    upstream: Upstream, client: aiohttp.ClientSession
) -> None:
    async with run_gateway(upstream[0].url, mfa=False, gateway_language="tr") as gateway:
        async with client.get(gateway.url + "/nowhere", headers={**HOST, "Accept-Language": "en"}) as response:
            assert response.status == 404
            assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert response.headers["Content-Language"] == "tr"
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            lines = (await response.text()).splitlines()
        assert lines == [f"404 {TEXTS['tr']['error.404.title']}", TEXTS["tr"]["error.404.body"],
                         f"Referans: {response.headers['X-Request-Id']}"]
        async with client.post(gateway.url + "/_gateway/healthz", headers=BROWSER) as response:
            assert response.status == 405
            assert TEXTS["tr"]["error.405.title"] in await response.text()


@pytest.mark.parametrize(
    ("target", "host", "shown", "title"),
    [
        ("/owa/%2e%2e/ecp/", PUBLIC_HOST, "dot segment", "error.400.title"),
        ("/owa/", "evil.example", "unknown host", "error.unknown-host.title"),
    ],
)
async def test_edge_rejections_name_their_fixed_reason(upstream: Upstream, target: str, host: str, shown: str,
                                                       title: str) -> None:
    async with run_gateway(upstream[0].url, mfa=False) as gateway:
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n".encode()
        answer = await raw_exchange(gateway.port, request, timeout=1.0)
    assert status_codes(answer) == [400]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: text/html; charset=utf-8" in head
    assert f"Reason: {shown}".encode() in body
    assert TEXTS["en"][title].encode() in body
    # Nothing of the request is echoed.
    assert host.encode() not in body
    assert b"%2e" not in body


async def test_requests_the_parser_refuses_get_plain_text_with_a_reference(upstream: Upstream) -> None:
    async with run_gateway(upstream[0].url, mfa=False) as gateway:
        request = b"GET /owa/ HTTP/1.1\r\nHost: " + PUBLIC_HOST.encode() + b"\r\nX-Secret\x01Header: s3cr3t\r\n\r\n"
        answer = await raw_exchange(gateway.port, request, timeout=1.0)
    assert status_codes(answer) == [400]
    head, _, body = answer.partition(b"\r\n\r\n")
    request_id = re.search(rb"X-Request-Id: ([0-9a-f]{32})", head)
    assert request_id is not None
    assert b"Content-Type: text/plain; charset=utf-8" in head
    assert body.decode().splitlines() == [f"400 {TEXTS['en']['error.400.title']}", TEXTS["en"]["error.400.body"],
                                          f"Reference: {request_id.group(1).decode()}"]
    assert b"s3cr3t" not in answer
