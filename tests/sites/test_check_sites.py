"""`monosign-gateway check` with a configuration file: what `serve` needs of it, and every site's upstream."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from gateway.commands.check import Mark, check_site_upstreams, config_file_results
from gateway.sim.app.server import running_app_sim
from tests.proxy.support import gateway_settings
from tests.sites.support import config_text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_check_reaches_every_passthrough_site_s_upstream(tmp_path: Path) -> None:
    async with running_app_sim() as app:
        data = json.loads(config_text("http://127.0.0.1:1", app.base_url))
        dead = f"http://127.0.0.1:{closed_port()}"
        data["sites"].append({"name": "gone", "hosts": ["gone.example.test"], "upstream": dead,
                              "profile": "passthrough", "rules": [{"action": "bypass"}]})
        path = tmp_path / "gateway.yaml"
        path.write_text(json.dumps(data), encoding="utf-8")
        settings = gateway_settings("http://127.0.0.1:1", gateway_config_file=path)
        results = await check_site_upstreams(settings)
        assert [(result.mark, result.title.split(":")[0]) for result in results] == [
            (Mark.OK, "site intranet"), (Mark.FAIL, "site gone")]
        assert app.state.requests == 1
        assert [result.mark for result in config_file_results(settings)] == [Mark.OK]


def two_exchange_sites(path: Path) -> None:
    data = json.loads(config_text("http://127.0.0.1:1", "http://127.0.0.1:2"))
    data["sites"].append({"name": "mail2", "hosts": ["mail2.example.test"], "upstream": "http://127.0.0.1:4",
                          "profile": "exchange"})
    path.write_text(json.dumps(data), encoding="utf-8")


async def test_check_says_when_serve_cannot_use_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    two_exchange_sites(path)
    results = config_file_results(gateway_settings("http://127.0.0.1:3", gateway_config_file=path))
    assert [result.mark for result in results] == [Mark.FAIL, Mark.FAIL]
    assert "sites[2].profile: only one exchange site is served for now" in results[0].title
    assert await check_site_upstreams(gateway_settings("http://127.0.0.1:3")) == []


async def test_check_reaches_the_exchange_site_s_own_upstream(tmp_path: Path) -> None:
    async with running_app_sim() as app:
        path = tmp_path / "gateway.yaml"
        path.write_text(config_text(app.base_url, app.base_url), encoding="utf-8")
        results = await check_site_upstreams(gateway_settings("http://127.0.0.1:1", gateway_config_file=path))
        assert [(result.mark, result.title.split(":")[0]) for result in results] == [
            (Mark.OK, "site mail"), (Mark.OK, "site intranet")]
        # The one GATEWAY_UPSTREAM_URL names is reached by check's own upstream line, not twice.
        results = await check_site_upstreams(gateway_settings(app.base_url, gateway_config_file=path))
        assert [result.title.split(":")[0] for result in results] == ["site intranet"]
