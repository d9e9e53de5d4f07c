"""Red team: the attacker knows alice's password and owns a second account (bob) whose second
factor they pass themselves. A complete gateway session of their own must never become a way to
alice's mailbox: not by signing in at another credential path, not by Basic authentication riding
along with broken Exchange cookies, not by Exchange cookies sent where the gateway does not check
their binding.
"""

from __future__ import annotations

import base64

import pytest

from tests.exchange_clients.support import HttpConnection, ntlm_login
from tests.flow.conftest import CADATA_NAMES, HOST, PASSWORDS, FlowEnv, flow_environment

ALICE_FORM_FIELDS = {"flags": "4", "forcedownlevel": "0", "username": "alice", "password": PASSWORDS["alice"],
                     "passwordText": "", "isUtf8": "1"}


def alice_form(env: FlowEnv) -> dict[str, str]:
    return {"destination": f"{env.settings.gateway_public_url}/owa/", **ALICE_FORM_FIELDS}


def live_cadata(set_cookies: list[str]) -> list[str]:
    """Names of the Exchange session cookies a response hands out with a value."""
    found = []
    for value in set_cookies:
        name, _, rest = value.partition("=")
        if name.strip().lower() in CADATA_NAMES and rest.split(";", 1)[0].strip():
            found.append(name.strip())
    return found


async def owa_requests_since(env: FlowEnv, mark: int) -> list[dict[str, object]]:
    return [record for record in await env.owa_requests() if int(str(record["id"])) > mark]


async def newest_owa_request(env: FlowEnv) -> int:
    records = await env.owa_requests()
    return int(str(records[-1]["id"])) if records else 0


# Exchange's FbaModule takes any POST whose *last* path segment is auth.owa or owaauth.dll, in
# /owa or /ecp, as the credential post (HandleFbaAuthFormPost compares Url.Segments[^1] only).
@pytest.mark.parametrize("path", ["/ecp/auth.owa", "/owa/x/auth.owa", "/OWA/Auth/X/OwaAuth.dll",
                                  "/owa/alice@corp.example/auth.owa", "/ecp/auth/owaauth.dll"])
async def test_credential_post_at_another_path_never_hands_out_alices_exchange_session(path: str) -> None:
    async with flow_environment() as env:
        attacker = env.browser()
        await attacker.sign_in("bob")  # the attacker's own account: they pass its second factor
        answer = await attacker.request("POST", path, data=alice_form(env))
        assert not live_cadata(answer.set_cookies), (answer.status, answer.set_cookies)
        # Observed as the login it is: alice's second factor comes next.
        assert answer.status == 302, answer.text[:300]
        assert answer.location == "/_gateway/mfa"
        mailbox = await attacker.get("/owa/")
        assert "Alice Archer" not in mailbox.text


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()


async def test_basic_authorization_never_reaches_exchanges_forms_vdirs() -> None:
    """Exchange's FbaModule replaces `Authorization` only when it can decrypt the cadata cookies;
    otherwise the request's own header stays, and IIS's Basic authentication on the owa and ecp
    vdirs signs in whoever it names. So an attacker who keeps the binding cookies (cadata,
    cadataKey) of their own passed session but drops cadataTTL, and adds alice's Basic header,
    would read alice's mailbox: the header must never reach Exchange on those vdirs."""
    async with flow_environment() as env:
        attacker = env.browser()
        await attacker.sign_in("bob")
        broken = {name: value for name, value in attacker.cookies.items() if name.lower() != "cadatattl"}
        recorder = env.owa.state.recorder
        mark = recorder.requests()[-1].id
        alice = {"Authorization": basic("alice")}
        # The simulator does not model Basic on /owa: its 440 ends the gateway session, so that one comes last.
        for method, target, navigate in [("GET", "/owa/", True), ("GET", "/ecp/", True),
                                         ("GET", "/owa/auth/logon.aspx", True), ("GET", "/owa/healthcheck.htm", False),
                                         ("POST", "/owa/service.svc?action=GetFolder", False),
                                         ("GET", "/owa/logoff.owa", True)]:
            attacker.cookies = dict(broken)  # Exchange's answer may expire them; the attacker keeps them
            await attacker.request(method, target, headers=alice, navigate=navigate)
        attacker.cookies = dict(broken)
        await attacker.request("POST", "/owa/auth.owa", headers=alice, data=alice_form(env))
        forwarded = [record for record in recorder.requests() if record.id > mark]
        assert {record.target.split("?")[0] for record in forwarded} >= {
            "/owa/", "/owa/service.svc", "/ecp/", "/owa/auth/logon.aspx", "/owa/logoff.owa", "/owa/auth.owa"}
        assert [(record.method, record.target, record.authorization) for record in forwarded
                if record.authorization is not None] == []


@pytest.mark.parametrize(("method", "target", "headers"), [
    ("GET", "/owa/auth/logon.aspx", {}),
    ("GET", "/owa/healthcheck.htm", {}),
    ("POST", "/EWS/Exchange.asmx", {"Content-Type": "text/xml"}),
    ("GET", "/Autodiscover/Autodiscover.xml", {}),
    ("OPTIONS", "/Microsoft-Server-ActiveSync", {}),
])
async def test_exchange_cookies_reach_exchange_only_where_their_binding_is_checked(
        method: str, target: str, headers: dict[str, str]) -> None:
    """Stolen (or another login's) cadata cookies sent to a route that checks no gateway session
    must not reach Exchange: only FBA's vdirs read them today, but nothing there needs them, and an
    endpoint that honoured them would be a way around the second factor."""
    async with flow_environment() as env:
        victim = env.browser()
        await victim.sign_in("bob")
        stolen = {name: value for name, value in victim.cookies.items() if name.lower() in CADATA_NAMES}
        assert len(stolen) == len(CADATA_NAMES)
        attacker = env.browser()
        # Exchange's routing hints (X-BackEndCookie…) are no cookie to keep here: they go too.
        attacker.cookies = {**stolen, "X-BackEndCookie": "dropped", "ClientId": "kept"}
        recorder = env.owa.state.recorder
        mark = recorder.requests()[-1].id
        await attacker.request(method, target, headers=headers, navigate=False)
        forwarded = [record for record in recorder.requests() if record.id > mark]
        assert len(forwarded) == 1
        assert forwarded[0].cookie_names == ["ClientId"]


async def test_a_connection_authenticated_by_ntlm_never_carries_owa_requests() -> None:
    """NTLM authenticates the TCP connection: after alice's handshake on an allowed Windows-
    authentication endpoint (password alone), the gateway keeps an upstream connection on which IIS
    treats every request as alice's. OWA and ECP requests on the same client connection must not
    travel on it: where Windows authentication is enabled on those vdirs (intranet single sign-on),
    a request whose Exchange cookies do not decrypt would be served as alice."""
    async with flow_environment() as env:
        attacker = env.browser()
        await attacker.sign_in("bob")
        cookies = "; ".join(f"{name}={value}" for name, value in attacker.cookies.items())
        connection = await HttpConnection.open(env.port, host=HOST)
        try:
            assert (await ntlm_login(connection, "GET", "/OAB/1234/oab.xml", "CORP\\alice")).status == 200
            for target in ("/owa/", "/owa/auth/logon.aspx", "/ecp/"):
                await connection.request("GET", target, [("Cookie", cookies)])
        finally:
            await connection.close()
        records = env.owa.state.recorder.requests()
        ntlm = {record.connection for record in records if record.target.startswith("/OAB/")}
        owa = {record.connection for record in records if record.target.startswith(("/owa/", "/ecp/"))}
        assert len(ntlm) == 1
        assert not ntlm & owa


@pytest.mark.parametrize("target", [
    "/autodiscover/autodiscover.json?@evil.example/owa/?&Email=autodiscover/autodiscover.json%3F@evil.example",
    "/autodiscover/autodiscover.json?@evil.example/powershell/?X-Rps-CAT=x&Email=autodiscover/autodiscover.json%3F@e",
])
async def test_autodiscover_explicit_logon_confusion_never_reaches_exchange(target: str) -> None:
    """ProxyNotShell needs only a password, and Autodiscover needs no second factor: the request
    that Exchange would re-route to /owa or /powershell never leaves the gateway."""
    async with flow_environment() as env:
        attacker = env.browser()
        recorder = env.owa.state.recorder
        mark = recorder.requests()[-1].id if recorder.requests() else 0
        refused = await attacker.request("GET", target, headers={"Authorization": basic("alice")}, navigate=False)
        assert refused.status == 403
        legitimate = await attacker.request(
            "GET", "/autodiscover/autodiscover.json?Email=alice@corp.example&Protocol=ActiveSync",
            headers={"Authorization": basic("alice")}, navigate=False)
        assert legitimate.status != 403
        assert [record.target for record in recorder.requests() if record.id > mark] == [
            "/autodiscover/autodiscover.json?Email=alice@corp.example&Protocol=ActiveSync"]
