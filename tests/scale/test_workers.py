"""`GATEWAY_WORKERS=2` as a real subprocess tree: the supervisor, two workers, a real redis-server.

The upstream is the recording test upstream of the proxy tests; requests go to owa-public paths,
which need no session, so these tests are about processes: serving, restart, drain, admin.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.proxy.slow_clients import SlowDownload, SlowUpload
from tests.proxy.support import (
    PUBLIC_HOST,
    GatewayProcess,
    Upstream,
    clean_environment,
    run_upstream,
    status_codes,
    subprocess_settings,
)
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

HOST = {"Host": PUBLIC_HOST}
SECRET = "scale-test-session-secret-0123456789abcdef"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer.running(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with run_upstream() as running:
        yield running


def worker_settings(upstream_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    return subprocess_settings(upstream_url, GATEWAY_WORKERS="2", GATEWAY_SESSION_STORE="redis",
                               GATEWAY_REDIS_URL=redis_url, GATEWAY_SESSION_SECRET=SECRET, **overrides)


@contextmanager
def supervisor(upstream_url: str, redis_url: str, cwd: Path, **overrides: str) -> Iterator[GatewayProcess]:
    process = GatewayProcess(clean_environment(worker_settings(upstream_url, redis_url, **overrides)), cwd)
    try:
        process.wait_started(timeout=60)
        yield process
    finally:
        process.stop()


def worker_pids(supervisor_pid: int) -> set[int]:
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def events_named(gateway: GatewayProcess, name: str) -> list[dict[str, Any]]:
    return [event for event in gateway.events() if event.get("event") == name]


async def wait_for(condition: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def get_json(client: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with client.get(url) as response:
        return response.status, await response.json()


async def test_two_workers_serve_and_the_admin_listener_speaks_for_both(
    upstream: Upstream, redis_server: RedisServer, tmp_path: Path,
) -> None:
    with supervisor(upstream[0].url, redis_server.url, tmp_path) as gateway:
        started = events_named(gateway, "gateway_started")
        assert len(started) == 1
        assert started[0]["workers"] == 2
        pids = worker_pids(gateway.process.pid)
        assert set(started[0]["worker_pids"]) == pids
        assert len(pids) == 2
        # Each request on a fresh connection: both workers take connections from the shared queue.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as client:
            for _ in range(400):
                async with client.get(gateway.url + "/owa/auth/echo", headers=HOST) as response:
                    assert response.status == 200
                served_by = {event.get("worker") for event in gateway.events()
                             if event.get("logger") == "gateway.access"}
                if served_by == {1, 2}:
                    break
            assert served_by == {1, 2}

            status, health = await get_json(client, gateway.admin_url + "/healthz")
            assert status == 200
            assert health["workers"] == {"configured": 2, "running": 2}
            status, ready = await get_json(client, gateway.admin_url + "/readyz")
            assert status == 200, ready
            assert ready["ready"] is True
            assert ready["checks"]["workers"] == {"ok": True, "running": 2, "configured": 2}
            for index in (1, 2):
                worker = ready["checks"][f"worker-{index}"]
                assert worker["ok"] is True
                assert worker["checks"]["store"] == {"ok": True, "critical": True}
                assert worker["checks"]["upstream"] == {"ok": True, "critical": True}
            async with client.get(gateway.admin_url + "/metrics") as response:
                metrics = await response.text()
        assert "gateway_workers_running 2.0" in metrics
        for index in (1, 2):
            assert f'gateway_requests_total{{route_class="owa-public",status="200",worker="{index}"}}' in metrics
        assert metrics.count("# TYPE gateway_requests_total counter") == 1
        # Each process describes itself, the supervisor without a worker label, in one family each.
        assert metrics.count("# TYPE process_open_fds gauge") == 1
        assert metrics.count("# TYPE gateway_build_info gauge") == 1
        assert "\nprocess_open_fds " in metrics
        assert 'process_open_fds{worker="1"}' in metrics
        assert "_created" not in metrics
    # Every worker's log line says which worker wrote it; nothing leaks the session secret.
    assert all("worker" in event for event in gateway.events() if event.get("logger") == "gateway.access")
    assert SECRET not in "\n".join(gateway.lines) + gateway.stderr


async def test_workers_serve_tls_on_the_inherited_socket(
    upstream: Upstream, redis_server: RedisServer, tmp_path: Path,
) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert(PUBLIC_HOST)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with supervisor(upstream[0].url, redis_server.url, tmp_path, GATEWAY_TLS_CERT_FILE=str(cert),
                    GATEWAY_TLS_KEY_FILE=str(key), GATEWAY_PUBLIC_URL=f"https://{PUBLIC_HOST}") as gateway:
        assert gateway.url.startswith("https://")
        connector = aiohttp.TCPConnector(ssl=client_context, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as client:
            for _ in range(200):  # to 127.0.0.1, verifying the certificate for the public name
                async with client.get(gateway.url + "/owa/auth/echo", headers=HOST,
                                      server_hostname=PUBLIC_HOST) as response:
                    assert response.status == 200
                served_by = {event.get("worker") for event in gateway.events()
                             if event.get("logger") == "gateway.access"}
                if served_by == {1, 2}:
                    break
        assert served_by == {1, 2}


async def test_a_killed_worker_is_restarted_and_logged_while_requests_keep_succeeding(
    upstream: Upstream, redis_server: RedisServer, tmp_path: Path,
) -> None:
    with supervisor(upstream[0].url, redis_server.url, tmp_path) as gateway:
        before = worker_pids(gateway.process.pid)
        victim = min(before)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as client:

            async def ok() -> int:
                async with client.get(gateway.url + "/owa/auth/echo", headers=HOST) as response:
                    await response.read()
                    return response.status

            assert await ok() == 200
            os.kill(victim, signal.SIGKILL)
            # While the supervisor notices and restarts it, the other worker takes every connection.
            statuses = [await ok() for _ in range(60)]
            assert statuses == [200] * 60
            await wait_for(lambda: events_named(gateway, "worker_restarted"), what="the restart")
            exited = events_named(gateway, "worker_exited")
            assert len(exited) == 1
            assert exited[0]["pid"] == victim
            assert exited[0]["exit"] == "killed by SIGKILL"
            assert exited[0]["level"] == "error"
            restarting = events_named(gateway, "worker_restarting")[0]
            assert restarting["worker"] == exited[0]["worker"]
            assert restarting["delay_s"] >= 0
            after = worker_pids(gateway.process.pid)
            assert len(after) == 2
            assert victim not in after
            assert events_named(gateway, "worker_restarted")[0]["pid"] in after
            assert [await ok() for _ in range(20)] == [200] * 20
            status, health = await get_json(client, gateway.admin_url + "/healthz")
            assert status == 200
            assert health["workers"]["running"] == 2
            async with client.get(gateway.admin_url + "/metrics") as response:
                metrics = await response.text()
        assert f'gateway_worker_restarts_total{{worker="{exited[0]["worker"]}"}} 1.0' in metrics


async def test_redis_outage_makes_the_admin_readyz_503_and_no_worker_dies(
    upstream: Upstream, redis_server: RedisServer, tmp_path: Path,
) -> None:
    with supervisor(upstream[0].url, redis_server.url, tmp_path, GATEWAY_REDIS_TIMEOUT="0.5") as gateway:
        pids = worker_pids(gateway.process.pid)
        async with aiohttp.ClientSession() as client:
            redis_server.stop()
            status, report = await get_json(client, gateway.admin_url + "/readyz")
            assert status == 503
            for index in (1, 2):
                worker = report["checks"][f"worker-{index}"]
                assert worker["ok"] is False
                assert worker["checks"]["store"]["ok"] is False
                assert "redis" in worker["checks"]["store"]["error"]
            # Liveness is not readiness: the processes are fine, nothing to restart.
            status, health = await get_json(client, gateway.admin_url + "/healthz")
            assert status == 200
            assert health["workers"]["running"] == 2
            redis_server.start()
            deadline = time.monotonic() + 10
            while (await get_json(client, gateway.admin_url + "/readyz"))[0] != 200:
                assert time.monotonic() < deadline, "not ready again 10 s after Redis returned"
                await asyncio.sleep(0.1)
        assert worker_pids(gateway.process.pid) == pids
        assert events_named(gateway, "worker_exited") == []


async def test_sigterm_drains_every_worker_and_the_supervisor_exits_0(
    upstream: Upstream, redis_server: RedisServer, tmp_path: Path,
) -> None:
    with supervisor(upstream[0].url, redis_server.url, tmp_path, GATEWAY_SHUTDOWN_GRACE="20") as gateway:
        pids = worker_pids(gateway.process.pid)
        downloads = []
        for _ in range(4):  # on fresh connections: likely on both workers, and each must finish
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.write(f"GET /owa/auth/drip?n=20&delay=0.1 HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n\r\n".encode())
            await writer.drain()
            first = await asyncio.wait_for(reader.read(65536), 5)
            assert status_codes(first) == [200]
            downloads.append((reader, writer, first))
        gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", gateway.port), 2)
        for reader, writer, first in downloads:
            rest = await asyncio.wait_for(reader.read(), 15)
            writer.close()
            assert b"0\r\n\r\n" in rest[-7:], "the chunked body did not end properly"
            assert len(first + rest) > 20 * 64 * 1024
        code = await asyncio.to_thread(gateway.wait, 30)
    assert code == 0
    assert len(upstream[1].finished) == 4
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert [event["exit"] for event in events_named(gateway, "worker_stopped")] == ["exit status 0"] * 2
    assert events_named(gateway, "gateway_stopped")[-1]["exit_status"] == 0


async def test_workers_leave_when_the_supervisor_is_killed(
    upstream: Upstream, redis_server: RedisServer, tmp_path: Path,
) -> None:
    with supervisor(upstream[0].url, redis_server.url, tmp_path) as gateway:
        pids = worker_pids(gateway.process.pid)
        runtime = Path(events_named(gateway, "worker_started")[0]["admin_listen"][0]).parent
        assert runtime.is_dir()
        gateway.process.kill()
        await wait_for(lambda: all(not Path(f"/proc/{pid}").exists() for pid in pids), timeout=15,
                       what="orphaned workers to exit")
    assert len(events_named(gateway, "supervisor_gone")) == 2
    assert not runtime.exists()  # the last worker out removed the dead supervisor's directory


def test_several_workers_with_the_memory_store_are_refused(tmp_path: Path) -> None:
    environment = clean_environment(subprocess_settings("http://127.0.0.1:9", GATEWAY_WORKERS="2"))
    result = subprocess.run([sys.executable, "-m", "gateway", "serve"], env=environment, cwd=tmp_path,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("GATEWAY_WORKERS: more than one worker needs a shared store; "
                                     "set GATEWAY_SESSION_STORE=redis and GATEWAY_REDIS_URL")


def test_a_worker_cannot_be_started_by_hand_without_its_sockets(tmp_path: Path, redis_server: RedisServer) -> None:
    environment = clean_environment(worker_settings("http://127.0.0.1:9", redis_server.url))
    result = subprocess.run([sys.executable, "-m", "gateway", "serve", "--worker", "1"], env=environment,
                            cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "--listen-fd" in result.stderr


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_workers_drain_slow_bodies_to_the_end_and_cut_a_stalled_upload_at_the_grace_period(
    upstream: Upstream, redis_server: RedisServer, tmp_path: Path,
) -> None:
    delay, grace = 1.0, 5.0
    with supervisor(upstream[0].url, redis_server.url, tmp_path, GATEWAY_SHUTDOWN_GRACE=str(grace),
                    GATEWAY_SHUTDOWN_DELAY=str(delay)) as gateway:
        # Fresh connections: the two workers take them from one queue, so both have some.
        uploads = await asyncio.gather(*(
            SlowUpload.start(gateway.port, size=48 * 1024, chunk=4096, interval=0.2) for _ in range(10)))
        downloads = await asyncio.gather(*(SlowDownload.start(gateway.port, chunks=8, delay=0.25) for _ in range(10)))
        stalled = await SlowUpload.start(gateway.port, size=48 * 1024, chunk=4096, interval=0.05, stall_after=8192)
        await asyncio.wait_for(asyncio.gather(*(upload.first_sent.wait() for upload in [*uploads, stalled])), 10)
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        gateway.process.send_signal(signal.SIGTERM)
        async with aiohttp.ClientSession() as client, client.get(gateway.admin_url + "/readyz") as response:
            assert response.status == 503  # at the first moment of the drain
        answers = await asyncio.gather(*(upload.finish(delay + grace + 10) for upload in uploads))
        downloaded = await asyncio.gather(*(download.finish(delay + grace + 10) for download in downloads))
        cut = await stalled.finish(delay + grace + 10)
        code = await asyncio.to_thread(gateway.wait, delay + grace + 20)
    assert code == 0
    assert [answer.status for answer in answers] == [200] * 10
    assert [answer.json()["body_len"] for answer in answers] == [48 * 1024] * 10
    assert all(download.complete(answer) for download, answer in zip(downloads, downloaded, strict=True))
    assert cut.raw == b""
    assert delay + grace <= cut.closed_at - signalled < delay + grace + 2, cut.closed_at - signalled
    (cut_event,) = events_named(gateway, "requests_cut_at_grace")
    assert (cut_event["requests_cut"], cut_event["route_classes"]) == (1, {"activesync": 1})
    assert [event["exit"] for event in events_named(gateway, "worker_stopped")] == ["exit status 0"] * 2
