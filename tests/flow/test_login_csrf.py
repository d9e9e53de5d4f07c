"""Login CSRF: Exchange's logon form posted from another site's page is refused before Exchange
sees it (the victim's browser would otherwise be signed in as the attacker's account, and the
attacker's own approval of the second factor would open that mailbox in the victim's browser).
The browser's word is `Origin` and `Sec-Fetch-Site`; a client that sends neither still signs in."""

from __future__ import annotations

import pytest

from tests.flow.conftest import HOST, EnvFactory, FlowEnv
from tests.logs import CapturedLogs, events

ALIAS = "owa.corp.example"

REFUSED = [
    ({"Origin": "https://evil.example"}, "foreign_origin"),
    ({"Origin": "http://evil.example"}, "foreign_origin"),
    ({"Origin": "null"}, "foreign_origin"),  # sandboxed frames, data: URLs
    ({"Origin": f"https://{HOST}"}, "foreign_origin"),  # another scheme is another origin
    ({"Origin": f"http://{HOST}:8080"}, "foreign_origin"),  # another port too
    ({"Origin": f"http://{HOST}.evil.example"}, "foreign_origin"),
    ({"Origin": f"http://evil.{HOST}"}, "foreign_origin"),  # a subdomain is same-site, not same-origin
    ({"Origin": f"http://{HOST}@evil.example"}, "foreign_origin"),
    ({"Origin": "http://corp.example"}, "foreign_origin"),
    ({"Origin": ""}, "foreign_origin"),
    ({"Origin": f"http://{HOST}", "Sec-Fetch-Site": "cross-site"}, "cross_site_fetch"),
    ({"Sec-Fetch-Site": "cross-site"}, "cross_site_fetch"),
    ({"Sec-Fetch-Site": "same-site"}, "cross_site_fetch"),
    ({"Sec-Fetch-Site": " Cross-Site "}, "cross_site_fetch"),
]

ACCEPTED = [
    {"Origin": f"http://{HOST}", "Sec-Fetch-Site": "same-origin"},
    {"Origin": f"HTTP://{HOST.upper()}"},
    {"Origin": f"http://{HOST}:80"},  # the default port, written out
    {"Origin": f"http://{ALIAS}"},  # another of the gateway's host names (GATEWAY_ALLOWED_HOSTS)
    {"Sec-Fetch-Site": "none"},  # typed or bookmarked
    {},  # a client that says nothing (scripts, old browsers)
]


async def auth_posts(env: FlowEnv) -> int:
    requests = await env.owa_requests()
    return sum(1 for request in requests if request["method"] == "POST" and request["target"] == "/owa/auth.owa")


@pytest.mark.parametrize(("headers", "reason"), REFUSED)
async def test_a_logon_form_posted_from_another_site_never_reaches_exchange(
        start_env: EnvFactory, captured_logs: CapturedLogs, headers: dict[str, str], reason: str) -> None:
    env = await start_env(gateway_allowed_hosts=[ALIAS])
    browser = env.browser()
    form = {"destination": f"http://{HOST}/owa/", "flags": "4", "username": "alice", "password": "AlicePass1!"}
    page = await browser.request("POST", "/owa/auth.owa", data=form, navigate=False, headers=headers)
    assert page.status == 403
    assert not page.set_cookies
    assert await auth_posts(env) == 0
    lines = captured_logs()
    refused = [event for event in events(lines, "gateway.audit") if event["event"] == "refused"]
    assert [event["reason"] for event in refused] == [f"login_csrf_{reason}"]
    assert not any("AlicePass1!" in line for line in lines)


@pytest.mark.parametrize("headers", ACCEPTED)
async def test_a_logon_form_from_the_gateway_s_own_pages_signs_in(start_env: EnvFactory,
                                                                 headers: dict[str, str]) -> None:
    env = await start_env(gateway_allowed_hosts=[ALIAS])
    browser = env.browser()
    form = {"destination": f"http://{HOST}/owa/", "flags": "4", "username": "alice", "password": "AlicePass1!"}
    page = await browser.request("POST", "/owa/auth.owa", data=form, navigate=False, headers=headers)
    assert page.status == 302, page.text
    assert page.location.endswith("/_gateway/mfa")
    assert await auth_posts(env) == 1
