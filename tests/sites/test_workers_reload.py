"""`GATEWAY_WORKERS=2`: SIGHUP to the supervisor reloads GATEWAY_CONFIG_FILE in every worker, and the
supervisor's admin listener shows the configuration they serve (`/config`)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sim.app.server import running_app_sim
from gateway.workers.admin import merge_configs
from tests.proxy.support import raw_exchange, run_upstream, status_codes
from tests.redis_server import RedisServer
from tests.scale.test_workers import events_named, supervisor, wait_for
from tests.sites.support import APP_HOST, APP_RULES, config_text, request
from tests.sites.test_reload import config_page

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
            before = await config_page(gateway.admin_url)
            assert before["agree"] is True
            assert set(before["workers"]) == {"1", "2"}
            assert {worker["digest"] for worker in before["workers"].values()} == {before["digest"]}
            assert before["source"] == str(path)
            assert before["sites"] == ["mail", "intranet"]
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
            after = await config_page(gateway.admin_url)
            assert after["agree"] is True
            assert after["digest"] != before["digest"]
            assert {worker["digest"] for worker in after["workers"].values()} == {after["digest"]}
            assert after["loaded_at"] >= before["loaded_at"]
        assert list(app.state.paths) == ["/hello"]


A = {"source": "gateway.yaml", "digest": "a" * 64, "loaded_at": "2026-01-01T10:00:00Z", "sites": ["mail"]}
B = {**A, "digest": "b" * 64}
LATER = {**A, "loaded_at": "2026-01-01T10:00:05Z"}
ENVIRONMENT = {"source": "environment"}


@pytest.mark.parametrize(("answers", "agree", "digest"), [
    ({"1": A, "2": LATER}, True, "a" * 64),
    ({"1": A}, True, "a" * 64),
    ({"1": A, "2": B}, False, None),  # one worker has not reloaded (yet), or refused the new file
    ({"1": A, "2": {"error": "no answer (TimeoutError)"}}, False, None),
    ({}, False, None),  # no worker runs
    ({"1": ENVIRONMENT, "2": ENVIRONMENT}, True, None),
    ({"1": ENVIRONMENT, "2": A}, False, None),
])
def test_the_workers_configurations_merged(answers: dict[str, dict[str, str]], agree: bool,
                                           digest: str | None) -> None:
    merged = merge_configs(answers)
    assert merged["agree"] is agree
    assert merged.get("digest") == digest
    assert merged["workers"] == answers
    if agree and digest is not None:
        assert merged["loaded_at"] == max(answer["loaded_at"] for answer in answers.values())
