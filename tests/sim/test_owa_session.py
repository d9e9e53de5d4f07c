"""Session lifetime, tampering and logoff in the OWA simulator, with shrunk timeouts (real time)."""

from __future__ import annotations

import asyncio
import time

from gateway.sim.owa import OwaSimConfig
from tests.sim.owa_support import CADATA, HOST, owa_client, set_cookie_headers, set_cookie_values

# Public computer: 1 s timeout -> cadataTTL valid 1.5 s, re-issued on activity after 0.5 s.
SHORT = OwaSimConfig(public_timeout_s=1.0, private_timeout_s=30.0)


async def _sleep_until(start: float, offset: float) -> None:
    await asyncio.sleep(max(0.0, start + offset - time.monotonic()))


async def test_ttl_is_reissued_on_user_activity_only_and_extends_the_session() -> None:
    async with owa_client(SHORT) as owa:
        start = time.monotonic()
        cookies = await owa.login(flags="0")
        early = await owa.request("GET", "/owa/", cookies=cookies)
        assert "cadataTTL" not in set_cookie_values(early)          # before half the timeout: nothing
        await _sleep_until(start, 0.7)
        background = await owa.request("GET", "/owa/sessiondata.ashx?UA=0", cookies=cookies)
        assert background.status == 200
        assert "cadataTTL" not in set_cookie_values(background)     # UA=0 is not user activity
        active = await owa.request("GET", "/owa/sessiondata.ashx", cookies=cookies)
        reissued = [h for h in set_cookie_headers(active) if h.startswith("cadata")]
        assert len(reissued) == 1
        assert reissued[0].startswith("cadataTTL=")
        assert reissued[0].endswith("; path=/;SameSite=None; HttpOnly")
        fresh = {**cookies, "cadataTTL": set_cookie_values(active)["cadataTTL"]}
        assert fresh["cadataTTL"] != cookies["cadataTTL"]
        await _sleep_until(start, 1.7)                               # the first TTL (1.5 s) has run out
        assert (await owa.request("GET", "/owa/", cookies=fresh)).status == 200
        old = await owa.request("GET", "/owa/", cookies=cookies)
        assert old.headers["Location"].endswith("&reason=3")


async def test_expired_session_answers_by_method_and_expires_the_cookies() -> None:
    async with owa_client(SHORT) as owa:
        cookies = await owa.login(flags="0")
        await asyncio.sleep(1.6)
        navigation = await owa.request("GET", "/owa/?path=/mail", cookies=cookies)
        assert navigation.status == 302
        assert navigation.headers["Location"] == (
            f"https://{HOST}/owa/auth/logon.aspx?url=https%3a%2f%2f{HOST}%2fowa%2f%3fpath%3d%2fmail&reason=3"
        )
        assert [h.split("=", 1)[0] for h in set_cookie_headers(navigation)] == list(CADATA)
        assert all("=; expires=" in h for h in set_cookie_headers(navigation))

        oeh = await owa.request("GET", "/owa/ev.owa2?oeh=1&ns=PendingRequest&ev=PendingNotificationRequest",
                                cookies=cookies)
        assert (oeh.status, oeh.headers["Connection"]) == (440, "close")
        xhr = await owa.request("POST", "/owa/service.svc?action=GetItem", cookies=cookies, data=b"{}")
        assert (xhr.status, xhr.reason, xhr.headers["Connection"]) == (440, "Login Timeout", "close")
        assert "<SCRIPT>" in await xhr.text()
        other = await owa.request("PATCH", "/owa/", cookies=cookies)
        assert (other.status, await other.text()) == (440, "<HTML><BODY>440 Login Timeout</BODY></HTML>")
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["expired_sessions"] == 4
        assert counters["tampered_cookies"] == 0


async def test_private_computer_flag_selects_the_private_timeout() -> None:
    async with owa_client(SHORT) as owa:
        private = await owa.login("bob", flags="4")
        public = await owa.login("carol", flags="1")
        await asyncio.sleep(1.6)
        assert (await owa.request("GET", "/owa/", cookies=private)).status == 200
        assert (await owa.request("GET", "/owa/", cookies=public)).headers["Location"].endswith("&reason=3")


async def test_tampered_cookies_are_no_session_and_counted() -> None:
    async with owa_client() as owa:
        cookies = await owa.login()
        variants = [
            # Another first character (a cadata that already starts with "A" would be left as it was).
            {**cookies, "cadata": ("B" if cookies["cadata"].startswith("A") else "A") + cookies["cadata"][1:]},
            {**cookies, "cadataKey": cookies["cadataKey"][::-1]},
            {**cookies, "cadataTTL": "AAAAAAAAAAAAAAAAAAAAAA=="},
            {name: value for name, value in cookies.items() if name != "cadataSig"},
        ]
        for forged in variants:
            navigation = await owa.request("GET", "/owa/", cookies=forged)
            assert navigation.headers["Location"].endswith("&reason=0")      # not 3: no such session
            assert "cadata" in set_cookie_values(navigation)
        assert (await owa.request("POST", "/owa/service.svc", cookies=variants[0], data=b"")).status == 440
        # Tampered cookies that reach anonymous pages are counted too.
        assert (await owa.request("GET", "/owa/auth/logon.aspx", cookies=variants[1])).status == 200
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["tampered_cookies"] == 6
        assert (await owa.request("GET", "/owa/", cookies=cookies)).status == 200   # the real one still works


async def test_logoff_ends_the_session_and_expires_the_cookies() -> None:
    async with owa_client() as owa:
        cookies = await owa.start_page(await owa.login())
        logoff = await owa.request("GET", "/owa/logoff.owa", cookies=cookies)
        assert (logoff.status, logoff.headers["Location"]) == (302, "/owa/auth/logoff.aspx?Cmd=logoff&src=exch")
        expired = [h.split("=", 1)[0] for h in set_cookie_headers(logoff)]
        assert expired == [*CADATA, "X-OWA-CANARY", "UC"]
        signed_out = await owa.request("GET", logoff.headers["Location"])
        assert (signed_out.status, signed_out.headers["Cache-Control"]) == (200, "no-cache")
        assert "You have successfully signed out" in await signed_out.text()
        replay = await owa.request("GET", "/owa/", cookies=cookies)
        assert replay.headers["Location"].endswith("&reason=0")
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert (counters["logoffs"], counters["ended_session_replays"], counters["tampered_cookies"]) == (1, 1, 0)
        assert counters["active_sessions"] == 0


async def test_ecp_logoff_and_direct_logoff_page_end_the_session() -> None:
    async with owa_client() as owa:
        first = await owa.login()
        ecp = await owa.request("GET", "/ECP/Logoff.aspx", cookies=first)
        assert ecp.headers["Location"] == "/owa/auth/logoff.aspx?Cmd=logoff&src=exch"
        assert (await owa.request("GET", "/ecp/", cookies=first)).status == 302
        second = await owa.login("bob")
        direct = await owa.request("GET", "/owa/auth/logoff.aspx?Cmd=logoff&src=exch", cookies=second)
        assert direct.status == 200
        assert "cadata" in set_cookie_values(direct)
        assert (await owa.request("GET", "/owa/", cookies=second)).status == 302
        # Logoff without a session still works (and ends nothing).
        assert (await owa.request("GET", "/owa/logoff.owa")).status == 302
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["logoffs"] == 2
