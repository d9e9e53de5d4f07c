"""A gateway with portal sites, over real loopback HTTP: the flow tests' kit (tests/flow/conftest.py:
the Monosign simulator, the gateway in-process) with a configuration file of portal sites.

    async with portal_environment(tmp_path) as env:
        browser = PortalBrowser(env)
        page = await browser.sign_in_form("alice", rd="/reports")   # 302 to /_gateway/mfa
        final = await browser.verify(await env.code("alice"))        # 302 to /reports

The `file` site (`APP_HOST`) has the Monosign simulator's demo users, with the passwords in
`PASSWORDS`; `WIKI_HOST` is a second `file` site with the same users, for sessions across sites.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.flow.conftest import Browser, FlowEnv, Page, flow_environment
from tests.identity.kit import fast_hash

APP_HOST = "app.corp.example"
WIKI_HOST = "wiki.corp.example"
PASSWORDS = {"alice": "alice portal pässword", "bob": "bob-portal-1", "carol": "carol-portal-1",
             "dave": "dave-portal-1"}
_ACTION = re.compile(r'<form class="signin" method="post" action="([^"]+)"')


def users_file_text(passwords: dict[str, str] | None = None) -> str:
    users = {name: {"password": fast_hash(password), "displayname": f"{name.title()} (directory)",
                    "email": f"{name}@directory.example", "groups": ["staff", f"team-{name}"]}
             for name, password in (passwords or PASSWORDS).items()}
    return json.dumps({"users": users}, indent=2)


def portal_site(name: str, host: str, *, first_factor: str = "file", **keys: Any) -> dict[str, Any]:
    site: dict[str, Any] = {"name": name, "hosts": [host], "upstream": "http://127.0.0.1:9", "profile": "portal",
                            "first_factor": first_factor, "rules": [{"action": "two_factor"}], **keys}
    if first_factor == "file" and "users_file" not in keys:
        site["users_file"] = "users.yaml"
    return site


def write_config(directory: Path, sites: list[dict[str, Any]] | None = None,
                 extra: dict[str, Any] | None = None) -> Path:
    """users.yaml and gateway.yaml in `directory` (JSON is YAML); the file's path. `extra`: more
    top-level keys (`session_groups`, say)."""
    (directory / "users.yaml").write_text(users_file_text(), encoding="utf-8")
    path = directory / "gateway.yaml"
    sites = sites if sites is not None else [portal_site("app", APP_HOST), portal_site("wiki", WIKI_HOST)]
    path.write_text(json.dumps({"sites": sites, **(extra or {})}, indent=2), encoding="utf-8")
    return path


@asynccontextmanager
async def portal_environment(directory: Path, *, sites: list[dict[str, Any]] | None = None,
                             extra: dict[str, Any] | None = None, **settings: Any) -> AsyncIterator[FlowEnv]:
    config = write_config(directory, sites, extra)
    async with flow_environment(gateway_config_file=config, **settings) as env:
        yield env


@dataclass
class PortalBrowser(Browser):
    """A browser on one portal site's host: its navigations and form posts carry that Host, and its
    posts the site's own Origin."""

    host: str = APP_HOST

    @property
    def origin(self) -> str:
        return f"http://{self.host}"

    async def request(self, method: str, target: str, *, headers: dict[str, str] | None = None,
                      data: Any = None, navigate: bool = True, send_cookies: bool = True) -> Page:
        sent = {"Host": self.host}
        if method == "POST" and navigate:
            sent["Origin"] = self.origin
        sent.update(headers or {})
        return await super().request(method, target, headers=sent, data=data, navigate=navigate,
                                     send_cookies=send_cookies)

    async def signin_page(self, rd: str | None = None, *, query: str | None = None) -> Page:
        target = "/_gateway/signin" + (f"?{query}" if query is not None else "")
        if rd is not None and query is None:
            target += f"?rd={quote(rd, safe='')}"
        return await self.get(target)

    async def post_signin(self, form: dict[str, str], *, action: str = "/_gateway/signin",
                          headers: dict[str, str] | None = None) -> Page:
        return await self.request("POST", action, data=form, headers=headers)

    async def sign_in_form(self, user: str = "alice", password: str | None = None, *, rd: str | None = None,
                           headers: dict[str, str] | None = None) -> Page:
        """The sign-in page, then its form posted as the page has it (action, token)."""
        page = await self.signin_page(rd)
        assert page.status == 200, (page.status, page.text[:300])
        form = {"username": user, "csrf_token": page.csrf_token}
        if 'name="password"' in page.text:
            form["password"] = PASSWORDS.get(user, "") if password is None else password
        return await self.post_signin(form, action=form_action(page), headers=headers)


def form_action(page: Page) -> str:
    match = _ACTION.search(page.text)
    assert match is not None, page.text[:500]
    return match.group(1).replace("&amp;", "&")
