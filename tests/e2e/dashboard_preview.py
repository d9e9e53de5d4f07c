"""Draw the Grafana dashboard's panels with a demo gateway's metrics (docs/images/dashboard.png).

    .venv/bin/python -m tests.e2e.dashboard_preview

Not Grafana, and no PromQL is evaluated: an HTML page lays out the panels of
docker/grafana/monosign-gateway-dashboard.json (rows, titles, queries, in the dashboard's grid) and
under each draws the series of the first metric its first query names, from two scrapes of the demo
gateway's /metrics taken before and after a scripted run (sign-ins, wrong codes up to a lockout, a
wrong password, EWS and Exchange client requests, refused and unknown requests): a counter shows its
increase between the scrapes, a gauge its last value, a histogram its count. docs/observability.md
says so under the picture. Look at the PNG before committing it.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.demo import DemoPorts, RunningDemo, running_demo
from tests.browser import launch_chromium
from tests.demo_users import PASSWORDS

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = ROOT / "docker" / "grafana" / "monosign-gateway-dashboard.json"
IMAGE = ROOT / "docs" / "images" / "dashboard.png"
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])(?:gateway|process)_[a-z0-9_]+")
BY_LABELS = re.compile(r"\bby \(([^)]*)\)")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
GRID_COLUMN_PX = 52  # Grafana's 24 columns, scaled to a 1248 px wide page
ROW_HEIGHT_PX = 30


# --- The scripted run ----------------------------------------------------------------------------------


class Client:
    """A browser-like client of the demo gateway with its own cookies."""

    def __init__(self, demo: RunningDemo, http: aiohttp.ClientSession) -> None:
        self.demo = demo
        self.http = http
        self.origin = demo.gateway_url

    async def request(self, method: str, path: str, *, data: Any = None, headers: dict[str, str] | None = None,
                      navigate: bool = True) -> tuple[int, str]:
        sent = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"} if navigate else {}
        if method == "POST":
            sent.update({"Origin": self.origin, "Sec-Fetch-Site": "same-origin"})
        sent.update(headers or {})
        async with self.http.request(method, self.origin + path, data=data, headers=sent,
                                     allow_redirects=False) as response:
            return response.status, await response.text(errors="replace")

    async def password(self, user: str, password: str) -> int:
        form = {"destination": f"{self.origin}/owa/", "flags": "4", "forcedownlevel": "0", "username": user,
                "password": password, "passwordText": "", "isUtf8": "1"}
        status, _ = await self.request("POST", "/owa/auth.owa", data=form)
        return status

    async def csrf_token(self) -> str | None:
        """The MFA form's token; None when the page has no form (locked out)."""
        _, text = await self.request("GET", "/_gateway/mfa")
        match = _CSRF.search(text)
        return match.group(1) if match else None

    async def code(self, code: str) -> int | None:
        token = await self.csrf_token()
        if token is None:
            return None
        status, _ = await self.request("POST", "/_gateway/mfa/verify", data={"code": code, "csrf_token": token})
        return status


def new_client(demo: RunningDemo) -> Client:
    return Client(demo, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))


async def scripted_run(demo: RunningDemo) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for path in ("/owa/auth/logon.aspx", "/owa/", "/", "/nothing-here", "/_gateway/static/mfa.css"):
            for _ in range(5):
                async with anonymous.get(demo.gateway_url + path, allow_redirects=False) as response:
                    await response.read()
        for host in ("other.example", "bad host"):
            async with anonymous.get(demo.gateway_url + "/owa/", headers={"Host": host}) as response:
                await response.read()
        async with anonymous.get(demo.gateway_url + "/owa/%2e%2e/ecp/") as response:
            await response.read()
        # Exchange clients: EWS on one connection (pinned), ActiveSync.
        for _ in range(6):
            async with anonymous.post(demo.gateway_url + "/EWS/Exchange.asmx", data=b"<soap/>",
                                      headers={"Content-Type": "text/xml"}) as response:
                await response.read()
            async with anonymous.options(demo.gateway_url + "/Microsoft-Server-ActiveSync") as response:
                await response.read()
    refused = new_client(demo)
    async with refused.http:
        await refused.password("carol", PASSWORDS["carol"])  # not assigned to the application in Monosign
    for _ in range(3):
        client = new_client(demo)
        async with client.http:
            status = await client.password("alice", PASSWORDS["alice"])
            assert status == 302, status
            code, _ = demo.monosign.state.current_code("alice")
            await client.code(code)
            await client.request("GET", "/owa/")
            await client.request("GET", "/owa/logoff.owa")
    wrong = new_client(demo)
    async with wrong.http:
        await wrong.password("bob", "not bob's password")
        await wrong.password("bob", PASSWORDS["bob"])
        for _ in range(6):  # GATEWAY_MFA_MAX_FAILURES=5, then locked
            await wrong.code("000000")


async def scrape(demo: RunningDemo) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(demo.admin_url + "/metrics") as response:
        text = await response.text()
    return {family.name: family for family in text_string_to_metric_families(text)}


# --- The page ------------------------------------------------------------------------------------------


def series(query: str, before: dict[str, Any], after: dict[str, Any]) -> tuple[str, list[tuple[str, float]]]:
    """(what is drawn, [(legend, value)]) for the first metric the query names."""
    names = METRIC_NAME.findall(query)
    if not names:
        return "no metric", []
    name = names[0]
    base = re.sub(r"_(total|bucket|sum|count)$", "", name)
    family = after.get(base)
    if family is None:
        return f"{name}: no series", []
    by = BY_LABELS.search(query)
    keep = [label.strip() for label in by.group(1).split(",")] if by else []
    wanted = {"histogram": base + "_count", "counter": base + "_total"}.get(family.type, base)
    earlier = {tuple(sorted(sample.labels.items())): sample.value
               for sample in (before[base].samples if base in before else []) if sample.name == wanted}
    totals: dict[str, float] = {}
    for sample in family.samples:
        if sample.name != wanted:
            continue
        value = sample.value
        if family.type in ("counter", "histogram"):
            value -= earlier.get(tuple(sorted(sample.labels.items())), 0.0)
        legend = ", ".join(f"{label}={sample.labels[label]}" for label in keep if label in sample.labels) or base
        totals[legend] = totals.get(legend, 0.0) + value
    kind = {"counter": "increase", "histogram": "observations"}.get(family.type, "value")
    return f"{wanted} ({kind})", sorted(totals.items(), key=lambda item: -item[1])[:8]


def bars(values: list[tuple[str, float]]) -> str:
    if not values:
        return '<p class="empty">no samples in this run</p>'
    top = max((value for _, value in values), default=0.0) or 1.0
    rows = []
    for legend, value in values:
        width = max(1.0, 100.0 * value / top) if value > 0 else 0.0
        shown = f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"
        rows.append(f'<div class="bar"><span class="legend">{html.escape(legend)}</span>'
                    f'<span class="track"><span class="fill" style="width:{width:.1f}%"></span></span>'
                    f'<span class="value">{shown}</span></div>')
    return "".join(rows)


def page(dashboard: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> str:
    boxes = []
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        style = (f"left:{grid['x'] * GRID_COLUMN_PX}px;top:{grid['y'] * ROW_HEIGHT_PX}px;"
                 f"width:{grid['w'] * GRID_COLUMN_PX - 8}px;height:{grid['h'] * ROW_HEIGHT_PX - 8}px")
        if panel["type"] == "row":
            boxes.append(f'<div class="row" style="{style}">{html.escape(panel["title"])}</div>')
            continue
        query = panel["targets"][0]["expr"]
        drawn, values = series(query, before, after)
        boxes.append(f'<div class="panel" style="{style}"><h2>{html.escape(panel["title"])}</h2>'
                     f'<code>{html.escape(query)}</code><p class="drawn">{html.escape(drawn)}</p>{bars(values)}</div>')
    height = max(panel["gridPos"]["y"] + panel["gridPos"]["h"] for panel in dashboard["panels"]) * ROW_HEIGHT_PX
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #111217; color: #ccccdc; font: 12px system-ui, sans-serif; }}
header {{ padding: 10px 14px; font-size: 16px; color: #fff; }}
header small {{ color: #8e8e9e; font-size: 11px; margin-left: 12px; }}
.grid {{ position: relative; margin: 0 8px; height: {height}px; }}
.row {{ position: absolute; font-size: 14px; font-weight: 600; color: #fff; padding-top: 6px; }}
.panel {{ position: absolute; background: #181b1f; border: 1px solid #2c3235; border-radius: 3px; padding: 6px 8px;
          overflow: hidden; box-sizing: border-box; }}
h2 {{ font-size: 12px; margin: 0 0 4px; color: #fff; font-weight: 600; }}
code {{ display: block; font-size: 9.5px; color: #7ea9e1; margin-bottom: 4px; word-break: break-all; }}
.drawn {{ margin: 0 0 4px; font-size: 10px; color: #8e8e9e; }}
.bar {{ display: flex; align-items: center; gap: 6px; margin: 2px 0; font-size: 10.5px; }}
.legend {{ width: 42%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
.track {{ flex: 1; background: #22252b; height: 10px; }}
.fill {{ display: block; height: 10px; background: #73bf69; }}
.value {{ width: 48px; text-align: right; }}
.empty {{ color: #6e6e7e; font-style: italic; }}
</style></head><body><header>{html.escape(dashboard["title"])}<small>panels of the dashboard file, drawn from
two scrapes of a demo gateway around a scripted run: not Grafana, no PromQL evaluated</small></header>
<div class="grid">{"".join(boxes)}</div></body></html>"""


async def main() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    async with running_demo(DemoPorts(0, 0, 0, 0)) as demo:
        before = await scrape(demo)
        await scripted_run(demo)
        after = await scrape(demo)
    document = page(dashboard, before, after)
    async with launch_chromium() as browser:
        context = await browser.new_context(viewport={"width": 1264, "height": 900})
        view = await context.new_page()
        await view.set_content(document)
        IMAGE.parent.mkdir(parents=True, exist_ok=True)
        await view.screenshot(path=IMAGE, full_page=True)
        await context.close()
    print(f"{IMAGE}: {IMAGE.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    asyncio.run(main())
