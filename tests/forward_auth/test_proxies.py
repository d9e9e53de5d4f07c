"""Forward auth through real nginx (`auth_request`) and Caddy (`forward_auth`): what they send is read
by `gateway.policy.forward_auth`, decided by the site's rules, and nothing the proxies normalise in
another way reaches a protected path.

The endpoint here is `decide` behind a minimal aiohttp handler with a table of sessions: the decision
and the proxies are real, the session lookup is the only stand-in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import posixpath
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from gateway.config import parse_config
from gateway.policy.forward_auth import SessionFactors, decide
from gateway.policy.rules import Identity
from gateway.policy.sites import SiteIndex
from gateway.policy.users import parse_username
from gateway.sim.app import RunningAppSim, running_app_sim
from tests.forward_auth.proxies import running_caddy, running_nginx
from tests.policy.test_forward_auth import NON_CANONICAL_PATHS

HOST = "wiki.example.com"
SITES = SiteIndex(parse_config(f"""\
sites:
  - name: wiki
    hosts: [{HOST}]
    upstream: http://127.0.0.1:9
    profile: passthrough
    rules:
      - {{ paths: ["/health"], action: bypass }}
      - {{ paths: ["/admin"], action: two_factor }}
      - {{ action: bypass }}
"""))
TRUSTED = ipaddress.ip_network("127.0.0.1/32")
SESSIONS = {"alice-session": ("alice", SessionFactors(Identity(parse_username("alice")), second_factor=True))}


async def authorise(request: web.Request) -> web.Response:
    peer = request.transport.get_extra_info("peername")[0] if request.transport else "0.0.0.0"
    user, session = SESSIONS.get(request.cookies.get("session", ""), (None, None))
    decision = decide(request.headers, peer_trusted=ipaddress.ip_address(peer) in TRUSTED, client_ip=peer,
                      sites=SITES, session=session)
    headers = {"Remote-User": user} if decision.session is not None and user is not None else {}
    return web.Response(status=decision.status, headers=headers)


@asynccontextmanager
async def stack(tmp_path: Path, proxy: str) -> AsyncIterator[tuple[int, int, RunningAppSim]]:
    """(proxy port, auth port, application)"""
    app = web.Application()
    app.router.add_get("/_gateway/auth", authorise)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    auth_port = int(runner.addresses[0][1])
    try:
        async with running_app_sim() as application:
            starting: AbstractAsyncContextManager[int] = (
                running_nginx(tmp_path, auth_port, application.port) if proxy == "nginx"
                else running_caddy(tmp_path, HOST, auth_port, application.port))
            async with starting as port:
                yield port, auth_port, application
    finally:
        await runner.cleanup()


async def raw_get(port: int, target: str, *headers: str, local: str = "127.0.0.1") -> tuple[int, str]:
    """A request sent byte for byte (no client library tidies the target); (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    head = "".join(f"{header}\r\n" for header in (f"Host: {HOST}:{port}", "Connection: close", *headers))
    writer.write(f"GET {target} HTTP/1.1\r\n{head}\r\n".encode("latin-1"))
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    match = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
    assert match, answer[:200]
    return int(match[1]), answer.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


def remote_user_shown(page: str) -> str:
    match = re.search(r"<th>Remote-User</th><td>(.*?)</td>", page)
    assert match, page[:300]
    return match[1]


PROXIES = pytest.mark.parametrize("proxy", ["nginx", "caddy"])


@PROXIES
async def test_a_signed_in_user_passes_with_the_identity(tmp_path: Path, proxy: str) -> None:
    async with stack(tmp_path, proxy) as (port, _, _):
        status, page = await raw_get(port, "/admin/settings", "Cookie: session=alice-session")
    assert status == 200
    assert remote_user_shown(page) == "alice"


@PROXIES
async def test_an_anonymous_user_is_sent_to_sign_in_and_the_application_sees_nothing(tmp_path: Path,
                                                                                     proxy: str) -> None:
    async with stack(tmp_path, proxy) as (port, _, application):
        before = application.state.requests
        status, _ = await raw_get(port, "/admin/settings")
        assert status == 401
        assert application.state.requests == before


@PROXIES
@pytest.mark.parametrize("spelling", ["Remote-User: mallory", "remote-user: mallory", "REMOTE-USER: mallory"])
async def test_a_client_identity_header_never_reaches_the_application(tmp_path: Path, proxy: str,
                                                                      spelling: str) -> None:
    async with stack(tmp_path, proxy) as (port, _, _):
        status, page = await raw_get(port, "/page", spelling)  # a bypass rule: no identity from the gateway
        assert status == 200
        # None, or with Debian's Caddy 2.6 its unresolved placeholder (copy_headers writes it when the
        # answer has no such header): never the client's value.
        assert remote_user_shown(page) in ("-", "{http.reverse_proxy.header.Remote-User}")
        status, page = await raw_get(port, "/admin/x", spelling, "Cookie: session=alice-session")
        assert remote_user_shown(page) == "alice"


@PROXIES
@pytest.mark.parametrize(
    "spoof",
    [
        "X-Forwarded-Uri: /page",
        "X-Original-URL: http://wiki.example.com/page",
        "X-Forwarded-Method: GET",
        "X-Original-Method: GET",
    ],
)
async def test_forwarding_headers_a_client_adds_cannot_change_the_decision(tmp_path: Path, proxy: str,
                                                                           spoof: str) -> None:
    async with stack(tmp_path, proxy) as (port, _, application):
        before = application.state.requests
        status, _ = await raw_get(port, "/admin/x", spoof)
        assert status in (401, 403)
        assert application.state.requests == before


async def test_an_untrusted_peer_asking_directly_is_refused(tmp_path: Path) -> None:
    async with stack(tmp_path, "nginx") as (_, auth_port, _):
        headers = [f"X-Original-URL: http://{HOST}/page", "X-Original-Method: GET", "Cookie: session=alice-session"]
        status, _ = await raw_get(auth_port, "/_gateway/auth", *headers, local="127.0.0.2")
        assert status == 403
        status, _ = await raw_get(auth_port, "/_gateway/auth", *headers)  # the same from the proxies' address
        assert status == 200


ADMIN_SPELLINGS = [
    *(path for path in NON_CANONICAL_PATHS if path.startswith(("/admin", "/adm", "//admin", "/public", "/%u"))),
    "/Admin/x", "/ADMIN", "/admin;jsessionid=1/x", "/%61dmin/x", "/admin/", "/admin?x=/page", "/./admin",
    "/admin/..%2f..%2fpage", "/page/..%2fadmin", "/page%2f..%2fadmin",
]


def protected(path: str) -> bool:
    """Whether the application, or a server reading paths more loosely than it (case, dot segments,
    `;` parameters), would take this decoded path for /admin or below."""
    segments = posixpath.normpath(path.replace("\\", "/")).lower().split("/")
    return len(segments) > 1 and segments[1].split(";")[0] == "admin"


@PROXIES
async def test_no_spelling_of_a_protected_path_reaches_the_application_anonymously(tmp_path: Path,
                                                                                   proxy: str) -> None:
    async with stack(tmp_path, proxy) as (port, _, application):
        for spelling in ADMIN_SPELLINGS:
            await raw_get(port, spelling)
        received = list(application.state.paths)
    # A spelling the proxy turns into another path (`/admin#x` is `/admin%23x` to Caddy) may reach
    # the application as that other path; none may reach it as the protected one.
    assert [path for path in received if protected(path)] == []


@pytest.mark.parametrize(("path", "expected"), [("/admin", True), ("/Admin/x", True), ("/a/../admin", True),
                                                ("/admin;x", True), ("/admin#x", False), ("/administrator", False),
                                                ("/page", False), ("/x/admin", False)])
def test_the_protected_oracle(path: str, expected: bool) -> None:
    assert protected(path) is expected


