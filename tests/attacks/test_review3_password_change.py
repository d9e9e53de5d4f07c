"""Review 3: Exchange's expired-password page through someone else's passed session.

`/owa/auth/expiredpassword.aspx` changes the password of the account its form names, proven by the
old password alone. The attacker has alice's password and a passed session of their own (bob, who
passed his own second factor): through it, they must not change alice's password, whatever they
call her and however they shape the form. bob changing his own password still works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.flow.conftest import PASSWORDS, Browser, FlowEnv, flow_environment
from tests.logs import CapturedLogs, events

PAGE = "/owa/auth/expiredpassword.aspx"
FORM = "application/x-www-form-urlencoded"
NEW = "NewPass1!x"

# Every way to name alice: Exchange (and Monosign) take each for her, or the gateway cannot tell.
ALICE = ["alice", "ALICE", "Alice", " alice ", "CORP\\alice", "corp\\ALICE", "corp/alice", "alice@corp.example",
         "ALICE@CORP.EXAMPLE", "al\u0131ce", "\uff41lice", "CORP\\al\u0131ce", "alice\u00a0", "alice\t"]


def change_form(username: str, *, old: str | None = None, new: str = NEW) -> dict[str, str]:
    account = username.strip().replace("/", "\\").split("\\")[-1].split("@")[0].lower()
    return {"destination": "http://mail.corp.example/owa/", "username": username,
            "oldPwd": old if old is not None else PASSWORDS.get(account, PASSWORDS["alice"]),
            "newPwd": new, "conf": new}


@pytest.fixture
async def env() -> AsyncIterator[FlowEnv]:
    async with flow_environment() as running:
        yield running


async def signed_in(env: FlowEnv, user: str = "bob") -> Browser:
    browser = env.browser()
    await browser.sign_in(user)
    assert "Baker" in (await browser.get("/owa/")).text or user != "bob"
    return browser


async def test_the_page_changes_any_account_when_posted_to_exchange_directly(env: FlowEnv) -> None:
    """The simulator's page is as dangerous as Exchange's: the test below can fail."""
    async with httpx.AsyncClient(base_url=env.owa.base_url, timeout=15) as direct:
        answer = await direct.post(PAGE, data=change_form("alice"))
    assert answer.status_code == 302
    assert "reason=4" in answer.headers["Location"]
    assert env.owa.state.recorder.counters.password_changes["alice"] == 1


async def test_another_users_password_cannot_be_changed_through_ones_own_session(
        env: FlowEnv, captured_logs: CapturedLogs) -> None:
    attacker = await signed_in(env)
    problems, forbidden = [], 0
    for name in ALICE:
        page = await attacker.request("POST", PAGE, data=change_form(name))
        if page.status not in (400, 403):  # 400: a name the logon form's rules refuse (a control character)
            problems.append(f"{name!r}: {page.status}")
        forbidden += page.status == 403
    assert problems == []
    assert forbidden >= len(ALICE) - 1
    assert dict(env.owa.state.recorder.counters.password_changes) == {}
    refused = [event for event in events(captured_logs(), "gateway.audit")
               if event.get("reason") == "password_change_for_another_user"]
    assert len(refused) == forbidden
    assert all(PASSWORDS["alice"] not in str(event) and NEW not in str(event) for event in refused)
    # alice's password is still hers.
    assert (await env.browser().password("alice")).location == "/_gateway/mfa"


@pytest.mark.parametrize(("target", "body", "content_type"), [
    # Two user names: ASP.NET joins them ("bob,alice"); the gateway reads neither.
    (PAGE, "username=bob&username=alice&oldPwd=P&newPwd=N&conf=N", FORM),
    (PAGE, "username=bob&USERNAME=alice&oldPwd=P&newPwd=N&conf=N", FORM),
    (PAGE, "username=bob&u%C5%BFername=alice&oldPwd=P&newPwd=N&conf=N", FORM),  # long s: USERNAME to ASP.NET
    (PAGE, "user%6Eame=alice&oldPwd=P&newPwd=N&conf=N", FORM),
    (PAGE + "?username=alice", "username=bob&oldPwd=P&newPwd=N&conf=N", FORM),
    (PAGE + "?oldPwd=P", "username=bob&newPwd=N&conf=N", FORM),
    (PAGE, "username=%u0061lice&oldPwd=P&newPwd=N&conf=N", FORM),
    (PAGE, "username=alice&oldPwd=P&newPwd=N&conf=N", "multipart/form-data; boundary=x"),
    (PAGE, "username=alice&oldPwd=P&newPwd=N&conf=N", "text/plain"),
    (PAGE, "username=alice&oldPwd=P&newPwd=N&conf=N", FORM + "; charset=utf-16"),
    (PAGE, "oldPwd=P&newPwd=N&conf=N", FORM),
    (PAGE + "/x", "username=alice&oldPwd=P&newPwd=N&conf=N", FORM),          # path info: the same page to IIS
    ("/OWA/Auth/ExpiredPassword.ASPX", "username=alice&oldPwd=P&newPwd=N&conf=N", FORM),
    ("/ecp/auth/expiredpassword.aspx", "username=alice&oldPwd=P&newPwd=N&conf=N", FORM),
])
async def test_forms_exchange_could_read_as_alice_are_refused(env: FlowEnv, target: str, body: str,
                                                              content_type: str) -> None:
    attacker = await signed_in(env)
    body = body.replace("oldPwd=P", "oldPwd=" + urlencode({"": PASSWORDS["alice"]})[1:])
    page = await attacker.request("POST", target, data=body.encode(), headers={"Content-Type": content_type})
    assert page.status in (400, 403), page.status
    assert dict(env.owa.state.recorder.counters.password_changes) == {}


@pytest.mark.parametrize("name", ["bob", "BOB", "CORP\\bob", "corp\\Bob", "bob@corp.example"])
async def test_ones_own_password_still_changes(env: FlowEnv, name: str, captured_logs: CapturedLogs) -> None:
    user = await signed_in(env)
    page = await user.request("POST", PAGE, data=change_form(name, old=PASSWORDS["bob"]))
    assert page.status == 302, (page.status, page.text[:300])
    assert "reason=4" in page.location
    assert dict(env.owa.state.recorder.counters.password_changes) == {"bob": 1}
    assert [event["event"] for event in events(captured_logs(), "gateway.audit")].count("password_change") == 1


async def test_without_a_passed_session_the_form_never_reaches_exchange(env: FlowEnv) -> None:
    pending = env.browser()
    assert (await pending.password("bob")).location == "/_gateway/mfa"
    for browser in (env.browser(), pending):
        page = await browser.request("POST", PAGE, data=change_form("alice"))
        assert page.status in (302, 440), page.status
    assert dict(env.owa.state.recorder.counters.password_changes) == {}
