"""A request for a host the gateway does not serve: the branded "wrong address" page naming the public
URL for browsers, a short plain answer for the rest; and, when the public URL is a loopback one (the
demo), the other loopback names redirected to it."""

from __future__ import annotations

import re

import pytest

from gateway.pages.i18n import load_translations
from tests.proxy.support import PUBLIC_HOST, PUBLIC_URL, Upstream, raw_exchange, run_gateway, status_codes

TEXTS = load_translations()


def get(target: str, host: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *extra, "", ""]
    return "\r\n".join(lines).encode()


def split(answer: bytes) -> tuple[str, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode(), body.decode()


@pytest.mark.parametrize("language", ["en", "tr"])
async def test_browsers_get_a_branded_page_naming_the_public_url(upstream: Upstream, language: str) -> None:
    texts = TEXTS[language]
    async with run_gateway(upstream[0].url) as gateway:
        answer = await raw_exchange(gateway.port, get("/owa/?x=1", "wrong.example:8080", "Accept: text/html",
                                                      f"Accept-Language: {language}"), timeout=1.0)
        assert status_codes(answer) == [400]
        head, body = split(answer)
        assert "Content-Type: text/html; charset=utf-8" in head
        assert texts["error.unknown-host.title"] in body
        assert texts["error.unknown-host.body"] in body
        assert texts["error.expected_url"].format(url=f"{PUBLIC_URL}/") in body
        assert f'<a class="button primary" href="{PUBLIC_URL}/">{texts["error.go_to_expected_url"]}</a>' in body
        assert "wrong.example" not in body  # nothing of the request is echoed

        # The page's style sheets load from the wrong host too, so the page is the branded one ...
        sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', body)
        assert len(sheets) == 2
        for sheet in sheets:
            answer = await raw_exchange(gateway.port, get(sheet.replace("&amp;", "&"), "wrong.example:8080"))
            assert status_codes(answer) == [200], sheet
            assert "Content-Type: text/css" in split(answer)[0]
    assert upstream[1].seen == []


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/_gateway/mfa"),
        ("GET", "/_gateway/healthz"),
        ("GET", "/_gateway/readyz"),
        ("GET", "/_gateway/static"),
        ("GET", "/_gateway/staticx/mfa.css"),
        ("GET", "/_gateway/static/%2e%2e/mfa"),
        ("GET", "/owa/_gateway/static/mfa.css"),
        ("POST", "/_gateway/static/mfa.css"),
        ("GET", "/owa/"),
        ("GET", "/"),
    ],
)
async def test_only_the_static_files_are_served_to_a_wrong_host(upstream: Upstream, method: str,
                                                                  target: str) -> None:
    async with run_gateway(upstream[0].url) as gateway:
        answer = await raw_exchange(gateway.port, get(target, "wrong.example", "Content-Length: 0", method=method),
                                    timeout=1.0)
    assert status_codes(answer) == [400]
    assert upstream[1].seen == []


async def test_other_clients_get_a_short_plain_answer(upstream: Upstream) -> None:
    async with run_gateway(upstream[0].url) as gateway:
        answer = await raw_exchange(gateway.port, get("/owa/", "wrong.example"), timeout=1.0)
    assert status_codes(answer) == [400]
    head, body = split(answer)
    assert "Content-Type: text/plain; charset=utf-8" in head
    request_id = re.search(r"X-Request-Id: ([0-9a-f]{32})", head)
    assert request_id is not None
    assert body.splitlines() == [
        f"400 {TEXTS['en']['error.unknown-host.title']}",
        TEXTS["en"]["error.unknown-host.body"],
        f"Use {PUBLIC_URL}/ instead.",
        "Reason: unknown host",
        f"Reference: {request_id.group(1)}",
    ]


LOOPBACK_PUBLIC_URL = "http://127.0.0.1:18080"  # names the port users type; the listener's own is elsewhere


@pytest.mark.parametrize("host", ["localhost:18080", "LOCALHOST:18080", "[::1]:18080"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
async def test_loopback_names_are_redirected_to_a_loopback_public_url(upstream: Upstream, host: str,
                                                                      method: str) -> None:
    async with run_gateway(upstream[0].url, gateway_public_url=LOOPBACK_PUBLIC_URL) as gateway:
        answer = await raw_exchange(gateway.port, get("/owa/?path=/mail", host, "Content-Length: 0", method=method),
                                    timeout=1.0)
    assert status_codes(answer) == [307]
    assert f"Location: {LOOPBACK_PUBLIC_URL}/owa/?path=/mail\r\n" in split(answer)[0]
    assert upstream[1].seen == []


@pytest.mark.parametrize("host", ["localhost", "localhost:18081", "127.0.0.2:18080", "localhost.:18080",
                                  "evil.example"])
async def test_other_hosts_stay_refused_with_a_loopback_public_url(upstream: Upstream, host: str) -> None:
    async with run_gateway(upstream[0].url, gateway_public_url=LOOPBACK_PUBLIC_URL) as gateway:
        answer = await raw_exchange(gateway.port, get("/owa/", host), timeout=1.0)
        assert status_codes(answer) == [400]
        # A bad target on a loopback alias is refused, not redirected.
        answer = await raw_exchange(gateway.port, get("/owa/%2e%2e/ecp/", "localhost:18080"), timeout=1.0)
        assert status_codes(answer) == [400]
        # The public URL's own host is served.
        answer = await raw_exchange(gateway.port, get("/", "127.0.0.1:18080"), timeout=1.0)
        assert status_codes(answer) == [302]


async def test_loopback_names_are_not_aliases_of_another_public_url(upstream: Upstream) -> None:
    async with run_gateway(upstream[0].url) as gateway:
        for host in ("localhost", "127.0.0.1", "[::1]", f"localhost:{gateway.port}"):
            answer = await raw_exchange(gateway.port, get("/owa/", host), timeout=1.0)
            assert status_codes(answer) == [400], host
    assert PUBLIC_HOST not in ("localhost", "127.0.0.1")
