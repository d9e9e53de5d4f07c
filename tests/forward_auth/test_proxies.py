"""Forward auth through real nginx (`auth_request`) and Caddy (`forward_auth`), configured exactly as
docs/forward-auth.md shows, asking the real gateway (`/_gateway/auth`) about each request in front of
the application simulator. Sessions are made in the store the gateway reads, as a sign-in leaves them.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from gateway.mfa.flow import FLOW, MfaFlow
from gateway.sessions.base import SessionRecord, SessionState
from gateway.sim.app import RunningAppSim, running_app_sim
from tests.forward_auth.proxies import DOC_HOST, running_caddy, running_nginx
from tests.logs import CapturedLogs, events
from tests.policy.test_forward_auth import NON_CANONICAL_PATHS
from tests.portal.kit import users_file_text
from tests.portal.support import FIRST_FACTOR, write_key
from tests.proxy.support import PUBLIC_URL, run_gateway

HOST = DOC_HOST
OTHER_HOST = "crm.example.com"


def config_text(app_url: str) -> str:
    return json.dumps({"sites": [
        {"name": "wiki", "hosts": [HOST], "upstream": app_url, "profile": "portal", **FIRST_FACTOR,
         "rules": [{"paths": ["/health"], "action": "bypass"},
                   {"paths": ["/admin", "/_app/echo"], "action": "two_factor"},
                   {"paths": ["/drafts"], "action": "one_factor"},
                   {"paths": ["/closed"], "action": "deny"},
                   {"action": "bypass"}],
         "assertion": {"key_file": "assertion.pem"}},
        {"name": "crm", "hosts": [OTHER_HOST], "upstream": app_url, "profile": "portal", **FIRST_FACTOR,
         "rules": [{"action": "two_factor"}]},
    ]})


@dataclass
class Stack:
    port: int  # the proxy's
    gateway_port: int
    app: RunningAppSim
    flow: MfaFlow

    async def session(self, *, site: str = "wiki", state: SessionState = SessionState.COMPLETE,
                      user: str = "alice") -> str:
        now = time.time()
        record = SessionRecord(state=state, typed_username=user, user_id=f"id-{user}", user_name=user,
                               email=f"{user}@example.com", site=site, groups=["staff"], first_factor="ldap",
                               second_factor="push" if state is not SessionState.PENDING else "",
                               mfa_at=now if state is not SessionState.PENDING else None)
        return f"Cookie: {self.flow.cookie.name}={await self.flow.store.create(record, self.flow.ttl(record))}"


@asynccontextmanager
async def stack(tmp_path: Path, proxy: str) -> AsyncIterator[Stack]:
    write_key(tmp_path / "assertion.pem")
    (tmp_path / "users.yaml").write_text(users_file_text(), encoding="utf-8")
    (tmp_path / "gateway.yaml").write_text(config_text("http://127.0.0.1:9"), encoding="utf-8")
    proxy_dir = tmp_path / proxy
    proxy_dir.mkdir()
    async with running_app_sim() as application, \
            run_gateway(application.base_url, gateway_config_file=tmp_path / "gateway.yaml",
                        gateway_trusted_proxies=["127.0.0.1/32"]) as gateway:
        flow = gateway.gateway.state.feature(FLOW)
        starting: AbstractAsyncContextManager[int] = (
            running_nginx(proxy_dir, gateway.port, application.port) if proxy == "nginx"
            else running_caddy(proxy_dir, gateway.port, application.port))
        async with starting as port:
            yield Stack(port, gateway.port, application, flow)


async def raw_get(port: int, target: str, *headers: str, local: str = "127.0.0.1", host: str = HOST
                  ) -> tuple[int, dict[str, str], str]:
    """A request sent byte for byte (no client library tidies the target); (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    head = "".join(f"{header}\r\n" for header in (f"Host: {host}:{port}", "Connection: close", *headers))
    writer.write(f"GET {target} HTTP/1.1\r\n{head}\r\n".encode("latin-1"))
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert match, answer[:200]
    fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(match[1]), fields, body.decode("utf-8", "replace")


def shown(page: str, name: str) -> str:
    """What the application's page says it received in identity header `name`."""
    match = re.search(rf"<th>{name}</th><td>(.*?)</td>", page)
    assert match, page[:300]
    return match[1]


# Debian's Caddy 2.6 writes its unresolved placeholder for a header the gateway's answer lacks.
NOTHING = ("-", "{http.reverse_proxy.header.Remote-User}")
PROXIES = pytest.mark.parametrize("proxy", ["nginx", "caddy"])


@PROXIES
async def test_a_signed_in_user_passes_and_the_application_sees_the_identity(tmp_path: Path, proxy: str) -> None:
    async with stack(tmp_path, proxy) as running:
        cookie = await running.session()
        status, _, page = await raw_get(running.port, "/admin/settings", cookie)
        assert status == 200
        assert shown(page, "Remote-User") == "alice"
        assert shown(page, "Remote-Email") == "alice@example.com"
        assert shown(page, "Remote-Groups") == "staff"
        # The assertion verifies with the keys the gateway publishes (fetched through the proxy).
        status, _, body = await raw_get(running.port, "/_app/echo", cookie)
        assert status == 200
        (token,) = [value for name, value in json.loads(body)["headers"] if name == "X-Monosign-Assertion"]
        status, _, jwks = await raw_get(running.port, "/_gateway/jwks.json")
        assert status == 200
        key = jwt.PyJWKSet.from_dict(json.loads(jwks))[jwt.get_unverified_header(token)["kid"]].key
        claims = jwt.decode(token, key, algorithms=["ES256"], audience="wiki", issuer=PUBLIC_URL)
        assert (claims["sub"], claims["amr"]) == ("id-alice", ["pwd", "swk", "mfa"])
        # A pending session (first factor only) opens one_factor paths, not two_factor ones.
        pending = await running.session(state=SessionState.PENDING, user="bob")
        status, _, page = await raw_get(running.port, "/drafts/x", pending)
        assert (status, shown(page, "Remote-User")) == (200, "bob")
        assert (await raw_get(running.port, "/admin/settings", pending))[0] == 302


@PROXIES
@pytest.mark.parametrize("target", ["/admin/settings", "/admin/a%20b?x=1&next=%2Fy", "/drafts"])
async def test_an_anonymous_browser_is_sent_to_sign_in_and_back(tmp_path: Path, proxy: str, target: str) -> None:
    async with stack(tmp_path, proxy) as running:
        before = running.app.state.requests
        for cookie in ([], [await running.session(site="crm")], [await running.session(site="")]):
            status, headers, _ = await raw_get(running.port, target, *cookie, "Accept: text/html")
            assert status == 302
            location = urlsplit(headers["location"])
            assert (location.scheme, location.netloc, location.path) == ("http", f"{HOST}:{running.port}",
                                                                         "/_gateway/signin")
            assert parse_qs(location.query)["rd"] == [target]
        assert running.app.state.requests == before
        # The sign-in page is the gateway's, on the application's host, through the proxy.
        status, headers, _ = await raw_get(running.port, f"{location.path}?{location.query}")
        assert status != 302
        assert running.app.state.requests == before


@PROXIES
@pytest.mark.parametrize("spelling", ["Remote-User: mallory", "remote-user: mallory", "REMOTE-USER: mallory"])
async def test_a_client_identity_header_never_reaches_the_application(tmp_path: Path, proxy: str,
                                                                      spelling: str) -> None:
    async with stack(tmp_path, proxy) as running:
        status, _, page = await raw_get(running.port, "/page", spelling, spelling)  # a bypass rule: no identity
        assert status == 200
        assert shown(page, "Remote-User") in NOTHING
        status, _, page = await raw_get(running.port, "/admin/x", spelling, await running.session())
        assert shown(page, "Remote-User") == "alice"


@PROXIES
@pytest.mark.parametrize(
    "spoof",
    [
        "X-Forwarded-Uri: /page",
        "X-Original-URL: http://wiki.example.com/page",
        "X-Forwarded-Method: GET",
        "X-Original-Method: GET",
        "X-Forwarded-Host: crm.example.com",
        "X-Forwarded-Uri: /health",
    ],
)
async def test_forwarding_headers_a_client_adds_cannot_change_the_decision(tmp_path: Path, proxy: str,
                                                                           spoof: str) -> None:
    async with stack(tmp_path, proxy) as running:
        before = running.app.state.requests
        status, _, _ = await raw_get(running.port, "/admin/x", spoof)
        assert status in (302, 403)
        assert running.app.state.requests == before


async def test_an_untrusted_peer_asking_directly_is_refused(tmp_path: Path, captured_logs: CapturedLogs) -> None:
    async with stack(tmp_path, "nginx") as running:
        cookie = await running.session()
        headers = [f"X-Original-URL: http://{HOST}/admin", "X-Original-Method: GET", cookie]
        status, _, _ = await raw_get(running.gateway_port, "/_gateway/auth", *headers, local="127.0.0.2")
        assert status == 403
        status, answer, _ = await raw_get(running.gateway_port, "/_gateway/auth", *headers)  # from the proxies' address
        assert status == 200
        assert answer["remote-user"] == "alice"
        status, answer, _ = await raw_get(running.gateway_port, "/_gateway/auth", f"X-Original-URL: http://{HOST}/admin",
                                          "X-Original-Method: GET")
        assert status == 401
        assert answer["location"] == f"http://{HOST}/_gateway/signin?rd=/admin"
    decisions = events(captured_logs(), "gateway.audit")
    decisions = [event for event in decisions if event["event"] == "forward_auth"]
    assert [event["verdict"] for event in decisions] == ["deny", "allow", "sign_in"]
    assert decisions[1]["monosign_user_id"] == "id-alice"
    assert decisions[1]["path"] == "/admin"
    secret = cookie.partition("=")[2]
    assert not any(secret in line for line in captured_logs())


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
    async with stack(tmp_path, proxy) as running:
        for spelling in ADMIN_SPELLINGS:
            await raw_get(running.port, spelling)
        received = list(running.app.state.paths)
    # A spelling the proxy turns into another path (`/admin#x` is `/admin%23x` to Caddy) may reach
    # the application as that other path; none may reach it as the protected one.
    assert [path for path in received if protected(path)] == []


@pytest.mark.parametrize(("path", "expected"), [("/admin", True), ("/Admin/x", True), ("/a/../admin", True),
                                                ("/admin;x", True), ("/admin#x", False), ("/administrator", False),
                                                ("/page", False), ("/x/admin", False)])
def test_the_protected_oracle(path: str, expected: bool) -> None:
    assert protected(path) is expected



@pytest.mark.parametrize(("query", "headers", "expected"), [
    ("", ["Sec-Fetch-Mode: navigate", "Accept: text/html"], 401),
    ("?browsers=redirect", ["Sec-Fetch-Mode: navigate", "Accept: text/html"], 302),
    ("?browsers=redirect", ["Accept: text/html"], 302),
    ("?browsers=redirect", ["Accept: application/json"], 401),
    ("?browsers=redirect", ["Sec-Fetch-Mode: cors", "Accept: text/html"], 401),
    ("?browsers=redirect", ["X-Requested-With: XMLHttpRequest"], 401),
    ("?browsers=other", ["Sec-Fetch-Mode: navigate"], 401),
])
async def test_a_proxy_that_relays_answers_as_they_are_can_ask_for_a_redirect(tmp_path: Path, query: str,
                                                                              headers: list[str],
                                                                              expected: int) -> None:
    """Traefik's way (docs/forward-auth.md), asked directly as Traefik asks: X-Forwarded-* from a trusted peer."""
    async with stack(tmp_path, "caddy") as running:
        described = ["X-Forwarded-Method: GET", "X-Forwarded-Proto: https", f"X-Forwarded-Host: {HOST}",
                     "X-Forwarded-Uri: /admin/x?y=1"]
        status, answer, _ = await raw_get(running.gateway_port, f"/_gateway/auth{query}", *described, *headers)
        assert status == expected
        assert answer["location"] == f"https://{HOST}/_gateway/signin?rd=/admin/x%3Fy%3D1"
        described[0] = "X-Forwarded-Method: POST"
        status, _, _ = await raw_get(running.gateway_port, f"/_gateway/auth{query}", *described, *headers)
        assert status == 401
