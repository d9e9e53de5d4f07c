"""Sign-out CSRF: a `GET /_gateway/signout` that another site started ends nothing; it shows a page
whose button posts the sign-out with the session's token, and only that post (from the site's own
page) ends the session. A GET of the site's own (or with no browser metadata at all) still signs out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from multidict import CIMultiDict

from gateway.mfa.csrf import started_elsewhere
from gateway.sessions.base import SessionState
from tests.portal.support import WIKI_HOST, Portal, get_raw, header, running_portal, split
from tests.proxy.support import raw_exchange

ORIGIN = f"http://{WIKI_HOST}"
_TOKEN = re.compile(rb'<form class="signout" method="post" action="/_gateway/signout"[^>]*>\s*'
                    rb'<input type="hidden" name="csrf_token" value="([^"]+)">')

# Header lines of a GET that another site started (or that cannot be told apart from one): every
# spelling of Fetch Metadata but one `same-origin` / `none`, and a Referer of any other origin.
ELSEWHERE: list[tuple[str, ...]] = [
    ("Sec-Fetch-Site: cross-site",),
    ("Sec-Fetch-Site: same-site",),  # a sibling subdomain, even of the same session group
    ("Sec-Fetch-Site: Cross-Site",),
    ("Sec-Fetch-Site:   CROSS-SITE  ",),
    ("sec-fetch-site: cross-site",),
    ("Sec-Fetch-Site: same-origin, cross-site",),
    ("Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: cross-site"),
    ("Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: same-origin"),  # two headers: not one answer
    ("Sec-Fetch-Site: ",),
    ("Sec-Fetch-Site: bogus",),
    ("Sec-Fetch-Site: same_origin",),
    ("Sec-Fetch-Site: cross-site", f"Referer: {ORIGIN}/page"),  # Fetch Metadata decides
    ("Referer: http://evil.test/",),
    ("Referer: http://crm.example.test/page",),
    (f"Referer: https://{WIKI_HOST}/",),  # another scheme is another origin
    (f"Referer: http://{WIKI_HOST}:8080/",),
    ("Referer: not a url",),
    (f"Referer: {ORIGIN}/", "Referer: http://evil.test/"),
]
# ... and of the site's own: typed, bookmarked, its own link, or nothing said at all.
OWN: list[tuple[str, ...]] = [
    (),
    ("Sec-Fetch-Site: same-origin",),
    ("Sec-Fetch-Site: none",),
    ("Sec-Fetch-Site: Same-Origin",),
    ("Sec-Fetch-Site:  same-origin ",),
    (f"Referer: {ORIGIN}/page?x=1",),
    (f"Referer: HTTP://{WIKI_HOST.upper()}/",),
    ("Sec-Fetch-Site: same-origin", "Referer: http://evil.test/"),  # a redirect chain's first page
]


def as_headers(lines: tuple[str, ...]) -> CIMultiDict[str]:
    return CIMultiDict((name, value.strip()) for name, _, value in (line.partition(":") for line in lines))


@pytest.mark.parametrize("lines", ELSEWHERE, ids=" | ".join)
def test_a_get_from_elsewhere(lines: tuple[str, ...]) -> None:
    assert started_elsewhere(as_headers(lines), ORIGIN)


@pytest.mark.parametrize("lines", OWN, ids=lambda lines: " | ".join(lines) or "no header")
def test_a_get_of_the_site_s_own(lines: tuple[str, ...]) -> None:
    assert not started_elsewhere(as_headers(lines), ORIGIN)


async def signed_in(portal: Portal, cookie: str) -> bool:
    """Whether the wiki's sign-in page sees a passed session (it then goes straight on to `rd`)."""
    status, _, _ = await get_raw(portal, "/_gateway/signin", f"Cookie: {cookie}")
    return status == 303


async def post_sign_out(portal: Portal, cookie: str, body: str, *extra: str) -> tuple[int, list[tuple[str, str]]]:
    lines = ["POST /_gateway/signout HTTP/1.1", f"Host: {WIKI_HOST}", "Connection: close", f"Cookie: {cookie}",
             "Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}", *extra, "", body]
    status, headers, _ = split(await raw_exchange(portal.port, "\r\n".join(lines).encode("latin-1"), timeout=10))
    return status, headers


async def test_a_get_from_elsewhere_asks_and_ends_nothing(tmp_path: Path) -> None:
    async with running_portal(tmp_path) as portal:
        cookie = await portal.session()
        tokens = set()
        for lines in ELSEWHERE:
            status, headers, body = await get_raw(portal, "/_gateway/signout", f"Cookie: {cookie}", *lines)
            assert status == 200, lines
            assert header(headers, "Set-Cookie") == []
            assert header(headers, "Cache-Control") == ["no-store"]
            match = _TOKEN.search(body)
            assert match is not None, body[:400]
            tokens.add(match.group(1).decode())
        assert len(tokens) == 1  # the session's one token
        assert await signed_in(portal, cookie)


@pytest.mark.parametrize("lines", OWN, ids=lambda lines: " | ".join(lines) or "no header")
async def test_a_get_of_the_site_s_own_signs_out(tmp_path: Path, lines: tuple[str, ...]) -> None:
    async with running_portal(tmp_path) as portal:
        cookie = await portal.session()
        status, headers, _ = await get_raw(portal, "/_gateway/signout", f"Cookie: {cookie}", *lines)
        assert (status, header(headers, "Location")) == (303, ["/_gateway/signin?signed_out=1"])
        assert [value.split(";")[0] for value in header(headers, "Set-Cookie")] == ["msgw="]
        assert not await signed_in(portal, cookie)


@pytest.mark.parametrize("state", [SessionState.COMPLETE, SessionState.EXEMPT, SessionState.PENDING])
async def test_only_the_confirmation_s_own_post_signs_out(tmp_path: Path, state: SessionState) -> None:
    async with running_portal(tmp_path) as portal:
        # An exempt session was never shown a form: the confirmation gives it a token.
        cookie = await portal.session(state=state, csrf_token="" if state is SessionState.EXEMPT else "t" * 43)
        _, _, body = await get_raw(portal, "/_gateway/signout", f"Cookie: {cookie}", "Sec-Fetch-Site: cross-site")
        match = _TOKEN.search(body)
        assert match is not None
        token = match.group(1).decode()
        for form, extra in (
            (f"csrf_token={token}", ("Origin: http://evil.test", "Sec-Fetch-Site: cross-site")),
            (f"csrf_token={token}", ("Origin: http://crm.example.test",)),
            (f"csrf_token={token}", ("Sec-Fetch-Site: same-site",)),
            (f"csrf_token={token}", ("Origin: null",)),
            ("csrf_token=" + "x" * len(token), (f"Origin: {ORIGIN}",)),
            ("csrf_token=", (f"Origin: {ORIGIN}",)),
            ("", (f"Origin: {ORIGIN}",)),
            (f"csrf_token={token}&csrf_token={token}", (f"Origin: {ORIGIN}",)),
        ):
            status, headers = await post_sign_out(portal, cookie, form, *extra)
            assert status == 403, (form, extra)
            assert header(headers, "Set-Cookie") == []
        found = await portal.flow.store.load(cookie.split("=", 1)[1])
        assert found is not None  # nothing ended
        status, headers = await post_sign_out(portal, cookie, f"csrf_token={token}", f"Origin: {ORIGIN}",
                                              "Sec-Fetch-Site: same-origin")
        assert (status, header(headers, "Location")) == (303, ["/_gateway/signin?signed_out=1"])
        assert [value.split(";")[0] for value in header(headers, "Set-Cookie")] == ["msgw="]
        assert await portal.flow.store.load(cookie.split("=", 1)[1]) is None
