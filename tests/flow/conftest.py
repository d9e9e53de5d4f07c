"""The whole OWA sign-in over real loopback HTTP: the OWA simulator, the Monosign simulator and the
gateway (in-process, on free ports), plus a browser-like client whose cookie jar the test controls.

Reusable by other suites (attacker corpus, browser tests):

    async with flow_environment(gateway_fail_mode="open") as env:
        browser = env.browser()
        await browser.password("alice")            # 302 to /_gateway/mfa, no cadata in the jar
        page = await browser.verify(await env.code("alice"))
        ...

or the `env` fixture (defaults) and `start_env` (a factory taking the same keyword arguments).
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from multidict import CIMultiDictProxy

from gateway.assembly import build_state, install_mfa, monosign_client
from gateway.policy.owa_responses import parse_set_cookie
from gateway.server import Gateway
from gateway.sessions.base import SessionStore
from gateway.settings import Settings, load_settings
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import MonosignSimState
from gateway.sim.monosign_users import demo_users as monosign_demo_users
from gateway.sim.owa import OwaSimConfig, RunningOwaSim, SimUser, demo_users, running_owa_sim
from tests.demo_users import PASSWORDS as DEMO_PASSWORDS

HOST = "mail.corp.example"
PUBLIC_URL = f"http://{HOST}"
API_KEY = "flow-test-app-id"
API_SECRET = "flow-test-secret-7c1e-never-logged"
PASSWORDS = {**DEMO_PASSWORDS, "erin": "ErinPass1!", "healthmailbox0123abcd": "HealthPass1!"}
CADATA_NAMES = frozenset({"cadata", "cadatakey", "cadataiv", "cadatasig", "cadatattl"})
# Mailboxes the OWA simulator knows beyond the demo users: one Monosign has never heard of, and a
# Managed Availability probe account.
EXTRA_OWA_USERS = (
    SimUser(username="erin", password=PASSWORDS["erin"], display_name="Erin Eads"),
    SimUser(username="HealthMailbox0123abcd", password=PASSWORDS["healthmailbox0123abcd"],
            display_name="HealthMailbox0123abcd"),
)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    """One response as the browser saw it (read completely, redirects not followed)."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    @property
    def set_cookies(self) -> list[str]:
        return self.headers.getall("Set-Cookie", [])

    def set_cookie_names(self) -> set[str]:
        return {parse_set_cookie(value).name for value in self.set_cookies}

    @property
    def csrf_token(self) -> str:
        match = _CSRF.search(self.text)
        assert match is not None, self.text[:500]
        return match.group(1)


@dataclass
class Browser:
    """A client that keeps cookies in a plain dict (every cookie for every path, as the gateway's
    and Exchange's cookies all use Path=/) and sends the headers a browser would."""

    env: FlowEnv
    cookies: dict[str, str] = field(default_factory=dict)
    csrf_token: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, target: str, *, headers: dict[str, str] | None = None,
                      data: Any = None, navigate: bool = True, send_cookies: bool = True) -> Page:
        sent = {"Host": HOST, **self.extra_headers}
        if navigate:
            sent.update({"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"})
        if method == "POST" and navigate:
            sent.update({"Origin": self.env.settings.gateway_public_url, "Sec-Fetch-Site": "same-origin"})
        sent.update(headers or {})
        if send_cookies and self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        async with self.env.http.request(method, self.env.url + target, headers=sent, data=data,
                                         allow_redirects=False) as response:
            page = Page(response.status, response.headers, await response.text(errors="replace"))
        self.absorb(page.set_cookies)
        return page

    def absorb(self, set_cookies: list[str]) -> None:
        for value in set_cookies:
            cookie = parse_set_cookie(value)
            if cookie.is_deletion(time.time()):
                self.cookies.pop(cookie.name, None)
            else:
                self.cookies[cookie.name] = cookie.value

    async def get(self, target: str, **kwargs: Any) -> Page:
        return await self.request("GET", target, **kwargs)

    async def password(self, user: str = "alice", password: str | None = None, *,
                       destination: str | None = None) -> Page:
        """The first factor: Exchange's logon form, posted as the logon page does."""
        destination = destination or f"{self.env.settings.gateway_public_url}/owa/"
        account = user.replace("/", "\\").split("\\")[-1].split("@")[0].lower()
        form = {"destination": destination, "flags": "4", "forcedownlevel": "0", "username": user,
                "password": PASSWORDS[account] if password is None else password, "passwordText": "", "isUtf8": "1"}
        return await self.request("POST", "/owa/auth.owa", data=form)

    async def mfa_page(self) -> Page:
        page = await self.get("/_gateway/mfa")
        if page.status == 200 and 'name="csrf_token"' in page.text:
            self.csrf_token = page.csrf_token
        return page

    async def verify(self, code: str, *, csrf_token: str | None = None, headers: dict[str, str] | None = None
                     ) -> Page:
        if not self.csrf_token and csrf_token is None:
            await self.mfa_page()
        token = self.csrf_token if csrf_token is None else csrf_token
        return await self.request("POST", "/_gateway/mfa/verify", data={"code": code, "csrf_token": token},
                                  headers=headers)

    async def push(self, *, csrf_token: str | None = None, headers: dict[str, str] | None = None) -> Page:
        if not self.csrf_token and csrf_token is None:
            await self.mfa_page()
        token = self.csrf_token if csrf_token is None else csrf_token
        return await self.request("POST", "/_gateway/mfa/push", data={"csrf_token": token}, headers=headers)

    async def status(self) -> tuple[int, dict[str, Any]]:
        page = await self.request("GET", "/_gateway/mfa/status", navigate=False,
                                  headers={"Accept": "application/json"})
        return page.status, json.loads(page.text)

    async def complete(self) -> Page:
        return await self.get("/_gateway/mfa/complete")

    async def sign_in(self, user: str = "alice") -> Page:
        """Password and a one-time code; returns the final redirect (to the destination)."""
        first = await self.password(user)
        assert first.status == 302, (first.status, first.text[:300])
        assert first.location == "/_gateway/mfa"
        await self.mfa_page()
        final = await self.verify(await self.env.code(user))
        assert final.status == 302, (final.status, final.text[:300])
        return final

    def has_exchange_session(self) -> bool:
        return any(name.lower() in CADATA_NAMES for name in self.cookies)

    @property
    def gateway_cookie(self) -> str | None:
        return self.cookies.get(self.env.cookie_name)


@dataclass
class FlowEnv:
    gateway: Gateway
    url: str
    admin_url: str
    port: int
    settings: Settings
    owa: RunningOwaSim
    monosign: MonosignSimulator
    http: aiohttp.ClientSession
    codes_used: dict[str, int] = field(default_factory=dict)

    @property
    def cookie_name(self) -> str:
        return "__Host-msgw" if self.settings.public_is_https else "msgw"

    def browser(self) -> Browser:
        return Browser(self)

    async def code(self, user: str) -> str:
        """A one-time code the Monosign simulator accepts, from its control API; a second code for
        the same user in one test is the next time step's (the simulator refuses a replay)."""
        used = self.codes_used.get(user, 0)
        self.codes_used[user] = used + 1
        if used == 0:
            async with self.http.get(f"{self.monosign.url}/_sim/users/{user}/code") as response:
                assert response.status == 200
                return str((await response.json())["code"])
        sim_user = self.monosign.state.find_user(user)
        assert sim_user is not None
        totp = pyotp.TOTP(sim_user.totp_secret)
        step = totp.timecode(datetime.datetime.now(datetime.UTC)) + used
        return totp.generate_otp(step)

    async def control(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.monosign.url + path, **kwargs) as response:
            assert response.status < 400, (path, response.status, await response.text())
            return await response.json()

    async def approve(self, user: str) -> None:
        await self.control("POST", f"/_sim/users/{user}/push/approve")

    async def reject(self, user: str) -> None:
        await self.control("POST", f"/_sim/users/{user}/push/reject")

    async def fault(self, mode: str, **options: Any) -> None:
        await self.control("POST", "/_sim/faults", json={"mode": mode, **options})

    async def monosign_calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = await self.control("GET", "/_sim/calls")
        return [call for call in calls if operation is None or call["operation"] == operation]

    async def owa_requests(self) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.owa.base_url}/_sim/requests") as response:
            return list((await response.json())["requests"])

    async def metrics(self) -> str:
        async with self.http.get(self.admin_url + "/metrics") as response:
            return await response.text()


def owa_config(**overrides: Any) -> OwaSimConfig:
    return OwaSimConfig(users=(*demo_users(), *EXTRA_OWA_USERS), redirect_scheme="request", **overrides)


@asynccontextmanager
async def flow_environment(*, owa: OwaSimConfig | None = None, monosign_options: dict[str, Any] | None = None,
                           store: SessionStore | None = None, **settings_overrides: Any) -> AsyncIterator[FlowEnv]:
    """Both simulators and the gateway on 127.0.0.1, stopped afterwards. Keyword arguments are
    gateway settings (lower-case field names); `store` replaces the session store the settings
    describe (the flow is then installed with `install_mfa`, as an embedding application would)."""
    options = {"push_ttl": 60.0, "lock_after": 10, **(monosign_options or {})}
    state = MonosignSimState(monosign_demo_users(), api_key=API_KEY, api_secret=API_SECRET, **options)
    async with AsyncExitStack() as stack:
        monosign = await stack.enter_async_context(MonosignSimulator(state))
        owa_sim = await stack.enter_async_context(running_owa_sim(owa or owa_config()))
        values: dict[str, Any] = {
            "monosign_api_url": monosign.url, "monosign_api_key": API_KEY, "monosign_api_secret": API_SECRET,
            "monosign_timeout": 2.0, "monosign_connect_timeout": 1.0,
            "gateway_public_url": PUBLIC_URL, "gateway_upstream_url": owa_sim.base_url,
            "gateway_listen": "127.0.0.1:0", "gateway_admin_listen": "127.0.0.1:0",
            **settings_overrides,
        }
        settings = load_settings(env_file=None, **values)
        state = None
        if store is not None:
            state = build_state(settings, mfa=False)
            install_mfa(state, monosign=monosign_client(settings), store=store)
        gateway = Gateway(settings, state=state)
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()))
        url = gateway.main_addresses[0]
        yield FlowEnv(gateway=gateway, url=url, admin_url=gateway.admin_addresses[0],
                      port=int(url.rsplit(":", 1)[1]), settings=settings, owa=owa_sim, monosign=monosign, http=http)


@pytest.fixture
async def env() -> AsyncIterator[FlowEnv]:
    async with flow_environment() as running:
        yield running


EnvFactory = Callable[..., Awaitable[FlowEnv]]


@pytest.fixture
async def start_env() -> AsyncIterator[EnvFactory]:
    async with AsyncExitStack() as stack:
        async def start(**kwargs: Any) -> FlowEnv:
            return await stack.enter_async_context(flow_environment(**kwargs))

        yield start



StoreEnv = Callable[..., Awaitable[FlowEnv]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store_env(request: pytest.FixtureRequest, start_env: EnvFactory, tmp_path: Path) -> AsyncIterator[StoreEnv]:
    """`start_env` on the memory store, then (second run) on a real redis-server: the same test
    against both backends of the store."""
    if request.param == "memory":
        yield start_env
        return
    from tests.redis_server import RedisServer

    with RedisServer.running(tmp_path / "redis") as server:
        async def start(**settings: Any) -> FlowEnv:
            return await start_env(gateway_session_store="redis", gateway_redis_url=server.url,
                                   gateway_session_secret="flow-store-env-secret-" + "x" * 32, **settings)

        yield start
