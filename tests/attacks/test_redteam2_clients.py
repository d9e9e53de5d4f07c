"""Red team, second pass: the Exchange endpoints a client reaches without a second factor.

- ProxyLogon (CVE-2021-26855) routed Exchange's front end to a back end of the attacker's choosing
  with the `X-BEResource` cookie, or with `X-AnonResource=true` plus `X-AnonResource-Backend` (the
  cookie Microsoft's own mitigation filters). None of them may reach Exchange from a client
  without a passed session, on any route.
- ProxyShell's explicit-logon confusion (`…autodiscover.json?@host/powershell/&Email=…`) is refused
  on every endpoint that takes a password alone, not only below `/autodiscover/`.
- Remote PowerShell stays denied whatever the spelling of its path.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from tests.flow.conftest import PASSWORDS, FlowEnv, flow_environment

ROUTING_HINTS = {"X-AnonResource": "true", "X-AnonResource-Backend": "localhost/ecp/default.flt?~3",
                 "X-BEResource": "localhost/owa/auth/logon.aspx?~3", "x-anonresource-backend": "evil.example~1"}


@pytest.fixture
async def env() -> AsyncIterator[FlowEnv]:
    async with flow_environment() as running:
        yield running


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()


async def newest(env: FlowEnv) -> int:
    records = env.owa.state.recorder.requests()
    return records[-1].id if records else 0


@pytest.mark.parametrize(("method", "target", "headers"), [
    ("GET", "/owa/auth/x.js", {}),
    ("GET", "/ecp/auth/x.js", {}),
    ("GET", "/owa/auth/logon.aspx", {}),
    ("GET", "/owa/healthcheck.htm", {}),
    ("POST", "/EWS/Exchange.asmx", {"Content-Type": "text/xml"}),
    ("GET", "/Autodiscover/Autodiscover.xml", {}),
    ("OPTIONS", "/Microsoft-Server-ActiveSync", {}),
])
async def test_routing_hint_cookies_never_reach_exchange_without_a_passed_session(
        env: FlowEnv, method: str, target: str, headers: dict[str, str]) -> None:
    attacker = env.browser()
    attacker.cookies = {**ROUTING_HINTS, "PBack": "0"}
    mark = await newest(env)
    await attacker.request(method, target, headers=headers, navigate=False)
    forwarded = [record for record in env.owa.state.recorder.requests() if record.id > mark]
    assert len(forwarded) == 1
    assert forwarded[0].cookie_names == ["PBack"]


@pytest.mark.parametrize("target", [
    "/EWS/autodiscover.json?@evil.example/powershell/?&Email=EWS/autodiscover.json%3F@evil.example",
    "/EWS/Exchange.asmx?@evil.example/owa/?&x=1",
    "/mapi/nspi/?@evil.example/powershell/",
    "/Microsoft-Server-ActiveSync/autodiscover.json?@evil.example/owa/",
])
async def test_explicit_logon_confusion_is_refused_below_every_password_only_endpoint(
        env: FlowEnv, target: str) -> None:
    attacker = env.browser()
    mark = await newest(env)
    refused = await attacker.request("GET", target, headers={"Authorization": basic("alice")}, navigate=False)
    assert refused.status == 403
    assert [record.target for record in env.owa.state.recorder.requests() if record.id > mark] == []


@pytest.mark.parametrize("target", ["/powershell", "/PowerShell/", "/POWERSHELL/?serializationLevel=Full",
                                    "/powershell-proxy", "/PowerShell-LiveId", "/%70owershell/",
                                    "/powershell;x/", "/powershell%20/"])
async def test_remote_powershell_stays_closed_whatever_the_spelling(env: FlowEnv, target: str) -> None:
    attacker = env.browser()
    mark = await newest(env)
    answer = await attacker.request("POST", target, headers={"Authorization": basic("alice"),
                                                             "Content-Type": "application/soap+xml"},
                                    navigate=False)
    assert answer.status in (400, 403, 404), answer.status
    assert [record.target for record in env.owa.state.recorder.requests() if record.id > mark] == []
