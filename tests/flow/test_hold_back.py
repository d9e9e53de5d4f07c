"""Exchange's session cookies never reach a browser without a passed session, whatever the route:
an upstream that sets `cadata` where Exchange would not (a public page, ActiveSync, EWS, a logoff,
an odd login answer) is refused; deletions always pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from gateway.server import Gateway
from gateway.settings import load_settings
from tests.flow.conftest import API_KEY, API_SECRET, HOST, PUBLIC_URL

LIVE = ["cadata=Zm9yZWlnbg==; path=/; HttpOnly", "cadataKey=a2V5; path=/; HttpOnly", "UC=1; path=/"]
DELETIONS = ["cadata=; expires=Thu, 01-Jan-1970 00:00:00 GMT; path=/", "UC=1; path=/"]


async def _upstream(request: web.Request) -> web.Response:
    cookies = DELETIONS if "delete" in request.query_string else LIVE
    status = 302 if request.path.lower() == "/owa/auth.owa" else 200
    response = web.Response(status=status, text="upstream body",
                            headers={"Location": "/owa/"} if status == 302 else None)
    for value in cookies:
        response.headers.add("Set-Cookie", value)
    return response


@asynccontextmanager
async def gateway_before(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    settings = load_settings(env_file=None, monosign_api_url="http://127.0.0.1:9", monosign_api_key=API_KEY,
                             monosign_api_secret=API_SECRET, gateway_public_url=PUBLIC_URL,
                             gateway_upstream_url=f"http://127.0.0.1:{runner.addresses[0][1]}",
                             gateway_listen="127.0.0.1:0", gateway_admin_listen="127.0.0.1:0")
    gateway = Gateway(settings)
    await gateway.start()
    try:
        yield gateway.main_addresses[0]
    finally:
        await gateway.stop()
        await runner.cleanup()


@pytest.fixture
async def gateway_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _upstream)
    async with gateway_before(app) as url:
        yield url


@pytest.mark.parametrize(("method", "target", "data"), [
    ("GET", "/owa/auth/logon.aspx", None),                    # owa-public
    ("POST", "/Microsoft-Server-ActiveSync?Cmd=Ping", b"x"),  # activesync
    ("POST", "/EWS/Exchange.asmx", b"<x/>"),                   # windows-auth
    ("GET", "/owa/logoff.owa", None),                          # owa-logoff
    # An answer to a login post that is not Exchange's success redirect must not hand out a session either.
    ("POST", "/owa/auth/owaauth.dll", b"username=alice&password=p&destination=%2Fowa%2F&flags=4"),
])
async def test_live_cadata_without_a_session_is_refused(gateway_url: str, method: str, target: str,
                                                        data: bytes | None) -> None:
    headers = {"Host": HOST, "Accept": "text/html"}
    if data is not None and b"=" in data:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, http.request(
        method, gateway_url + target, data=data, headers=headers, allow_redirects=False,
    ) as response:
        body = await response.text()
        assert response.status == 403, body
        set_cookies = response.headers.getall("Set-Cookie", [])
    assert not any(value.lower().startswith(("cadata=", "cadatakey=")) for value in set_cookies), set_cookies
    assert "upstream body" not in body


async def test_deletions_pass(gateway_url: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, http.get(
        gateway_url + "/owa/auth/logon.aspx?delete=1", headers={"Host": HOST}, allow_redirects=False,
    ) as response:
        assert response.status == 200
        assert response.headers.getall("Set-Cookie") == DELETIONS
