"""`python -m gateway serve` as a real subprocess: start-up, logs, shutdown, bad settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.proxy.support import (
    PUBLIC_HOST,
    Upstream,
    clean_environment,
    gateway_process,
    raw_exchange,
    run_gateway,
    status_codes,
    subprocess_settings,
)

HOST = {"Host": PUBLIC_HOST}


def _serve(environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "serve"], env=environment, cwd=cwd,
                          capture_output=True, text=True, timeout=30, check=False)


def test_bad_settings_exit_2_with_one_line_per_problem(tmp_path: Path) -> None:
    environment = clean_environment({
        "MONOSIGN_API_KEY": "app-id",
        "MONOSIGN_API_SECRET": "super-secret-value-xyz",
        "GATEWAY_PUBLIC_URL": "https://mail.example.com",
        "GATEWAY_UPSTREAM_URL": "ftp://exchange",
        "GATEWAY_LISTEN": "nonsense",
        "GATEWAY_SESSION_STORE": "redis",
        "GATEWAY_REDIS_URL": "redis://:hunter2-password@redis:6379/0",
    })
    result = _serve(environment, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("MONOSIGN_API_URL: required") for line in lines)
    assert any(line.startswith("GATEWAY_UPSTREAM_URL:") for line in lines)
    assert any(line.startswith("GATEWAY_LISTEN:") for line in lines)
    assert len(lines) >= 3
    assert all(":" in line and "Traceback" not in line for line in lines)
    for secret in ("super-secret-value-xyz", "hunter2-password"):
        assert secret not in result.stderr + result.stdout


def test_public_url_with_a_path_is_refused(tmp_path: Path) -> None:
    environment = clean_environment(subprocess_settings("http://127.0.0.1:9",
                                                        GATEWAY_PUBLIC_URL="https://mail.example.com/owa"))
    result = _serve(environment, tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "GATEWAY_PUBLIC_URL: must be scheme://host[:port] with no path; got 'https://mail.example.com/owa'"]


def test_unloadable_certificate_is_a_settings_error(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    environment = clean_environment(subprocess_settings("http://127.0.0.1:9", GATEWAY_TLS_CERT_FILE=str(cert),
                                                        GATEWAY_TLS_KEY_FILE=str(key)))
    result = _serve(environment, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("GATEWAY_TLS_CERT_FILE / GATEWAY_TLS_KEY_FILE: cannot load")


def test_refuses_to_start_without_the_c_parser(tmp_path: Path) -> None:
    environment = clean_environment(subprocess_settings("http://127.0.0.1:9"))
    environment["AIOHTTP_NO_EXTENSIONS"] = "1"
    result = _serve(environment, tmp_path)
    assert result.returncode == 2
    assert "C HTTP parser" in result.stderr


async def test_start_up_line_access_log_and_debug_files(upstream: Upstream, tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    with gateway_process(upstream[0].url, tmp_path, MONOSIGN_DEBUG_MODE="true",
                         MONOSIGN_LOG_PATH=str(log_dir)) as gateway:
        async with aiohttp.ClientSession() as client:
            headers = {**HOST, "Cookie": "cadata=COOKIE-VALUE-1; other=COOKIE-VALUE-2",
                       "Authorization": "Basic QUxBRERJTjpvcGVuc2VzYW1l"}
            url = gateway.url + "/owa/auth/echo?token=QUERY-VALUE-1&plain=QUERY-VALUE-2&flag"
            async with client.post(url.replace("/owa/auth/", "/Microsoft-Server-ActiveSync/"), headers=headers,
                                   data=b"12345") as response:
                assert response.status == 200
                request_id = response.headers["X-Request-Id"]
                body_length = len(await response.read())
        await asyncio.sleep(0.2)
    events = gateway.events()
    started = next(event for event in events if event.get("event") == "gateway_started")
    assert started["version"]
    assert started["upstream"] == upstream[0].url
    assert started["listen"] == [gateway.url]
    assert started["admin_listen"] == [gateway.admin_url]
    access = [event for event in events if event.get("logger") == "gateway.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == request_id
    assert line["method"] == "POST"
    assert line["path"] == "/Microsoft-Server-ActiveSync/echo"
    assert line["query_names"] == ["token", "plain", "flag"]
    assert line["route_class"] == "activesync"
    assert line["status"] == 200
    assert line["bytes_in"] == 5
    assert line["bytes_out"] == body_length
    assert line["client_ip"] == "127.0.0.1"
    assert line["duration_ms"] >= line["upstream_ms"] >= 0
    assert "timestamp" in line
    output = "\n".join(gateway.lines) + gateway.stderr
    for secret in ("QUERY-VALUE-1", "QUERY-VALUE-2", "COOKIE-VALUE-1", "COOKIE-VALUE-2", "QUxBRERJTjpvcGVuc2VzYW1l",
                   "test-secret-never-logged"):
        assert secret not in output
    assert any(event.get("event") == "effective_limits" and event["level"] == "debug" for event in events)
    files = list(log_dir.iterdir())
    assert files
    file_events = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert any(event.get("request_id") == request_id for event in file_events)


async def test_plain_http_to_a_remote_upstream_warns(tmp_path: Path) -> None:
    with gateway_process("http://exchange.corp.invalid", tmp_path) as gateway:
        pass
    warnings = [event for event in gateway.events() if event.get("level") == "warning"]
    assert any(event["event"] == "insecure_setting" and "GATEWAY_UPSTREAM_URL uses plain http://" in event["message"]
               for event in warnings)
    assert not any(event.get("level") == "debug" for event in gateway.events())  # info unless debug mode


async def test_sigterm_drains_a_slow_download_then_exits_0(upstream: Upstream, tmp_path: Path) -> None:
    with gateway_process(upstream[0].url, tmp_path, GATEWAY_SHUTDOWN_GRACE="20") as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(f"GET /owa/auth/drip?n=20&delay=0.1 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
        await writer.drain()
        first = await asyncio.wait_for(reader.read(65536), 5)
        assert status_codes(first) == [200]
        gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        # No new connections once shutdown started.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", gateway.port), 2)
        rest = await asyncio.wait_for(reader.read(), 15)
        writer.close()
        code = await asyncio.to_thread(gateway.wait, 20)
    assert code == 0
    received = first + rest
    body = received.partition(b"\r\n\r\n")[2]
    assert len(_dechunk(body)) == 20 * 64 * 1024
    assert upstream[1].finished == ["/owa/auth/drip?n=20&delay=0.1"]
    assert any(event.get("event") == "gateway_stopped" for event in gateway.events())


async def test_client_abort_aborts_the_upstream_without_traceback(upstream: Upstream, tmp_path: Path) -> None:
    with gateway_process(upstream[0].url, tmp_path) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(f"GET /owa/auth/drip?n=2000&delay=0.01 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
        await writer.drain()
        await reader.readexactly(200_000)
        writer.transport.abort()
        for _ in range(50):
            if upstream[1].aborted:
                break
            await asyncio.sleep(0.1)
        assert upstream[1].aborted == ["/owa/auth/drip?n=2000&delay=0.01"]
        await asyncio.sleep(0.3)
    output = "\n".join(gateway.lines) + gateway.stderr
    assert "Traceback" not in output
    access = [event for event in gateway.events() if event.get("logger") == "gateway.access"]
    assert access[-1]["status"] == 200
    assert 0 < access[-1]["bytes_out"] < 2000 * 64 * 1024


async def test_trickled_headers_are_cut(upstream: Upstream) -> None:
    async with run_gateway(upstream[0].url, gateway_header_timeout=0.5) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            writer.write(b"GET /owa/auth/echo HTTP/1.1\r\n")
            received = b""
            for _ in range(20):
                await asyncio.sleep(0.1)
                if reader.at_eof():
                    break
                writer.write(b"X")  # a slow client keeps trickling, never finishing the head
                with contextlib.suppress(TimeoutError):
                    received += await asyncio.wait_for(reader.read(1024), 0.01)
            received += await asyncio.wait_for(reader.read(), 2)
        finally:
            writer.close()
        assert status_codes(received) == [408]
        assert upstream[1].seen == []
        # A prompt client on the same gateway is unaffected.
        request = f"GET /owa/auth/echo HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nConnection: close\r\n\r\n".encode()
        assert status_codes(await raw_exchange(gateway.port, request)) == [200]


async def test_keep_alive_connection_gets_a_fresh_header_deadline(upstream: Upstream) -> None:
    async with run_gateway(upstream[0].url, gateway_header_timeout=0.5) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            for _ in range(3):
                await asyncio.sleep(0.4)  # idle between requests is not header time
                writer.write(f"GET /owa/auth/echo HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
                assert status_codes(head) == [200]
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
        finally:
            writer.close()


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2:]
    return bytes(out)


async def test_idle_keep_alive_connections_are_closed_but_long_requests_are_not(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.server.IDLE_KEEPALIVE_SECONDS", 0.5)
    async with run_gateway(upstream[0].url) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        try:
            # A response that takes longer than the idle limit is not cut...
            writer.write(f"GET /owa/auth/drip?n=10&delay=0.1 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert status_codes(head) == [200]
            body = b""
            while not body.endswith(b"\r\n0\r\n\r\n"):
                body += await asyncio.wait_for(reader.read(65536), 5)
            assert len(_dechunk(body)) == 10 * 64 * 1024
            # ...but the idle connection afterwards is.
            assert await asyncio.wait_for(reader.read(), 3) == b""
        finally:
            writer.close()
