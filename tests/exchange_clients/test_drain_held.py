"""Held requests end at the start of the shutdown drain, not at the end of the grace period: an
ActiveSync Ping gets Exchange's own "no changes" answer, OWA's notification channel a complete
chunked body. The clients reconnect, to another replica. Both simulators are real servers here."""

from __future__ import annotations

import asyncio

from gateway.sim.exchange_clients.activesync import PING_NO_CHANGES, ping_request
from gateway.sim.exchange_clients.config import ExchangeClientsConfig
from tests.exchange_clients.conftest import StackFactory
from tests.exchange_clients.support import HttpConnection, basic
from tests.flow.conftest import HOST, flow_environment
from tests.proxy.slow_clients import dechunk

GRACE = 30.0  # the held requests must not wait for it


async def test_a_held_activesync_ping_ends_at_the_start_of_the_drain(make_stack: StackFactory) -> None:
    stack = await make_stack(ExchangeClientsConfig(activesync_max_heartbeat_s=600.0),
                             gateway_shutdown_grace=GRACE)
    connection = await HttpConnection.open(stack.port)
    loop = asyncio.get_running_loop()
    try:
        await connection.send_head(
            "POST", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=bob&DeviceId=DEV7&DeviceType=iPhone",
            [("Authorization", basic("CORP\\bob")), ("Content-Type", "application/vnd.ms-sync.wbxml"),
             ("MS-ASProtocolVersion", "14.1")], content_length=len(ping_request(900)))
        await connection.send_body(ping_request(900))
        await connection.end_body()
        await asyncio.sleep(1.0)  # Exchange holds it: no answer yet
        started = loop.time()
        stopping = asyncio.create_task(stack.gateway.stop())
        answer = await connection.read_answer(timeout=GRACE)
        answered_after = loop.time() - started
        await asyncio.wait_for(stopping, GRACE)
        stopped_after = loop.time() - started
    finally:
        await connection.close()
    assert answer.status == 200
    assert answer.body == PING_NO_CHANGES
    assert dict(answer.headers).get("content-type", "").startswith("application/vnd.ms-sync.wbxml")
    assert ("connection", "close") in [(name.lower(), value.lower()) for name, value in answer.headers]
    assert answered_after < GRACE / 3, answered_after
    assert stopped_after < GRACE / 3, stopped_after


async def test_owa_notification_channel_ends_cleanly_at_the_start_of_the_drain() -> None:
    async with flow_environment(gateway_shutdown_grace=GRACE) as env:
        browser = env.browser()
        await browser.sign_in("alice")
        cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        reader, writer = await asyncio.open_connection("127.0.0.1", env.port)
        writer.write(f"GET /owa/ev.owa2?ns=PendingRequest&ev=PendingNotificationRequest&UA=0&cid=1 HTTP/1.1\r\n"
                     f"Host: {HOST}\r\nCookie: {cookies}\r\nX-Requested-With: XMLHttpRequest\r\n\r\n".encode())
        await writer.drain()
        received = await asyncio.wait_for(reader.read(65536), 10)
        assert received.startswith(b"HTTP/1.1 200 "), received[:300]
        assert b"<script>" in received  # the channel is open and streaming
        loop = asyncio.get_running_loop()
        started = loop.time()
        stopping = asyncio.create_task(env.gateway.stop())
        while chunk := await asyncio.wait_for(reader.read(65536), GRACE):
            received += chunk
        ended_after = loop.time() - started
        writer.close()
        await asyncio.wait_for(stopping, GRACE)
    body = dechunk(received.partition(b"\r\n\r\n")[2])
    assert body is not None, "the notification stream was cut instead of ended"
    assert body.startswith(b"<script>")
    assert ended_after < GRACE / 3, ended_after
