"""The shutdown drain, with real slow clients on raw sockets against `python -m gateway serve`.

On SIGTERM the gateway keeps reading the bodies of the requests it accepted and forwards them to the
end; it takes no new request (every answer says `Connection: close`, idle keep-alive connections close
at once); at GATEWAY_SHUTDOWN_GRACE it cuts what still runs, logs it, and exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.proxy.slow_clients import SlowDownload, SlowUpload
from tests.proxy.support import PUBLIC_HOST, GatewayProcess, Upstream, gateway_process, raw_exchange, status_codes

UPLOAD_SIZE = 48 * 1024  # 4 KiB every 0.2 s: about 2.4 s per upload
DOWNLOAD_CHUNKS = 8  # 64 KiB every 0.25 s: about 2 s per download


def events(gateway: GatewayProcess, name: str) -> list[dict[str, Any]]:
    return [event for event in gateway.events() if event.get("event") == name]


def access_lines(gateway: GatewayProcess, path: str) -> list[dict[str, Any]]:
    return [event for event in gateway.events() if event.get("event") == "request" and event.get("path") == path]


@pytest.mark.slow
async def test_uploads_and_downloads_in_flight_at_sigterm_all_complete(upstream: Upstream, tmp_path: Path) -> None:
    grace = 20.0  # far more than they need: the point is that none is cut or truncated
    with gateway_process(upstream[0].url, tmp_path, GATEWAY_SHUTDOWN_GRACE=str(grace)) as gateway:
        uploads = await asyncio.gather(*(
            SlowUpload.start(gateway.port, size=UPLOAD_SIZE, chunk=4096, interval=0.2) for _ in range(50)))
        downloads = await asyncio.gather(*(
            SlowDownload.start(gateway.port, chunks=DOWNLOAD_CHUNKS, delay=0.25) for _ in range(50)))
        await asyncio.wait_for(asyncio.gather(*(upload.first_sent.wait() for upload in uploads)), 10)
        assert all(status_codes(download.first) == [200] for download in downloads)
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        gateway.process.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*(upload.finish(grace + 10) for upload in uploads))
        downloaded = await asyncio.gather(*(download.finish(grace + 10) for download in downloads))
        code = await asyncio.to_thread(gateway.wait, grace + 10)
        finished = loop.time()
    assert code == 0
    assert finished - signalled < grace, "the drain waited for something that had ended"
    for answer in answers:
        assert answer.status == 200, answer.raw[:200]
        assert answer.json()["body_len"] == UPLOAD_SIZE  # every byte reached the upstream
        assert answer.header("Connection") == "close"
    for download, answer in zip(downloads, downloaded, strict=True):
        assert download.complete(answer), "a download was truncated"
    uploads_seen = [seen for seen in upstream[1].seen if seen.method == "POST"]
    assert [seen.body_len for seen in uploads_seen] == [UPLOAD_SIZE] * 50
    assert len(upstream[1].finished) == 50
    logged = access_lines(gateway, "/Microsoft-Server-ActiveSync")
    assert [(line["status"], line["bytes_in"]) for line in logged] == [(200, UPLOAD_SIZE)] * 50
    assert events(gateway, "drain_complete")
    assert not events(gateway, "requests_cut_at_grace")


@pytest.mark.slow
async def test_a_stalled_upload_is_cut_at_the_grace_period_and_idle_connections_close_at_once(
    upstream: Upstream, tmp_path: Path,
) -> None:
    grace = 4.0
    with gateway_process(upstream[0].url, tmp_path, GATEWAY_SHUTDOWN_GRACE=str(grace)) as gateway:
        stalled = await SlowUpload.start(gateway.port, size=UPLOAD_SIZE, chunk=4096, interval=0.05, stall_after=8192)
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        idle_writer.write(f"GET /owa/auth/status?code=200 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
        first = await asyncio.wait_for(idle_reader.read(65536), 10)
        assert status_codes(first) == [200]  # and the connection stays open: keep-alive
        await asyncio.wait_for(stalled.first_sent.wait(), 10)
        await asyncio.sleep(0.3)  # the stalled upload's head is surely parsed: an accepted request
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        gateway.process.send_signal(signal.SIGTERM)
        idle_end = await asyncio.wait_for(idle_reader.read(65536), 5)
        idle_closed = loop.time() - signalled
        idle_writer.close()
        answer = await stalled.finish(grace + 10)
        cut_after = answer.closed_at - signalled
        code = await asyncio.to_thread(gateway.wait, grace + 10)
    assert idle_end == b""
    assert idle_closed < grace / 2, "an idle keep-alive connection was held by the drain"
    assert answer.raw == b"", "the stalled upload was answered instead of cut"
    assert grace <= cut_after < grace + 2, cut_after
    assert code == 0
    (cut,) = events(gateway, "requests_cut_at_grace")
    assert cut["requests_cut"] == 1
    assert cut["route_classes"] == {"activesync": 1}
    (logged,) = access_lines(gateway, "/Microsoft-Server-ActiveSync")
    assert logged["bytes_in"] == 8192
    assert events(gateway, "gateway_stopped")


@pytest.mark.slow
async def test_a_request_arriving_on_a_busy_connection_during_the_drain_is_not_read(
    upstream: Upstream, tmp_path: Path,
) -> None:
    # The answer in progress says `Connection: close` only if it had not started; either way the
    # connection ends after it, and a request pipelined behind it is never served.
    with gateway_process(upstream[0].url, tmp_path, GATEWAY_SHUTDOWN_GRACE="10") as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(f"GET /owa/auth/slow?s=1.5 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.5)
        gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        writer.write(f"GET /owa/auth/status?code=204 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
        received = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        code = await asyncio.to_thread(gateway.wait, 15)
    assert code == 0
    assert status_codes(received) == [200]
    assert b"\r\nConnection: close\r\n" in received
    assert received.endswith(b"finally")
    assert [seen.raw_path for seen in upstream[1].seen] == ["/owa/auth/slow?s=1.5"]



@pytest.mark.slow
async def test_the_shutdown_delay_keeps_serving_while_not_ready_then_refuses_new_connections(
    upstream: Upstream, tmp_path: Path,
) -> None:
    delay = 4.0
    readyz = f"GET /_gateway/readyz HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nConnection: close\r\n\r\n".encode()
    with gateway_process(upstream[0].url, tmp_path, GATEWAY_SHUTDOWN_DELAY=str(delay),
                         GATEWAY_SHUTDOWN_GRACE="5") as gateway:
        assert status_codes(await raw_exchange(gateway.port, readyz, timeout=5)) == [200]
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        gateway.process.send_signal(signal.SIGTERM)
        while status_codes(ready := await raw_exchange(gateway.port, readyz, timeout=5)) == [200]:
            await asyncio.sleep(0.05)  # until the process has taken the signal
        served = await raw_exchange(gateway.port, f"GET /owa/auth/status?code=200 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n"
                                                  "Connection: close\r\n\r\n".encode(), timeout=5)
        assert loop.time() - signalled < delay, "too slow to look inside the delay"
        await asyncio.sleep(delay + 1.5 - (loop.time() - signalled))
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", gateway.port)
        code = await asyncio.to_thread(gateway.wait, 15)
    assert status_codes(ready) == [503]
    assert ready.endswith(b'{"status": "not ready"}')  # the public listener says no more (the admin one says why)
    assert status_codes(served) == [200]
    assert code == 0
    assert events(gateway, "shutdown_delay")
