"""Who signed in: one Monosign user whatever the typed form, exceptions matched on every known form,
system mailboxes without a second factor, and each bypass audited."""

from __future__ import annotations

import pytest

from tests.flow.conftest import EnvFactory, FlowEnv
from tests.logs import CapturedLogs, events


@pytest.mark.parametrize("typed", ["CORP\\alice", "corp\\ALICE", "alice@corp.example", "ALICE"])
async def test_every_form_is_one_monosign_user(env: FlowEnv, typed: str) -> None:
    browser = env.browser()
    assert (await browser.password(typed)).location == "/_gateway/mfa"
    await browser.mfa_page()
    assert (await browser.verify(await env.code("alice"))).location == "/owa/"
    assert (await browser.get("/owa/")).status == 200


@pytest.mark.parametrize(("entry", "typed"), [
    # A bare entry names the account in any form; a UPN entry also matches through Monosign's Email.
    *[(entry, typed) for entry in ("alice", "ALICE", "alice@corp.example")
      for typed in ("CORP\\alice", "alice@corp.example", "ALICE")],
    # A down-level entry names that domain's account: it matches when the domain is typed.
    ("CORP\\alice", "CORP\\alice"), ("CORP\\alice", "corp\\ALICE"),
])
async def test_exceptions_match_every_form(start_env: EnvFactory,
                                           captured_logs: CapturedLogs, entry: str, typed: str) -> None:
    env = await start_env(monosign_user_exceptions=f"someone-else, {entry}")
    browser = env.browser()
    page = await browser.password(typed)
    assert page.status == 302
    assert page.location == "http://mail.corp.example/owa/"  # Exchange's answer passes, cookies and all
    assert browser.has_exchange_session()
    assert (await browser.get("/owa/")).status == 200
    audit = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "exception_bypass"]
    assert len(audit) == 1
    assert audit[0]["user"] == typed


@pytest.mark.parametrize(("entry", "typed"), [
    ("OTHER\\alice", "CORP\\alice"),   # another domain's alice
    ("CORP\\alice", "ALICE"),           # the domain is not known from a bare name: no guess
    ("alice@other.example", "alice"),
])
async def test_exceptions_never_match_by_guessing(start_env: EnvFactory, entry: str, typed: str) -> None:
    env = await start_env(monosign_user_exceptions=entry)
    assert (await env.browser().password(typed)).location == "/_gateway/mfa"


async def test_exception_needs_no_monosign(start_env: EnvFactory) -> None:
    env = await start_env(monosign_user_exceptions="CORP\\bob")
    await env.fault("refuse", duration=30.0)
    browser = env.browser()
    assert (await browser.password("CORP\\bob")).status == 302
    assert browser.has_exchange_session()


async def test_system_mailbox_skips_monosign(env: FlowEnv, captured_logs: CapturedLogs) -> None:
    browser = env.browser()
    page = await browser.password("HealthMailbox0123abcd")
    assert page.status == 302
    assert browser.has_exchange_session()
    assert (await browser.get("/owa/")).status == 200
    assert await env.monosign_calls("lookup_user") == []
    assert "system_mailbox_bypass" in [event["event"] for event in events(captured_logs(), "gateway.audit")]
    assert 'gateway_authn_bypasses_total{kind="system_mailbox"} 1.0' in await env.metrics()


async def test_a_name_that_only_looks_like_a_system_mailbox_needs_mfa(env: FlowEnv) -> None:
    # "erin" is a real person to Exchange; a HealthMailbox prefix rule would be a bypass, the shape rule is not.
    assert (await env.browser().password("erin")).status == 403  # not in Monosign: refused, not exempt


async def test_readiness_lists_monosign_and_store(env: FlowEnv) -> None:
    async with env.http.get(env.admin_url + "/readyz") as response:
        report = await response.json()
    assert response.status == 200
    assert report["checks"]["monosign"] == {"ok": True, "critical": False, "state": "closed"}
    assert report["checks"]["store"] == {"ok": True, "critical": True}
    assert await env.monosign_calls() == []  # readiness never calls Monosign
