"""`GATEWAY_WORKERS=2`: SIGHUP to the supervisor reloads GATEWAY_CONFIG_FILE in every worker."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sim.app.server import running_app_sim
from tests.proxy.support import raw_exchange, run_upstream, status_codes
from tests.redis_server import RedisServer
from tests.scale.test_workers import events_named, supervisor, wait_for
from tests.sites.support import APP_HOST, APP_RULES, config_text, request

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer.running(tmp_path / "redis") as server:
        yield server


async def test_sighup_to_the_supervisor_reloads_every_worker(tmp_path: Path, redis_server: RedisServer) -> None:
    async with run_upstream() as exchange, running_app_sim() as app:
        path = tmp_path / "gateway.yaml"
        path.write_text(config_text(exchange[0].url, app.base_url), encoding="utf-8")
        with supervisor(exchange[0].url, redis_server.url, tmp_path, GATEWAY_CONFIG_FILE=str(path)) as gateway:
            assert status_codes(await raw_exchange(gateway.port, request("/hello", APP_HOST))) == [200]
            path.write_text(config_text(exchange[0].url, app.base_url,
                                        app_rules=[{"paths": ["/hello"], "action": "deny"}, *APP_RULES]),
                            encoding="utf-8")
            gateway.process.send_signal(signal.SIGHUP)
            await wait_for(lambda: len(events_named(gateway, "config_reloaded")) == 2, what="both workers reloaded")
            reloads = events_named(gateway, "config_reloaded")
            assert {event["worker"] for event in reloads} == {1, 2}
            # The signal did it (each worker also polls the file, every 2 s: the signal comes first).
            assert [event["reason"] for event in reloads] == ["SIGHUP", "SIGHUP"]
            assert len(events_named(gateway, "config_reload_forwarded")) == 1
            for _ in range(8):  # whichever worker takes the connection
                assert status_codes(await raw_exchange(gateway.port, request("/hello", APP_HOST))) == [403]
            assert gateway.process.poll() is None
        assert list(app.state.paths) == ["/hello"]
