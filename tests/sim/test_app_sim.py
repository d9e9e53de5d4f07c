"""The generic application simulator (`sim app`): the upstream of passthrough and portal sites."""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import sys

import aiohttp
import pytest
from yarl import URL

from gateway.sim.app import AppSimConfig, running_app_sim
from gateway.sim.app.server import SESSION_COOKIE, _safe_next


async def test_pages_show_the_identity_headers_escaped() -> None:
    async with running_app_sim() as sim, aiohttp.ClientSession() as client:
        headers = {"Remote-User": "alice", "Remote-Groups": "<b>staff</b>"}
        async with client.get(f"{sim.base_url}/wiki/Home", headers=headers) as response:
            text = await response.text()
    assert response.status == 200
    assert "<code>/wiki/Home</code>" in text
    assert "<td>alice</td>" in text
    assert "&lt;b&gt;staff&lt;/b&gt;" in text
    assert "<b>staff</b>" not in text


async def test_echo_returns_every_header_as_received_in_order() -> None:
    async with running_app_sim() as sim, aiohttp.ClientSession() as client:
        headers = [("Remote-User", "alice"), ("remote_user", "mallory"), ("Remote-User", "bob")]
        async with client.post(f"{sim.base_url}/_app/echo?a=1&b", headers=headers, data=b"x" * 1000) as response:
            document = await response.json()
    assert document["method"] == "POST"
    assert document["path"] == "/_app/echo"
    assert document["query"] == "a=1&b"
    assert document["body_bytes"] == 1000
    sent = [pair for pair in document["headers"] if pair[0].lower().replace("_", "-") == "remote-user"]
    assert sent == [["Remote-User", "alice"], ["remote_user", "mallory"], ["Remote-User", "bob"]]


async def test_slow_streams_chunks_over_time() -> None:
    async with running_app_sim() as sim, aiohttp.ClientSession() as client, \
            client.get(f"{sim.base_url}/_app/slow?seconds=0.3&chunks=4") as response:
        first = await response.content.readline()
        rest = await response.read()
    assert first == b"chunk 1 of 4\n"
    assert rest.splitlines()[-1] == b"chunk 4 of 4"


async def test_download_has_the_asked_size_and_upload_reports_what_arrived() -> None:
    size = 3 * 1024 * 1024 + 17
    async with running_app_sim() as sim, aiohttp.ClientSession() as client:
        digest, received = hashlib.sha256(), 0
        async with client.get(f"{sim.base_url}/_app/download?size={size}") as response:
            assert response.content_length == size
            async for chunk in response.content.iter_chunked(65536):
                digest.update(chunk)
                received += len(chunk)
        assert received == size
        body = bytes(range(256)) * 4096
        async with client.post(f"{sim.base_url}/_app/upload", data=body) as response:
            report = await response.json()
    assert report == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@pytest.mark.parametrize("query", ["size=-1", "size=abc", "size=1e30", "seconds=-2", "chunks=1e9"])
async def test_out_of_range_numbers_are_refused(query: str) -> None:
    path = "/_app/download" if query.startswith("size") else "/_app/slow"
    async with running_app_sim() as sim, aiohttp.ClientSession() as client, \
            client.get(f"{sim.base_url}{path}?{query}") as response:
        assert response.status == 400


async def test_websocket_echoes_text_and_binary() -> None:
    async with running_app_sim() as sim, aiohttp.ClientSession() as client, \
            client.ws_connect(f"{sim.base_url}/_app/ws") as socket:
        await socket.send_str("hello")
        assert await socket.receive_str() == "hello"
        await socket.send_bytes(b"\x00\x01")
        assert await socket.receive_bytes() == b"\x00\x01"


async def test_the_form_login_guards_pages_but_not_health() -> None:
    config = AppSimConfig(require_login=True, users={"alice": "AlicePass1!"})
    jar = aiohttp.CookieJar(unsafe=True)  # cookies of an IP address host
    async with running_app_sim(config) as sim, aiohttp.ClientSession(cookie_jar=jar) as client:
        async with client.get(f"{sim.base_url}/health") as response:
            assert await response.text() == "ok\n"
        async with client.get(f"{sim.base_url}/reports?q=1", allow_redirects=False) as response:
            assert response.status == 302
            location = URL(response.headers["Location"])
            assert location.path == "/login"
            assert location.query["next"] == "/reports?q=1"
        async with client.post(f"{sim.base_url}/reports", allow_redirects=False) as response:
            assert response.status == 401
        wrong = {"username": "alice", "password": "nope", "next": "/reports"}
        async with client.post(f"{sim.base_url}/login", data=wrong, allow_redirects=False) as response:
            assert response.status == 401
        good = {"username": "alice", "password": "AlicePass1!", "next": "/reports?q=1"}
        async with client.post(f"{sim.base_url}/login", data=good, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/reports?q=1"
            assert SESSION_COOKIE in response.cookies
        async with client.get(f"{sim.base_url}/reports") as response:
            assert "Signed in to the application as <b>alice</b>" in await response.text()
        async with client.get(f"{sim.base_url}/logout", allow_redirects=False) as response:
            assert response.status == 303
        async with client.get(f"{sim.base_url}/reports", allow_redirects=False) as response:
            assert response.status == 302


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/reports", "/reports"),
        ("/a?b=c", "/a?b=c"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("\\\\evil.example", "/"),
    ],
)
def test_the_login_goes_back_only_to_a_path_of_the_application(given: str | None, expected: str) -> None:
    assert _safe_next(given) == expected


async def test_sim_app_command_serves_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "sim", "app", "--listen", "127.0.0.1:0", "--name", "Wiki",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.match(r"Application simulator listening on (http://127\.0\.0\.1:\d+)/", line)
        assert match, line
        async with aiohttp.ClientSession() as client, client.get(f"{match[1]}/") as response:
            assert "<h1>Wiki</h1>" in await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
