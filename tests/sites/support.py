"""Two sites on one gateway listener: the Exchange site (the recording upstream of the proxy tests) and
a passthrough site in front of the generic application simulator, from a real configuration file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.sim.app.server import RunningAppSim, running_app_sim
from tests.proxy.support import PUBLIC_HOST, InProcessGateway, Upstream, run_gateway, run_upstream

APP_HOST = "intranet.example.test"

APP_RULES: list[dict[str, Any]] = [
    {"paths": ["/admin"], "action": "deny"},
    {"paths": ["/private"], "action": "two_factor"},
    {"paths": ["/"], "action": "bypass"},
]


def config_text(exchange_url: str, app_url: str, *, app_rules: list[dict[str, Any]] | None = None,
                extra: dict[str, Any] | None = None) -> str:
    """The configuration file (JSON is YAML)."""
    return json.dumps({
        "sites": [
            {"name": "mail", "hosts": [PUBLIC_HOST], "upstream": exchange_url, "profile": "exchange"},
            {"name": "intranet", "hosts": [APP_HOST], "upstream": app_url, "profile": "passthrough",
             "rules": APP_RULES if app_rules is None else app_rules},
        ],
        **(extra or {}),
    }, indent=2)


@dataclass
class TwoSites:
    gateway: InProcessGateway
    exchange: Upstream
    app: RunningAppSim
    config_file: Path


@asynccontextmanager
async def two_sites(tmp_path: Path, **overrides: Any) -> AsyncIterator[TwoSites]:
    async with run_upstream() as exchange, running_app_sim() as app:
        config_file = tmp_path / "gateway.yaml"
        config_file.write_text(config_text(exchange[0].url, app.base_url), encoding="utf-8")
        async with run_gateway(exchange[0].url, gateway_config_file=config_file, **overrides) as gateway:
            yield TwoSites(gateway, exchange, app, config_file)


def request(target: str, host: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close", *extra, "", ""]
    return "\r\n".join(lines).encode()
