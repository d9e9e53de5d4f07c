"""A session's life after the second factor: activity and timeouts, logoff, Exchange's own timeout, a new
Exchange login, foreign cadata, `Expect: 100-continue`, and what the upstream never sees."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.policy.owa_responses import live_cadata
from gateway.sessions.base import Stored
from gateway.sessions.memory import MemoryBackend
from gateway.sessions.store import EncryptedSessionStore, random_server_key
from tests.flow.conftest import HOST, Browser, EnvFactory, FlowEnv, owa_config
from tests.logs import CapturedLogs, events


async def test_idle_timeout_ends_the_session(start_env: EnvFactory, captured_logs: CapturedLogs) -> None:
    env = await start_env(gateway_session_idle_timeout=2.0, gateway_session_absolute_timeout=60.0,
                          gateway_session_cache_seconds=0)
    browser = env.browser()
    await browser.sign_in("alice")
    for _ in range(4):  # activity keeps it alive past the idle timeout
        await asyncio.sleep(0.6)
        assert (await browser.get("/owa/")).status == 200
    # Background requests (pings, notifications) are not activity: the session still times out.
    statuses = []
    for _ in range(8):
        await asyncio.sleep(0.6)
        response = await browser.request("GET", "/owa/keepalive.owa?UA=0", navigate=False,
                                         headers={"X-Requested-With": "XMLHttpRequest"})
        statuses.append(response.status)
        if response.status != 200:
            break
    assert statuses[0] == 200
    assert statuses[-1] == 440
    assert browser.gateway_cookie is None  # expired by the answer
    page = await browser.get("/owa/")
    assert page.location.endswith("&reason=0")
    ended = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "session_ended"]
    assert [event["reason"] for event in ended] == ["idle"]


async def test_absolute_timeout_ends_an_active_session(start_env: EnvFactory) -> None:
    env = await start_env(gateway_session_idle_timeout=1.0, gateway_session_absolute_timeout=1.5,
                          gateway_session_cache_seconds=0)
    browser = env.browser()
    await browser.sign_in("alice")
    statuses = []
    for _ in range(5):
        await asyncio.sleep(0.4)
        statuses.append((await browser.request("POST", "/owa/service.svc?action=GetFolder", navigate=False,
                                               headers={"X-Requested-With": "XMLHttpRequest"})).status)
    assert 440 in statuses
    assert statuses[0] != 440


@pytest.mark.parametrize("target", ["/owa/logoff.owa", "/owa/auth/logoff.aspx?Cmd=logoff&src=exch",
                                    "/ecp/logoff.aspx"])
async def test_logoff_ends_both_sessions(env: FlowEnv, target: str) -> None:
    browser = env.browser()
    await browser.sign_in("alice")
    old_cookies = dict(browser.cookies)
    page = await browser.get(target)
    assert page.status in (200, 302)
    assert any(value.startswith("msgw=;") for value in page.set_cookies)  # the gateway cookie is expired
    assert browser.gateway_cookie is None
    assert not browser.has_exchange_session()  # Exchange's deletions passed
    counters = await env.http.get(f"{env.owa.base_url}/_sim/counters")
    assert (await counters.json())["logoffs"] == 1
    # Replaying the old cookies gets nowhere: the gateway session is gone.
    replay = env.browser()
    replay.cookies.update(old_cookies)
    assert (await replay.get("/owa/")).location.startswith("/owa/auth/logon.aspx")


async def test_logoff_without_a_session_is_harmless(env: FlowEnv) -> None:
    browser = env.browser()
    browser.cookies.update({"cadata": "foreign", "cadataKey": "foreign"})
    page = await browser.get("/owa/logoff.owa")
    assert page.status == 302
    assert not live_cadata(page.set_cookies)


async def test_exchange_timeout_ends_the_gateway_session(start_env: EnvFactory, captured_logs: CapturedLogs) -> None:
    env = await start_env(owa=owa_config(private_timeout_s=1.0))
    browser = env.browser()
    await browser.sign_in("alice")
    await asyncio.sleep(1.7)  # Exchange's cadataTTL (1.5 x the timeout) runs out
    page = await browser.get("/owa/")
    assert page.status == 302
    assert page.location.endswith("reason=3")  # Exchange's own answer, passed through
    assert browser.gateway_cookie is None
    ended = [event["reason"] for event in events(captured_logs(), "gateway.audit") if event["event"] == "session_ended"]
    assert ended == ["exchange_timeout"]
    # A fresh password now needs a fresh second factor.
    assert (await browser.password("alice")).location == "/_gateway/mfa"


async def test_a_new_exchange_login_needs_a_new_second_factor(env: FlowEnv) -> None:
    browser = env.browser()
    await browser.sign_in("alice")
    complete_cookie = browser.gateway_cookie
    again = await browser.password("alice")
    assert again.location == "/_gateway/mfa"
    assert browser.gateway_cookie != complete_cookie
    assert (await browser.get("/owa/")).location == "/_gateway/mfa"
    old = env.browser()
    old.cookies.update(browser.cookies)
    old.cookies["msgw"] = complete_cookie or ""
    assert (await old.get("/owa/")).location.startswith("/owa/auth/logon.aspx")  # the old session ended


async def test_foreign_cadata_ends_a_complete_session(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    victim = env.browser()
    await victim.sign_in("alice")
    # Another Exchange session, obtained straight from Exchange (never through the gateway).
    async with env.http.post(f"{env.owa.base_url}/owa/auth.owa", allow_redirects=False, headers={"Host": HOST},
                             data={"destination": f"http://{HOST}/owa/", "flags": "4", "username": "bob",
                                   "password": "BobPass1!"}) as response:
        foreign = Browser(env)
        foreign.absorb(response.headers.getall("Set-Cookie"))
    victim.cookies.update({name: value for name, value in foreign.cookies.items() if name.startswith("cadata")})
    page = await victim.get("/owa/")
    assert page.status == 302
    assert page.location.startswith("/owa/auth/logon.aspx")
    assert "binding_mismatch" in [event.get("reason") for event in events(captured_logs(), "gateway.audit")]
    owa_paths = [r["target"] for r in await env.owa_requests() if r["cookie_names"]]
    assert all("msgw" not in names for names in owa_paths)


async def test_cadata_without_a_gateway_session_never_reaches_exchange(env: FlowEnv) -> None:
    async with env.http.post(f"{env.owa.base_url}/owa/auth.owa", allow_redirects=False, headers={"Host": HOST},
                             data={"destination": f"http://{HOST}/owa/", "flags": "4", "username": "bob",
                                   "password": "BobPass1!"}) as response:
        stolen = Browser(env)
        stolen.absorb(response.headers.getall("Set-Cookie"))
    before = len(await env.owa_requests())
    navigation = await stolen.get("/owa/")
    assert navigation.location.startswith("/owa/auth/logon.aspx")
    xhr = await stolen.request("POST", "/owa/service.svc?action=GetFolder", navigate=False)
    assert xhr.status == 440
    assert len(await env.owa_requests()) == before


async def _raw(port: int, data: bytes, *, wait: float = 0.5) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        with contextlib.suppress(TimeoutError):
            while chunk := await asyncio.wait_for(reader.read(65536), wait):
                received += chunk
        return received
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_expect_100_continue_only_for_a_passed_session(env: FlowEnv) -> None:
    head = (f"POST /owa/service.svc?action=GetFolder HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 2\r\n"
            "Expect: 100-continue\r\nX-Requested-With: XMLHttpRequest\r\n")
    refused = await _raw(env.port, (head + "\r\n").encode())
    assert not refused.startswith(b"HTTP/1.1 100")
    assert refused.startswith(b"HTTP/1.1 440")
    browser = env.browser()
    await browser.sign_in("alice")
    cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    invited = await _raw(env.port, (head + f"Cookie: {cookie}\r\n\r\n").encode())
    assert invited.startswith(b"HTTP/1.1 100 Continue")
    pending = env.browser()
    await pending.password("bob")
    cookie = "; ".join(f"{name}={value}" for name, value in pending.cookies.items())
    assert (await _raw(env.port, (head + f"Cookie: {cookie}\r\n\r\n").encode())).startswith(b"HTTP/1.1 440")


async def test_gateway_cookie_and_routing_hints_never_reach_exchange(env: FlowEnv) -> None:
    browser = env.browser()
    browser.cookies.update({"X-BEResource": "localhost~1942062522", "x-anonresource": "true"})
    await browser.get("/owa/auth/logon.aspx")  # owa-public, no session: routing hints stripped
    await browser.sign_in("alice")
    await browser.get("/owa/")
    await browser.request("POST", "/owa/service.svc?action=GetFolder", navigate=False)
    await browser.get("/owa/auth/logon.aspx")
    await browser.request("GET", "/Microsoft-Server-ActiveSync", navigate=False)
    await browser.get("/owa/logoff.owa")
    records = await env.owa_requests()
    assert len(records) >= 6
    for record in records:
        names = [name.lower() for name in record["cookie_names"]]
        assert "msgw" not in names, record["target"]
        assert "__host-msgw" not in names
    public_before_login = records[0]
    assert public_before_login["target"] == "/owa/auth/logon.aspx"
    assert "x-beresource" not in [name.lower() for name in public_before_login["cookie_names"]]
    app = [r for r in records if r["target"] == "/owa/" and r["status"] == 200]
    assert "X-BEResource" in app[0]["cookie_names"]  # a passed session's cookies reach Exchange as sent


async def test_https_public_url_uses_the_host_prefix(start_env: EnvFactory) -> None:
    env = await start_env(gateway_public_url=f"https://{HOST}")
    browser = env.browser()
    first = await browser.password("alice")
    cookie = [value for value in first.set_cookies if value.startswith("__Host-msgw=")]
    assert cookie
    assert cookie[0].endswith("; Path=/; Secure; HttpOnly; SameSite=Lax")
    await browser.mfa_page()
    final = await browser.verify(await env.code("alice"))
    assert final.location == "/owa/"
    planted = env.browser()  # a sibling subdomain can only plant the unprefixed name: it opens nothing
    planted.cookies.update({name: value for name, value in browser.cookies.items() if name != "__Host-msgw"})
    planted.cookies["msgw"] = browser.cookies["__Host-msgw"]
    assert (await planted.get("/owa/")).location.startswith("/owa/auth/logon.aspx")
    assert (await browser.get("/owa/")).status == 200


async def test_login_form_limits(start_env: EnvFactory) -> None:
    env = await start_env(gateway_login_max_body=1024)
    browser = env.browser()
    big = await browser.request("POST", "/owa/auth.owa", data={"username": "alice", "password": "x" * 2000,
                                                               "destination": f"http://{HOST}/owa/", "flags": "4"})
    assert big.status == 413
    duplicate = await browser.request("POST", "/owa/auth.owa", data="username=alice&username=bob&password=x",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert duplicate.status == 400
    assert await env.owa_requests() == []


async def test_wrong_password_passes_through_and_is_counted(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    browser = env.browser()
    page = await browser.password("alice", "wrong-password")
    assert page.status == 302
    assert "reason=2" in page.location
    assert browser.gateway_cookie is None
    failed = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "first_factor_failed"]
    assert failed[0]["failures_for_user"] == 1
    assert failed[0]["failures_for_ip"] == 1
    assert "gateway_authn_first_factor_failures_total 1.0" in await env.metrics()
    assert "wrong-password" not in "\n".join(captured_logs())


class CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    async def get(self, key: str) -> Stored | None:
        self.reads += 1
        return await super().get(key)

    async def compare_and_set(self, key: str, expected_version: int, proof: bytes, data: bytes, ttl: float) -> bool:
        self.writes += 1
        return await super().compare_and_set(key, expected_version, proof, data, ttl)


async def test_a_passed_session_costs_no_store_round_trip_while_cached(start_env: EnvFactory) -> None:
    backend = CountingBackend()
    env = await start_env(store=EncryptedSessionStore(backend, random_server_key(), cache_seconds=30.0))
    browser = env.browser()
    await browser.sign_in("alice")
    reads, writes = backend.reads, backend.writes
    for _ in range(20):
        assert (await browser.request("POST", "/owa/service.svc?action=GetFolder", navigate=False)).status != 440
    assert (backend.reads, backend.writes) == (reads, writes)
