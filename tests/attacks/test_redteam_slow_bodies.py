"""Red team: bodies the gateway buffers itself (the logon form, the MFA forms) must arrive in time.

The header timeout stops a client that trickles its request head; a client that then trickles the
small body the gateway reads before anything else happens would hold its connection (and a task)
for as long as it likes, so thousands of them would exhaust the gateway's sockets without a single
valid password. Those bodies get the same bound as the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.flow.conftest import HOST, flow_environment

HEADER_TIMEOUT = 1.0


async def _trickle(port: int, head: str, first_bytes: bytes) -> tuple[float, bytes, bool]:
    """Send a head and the start of its body, then nothing. Returns how long the first byte of the
    answer took, the answer, and whether the gateway then closed the connection (after aiohttp's
    lingering read of at most 10 s, itself bounded)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(head.encode() + first_bytes)
        await writer.drain()
        received = await asyncio.wait_for(reader.read(65536), timeout=HEADER_TIMEOUT + 10)
        elapsed = time.monotonic() - started
        closed = False
        with contextlib.suppress(TimeoutError):
            while await asyncio.wait_for(reader.read(65536), timeout=15):
                pass
            closed = True
        return elapsed, received, closed
    finally:
        writer.close()


@pytest.mark.slow
@pytest.mark.parametrize("target", ["/owa/auth.owa", "/ecp/auth.owa", "/_gateway/mfa/verify"])
async def test_a_trickled_form_body_is_cut_off(target: str) -> None:
    async with flow_environment(gateway_header_timeout=HEADER_TIMEOUT) as env:
        browser = env.browser()
        await browser.password("alice")  # a pending session, so the MFA form is read too
        cookie = f"{env.cookie_name}={browser.gateway_cookie}"
        head = (f"POST {target} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n")
        elapsed, received, closed = await _trickle(env.port, head, b"username=al")
        assert received.startswith(b"HTTP/1.1 408 "), received[:200]
        assert elapsed < HEADER_TIMEOUT + 3
        assert closed
