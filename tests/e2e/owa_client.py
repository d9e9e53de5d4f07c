"""A scripted user of the gateway's OWA sign-in, over real HTTP (httpx), for end-to-end tests.

    async with httpx.AsyncClient(base_url=gateway_url) as client:
        mailbox = await sign_in_with_code(client, "alice", "AlicePass1!", monosign_url=monosign_url)

Every step is a plain HTTP request a browser would make; nothing here reaches into the gateway.
The second factor comes from the Monosign simulator's control API (`/_sim/...`), as a person
reading the demo's page would get it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from tests.demo_users import PASSWORDS

MFA_PAGE = "/_gateway/mfa"
CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')
# Texts only the OWA simulator's mailbox pages contain (never a logon, MFA or error page).
MAILBOX_MARKERS = ("Quarterly report (draft)", "Fire drill on Wednesday", "Weekly sync moved to room")
CADATA_COOKIES = ("cadata", "cadataTTL", "cadataKey", "cadataIV", "cadataSig")


@dataclass(frozen=True, slots=True)
class PasswordStep:
    response: httpx.Response  # the answer to POST /owa/auth.owa

    @property
    def location(self) -> str:
        return self.response.headers.get("Location", "")


def logon_form(base_url: str, username: str, password: str, *, destination: str | None = None,
               flags: str = "4") -> dict[str, str]:
    """The fields Exchange's logon page posts (flags 4: a private computer)."""
    return {
        "destination": destination if destination is not None else f"{base_url}/owa/",
        "flags": flags,
        "forcedownlevel": "0",
        "username": username,
        "password": password,
        "passwordText": "",
        "isUtf8": "1",
    }


async def post_password(client: httpx.AsyncClient, username: str, password: str | None = None, *,
                        destination: str | None = None, path: str = "/owa/auth.owa") -> PasswordStep:
    base = str(client.base_url).rstrip("/")
    form = logon_form(base, username, password if password is not None else PASSWORDS[username],
                      destination=destination)
    response = await client.post(path, data=form, headers={"Origin": base})
    return PasswordStep(response)


def csrf_token(page: str) -> str:
    found = CSRF_INPUT.search(page)
    assert found is not None, "no csrf_token in the page"
    return found.group(1)


async def mfa_page(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get(MFA_PAGE)


async def post_mfa(client: httpx.AsyncClient, action: str, token: str, **fields: str) -> httpx.Response:
    """POST one of the MFA forms as the page would (same Origin, the page's CSRF token)."""
    base = str(client.base_url).rstrip("/")
    return await client.post(f"{MFA_PAGE}/{action}", data={"csrf_token": token, **fields},
                             headers={"Origin": base, "Sec-Fetch-Site": "same-origin"})


async def current_code(monosign_url: str, username: str) -> str:
    async with httpx.AsyncClient() as control:
        answer = await control.get(f"{monosign_url}/_sim/users/{username}/code")
        answer.raise_for_status()
        code: str = answer.json()["code"]
        return code


async def approve_latest_push(monosign_url: str, username: str, *, approve: bool = True) -> None:
    verdict = "approve" if approve else "reject"
    async with httpx.AsyncClient() as control:
        answer = await control.post(f"{monosign_url}/_sim/users/{username}/push/{verdict}")
        answer.raise_for_status()


async def sign_in_with_code(client: httpx.AsyncClient, username: str, *, monosign_url: str,
                            destination: str | None = None) -> httpx.Response:
    """Password, then the current one-time code; returns the answer to the code (302 into OWA)."""
    step = await post_password(client, username, destination=destination)
    assert step.response.status_code == 302, step.response
    assert step.location.endswith(MFA_PAGE), step.location
    page = await mfa_page(client)
    assert page.status_code == 200, page.text
    code = await current_code(monosign_url, username)
    return await post_mfa(client, "verify", csrf_token(page.text), code=code)


async def sign_in_with_push(client: httpx.AsyncClient, username: str, *, monosign_url: str,
                            destination: str | None = None) -> httpx.Response:
    """Password, a push approved through the simulator, then `complete` at once (the no-JavaScript
    path: the gateway asks Monosign itself when its poller has not seen the answer yet)."""
    step = await post_password(client, username, destination=destination)
    assert step.response.status_code == 302, step.response
    assert step.location.endswith(MFA_PAGE), step.location
    page = await mfa_page(client)
    sent = await post_mfa(client, "push", csrf_token(page.text))
    assert sent.status_code == 303, sent.text
    await approve_latest_push(monosign_url, username)
    return await client.get(f"{MFA_PAGE}/complete")


def live_cadata_cookies(response: httpx.Response) -> list[str]:
    """`Set-Cookie` headers that would give the client an Exchange session (not the expiring kind)."""
    live = []
    for header in response.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        if not name.strip().lower().startswith("cadata"):
            continue
        value = rest.split(";", 1)[0].strip()
        expired = re.search(r"expires=[^;]*19[0-9]{2}|max-age=0\b", rest, re.IGNORECASE) is not None
        if value and not expired:
            live.append(header)
    return live


def shows_mailbox(body: str) -> bool:
    return any(marker in body for marker in MAILBOX_MARKERS)
