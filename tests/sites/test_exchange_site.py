"""A configuration file's exchange site with rules and an upstream of its own, served as written through
the gateway to the Exchange simulator: ECP denied, a published-calendar path without sign-in, ActiveSync
only from 10.0.0.0/8, everything the rules leave out refused; a reload swaps the rules, not the upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.server import Gateway
from gateway.sim.owa import OwaSimConfig, RunningOwaSim, running_owa_sim
from tests.exchange_clients.conftest import FAST, gateway_in_front
from tests.exchange_clients.support import Answer, HttpConnection, basic

DEAD_UPSTREAM = "http://127.0.0.1:9"  # GATEWAY_UPSTREAM_URL: the file's site names its own
ACTIVESYNC = "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=bob&DeviceId=PHONE7&DeviceType=iPhone"
CALENDAR = "/owa/calendar/alice@corp.example/a1b2/calendar.html"
RULES: list[dict[str, Any]] = [
    {"paths": ["/ecp"], "action": "deny"},
    {"paths": ["/owa/calendar"], "action": "bypass"},  # OWA's published calendars are anonymous
    {"route_classes": ["owa-public"], "action": "bypass"},
    {"route_classes": ["owa-login", "owa-logoff", "owa-app"], "action": "two_factor"},
    {"route_classes": ["activesync"], "networks": ["10.0.0.0/8"], "action": "bypass"},
    {"route_classes": ["activesync"], "action": "deny"},
    {"route_classes": ["windows-auth"], "action": "pinned"},
    {"route_classes": ["root"], "action": "bypass"},
]


def write_config(path: Path, rules: list[dict[str, Any]], *, upstream: str) -> None:
    path.write_text(json.dumps({"sites": [{"name": "mail", "hosts": ["mail.corp.example"], "upstream": upstream,
                                           "profile": "exchange", "rules": rules}]}), encoding="utf-8")


@dataclass
class Site:
    sim: RunningOwaSim
    gateway: Gateway
    port: int
    config_file: Path

    def write(self, rules: list[dict[str, Any]], *, upstream: str | None = None) -> None:
        write_config(self.config_file, rules, upstream=upstream or self.sim.base_url)

    async def get(self, method: str, target: str, *headers: tuple[str, str]) -> Answer:
        connection = await HttpConnection.open(self.port)
        try:
            return await connection.request(method, target, list(headers))
        finally:
            await connection.close()

    def upstream_targets(self) -> list[str]:
        return [record.target for record in self.sim.state.recorder.requests()]


@asynccontextmanager
async def exchange_site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_owa_sim(OwaSimConfig(exchange_clients=FAST)) as sim:
        config_file = tmp_path / "gateway.yaml"
        write_config(config_file, RULES, upstream=sim.base_url)
        # The test's connections come from 127.0.0.1, a trusted proxy: X-Forwarded-For names the client.
        async with gateway_in_front(sim, gateway_config_file=config_file, gateway_upstream_url=DEAD_UPSTREAM,
                                    gateway_trusted_proxies="127.0.0.1/32") as (gateway, port):
            yield Site(sim, gateway, port, config_file)


def from_address(address: str) -> tuple[str, str]:
    return ("X-Forwarded-For", address)


async def test_the_file_s_exchange_site_is_served_as_written(tmp_path: Path) -> None:
    async with exchange_site(tmp_path) as site:
        # ECP's switch is the /ecp deny rule: its logon page too, in any spelling.
        for target in ("/ecp/", "/ecp", "/ECP/auth/logon.aspx", "/ecp/healthcheck.htm", "/%65cp/x"):
            assert (await site.get("GET", target)).status == 403, target
        assert site.upstream_targets() == []

        # The bypass path reaches Exchange, from the site's own upstream, with nothing of a session.
        answer = await site.get("GET", CALENDAR, ("Cookie", "cadata=forged; cadataKey=k"),
                                ("Authorization", basic("CORP\\bob")))
        assert answer.status not in (403, 440, 502)
        (record,) = site.sim.state.recorder.requests()
        assert (record.target, record.authorization) == (CALENDAR, None)
        assert not any(name.lower().startswith("cadata") for name in record.cookie_names)

        # The rest of OWA still needs the second factor: the gateway answers, Exchange sees nothing.
        guarded = await site.get("GET", "/owa/", ("Accept", "text/html"))
        assert guarded.status == 302
        assert "/owa/auth/logon.aspx" in guarded.header("Location")[0]
        assert (await site.get("GET", "/owa/service.svc", ("X-Requested-With", "XMLHttpRequest"))).status == 440

        # ActiveSync only from 10.0.0.0/8.
        phone = ("Authorization", basic("CORP\\bob"))
        assert (await site.get("POST", ACTIVESYNC, phone, from_address("10.1.2.3"))).status == 200
        assert (await site.get("POST", ACTIVESYNC, phone, from_address("192.0.2.1"))).status == 403
        assert (await site.get("POST", ACTIVESYNC, phone)).status == 403  # 127.0.0.1 itself
        # Windows authentication is pinned; the root redirects; what no rule names is refused.
        assert (await site.get("POST", "/autodiscover/autodiscover.xml", phone)).status == 200
        root = await site.get("GET", "/")
        assert (root.status, root.header("Location")) == (302, ["/owa/"])
        assert (await site.get("GET", "/elsewhere")).status == 404
        assert (await site.get("GET", "/powershell", phone)).status == 403
        assert site.upstream_targets() == [CALENDAR, ACTIVESYNC, "/autodiscover/autodiscover.xml"]


async def test_a_reload_swaps_the_rules_but_not_the_upstream(tmp_path: Path) -> None:
    async with exchange_site(tmp_path) as site:
        assert (await site.get("GET", CALENDAR)).status not in (403, 440)
        rules = [rule for rule in RULES if rule.get("paths") != ["/owa/calendar"]]
        rules[3] = {"route_classes": ["activesync"], "networks": ["127.0.0.0/8"], "action": "bypass"}
        site.write(rules)
        site.gateway.reload()
        answer = await site.get("GET", CALENDAR, ("Accept", "text/html"))
        assert answer.status == 302  # the calendar is OWA's again: sign in first
        phone = ("Authorization", basic("CORP\\bob"))
        assert (await site.get("POST", ACTIVESYNC, phone)).status == 200
        assert (await site.get("POST", ACTIVESYNC, phone, from_address("10.1.2.3"))).status == 403

        # Another upstream needs a restart: the reload is refused and the rules in force stay.
        site.write(RULES, upstream=DEAD_UPSTREAM)
        site.gateway.reload()
        assert (await site.get("POST", ACTIVESYNC, phone)).status == 200
        assert site.upstream_targets() == [CALENDAR, ACTIVESYNC, ACTIVESYNC]
