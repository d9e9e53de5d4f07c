"""Every request target, whatever its form, goes through the gateway's own pipeline (edge checks,
request id, error page), never through an answer of aiohttp's router."""

from __future__ import annotations

import re

import pytest

from tests.proxy.support import PUBLIC_HOST, InProcessGateway, Upstream, raw_exchange


@pytest.mark.parametrize("request_line", [
    "CONNECT mail.example.test:443 HTTP/1.1",
    "GET http://mail.example.test HTTP/1.1",
    "GET http://mail.example.test/owa/auth/x HTTP/1.1",
    "OPTIONS * HTTP/1.1",
])
async def test_targets_that_are_not_paths_are_refused_by_the_edge(
        gateway: InProcessGateway, upstream: Upstream, request_line: str) -> None:
    response = await raw_exchange(gateway.port, f"{request_line}\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode(),
                                  timeout=1.0)
    assert response.startswith(b"HTTP/1.1 400 ")
    assert re.search(rb"\r\nX-Request-Id: [0-9a-f]{32}\r\n", response)  # the gateway's pipeline answered
    assert upstream[1].seen == []


async def test_any_path_reaches_the_pipeline(gateway: InProcessGateway, upstream: Upstream) -> None:
    for target in ("/", "/owa/auth/x", "/a/b/c/d/e/f", "/%41"):
        response = await raw_exchange(gateway.port, f"GET {target} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode(),
                                      timeout=0.5)
        assert re.search(rb"\r\nX-Request-Id: [0-9a-f]{32}\r\n", response), target
