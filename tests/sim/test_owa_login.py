"""The OWA simulator's forms login over loopback, against the protocol notes §5.2."""

from __future__ import annotations

import json
import re
import ssl

import pytest
import trustme

from gateway.sim.owa import OwaSimConfig
from tests.demo_users import PASSWORDS
from tests.sim.owa_support import CADATA, HOST, owa_client, set_cookie_headers, set_cookie_values

FIRST_HOP = f"https://{HOST}/owa/auth/logon.aspx?url=https%3a%2f%2f{HOST}%2fowa%2f&reason=0"
EXCHANGE_HEADERS = {"Server": "Microsoft-IIS/10.0", "X-Powered-By": "ASP.NET", "X-FEServer": "SIMCAS01"}


async def test_first_hop_redirects_to_the_logon_page_with_iis_headers() -> None:
    async with owa_client() as owa:
        response = await owa.request("GET", "/owa/")
        assert response.status == 302
        assert response.headers["Location"] == FIRST_HOP
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "<title>Object moved</title>" in await response.text()
        for name, value in EXCHANGE_HEADERS.items():
            assert response.headers[name] == value
        assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["request-id"])
        assert response.headers["X-OWA-Version"] == "15.1.2507.6"
        assert set_cookie_headers(response) == []   # nothing to expire


async def test_ecp_uses_the_owa_logon_page_and_host_is_preserved() -> None:
    async with owa_client() as owa:
        response = await owa.request("GET", "/ecp/", headers={"Host": "Webmail.Example.org:8443"})
        assert response.headers["Location"] == (
            "https://Webmail.Example.org:8443/owa/auth/logon.aspx?url=https%3a%2f%2fWebmail.Example.org%3a8443"
            "%2fecp%2f&reason=0"
        )
        port80 = await owa.request("GET", "/owa/?a=b%20c", headers={"Host": "mail.example.org:80"})
        assert port80.headers["Location"] == (
            "https://mail.example.org/owa/auth/logon.aspx?url=https%3a%2f%2fmail.example.org%2fowa%2f%3fa%3db%2520c"
            "&reason=0"
        )


async def test_no_session_answers_by_method() -> None:
    async with owa_client() as owa:
        with_basic = await owa.request("GET", "/owa/", headers={"Authorization": "Basic eDp5"})
        assert with_basic.headers["Location"].endswith("&reason=2")
        post = await owa.request("POST", "/owa/service.svc?action=GetFolder", data=b"{}")
        assert (post.status, post.reason) == (440, "Login Timeout")
        assert post.headers["Connection"] == "close"
        assert "parent.location = self.location" in await post.text()
        for method in ("PUT", "DELETE", "HEAD", "PROPFIND"):
            other = await owa.request(method, "/owa/")
            assert other.status == 440, method
            assert other.headers["Connection"] == "close"
        put = await owa.request("PUT", "/owa/x")
        assert await put.text() == "<HTML><BODY>440 Login Timeout</BODY></HTML>"


async def test_logon_page_looks_and_behaves_like_exchange() -> None:
    async with owa_client() as owa:
        first = await owa.request("GET", FIRST_HOP.removeprefix(f"https://{HOST}"))
        assert first.status == 200
        assert first.headers["Cache-Control"] == "no-cache, no-store"
        html = await first.text()
        assert "<!-- OwaPage = ASP.auth_logon_aspx -->" in html
        assert "var a_fRC = 0;" in html       # not replaceCurrent: the script reloads it in the top window
        match = re.search(r"var a_sLgn = (.*);", html)
        assert match
        assert json.loads(match.group(1)) == (
            "/owa/auth/logon.aspx?replaceCurrent=1&url=https%3a%2f%2fmail.corp.example%2fowa%2f")
        assert '<form action="/owa/auth.owa" method="POST" name="logonForm"' in html
        for field in ('name="destination" value="https://mail.corp.example/owa/"', 'name="flags" value="4"',
                      'name="forcedownlevel" value="0"', 'id="username" name="username"',
                      'id="password" name="password" class="signInInputText" type="password"',
                      'id="passwordText" name="passwordText"', 'name="isUtf8" value="1"',
                      "Domain\\user name:", 'href="/owa/auth/15.1.2507/themes/resources/favicon.ico"'):
            assert field in html, field
        assert "signInErrorDiv" not in html

        again = await owa.request("GET", "/owa/auth/logon.aspx?replaceCurrent=1&reason=2&url=https%3a%2f%2f"
                                  "mail.corp.example%2fecp%2f")
        html = await again.text()
        assert "var a_fRC = 1;" in html
        assert 'name="destination" value="https://mail.corp.example/ecp/"' in html
        assert re.search(r'id="signInErrorDiv"[^>]*>The user name or password you entered isn(&#39;|\')t correct',
                         html)

        timed_out = await (await owa.request("GET", "/owa/auth/logon.aspx?replaceCurrent=1&reason=3&url=x")).text()
        assert "Your session has timed out" in timed_out

        hostile = await owa.request("GET", '/owa/auth/logon.aspx?url="><script>alert(1)</script>')
        assert "<script>alert(1)</script>" not in await hostile.text()


async def test_logon_page_defaults_destination_and_serves_its_resources() -> None:
    async with owa_client() as owa:
        html = await (await owa.request("GET", "/owa/auth/logon.aspx", headers={"Host": "m.example:8443"})).text()
        assert 'name="destination" value="https://m.example:8443/owa/"' in html
        icon = await owa.request("GET", "/owa/auth/15.1.2507/themes/resources/favicon.ico")
        assert (icon.status, icon.headers["Content-Type"]) == (200, "image/x-icon")
        assert (await icon.read())[:4] == b"\x00\x00\x01\x00"
        css = await owa.request("GET", "/OWA/AUTH/15.1.2507/THEMES/RESOURCES/logon.css")
        assert css.status == 200
        assert css.headers["Content-Type"].startswith("text/css")
        assert (await owa.request("GET", "/owa/auth/15.1.2507/themes/resources/nothing.css")).status == 404
        assert (await owa.request("GET", "/favicon.ico")).status == 200


@pytest.mark.parametrize("username", [
    "alice", "CORP\\alice", "alice@corp.example", "Corp\\ALICE", "ALICE@CORP.EXAMPLE",
])
async def test_three_username_forms_log_in(username: str) -> None:
    async with owa_client() as owa:
        cookies = await owa.login(username, PASSWORDS["alice"])
        page = await owa.request("GET", "/owa/", cookies=cookies)
        assert page.status == 200
        assert "Alice Archer" in await page.text()
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["logins"] == {"alice": {"ok": 1, "failed": 0}}


async def test_success_sets_five_cookies_in_order_with_the_samesite_path_trick() -> None:
    async with owa_client() as owa:
        response = await owa.request("POST", "/owa/auth.owa", data={
            "destination": f"https://{HOST}/owa/?ae=Folder", "flags": "4", "forcedownlevel": "0",
            "username": "bob", "password": "BobPass1!", "passwordText": "", "isUtf8": "1", "trusted": "4",
        }, headers={"Cookie": "PBack=0"})
        assert response.status == 302
        assert response.headers["Location"] == f"https://{HOST}/owa/?ae=Folder"
        headers = set_cookie_headers(response)
        assert [h.split("=", 1)[0] for h in headers] == list(CADATA)
        for header in headers:
            # Plain HTTP request: no `secure`; SameSite=None rides inside the path, without a space.
            assert header.endswith("; path=/;SameSite=None; HttpOnly"), header
        values = set_cookie_values(response)
        assert 100 <= len(values["cadata"]) <= 160
        assert len(values["cadataTTL"]) == 24
        assert [len(values[n]) for n in ("cadataKey", "cadataIV", "cadataSig")] == [344, 344, 344]


async def test_legacy_owaauth_dll_and_missing_content_type() -> None:
    async with owa_client() as owa:
        body = f"destination=https%3A%2F%2F{HOST}%2Fowa%2F&flags=0&username=dave&password=DavePass1%21".encode()
        response = await owa.request("POST", "/OWA/auth/OWAAUTH.DLL", data=body,
                                     headers={"Content-Type": ""})
        assert response.status == 302
        assert list(set_cookie_values(response)) == list(CADATA)


async def test_old_browsers_and_the_knob_get_no_samesite() -> None:
    old_chrome = ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.90 "
                  "Safari/537.36")
    async with owa_client() as owa:
        response = await owa.request("POST", "/owa/auth.owa", headers={"User-Agent": old_chrome}, data={
            "destination": f"https://{HOST}/owa/", "flags": "4", "username": "alice", "password": "AlicePass1!"})
        assert all(h.endswith("; path=/; HttpOnly") for h in set_cookie_headers(response))
    async with owa_client(OwaSimConfig(samesite_none=False)) as owa:
        await owa.login()
        response = await owa.request("POST", "/owa/auth.owa", data={
            "destination": f"https://{HOST}/owa/", "flags": "4", "username": "alice", "password": "AlicePass1!"})
        assert all("SameSite" not in h for h in set_cookie_headers(response))


@pytest.mark.parametrize("missing", ["destination", "username", "password", "flags"])
async def test_missing_field_is_400(missing: str) -> None:
    form = {"destination": f"https://{HOST}/owa/", "flags": "4", "username": "alice", "password": "AlicePass1!"}
    del form[missing]
    async with owa_client() as owa:
        response = await owa.request("POST", "/owa/auth.owa", data=form)
        assert response.status == 400
        assert set_cookie_headers(response) == []


@pytest.mark.parametrize("destination", ["https://evil.example/owa/", "/owa/", "owa", ""])
async def test_destination_must_be_absolute_and_on_the_request_host(destination: str) -> None:
    form = {"destination": destination, "flags": "4", "username": "alice", "password": "AlicePass1!"}
    async with owa_client() as owa:
        assert (await owa.request("POST", "/owa/auth.owa", data=form)).status == 400
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["logins"] == {}


async def test_host_match_ignores_case_and_port_and_can_be_switched_off() -> None:
    form = {"destination": "https://MAIL.corp.example/owa/", "flags": "4", "username": "alice",
            "password": "AlicePass1!"}
    async with owa_client() as owa:
        response = await owa.request("POST", "/owa/auth.owa", data=form, headers={"Host": "mail.corp.example:8443"})
        assert response.status == 302
    form["destination"] = "https://elsewhere.example/owa/"
    async with owa_client(OwaSimConfig(require_host_match=False)) as owa:
        assert (await owa.request("POST", "/owa/auth.owa", data=form)).status == 302


async def test_oversized_form_is_413() -> None:
    async with owa_client(OwaSimConfig(max_form_bytes=1024)) as owa:
        response = await owa.request("POST", "/owa/auth.owa", data={"destination": "x" * 2000, "flags": "4",
                                                                     "username": "a", "password": "b"})
        assert response.status == 413


async def test_wrong_password_redirects_with_reason_2_and_expires_sent_cookies() -> None:
    async with owa_client() as owa:
        stale = {"cadata": "old", "cadataTTL": "old", "PBack": "0"}
        response = await owa.request("POST", "/owa/auth.owa", cookies=stale, data={
            "destination": f"http://{HOST}/owa/", "flags": "4", "username": "CORP\\alice", "password": "wrong"})
        assert response.status == 302
        assert response.headers["Location"] == (
            f"https://{HOST}/owa/auth/logon.aspx?url=https%3a%2f%2f{HOST}%2fowa%2f&reason=2"
        )
        expired = set_cookie_headers(response)
        assert [h.split("=", 1)[0] for h in expired] == ["cadata", "cadataTTL"]
        assert all(re.fullmatch(r"\w+=; expires=\w{3}, \d\d-\w{3}-\d{4} \d\d:\d\d:\d\d GMT; path=/", h)
                   for h in expired)
        await owa.request("POST", "/owa/auth.owa", data={
            "destination": f"https://{HOST}/owa/", "flags": "4", "username": "mallory", "password": "x"})
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["logins"] == {"alice": {"ok": 0, "failed": 1}, "mallory": {"ok": 0, "failed": 1}}


async def test_over_tls_cookies_are_secure() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    async with owa_client(ssl_context=server_context, client_ssl=client_context) as owa:
        assert owa.sim.base_url.startswith("https://")
        response = await owa.request("POST", "/owa/auth.owa", data={
            "destination": f"https://{HOST}/owa/", "flags": "4", "username": "alice", "password": "AlicePass1!"})
        assert all(h.endswith("; path=/;SameSite=None; secure; HttpOnly") for h in set_cookie_headers(response))
        log = await (await owa.request("GET", "/_sim/requests")).json()
        assert log["requests"][-1]["tls"] is True


async def test_iis_paths_are_case_insensitive() -> None:
    async with owa_client() as owa:
        cookies = await owa.login()
        for target in ("/OWA/", "/Owa/Default.aspx", "/owa/SessionData.ASHX"):
            assert (await owa.request("GET", target, cookies=cookies)).status == 200, target
        assert (await owa.request("GET", "/OwA/HealthCheck.HTM")).status == 200


async def test_anonymous_pages() -> None:
    async with owa_client() as owa:
        health = await owa.request("GET", "/ecp/healthcheck.htm")
        assert (health.status, await health.text()) == (200, "200 OK\r\nSIMCAS01.sim.local")
        assert health.headers["Content-Type"].startswith("text/plain")
        error = await owa.request("GET", "/owa/auth/errorFE.aspx?httpCode=500")
        assert error.status == 200
        assert "Something went wrong" in await error.text()
        assert (await owa.request("GET", "/")).status == 200          # IIS start page: no redirect by default
        vdir = await owa.request("GET", "/owa")
        assert (vdir.status, vdir.headers["Location"]) == (301, "/owa/")
        assert (await owa.request("GET", "/nothing-here")).status == 404
    async with owa_client(OwaSimConfig(root_redirect=True, vdir_redirect_status=302)) as owa:
        root = await owa.request("GET", "/")
        assert (root.status, root.headers["Location"]) == (302, "/owa/")
        assert (await owa.request("GET", "/ecp")).status == 302
