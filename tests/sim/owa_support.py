"""Helpers for the OWA simulator tests: a running simulator plus a client that sends exactly
the cookies a test chooses (no cookie jar), with the public Host header a gateway would preserve."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.sim.owa import OwaSimConfig, RunningOwaSim, running_owa_sim
from tests.demo_users import demo_password

HOST = "mail.corp.example"
CADATA = ("cadata", "cadataTTL", "cadataKey", "cadataIV", "cadataSig")


@dataclass
class OwaClient:
    sim: RunningOwaSim
    http: aiohttp.ClientSession

    def url(self, target: str) -> str:
        return self.sim.base_url + target

    async def request(self, method: str, target: str, *, cookies: dict[str, str] | None = None,
                      headers: dict[str, str] | None = None, **kwargs: Any) -> aiohttp.ClientResponse:
        sent = {"Host": HOST, **(headers or {})}
        if cookies:
            sent["Cookie"] = cookie_header(cookies)
        return await self.http.request(method, self.url(target), headers=sent, allow_redirects=False, **kwargs)

    async def login(self, username: str = "alice", password: str | None = None, *, flags: str = "4",
                    destination: str = f"https://{HOST}/owa/") -> dict[str, str]:
        """Post the logon form; return the five cadata cookies (asserting success)."""
        password = password if password is not None else demo_password(username)
        response = await self.request("POST", "/owa/auth.owa", data={
            "destination": destination, "flags": flags, "forcedownlevel": "0",
            "username": username, "password": password, "passwordText": "", "isUtf8": "1",
        })
        assert response.status == 302, await response.text()
        cookies = set_cookie_values(response)
        assert list(cookies) == list(CADATA)
        return cookies

    async def start_page(self, cookies: dict[str, str]) -> dict[str, str]:
        """Load /owa/ and return the cadata cookies plus what the start page set (canary, ...)."""
        response = await self.request("GET", "/owa/", cookies=cookies)
        assert response.status == 200
        return {**cookies, **set_cookie_values(response)}


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def set_cookie_headers(response: aiohttp.ClientResponse) -> list[str]:
    return response.headers.getall("Set-Cookie", [])


def set_cookie_values(response: aiohttp.ClientResponse) -> dict[str, str]:
    """name -> value of every Set-Cookie, in order, parsed by hand (values are kept byte for byte)."""
    values: dict[str, str] = {}
    for header in set_cookie_headers(response):
        name, _, value = header.split(";", 1)[0].partition("=")
        values[name] = value
    return values


@asynccontextmanager
async def owa_client(config: OwaSimConfig | None = None, *, ssl_context: ssl.SSLContext | None = None,
                     client_ssl: ssl.SSLContext | bool = False) -> AsyncIterator[OwaClient]:
    """A simulator on 127.0.0.1:0 (TLS with `ssl_context`) and a client for it; both closed afterwards."""
    async with running_owa_sim(config or OwaSimConfig(), ssl_context=ssl_context) as sim, aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), connector=aiohttp.TCPConnector(ssl=client_ssl),
    ) as http:
        yield OwaClient(sim, http)
