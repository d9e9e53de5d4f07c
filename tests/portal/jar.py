"""A browser for several hosts of one gateway: a cookie jar that keeps each cookie's domain as RFC 6265
does (host-only, or `Domain=` and every host below it), so a session group's cookie reaches the other
hosts of its domain and a host-only cookie does not; requests go to the gateway's loopback listener
with the host's name in `Host` (and in SNI over https).

    browser = JarBrowser(env, ssl=context)
    await browser.sign_in(APP_HOST, "alice", rd="/reports")
    page = await browser.get(WIKI_HOST, "/page")
"""

from __future__ import annotations

import re
import ssl as ssl_module
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from gateway.policy.owa_responses import parse_set_cookie
from tests.flow.conftest import FlowEnv, Page
from tests.portal.kit import PASSWORDS, form_action

_MFA_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class StoredCookie:
    name: str
    value: str
    domain: str  # the host that set it (host-only), or its Domain attribute, lower-cased
    host_only: bool

    def sent_to(self, host: str) -> bool:
        return host == self.domain or (not self.host_only and host.endswith("." + self.domain))


def domain_attribute(set_cookie: str) -> str | None:
    """A Set-Cookie's Domain attribute as a browser keeps it (lower-cased, no leading dot), or None."""
    values = [value for name, value in parse_set_cookie(set_cookie).attributes if name == "domain"]
    return values[-1].lstrip(".").lower() if values and values[-1] else None


@dataclass
class JarBrowser:
    env: FlowEnv
    ssl: ssl_module.SSLContext | None = None  # None: plain http
    jar: dict[tuple[str, str], StoredCookie] = field(default_factory=dict)  # by (name, domain)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl is not None else "http"

    def cookie_header(self, host: str) -> str:
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.jar.values() if cookie.sent_to(host))

    def cookies_for(self, host: str) -> dict[str, str]:
        return {cookie.name: cookie.value for cookie in self.jar.values() if cookie.sent_to(host)}

    def absorb(self, host: str, set_cookies: list[str]) -> None:
        for value in set_cookies:
            cookie = parse_set_cookie(value)
            domain = domain_attribute(value)
            if domain is not None and not (host == domain or host.endswith("." + domain)):
                continue  # a browser refuses a Domain the host is not under
            key = (cookie.name, domain or host)
            if cookie.is_deletion(time.time()):
                self.jar.pop(key, None)
            else:
                self.jar[key] = StoredCookie(cookie.name, cookie.value, domain or host, domain is None)

    async def request(self, method: str, host: str, target: str, *, data: Any = None,
                      headers: dict[str, str] | None = None, navigate: bool = True) -> Page:
        sent = {"Host": host}
        if navigate:
            sent.update({"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"})
        if method == "POST":
            sent.update({"Origin": f"{self.scheme}://{host}", "Sec-Fetch-Site": "same-origin"})
        sent.update(headers or {})
        cookies = self.cookie_header(host)
        if cookies:
            sent["Cookie"] = cookies
        url = f"{self.scheme}://127.0.0.1:{self.env.port}{target}"
        extra: dict[str, Any] = {"ssl": self.ssl, "server_hostname": host} if self.ssl is not None else {}
        async with self.env.http.request(method, url, headers=sent, data=data, allow_redirects=False,
                                         **extra) as response:
            page = Page(response.status, response.headers, await response.text(errors="replace"))
        self.absorb(host, page.set_cookies)
        return page

    async def get(self, host: str, target: str, **kwargs: Any) -> Page:
        return await self.request("GET", host, target, **kwargs)

    async def sign_in(self, host: str, user: str = "alice", *, rd: str = "/") -> Page:
        """The sign-in form, the one-time code; the final redirect (to `rd`)."""
        form_page = await self.get(host, f"/_gateway/signin?rd={quote(rd, safe='')}")
        assert form_page.status == 200, (form_page.status, form_page.text[:300])
        form = {"username": user, "password": PASSWORDS[user], "csrf_token": form_page.csrf_token}
        first = await self.request("POST", host, form_action(form_page), data=form)
        assert (first.status, first.location) == (302, "/_gateway/mfa"), (first.status, first.text[:300])
        mfa = await self.get(host, "/_gateway/mfa")
        match = _MFA_CSRF.search(mfa.text)
        assert match is not None, mfa.text[:300]
        final = await self.request("POST", host, "/_gateway/mfa/verify",
                                   data={"code": await self.env.code(user), "csrf_token": match.group(1)})
        assert final.status == 302, (final.status, final.text[:300])
        return final
