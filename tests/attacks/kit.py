"""What the attacker has, and how a breach is recognised.

The attacker knows alice's password and has no second factor. Beyond a fresh pending session
(password accepted, MFA not passed) they may hold: bob's pending session, Exchange cookies obtained
by signing in at Exchange directly (around the gateway), the cookies of an earlier alice session
that was signed out, and a complete gateway session of their own (dave, who passed his own MFA).

A breach is any of: a response body with mailbox content; a live `Set-Cookie: cadata…`; a request
for a protected Exchange page that reached the OWA simulator carrying Exchange cookies or that
the simulator answered 200.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

import httpx

from gateway.demo import RunningDemo
from gateway.sim.owa.recorder import RequestRecord
from gateway.sim.owa.routes import resolve
from tests.attacks.raw_http import RawResponse
from tests.e2e.owa_client import (
    CADATA_COOKIES,
    MFA_PAGE,
    csrf_token,
    current_code,
    logon_form,
    mfa_page,
    post_mfa,
    post_password,
    shows_mailbox,
    sign_in_with_push,
)

GATEWAY_COOKIE = "msgw"


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def set_cookies(response: httpx.Response | RawResponse) -> dict[str, str]:
    """Cookies a response hands out with a value (expiring ones are left out)."""
    headers = response.headers.get_list("Set-Cookie") if isinstance(response, httpx.Response) else response.all(
        "Set-Cookie")
    found: dict[str, str] = {}
    for header in headers:
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0].strip()
        attributes = rest.lower()
        if value and "max-age=0" not in attributes and "1970" not in attributes:
            found[name.strip()] = value
    return found


def live_cadata(response: RawResponse) -> list[str]:
    return [name for name in set_cookies(response) if name.lower().startswith("cadata")]


@dataclass
class Breach:
    problems: list[str] = field(default_factory=list)

    def check_response(self, label: str, response: RawResponse) -> None:
        if shows_mailbox(response.text):
            self.problems.append(f"{label}: mailbox content in a {response.status} response")
        if cadata := live_cadata(response):
            self.problems.append(f"{label}: live Exchange cookies handed out: {cadata}")

    def check_upstream(self, records: list[RequestRecord]) -> None:
        for record in records:
            path = urllib.parse.unquote(urllib.parse.urlsplit(record.target).path or "/")
            if resolve(path).anonymous:
                continue
            carried = [name for name in record.cookie_names if name.lower().startswith("cadata")]
            if carried:
                self.problems.append(f"upstream got {record.method} {record.target} with {carried}")
            if record.status == 200:
                self.problems.append(f"upstream served {record.method} {record.target} (200)")


@dataclass
class Kit:
    """The attacker's cookies against one running demo stack (the flow as users meet it)."""

    demo: RunningDemo
    _foreign: dict[str, str] | None = None
    _old: tuple[dict[str, str], dict[str, str]] | None = None
    _dave: dict[str, str] | None = None

    @property
    def port(self) -> int:
        return int(self.demo.gateway_url.rsplit(":", 1)[1])

    @property
    def host(self) -> str:
        return self.demo.gateway_url.removeprefix("http://")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.demo.gateway_url, timeout=15)

    def mark(self) -> int:
        """The OWA simulator's newest request id: `upstream_since(mark)` lists what came after."""
        records = self.demo.owa.state.recorder.requests()
        return records[-1].id if records else 0

    def upstream_since(self, mark: int) -> list[RequestRecord]:
        return [record for record in self.demo.owa.state.recorder.requests() if record.id > mark]

    async def pending(self, user: str) -> dict[str, str]:
        """A fresh pending session: the password went through the gateway, the second factor did not."""
        async with self.client() as client:
            step = await post_password(client, user)
        assert step.response.status_code == 302, step.response.text
        assert step.location.endswith(MFA_PAGE), step.location
        cookies = set_cookies(step.response)
        assert GATEWAY_COOKIE in cookies, cookies
        assert not any(name.lower().startswith("cadata") for name in cookies)
        return {GATEWAY_COOKIE: cookies[GATEWAY_COOKIE]}

    async def pending_with_token(self, user: str) -> tuple[dict[str, str], str]:
        """A pending session and its MFA page's CSRF token."""
        async with self.client() as client:
            step = await post_password(client, user)
            assert step.location.endswith(MFA_PAGE), step.location
            page = await mfa_page(client)
            return {GATEWAY_COOKIE: client.cookies[GATEWAY_COOKIE]}, csrf_token(page.text)

    async def foreign_cadata(self) -> dict[str, str]:
        """alice's Exchange cookies from a sign-in at Exchange itself, around the gateway."""
        if self._foreign is None:
            owa = self.demo.owa.base_url
            async with httpx.AsyncClient(base_url=owa, timeout=15) as direct:
                answer = await direct.post("/owa/auth.owa", data=logon_form(owa, "alice", "AlicePass1!"))
            assert answer.status_code == 302, answer.text
            cookies = set_cookies(answer)
            assert set(CADATA_COOKIES) <= set(cookies), cookies
            self._foreign = {name: cookies[name] for name in CADATA_COOKIES}
        return dict(self._foreign)

    async def signed_out(self) -> tuple[dict[str, str], dict[str, str]]:
        """(gateway cookie, Exchange cookies) of an alice session that passed MFA and was signed out."""
        if self._old is None:
            async with self.client() as client:
                code = await current_code(self.demo.monosign_url, "alice")
                step = await post_password(client, "alice")
                assert step.location.endswith(MFA_PAGE)
                page = await mfa_page(client)
                passed = await post_mfa(client, "verify", csrf_token(page.text), code=code)
                assert passed.status_code in (302, 303), passed.text
                jar = dict(client.cookies.items())
                mailbox = await client.get("/owa/")
                assert shows_mailbox(mailbox.text), "the session worked before sign-out"
                await client.get("/owa/logoff.owa")
            gateway = {GATEWAY_COOKIE: jar[GATEWAY_COOKIE]}
            exchange = {name: jar[name] for name in CADATA_COOKIES}
            self._old = (gateway, exchange)
        return dict(self._old[0]), dict(self._old[1])

    async def dave_session(self) -> dict[str, str]:
        """The attacker's own complete gateway session (dave passed his own push), without his cadata."""
        if self._dave is None:
            async with self.client() as client:
                passed = await sign_in_with_push(client, "dave", monosign_url=self.demo.monosign_url)
                assert passed.status_code in (302, 303), passed.text
                self._dave = {GATEWAY_COOKIE: client.cookies[GATEWAY_COOKIE]}
        return dict(self._dave)
