"""The signed-in OWA simulator: start page, canary, service.svc, notification stream, large
downloads and uploads (checksums), explicit logon, ECP, knobs, and the control endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from gateway.sim.owa import OwaSimConfig, attachment_sha256
from tests.sim.owa_support import OwaClient, owa_client, set_cookie_headers, set_cookie_values

MIB = 1024 * 1024


async def _signed_in(owa: OwaClient, username: str = "alice") -> dict[str, str]:
    return await owa.start_page(await owa.login(username))


async def test_start_page_shows_the_mailbox_and_sets_the_owa_cookies_once() -> None:
    async with owa_client() as owa:
        cookies = await owa.login("bob")
        page = await owa.request("GET", "/owa/", cookies=cookies)
        html = await page.text()
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert 'id="meDisplayName">Bob Baker<' in html
        assert html.count('class="message"') == 4
        assert "Quarterly report (draft)" in html
        set_cookies = set_cookie_headers(page)
        assert [h.split("=", 1)[0] for h in set_cookies] == ["X-BackEndCookie", "X-OWA-CANARY", "ClientId", "UC"]
        backend, canary_header = set_cookies[0], set_cookies[1]
        assert re.fullmatch(r"X-BackEndCookie=S-1-5-21-[\d-]+=[\w-]+; path=/; HttpOnly", backend)
        canary = set_cookie_values(page)["X-OWA-CANARY"]
        assert len(canary) == 76
        assert canary.endswith(".")
        assert canary_header == f"X-OWA-CANARY={canary}; path=/"     # readable by script: not HttpOnly
        assert re.fullmatch(r"[0-9A-F]{32}", set_cookie_values(page)["ClientId"])
        again = await owa.request("GET", "/owa/", cookies={**cookies, **set_cookie_values(page)})
        assert set_cookie_headers(again) == []


async def test_service_svc_requires_the_canary() -> None:
    async with owa_client() as owa:
        cookies = await _signed_in(owa)
        canary = cookies["X-OWA-CANARY"]
        target = "/owa/service.svc?action=FindItem&ID=-12&AC=1"
        headers = {"Action": "FindItem", "Content-Type": "application/json; charset=utf-8",
                   "X-Requested-With": "XMLHttpRequest"}
        missing = await owa.request("POST", target, cookies=cookies, headers=headers, data=b"{}")
        assert (missing.status, missing.reason) == (449, "Retry With")
        wrong = await owa.request("POST", target, cookies=cookies, data=b"{}",
                                  headers={**headers, "X-OWA-CANARY": canary[:-2] + "x."})
        assert wrong.status == 449
        no_cookie = {k: v for k, v in cookies.items() if k != "X-OWA-CANARY"}
        stripped = await owa.request("POST", target, cookies=no_cookie, data=b"{}",
                                     headers={**headers, "X-OWA-CANARY": canary})
        assert stripped.status == 449
        ok = await owa.request("POST", target, cookies=cookies, data=b"{}", headers={**headers, "X-OWA-CANARY": canary})
        assert ok.status == 200
        assert ok.headers["Content-Type"] == "application/json; charset=utf-8"
        body = await ok.json()
        item = body["Body"]["ResponseMessages"]["Items"][0]
        assert (item["ResponseClass"], item["ResponseCode"], item["TotalItemsInView"]) == ("Success", "NoError", 4)
        assert body["Header"]["ServerVersionInfo"]["MajorBuildNumber"] == 2507
        by_query = await owa.request("POST", f"/owa/service.svc?action=GetFolder&X-OWA-CANARY={canary}",
                                     cookies=cookies, data=b"{}")
        assert by_query.status == 200
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["canary_failures"] == 3


async def test_canary_failure_status_is_a_knob() -> None:
    async with owa_client(OwaSimConfig(canary_failure_status=440)) as owa:
        cookies = await _signed_in(owa)
        response = await owa.request("POST", "/owa/service.svc?action=GetItem", cookies=cookies, data=b"{}")
        assert (response.status, response.headers["Connection"]) == (440, "close")


async def test_url_post_data_is_decoded_and_echoed() -> None:
    async with owa_client() as owa:
        cookies = await _signed_in(owa)
        payload = {"__type": "GetItemJsonRequest:#Exchange", "Body": {"ItemIds": [{"Id": "AAMk="}]}}
        response = await owa.request("GET", "/owa/service.svc?action=GetItem", cookies=cookies, headers={
            "X-OWA-CANARY": cookies["X-OWA-CANARY"], "Action": "GetItem",
            "x-owa-urlpostdata": quote(json.dumps(payload)),
        })
        assert (await response.json())["UrlPostData"] == payload


async def test_notification_stream_delivers_chunks_as_they_are_produced() -> None:
    config = OwaSimConfig(notification_interval_s=0.5, notification_hold_s=1.6)
    async with owa_client(config) as owa:
        cookies = await _signed_in(owa)
        canary = cookies["X-OWA-CANARY"]
        finish = await owa.request("POST", "/owa/ev.owa2?ns=PendingRequest&ev=FinishNotificationRequest&UA=0",
                                   cookies=cookies, headers={"X-OWA-CANARY": canary}, data=b"")
        cid = (await finish.json())["cid"]
        ttl_before = cookies["cadataTTL"]
        response = await owa.request(
            "GET", f"/owa/ev.owa2?ns=PendingRequest&ev=PendingNotificationRequest&UA=0&cid={cid}&X-OWA-CANARY={canary}",
            cookies=cookies)
        assert response.status == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert "cadataTTL" not in set_cookie_values(response)
        arrivals: list[tuple[float, dict[str, object]]] = []
        buffer = b""
        async for data in response.content.iter_any():
            buffer += data
            while b"</script>" in buffer:
                fragment, buffer = buffer.split(b"</script>", 1)
                assert fragment.startswith(b"<script>")
                arrivals.append((time.time(), json.loads(fragment[len(b"<script>"):])))
        assert [event["id"] for _, event in arrivals] == ["0", "1", "2", "3"]   # at 0, 0.5, 1.0, 1.5 s
        for received, event in arrivals:
            assert isinstance(event["ts"], float)
            assert 0 <= received - event["ts"] < 0.4, "each chunk arrives as soon as it is written"
        produced = [event["ts"] for _, event in arrivals]
        assert all(0.4 < later - earlier < 0.8 for earlier, later in itertools.pairwise(produced))
        assert cookies["cadataTTL"] == ttl_before


async def test_keepalive_ping_and_session_data() -> None:
    async with owa_client() as owa:
        cookies = await _signed_in(owa, "dave")
        assert (await owa.request("POST", "/owa/keepalive.owa", cookies=cookies, data=b"")).status == 200
        assert (await owa.request("GET", "/owa/ping.owa", cookies=cookies)).status == 200
        data = await (await owa.request("POST", "/owa/sessiondata.ashx?appcacheclient=0", cookies=cookies)).json()
        settings = data["owaUserConfig"]["SessionSettings"]
        assert (settings["UserDisplayName"], settings["UserEmailAddress"]) == ("Dave Dawson", "dave@corp.example")
        assert (await owa.request("GET", "/owa/nothing.aspx", cookies=cookies)).status == 404


@pytest.mark.parametrize("chunked", [True, False])
async def test_large_download_is_streamed_with_the_expected_checksum(chunked: bool) -> None:
    size = 64 * MIB + 123
    async with owa_client(OwaSimConfig(attachment_chunked=chunked)) as owa:
        cookies = await _signed_in(owa)
        response = await owa.request(
            "GET", f"/owa/service.svc/s/GetFileAttachment?id=AAMkAD1&size={size}"
                   f"&X-OWA-CANARY={cookies['X-OWA-CANARY']}", cookies=cookies)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        if chunked:
            assert response.headers["Transfer-Encoding"] == "chunked"
        else:
            assert response.headers["Content-Length"] == str(size)
        digest = hashlib.sha256()
        received = 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            digest.update(chunk)
            received += len(chunk)
        assert received == size
        assert digest.hexdigest() == attachment_sha256(size)
        no_canary = await owa.request("GET", "/owa/service.svc/s/GetFileAttachment?id=x", cookies=cookies)
        assert no_canary.status == 449
        too_big = await owa.request(
            "GET", f"/owa/attachment.ashx?size=999999999999999&X-OWA-CANARY={cookies['X-OWA-CANARY']}", cookies=cookies)
        assert too_big.status == 400


async def test_large_upload_reports_byte_count_and_checksum() -> None:
    size = 64 * MIB
    block = hashlib.sha256(b"upload").digest() * 2048   # 64 KiB
    expected = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            expected.update(block)
            yield block

    async with owa_client() as owa:
        cookies = await _signed_in(owa)
        response = await owa.request(
            "POST", "/owa/service.svc?action=CreateAttachmentFromLocalFile&ID=-40&AC=1", cookies=cookies,
            headers={"X-OWA-CANARY": cookies["X-OWA-CANARY"], "Action": "CreateAttachmentFromLocalFile",
                     "Content-Type": "application/octet-stream"},
            data=body())
        assert response.status == 200
        item = (await response.json())["Body"]["ResponseMessages"]["Items"][0]
        assert (item["ByteCount"], item["Sha256"]) == (size, expected.hexdigest())
        log = await (await owa.request("GET", "/_sim/requests?path=/owa/service.svc")).json()
        assert log["requests"][-1]["body_length"] == size


async def test_explicit_logon_opens_a_delegated_mailbox_only() -> None:
    async with owa_client() as owa:
        cookies = await _signed_in(owa, "alice")
        carol = await owa.request("GET", "/owa/Carol@corp.example/", cookies=cookies)
        html = await carol.text()
        assert carol.status == 200
        assert "Carol Carter" in html
        assert "opened by Alice Archer" in html
        data = await (await owa.request("GET", "/owa/carol@corp.example/sessiondata.ashx", cookies=cookies)).json()
        assert data["owaUserConfig"]["SessionSettings"]["IsExplicitLogon"] is True
        assert (await owa.request("GET", "/owa/bob@corp.example/", cookies=cookies)).status == 403
        assert (await owa.request("GET", "/owa/nobody@corp.example/", cookies=cookies)).status == 403
        anonymous = await owa.request("GET", "/owa/carol@corp.example/")
        assert anonymous.headers["Location"].endswith("url=https%3a%2f%2fmail.corp.example%2fowa%2fcarol%40corp.example"
                                                      "%2f&reason=0")


async def test_ecp_behind_the_same_login() -> None:
    async with owa_client() as owa:
        cookies = await owa.login("carol")
        for target in ("/ecp/", "/ecp/?rfr=owa&p=PersonalSettings/HomePage.aspx", "/ecp/?ExchClientVer=15"):
            response = await owa.request("GET", target, cookies=cookies)
            assert response.status == 200, target
            assert "Carol Carter" in await response.text()
        assert (await owa.request("POST", "/ecp/", data=b"")).status == 440


async def test_language_selection_knob() -> None:
    async with owa_client(OwaSimConfig(language_selection=True)) as owa:
        cookies = await owa.login()
        first = await owa.request("GET", "/owa/", cookies=cookies)
        assert (first.status, first.headers["Location"]) == (302, "/owa/languageselection.aspx")
        assert "lang.owa" in await (await owa.request("GET", "/owa/languageselection.aspx", cookies=cookies)).text()
        chosen = await owa.request("POST", "/owa/lang.owa", cookies=cookies, data={"lcid": "1033", "tzid": "UTC"})
        assert (chosen.status, chosen.headers["Location"]) == (302, "/owa/")
        assert (await owa.request("GET", "/owa/", cookies=cookies)).status == 200


async def test_service_error_knob_redirects_to_error_fe() -> None:
    async with owa_client(OwaSimConfig(service_error=True)) as owa:
        cookies = await _signed_in(owa)
        response = await owa.request("POST", "/owa/service.svc?action=GetItem", cookies=cookies, data=b"{}",
                                     headers={"X-OWA-CANARY": cookies["X-OWA-CANARY"]})
        assert (response.status, response.headers["Location"]) == (302, "/owa/auth/errorFE.aspx?httpCode=500")
        assert 'Object moved to <a href="/owa/auth/errorFE.aspx?httpCode=500">here</a>' in await response.text()


async def test_request_log_records_the_request_without_secrets() -> None:
    async with owa_client() as owa:
        cookies = await owa.login()
        await owa.request("GET", "/owa/?a=1", cookies={**cookies, "PBack": "0"},
                          headers={"Authorization": "Basic c2VjcmV0OnNlY3JldA==", "X-Custom": "kept"})
        log = (await (await owa.request("GET", "/_sim/requests")).json())["requests"]
        login, page = log
        assert (login["method"], login["target"], login["status"]) == ("POST", "/owa/auth.owa", 302)
        assert login["body_length"] > 0
        assert (page["method"], page["target"], page["status"]) == ("GET", "/owa/?a=1", 200)
        assert page["cookie_names"] == ["cadata", "cadataTTL", "cadataKey", "cadataIV", "cadataSig", "PBack"]
        assert page["authorization"] == "Basic"
        headers = dict((name.lower(), value) for name, value in page["headers"])
        assert headers["cookie"] == headers["authorization"] == "[redacted]"
        assert (headers["x-custom"], headers["host"]) == ("kept", "mail.corp.example")
        assert page["peer"].startswith("127.0.0.1:")
        assert page["connection"] == login["connection"]      # keep-alive: the same TCP connection
        text = json.dumps(log)
        for secret in ("AlicePass1!", cookies["cadata"], "c2VjcmV0"):
            assert secret not in text


async def test_control_counters_and_reset() -> None:
    async with owa_client() as owa:
        cookies = await owa.login()
        await owa.request("GET", "/OWA/", cookies=cookies)
        await owa.request("GET", "/owa/", cookies=cookies)
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert counters["requests_per_path"] == {"/owa/": 2, "/owa/auth.owa": 1}
        assert counters["active_sessions"] == 1
        assert (await owa.request("GET", "/_sim/reset")).status == 405
        assert (await owa.request("POST", "/_sim/reset")).status == 200
        counters = await (await owa.request("GET", "/_sim/counters")).json()
        assert (counters["requests_per_path"], counters["logins"], counters["active_sessions"]) == ({}, {}, 1)
        assert (await (await owa.request("GET", "/_sim/requests")).json())["requests"] == []
        await owa.request("POST", "/_sim/reset?sessions=1")
        assert (await owa.request("GET", "/owa/", cookies=cookies)).status == 302
    async with owa_client(OwaSimConfig(control_enabled=False)) as owa:
        assert (await owa.request("GET", "/_sim/counters")).status == 404


async def test_client_abandoning_a_download_is_not_a_server_error(caplog: pytest.LogCaptureFixture) -> None:
    async with owa_client() as owa:
        cookies = await _signed_in(owa)
        response = await owa.request(
            "GET", f"/owa/attachment.ashx?size={512 * MIB}&X-OWA-CANARY={cookies['X-OWA-CANARY']}", cookies=cookies)
        await response.content.readexactly(MIB)
        response.close()                                   # drop the connection mid-stream
        await asyncio.sleep(0.3)
        assert (await owa.request("GET", "/owa/", cookies=cookies)).status == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
