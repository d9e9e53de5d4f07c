"""Large bodies stream through a real `gateway serve` subprocess with flat memory (slow)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.proxy.support import (
    CHUNK,
    PUBLIC_HOST,
    GatewayProcess,
    gateway_process,
    pattern_chunk,
    pattern_sha256,
    run_upstream,
)

pytestmark = pytest.mark.slow

HOST = {"Host": PUBLIC_HOST}
RSS_GROWTH_LIMIT_KIB = 32 * 1024


class RssWatcher:
    """Samples the gateway's resident memory while a transfer runs."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self._gateway = gateway
        self.baseline = gateway.rss_kib()
        self.peak = self.baseline
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self._gateway.rss_kib())
            await asyncio.sleep(0.1)

    def __enter__(self) -> RssWatcher:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()

    @property
    def growth_kib(self) -> int:
        return self.peak - self.baseline


async def _warm_up(client: aiohttp.ClientSession, gateway: GatewayProcess) -> None:
    # First requests allocate the pools, parsers and caches; measure growth after them.
    for _ in range(20):
        async with client.get(gateway.url + "/owa/auth/big?mb=1", headers=HOST) as response:
            await response.read()
        async with client.post(gateway.url + "/Microsoft-Server-ActiveSync/echo", headers=HOST,
                               data=b"x" * 1024 * 1024) as response:
            await response.read()


async def test_512_mib_download_and_128_mib_upload_with_flat_memory(tmp_path: Path) -> None:
    async with run_upstream() as (upstream, _state):
        with gateway_process(upstream.url, tmp_path) as gateway:
            async with aiohttp.ClientSession(auto_decompress=False,
                                             timeout=aiohttp.ClientTimeout(total=600)) as client:
                await _warm_up(client, gateway)

                with RssWatcher(gateway) as download_rss:
                    digest = hashlib.sha256()
                    received = 0
                    async with client.get(gateway.url + "/owa/auth/big?mb=512", headers=HOST) as response:
                        assert response.status == 200
                        assert response.headers["Content-Length"] == str(512 * 1024 * 1024)
                        async for chunk in response.content.iter_chunked(CHUNK):
                            digest.update(chunk)
                            received += len(chunk)
                assert received == 512 * 1024 * 1024
                assert digest.hexdigest() == await asyncio.to_thread(pattern_sha256, 512)
                assert download_rss.growth_kib < RSS_GROWTH_LIMIT_KIB, download_rss.growth_kib

                upload_sha = hashlib.sha256()

                async def body() -> AsyncIterator[bytes]:
                    for index in range(128 * 1024 * 1024 // CHUNK):
                        chunk = pattern_chunk(index)
                        upload_sha.update(chunk)
                        yield chunk

                with RssWatcher(gateway) as upload_rss:
                    async with client.post(gateway.url + "/Microsoft-Server-ActiveSync/echo", headers=HOST,
                                           data=body()) as response:
                        assert response.status == 200
                        echoed = await response.json()
                assert echoed["body_len"] == 128 * 1024 * 1024
                assert echoed["body_sha256"] == upload_sha.hexdigest()
                assert ["Transfer-Encoding", "chunked"] in echoed["headers"]
                assert upload_rss.growth_kib < RSS_GROWTH_LIMIT_KIB, upload_rss.growth_kib
