"""Readiness with a configuration file: each site's upstream is an informational check,
`upstream:SITE`, and the checks follow a reload (a site added or removed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.sites.support import two_sites
from tests.sites.test_check_sites import closed_port
from tests.sites.test_reload import write_atomically


async def readiness(admin_url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{admin_url}/readyz") as response:
        document: dict[str, Any] = await response.json()
        return response.status, document


async def metrics(admin_url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{admin_url}/metrics") as response:
        return await response.text()


async def test_a_dead_site_upstream_is_reported_without_draining_the_replica(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites:
        admin = sites.gateway.admin_url
        status, report = await readiness(admin)
        assert status == 200
        assert report["checks"]["upstream:intranet"] == {"ok": True, "critical": False}
        assert report["checks"]["upstream"]["critical"] is True  # Exchange's: unchanged
        assert "upstream:mail" not in report["checks"]

        # A site added by a reload, whose upstream is down: named, informational, the replica stays ready.
        data = json.loads(sites.config_file.read_text(encoding="utf-8"))
        data["sites"].append({"name": "wiki", "hosts": ["wiki.example.test"], "profile": "passthrough",
                              "upstream": f"http://127.0.0.1:{closed_port()}", "rules": [{"action": "bypass"}]})
        write_atomically(sites.config_file, json.dumps(data))
        sites.gateway.gateway.reload()
        status, report = await readiness(admin)
        assert status == 200
        assert report["ready"] is True
        wiki = report["checks"]["upstream:wiki"]
        assert wiki["ok"] is False
        assert wiki["critical"] is False
        assert "not reachable" in wiki["error"]
        assert 'gateway_readiness_check_ok{check="upstream:wiki",critical="false"} 0.0' in await metrics(admin)

        # Removed by the next reload: its check goes with it.
        data["sites"] = [site for site in data["sites"] if site["name"] != "wiki"]
        write_atomically(sites.config_file, json.dumps(data))
        sites.gateway.gateway.reload()
        status, report = await readiness(admin)
        assert status == 200
        assert "upstream:wiki" not in report["checks"]
        assert report["checks"]["upstream:intranet"]["ok"] is True
