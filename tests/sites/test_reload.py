"""Reloading GATEWAY_CONFIG_FILE while serving: SIGHUP or a file change swaps the sites for new
requests, without dropping one; a file that cannot be used keeps the old configuration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from gateway.server import Gateway
from gateway.sim.app.server import running_app_sim
from tests.proxy.support import gateway_process, gateway_settings, raw_exchange, run_upstream, status_codes
from tests.sites.support import APP_HOST, APP_RULES, config_text, request, two_sites

# Generous: on a loaded machine the poll and the swap may take a while; the test only waits for them.
SETTLE_SECONDS = 20.0


def write_atomically(path: Path, text: str) -> None:
    """As editors and Kubernetes ConfigMaps do: a new file renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


async def config_page(admin_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{admin_url}/config") as response:
        assert response.status == 200
        document: dict[str, Any] = await response.json()
        return document


async def wait_for_digest(admin_url: str, unlike: str) -> str:
    async with asyncio.timeout(SETTLE_SECONDS):
        while (digest := (await config_page(admin_url))["digest"]) == unlike:
            await asyncio.sleep(0.02)
    assert isinstance(digest, str)
    return digest


async def test_a_bad_file_keeps_the_old_configuration_and_a_good_one_is_served(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites:
        gateway, port = sites.gateway.gateway, sites.gateway.port
        before = await config_page(sites.gateway.admin_url)
        assert before["sites"] == ["mail", "intranet"]
        assert before["source"] == str(sites.config_file)

        refused = [
            "sites: [",  # not YAML
            config_text(sites.exchange[0].url, sites.app.base_url, app_rules=[]),  # no rules
            config_text("http://127.0.0.1:1", sites.app.base_url),  # an exchange site unlike the environment
        ]
        for text in refused:
            write_atomically(sites.config_file, text)
            gateway.reload()
            assert (await config_page(sites.gateway.admin_url))["digest"] == before["digest"]
            assert status_codes(await raw_exchange(port, request("/hello", APP_HOST))) == [200]
        sites.config_file.unlink()
        gateway.reload()
        assert status_codes(await raw_exchange(port, request("/hello", APP_HOST))) == [200]

        write_atomically(sites.config_file, config_text(sites.exchange[0].url, sites.app.base_url,
                                                        app_rules=[{"paths": ["/hello"], "action": "deny"},
                                                                   *APP_RULES]))
        gateway.reload()
        after = await config_page(sites.gateway.admin_url)
        assert after["digest"] != before["digest"]
        assert status_codes(await raw_exchange(port, request("/hello", APP_HOST))) == [403]
        assert list(sites.app.state.paths) == ["/hello"] * 4


async def test_a_new_site_and_a_new_upstream_are_served_after_a_reload(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites, running_app_sim() as other:
        port = sites.gateway.port
        assert status_codes(await raw_exchange(port, request("/x", "other.example.test"))) == [421]
        data = json.loads(sites.config_file.read_text(encoding="utf-8"))
        data["sites"].append({"name": "other", "hosts": ["other.example.test"], "upstream": other.base_url,
                              "profile": "passthrough", "rules": [{"paths": ["/"], "action": "bypass"}]})
        write_atomically(sites.config_file, json.dumps(data))
        sites.gateway.gateway.reload()
        assert status_codes(await raw_exchange(port, request("/x", "other.example.test"))) == [200]
        assert list(other.state.paths) == ["/x"]
        assert list(sites.app.state.paths) == []


@asynccontextmanager
async def watching_gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Path, str, str, str]]:
    async with run_upstream() as exchange, running_app_sim() as app:
        path = tmp_path / "gateway.yaml"
        path.write_text(config_text(exchange[0].url, app.base_url), encoding="utf-8")
        gateway = Gateway(gateway_settings(exchange[0].url, gateway_config_file=path), watch_interval=0.05)
        await gateway.start()
        try:
            yield gateway, path, exchange[0].url, app.base_url, gateway.admin_addresses[0]
        finally:
            await gateway.stop()


async def test_twenty_file_changes_under_load_fail_no_request(tmp_path: Path) -> None:
    async with watching_gateway(tmp_path) as (gateway, path, exchange_url, app_url, admin_url):
        port = int(gateway.main_addresses[0].rsplit(":", 1)[1])
        stop = asyncio.Event()
        failures: list[str] = []
        done = [0]

        async def client(target: str) -> None:
            async with aiohttp.ClientSession(f"{gateway.main_addresses[0]}") as session:
                while not stop.is_set():
                    try:
                        async with session.get(target, headers={"Host": APP_HOST}) as response:
                            await response.read()
                            if response.status != 200:
                                failures.append(f"{target}: {response.status}")
                    except aiohttp.ClientError as exc:
                        failures.append(f"{target}: {exc!r}")
                    done[0] += 1

        clients = [asyncio.create_task(client("/hello")), asyncio.create_task(client("/hello")),
                   asyncio.create_task(client("/_app/slow?seconds=0.2&chunks=4"))]
        digest = (await config_page(admin_url))["digest"]
        for change in range(20):
            blocked = "/blocked" + "x" * (change % 2)  # each version's size differs from the last
            write_atomically(path, config_text(exchange_url, app_url,
                                               app_rules=[{"paths": [blocked], "action": "deny"}, *APP_RULES]))
            digest = await wait_for_digest(admin_url, unlike=digest)
            assert status_codes(await raw_exchange(port, request(blocked, APP_HOST))) == [403]
        stop.set()
        await asyncio.gather(*clients)
        assert failures == []
        assert done[0] > 20


def test_sighup_reloads_the_file_of_a_running_gateway(tmp_path: Path) -> None:
    async def serve_apps() -> None:
        async with run_upstream() as exchange, running_app_sim() as app:
            path = tmp_path / "gateway.yaml"
            path.write_text(config_text(exchange[0].url, app.base_url), encoding="utf-8")
            with gateway_process(exchange[0].url, tmp_path, GATEWAY_CONFIG_FILE=str(path)) as process:
                before = (await config_page(process.admin_url))["digest"]
                assert status_codes(await raw_exchange(process.port, request("/hello", APP_HOST))) == [200]
                write_atomically(path, config_text(exchange[0].url, app.base_url,
                                                   app_rules=[{"paths": ["/hello"], "action": "deny"}, *APP_RULES]))
                process.process.send_signal(signal.SIGHUP)
                await wait_for_digest(process.admin_url, unlike=before)
                assert status_codes(await raw_exchange(process.port, request("/hello", APP_HOST))) == [403]
                assert process.process.poll() is None
                # SIGHUP did it (the file is polled every 2 s: the signal comes first).
                reloads = [event for event in process.events() if event.get("event") == "config_reloaded"]
                assert [event["reason"] for event in reloads] == ["SIGHUP"]
            assert list(app.state.paths) == ["/hello"]

    asyncio.run(serve_apps())
