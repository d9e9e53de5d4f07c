"""The attacker corpus: alice's password, no second factor, and every trick we know of.

Each vector is sent as raw bytes to the gateway (real sockets, the demo stack on 127.0.0.1). After
it, the attacker keeps every cookie the gateway handed out and tries the mailbox again (`GET /owa/`
and a `FindItem` XHR). None of it may show mailbox content, hand out a live `cadata` cookie, or get a
protected Exchange request to the OWA simulator with Exchange cookies (its request log is checked).
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio

from gateway.demo import DemoPorts, running_demo
from tests.attacks.kit import GATEWAY_COOKIE, Breach, Kit, cookie_header, set_cookies
from tests.attacks.raw_http import RawResponse, exchange, request
from tests.demo_users import PASSWORDS
from tests.e2e.owa_client import logon_form
from tests.logs import CapturedLogs, events

pytestmark = pytest.mark.asyncio(loop_scope="module")

XHR = (("X-Requested-With", "XMLHttpRequest"), ("Content-Type", "application/json; charset=utf-8"),
       ("X-OWA-ActionName", "FindItem"))
FIND_ITEM_BODY = '{"__type":"FindItemJsonRequest:#Exchange"}'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kit() -> AsyncIterator[Kit]:
    async with running_demo(DemoPorts(0, 0, 0, 0)) as demo:
        yield Kit(demo)


@dataclass(frozen=True)
class Step:
    """One request of a vector. `cookies` names what the attacker sends, joined by "+": alice and
    bob (fresh pending sessions), foreign (alice's Exchange cookies from a direct sign-in),
    old_gw / old_cadata (a signed-out alice session), dave (the attacker's own complete session),
    forged (a made-up gateway cookie). `{host}` in the target, headers or body is the gateway's."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    cookies: str = "alice"
    host: str | None = None


@dataclass(frozen=True)
class Vector:
    name: str
    steps: tuple[Step, ...]  # several steps are pipelined on one connection


def get(target: str, cookies: str = "alice", *headers: tuple[str, str], host: str | None = None) -> Vector:
    held = "" if cookies == "alice" else f" with {cookies.replace('+', ' + ') or 'no cookies'}"
    return Vector(f"GET {target}{held}", (Step("GET", target, tuple(headers), cookies=cookies, host=host),))


def named(name: str, *steps: Step) -> Vector:
    return Vector(name, steps)


LOGIN = "{login}"  # alice's logon form, url-encoded, destination http://{host}/owa/
FORM = (("Content-Type", "application/x-www-form-urlencoded"),)

PATH_TRICKS = [
    get("/OWA/"), get("/Owa/"), get("/owa"), get("/OWA"), get("/owa/%2e%2e/owa/"), get("/owa/%2E%2E/ecp/"),
    get("/owa/../owa/"), get("/owa/./"), get("/owa;/"), get("/owa;x=y/"), get("/%6fwa/"), get("/%4F%57%41/"),
    get("/owa%2f"), get("/owa%2fservice.svc"), get("/owa/auth/..%2f"), get("/owa/auth/%2e%2e/"),
    get("/owa/auth/../"), get("/owa/auth/..;/"), get("/owa/auth/%5c..%5c"), get("/owa/auth\\..\\"),
    get("//owa/"), get("/owa//"), get("/owa/auth/x%00.js"), get("/owa/%u002e%u002e/"),
    get("/owa/auth%252f..%252fowa/"), get("/owa%EF%BC%8F"), get("/owa/auth/15.1.2507/themes/resources/../../../../"),
    get("/owa/auth/./../"), get("/owa/auth/.%2e/"), get("/owa/auth/..%3b/"), get("/owa/%20/"), get("/owa/auth/%2F"),
    get("/ecp/"), get("/ECP/"), get("/ecp/auth/../"), get("/ecp/?rfr=owa"), get("/ecp/PersonalSettings/HomePage.aspx"),
    get("/ecp/%2e%2e/owa/"),
]

LEGACY_AND_METHODS = [
    get("/owa/auth/owaauth.dll"),
    get("/owa/auth.owa"),
    named("POST /owa/auth/owaauth.dll (legacy login)", Step("POST", "/owa/auth/owaauth.dll", FORM, LOGIN, "")),
    named("POST /OWA/AUTH.OWA (login, upper case)", Step("POST", "/OWA/AUTH.OWA", FORM, LOGIN, "")),
    named("POST /owa/auth.owa/ (login, trailing slash)", Step("POST", "/owa/auth.owa/", FORM, LOGIN, "")),
    named("POST /owa/auth/owaauth.dll with the pending cookie", Step("POST", "/owa/auth/owaauth.dll", FORM, LOGIN)),
    named("HEAD /owa/", Step("HEAD", "/owa/")),
    named("OPTIONS /owa/", Step("OPTIONS", "/owa/")),
    named("OPTIONS *", Step("OPTIONS", "*")),
    named("PROPFIND /owa/", Step("PROPFIND", "/owa/", (("Depth", "1"),))),
    named("TRACE /owa/", Step("TRACE", "/owa/")),
    named("PUT /owa/service.svc", Step("PUT", "/owa/service.svc", XHR, FIND_ITEM_BODY)),
    named("DELETE /owa/", Step("DELETE", "/owa/")),
    named("POST /owa/", Step("POST", "/owa/", FORM, "a=b")),
    named("POST /owa/auth/logon.aspx", Step("POST", "/owa/auth/logon.aspx", FORM, "a=b")),
    named("HEAD /owa/auth/../", Step("HEAD", "/owa/auth/../")),
    named("PATCH /ecp/", Step("PATCH", "/ecp/")),
]

ABSOLUTE_AND_HOST = [
    named("absolute-form to the gateway itself", Step("GET", "http://{host}/owa/")),
    named("absolute-form to another host", Step("GET", "http://evil.example/owa/")),
    named("absolute-form https to the gateway", Step("GET", "https://{host}/owa/")),
    named("CONNECT authority-form", Step("CONNECT", "{host}")),
    named("Host: evil.example", Step("GET", "/owa/", host="evil.example")),
    named("Host with userinfo", Step("GET", "/owa/", host="{host}@evil.example")),
    named("Host with a space", Step("GET", "/owa/", host="{host} evil.example")),
    named("X-Forwarded-Host: evil.example", Step("GET", "/owa/", (("X-Forwarded-Host", "evil.example"),))),
    named("Forwarded: host=evil.example", Step("GET", "/owa/", (("Forwarded", "host=evil.example;for=127.0.0.1"),))),
    named("X-Original-URL: /owa/ on the logon page",
          Step("GET", "/owa/auth/logon.aspx", (("X-Original-URL", "/owa/"),))),
    named("X-Rewrite-URL: /owa/ on the logon page", Step("GET", "/owa/auth/logon.aspx", (("X-Rewrite-URL", "/owa/"),))),
    named("X_Original_URL (underscores) on a resource",
          Step("GET", "/owa/auth/15.1.2507/themes/resources/owa.css", (("X_Original_URL", "/owa/"),))),
    named("X-Original-URL: service.svc on favicon",
          Step("GET", "/favicon.ico", (("X-Original-URL", "/owa/service.svc?action=FindItem"),))),
    named("X-HTTP-Method-Override: GET on a POST to service.svc",
          Step("POST", "/owa/service.svc?action=FindItem", (*XHR, ("X-HTTP-Method-Override", "GET")), FIND_ITEM_BODY)),
    named("X-HTTP-Method-Override: POST on the logon page",
          Step("GET", "/owa/auth/logon.aspx", (("X-HTTP-Method-Override", "POST"),))),
    named("X_Forwarded_For: 127.0.0.1 (underscores)", Step("GET", "/owa/", (("X_Forwarded_For", "127.0.0.1"),))),
    named("X-Forwarded-For + X-Real-IP spoofing",
          Step("GET", "/owa/", (("X-Forwarded-For", "127.0.0.1"), ("X-Real-IP", "127.0.0.1")))),
    named("X-Forwarded-Proto and X-Forwarded-Prefix",
          Step("GET", "/owa/", (("X-Forwarded-Proto", "https"), ("X-Forwarded-Prefix", "/owa/auth")))),
    named("X-BEResource cookie to another backend", Step("GET", "/owa/auth/logon.aspx", cookies="alice+beresource")),
]

EXPECT_AND_PIPELINING = [
    named("Expect: 100-continue on service.svc",
          Step("POST", "/owa/service.svc?action=FindItem", (*XHR, ("Expect", "100-continue")), FIND_ITEM_BODY,
               cookies="alice+foreign")),
    named("Expect: 100-continue on the login",
          Step("POST", "/owa/auth.owa", (*FORM, ("Expect", "100-continue")), LOGIN, "")),
    Vector("pipelined: logon page, then /owa/", (
        Step("GET", "/owa/auth/logon.aspx", (("Connection", "keep-alive"),)), Step("GET", "/owa/"))),
    Vector("pipelined: login, then /owa/ on the same connection", (
        Step("POST", "/owa/auth.owa", (*FORM, ("Connection", "keep-alive")), LOGIN, ""), Step("GET", "/owa/"))),
    Vector("pipelined: a resource, then FindItem with foreign Exchange cookies", (
        Step("GET", "/owa/auth/15.1.2507/themes/resources/owa.css", (("Connection", "keep-alive"),)),
        Step("POST", "/owa/service.svc?action=FindItem", XHR, FIND_ITEM_BODY, "alice+foreign"))),
    Vector("pipelined: favicon, then /ecp/", (
        Step("GET", "/favicon.ico", (("Connection", "keep-alive"),)), Step("GET", "/ecp/"))),
    Vector("pipelined: healthcheck, then the start page with foreign Exchange cookies", (
        Step("GET", "/owa/healthcheck.htm", (("Connection", "keep-alive"),), cookies=""),
        Step("GET", "/owa/", cookies="foreign"))),
]

COOKIE_SWAPS = [
    get("/owa/", "alice+bob"),
    get("/owa/", "bob"),
    get("/owa/", "forged"),
    get("/owa/", "alice+forged"),
    get("/owa/", "empty_gateway"),
    get("/owa/", "foreign"),
    get("/owa/", "alice+foreign"),
    get("/owa/", "bob+foreign"),
    get("/owa/", "old_gw"),
    get("/owa/", "old_cadata"),
    get("/owa/", "old_gw+old_cadata"),
    get("/owa/", "alice+old_cadata"),
    get("/owa/", "dave+foreign"),
    get("/owa/", "dave+old_cadata"),
    named("FindItem with foreign Exchange cookies",
          Step("POST", "/owa/service.svc?action=FindItem", XHR, FIND_ITEM_BODY, "foreign")),
    named("FindItem with the attacker's own session and alice's Exchange cookies",
          Step("POST", "/owa/service.svc?action=FindItem", XHR, FIND_ITEM_BODY, "dave+foreign")),
    named("FindItem with a signed-out session", Step("POST", "/owa/service.svc?action=FindItem", XHR,
                                                     FIND_ITEM_BODY, "old_gw+old_cadata")),
]

EXPLICIT_LOGON_AND_QUERIES = [
    get("/owa/alice@corp.example/"), get("/owa/carol@corp.example/"), get("/owa/ALICE@CORP.EXAMPLE/"),
    get("/owa/carol@corp.example/", "foreign"), get("/owa/alice@corp.example/", "dave+foreign"),
    named("explicit logon FindItem", Step("POST", "/owa/alice@corp.example/service.svc?action=FindItem", XHR,
                                          FIND_ITEM_BODY)),
    get("/owa/?url=/owa/auth/"), get("/owa/?path=/owa/auth/"), get("/owa/service.svc?path=/owa/auth/logon.aspx"),
    get("/owa/?/owa/auth/"), get("/owa/#/owa/auth/"), get("/owa/auth/logon.aspx?url=/owa/"),
    get("/owa/?ae=Item&a=Open&t=IPM.Note&id=x&exsvurl=1"), get("/owa/?oeh=1&ns=PendingRequest"),
]

APPLICATION_ENDPOINTS = [
    named("service.svc FindItem", Step("POST", "/owa/service.svc?action=FindItem", XHR, FIND_ITEM_BODY)),
    get("/owa/ev.owa2?ns=PendingRequest&ev=PendingNotificationRequest&UA=0&cid=x"),
    get("/owa/service.svc/s/GetFileAttachment?id=x&size=16"),
    get("/owa/service.svc/s/GetFileAttachment?id=x&size=16", "foreign"),
    get("/owa/attachment.ashx?id=x&size=16"),
    named("keepalive.owa", Step("POST", "/owa/keepalive.owa", XHR, "")),
    get("/owa/sessiondata.ashx"),
    get("/owa/sessiondata.ashx", "foreign"),
    get("/owa/languageselection.aspx"),
    named("lang.owa", Step("POST", "/owa/lang.owa", FORM, "lcid=1033&tzid=UTC")),
]

MFA_ENDPOINTS = [
    named("verify without a session", Step("POST", "/_gateway/mfa/verify", FORM, "code=123456&csrf_token=x", "")),
    named("verify with a forged session", Step("POST", "/_gateway/mfa/verify", FORM, "code=123456&csrf_token=x",
                                                "forged")),
    named("verify without a CSRF token", Step("POST", "/_gateway/mfa/verify", FORM, "code=123456")),
    named("verify from another site", Step("POST", "/_gateway/mfa/verify", (*FORM, ("Origin", "http://evil.example"),
                                                                            ("Sec-Fetch-Site", "cross-site")),
                                            "code=123456&csrf_token=x")),
    get("/_gateway/mfa/verify?code=123456"),
    named("push without a session", Step("POST", "/_gateway/mfa/push", FORM, "csrf_token=x", "")),
    named("push from another site", Step("POST", "/_gateway/mfa/push", (*FORM, ("Origin", "http://evil.example")),
                                          "csrf_token=x")),
    get("/_gateway/mfa/complete", ""),
    get("/_gateway/mfa/complete", "forged"),
    get("/_gateway/mfa/complete"),
    get("/_gateway/mfa/complete", "alice+foreign"),
    get("/_gateway/mfa/status", "forged"),
    get("/_gateway/mfa", "forged"),
]

VECTORS = [*PATH_TRICKS, *LEGACY_AND_METHODS, *ABSOLUTE_AND_HOST, *EXPECT_AND_PIPELINING, *COOKIE_SWAPS,
           *EXPLICIT_LOGON_AND_QUERIES, *APPLICATION_ENDPOINTS, *MFA_ENDPOINTS]


async def cookies_for(kit: Kit, spec: str) -> dict[str, str]:
    jar: dict[str, str] = {}
    for part in filter(None, spec.split("+")):
        if part in ("alice", "bob"):
            jar.update(await kit.pending(part))
        elif part == "foreign":
            jar.update(await kit.foreign_cadata())
        elif part == "old_gw":
            jar.update((await kit.signed_out())[0])
        elif part == "old_cadata":
            jar.update((await kit.signed_out())[1])
        elif part == "dave":
            jar.update(await kit.dave_session())
        elif part == "forged":
            jar[GATEWAY_COOKIE] = secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(32)
        elif part == "empty_gateway":
            jar[GATEWAY_COOKIE] = ""
        elif part == "beresource":
            jar["X-BEResource"] = "evil.example~1942062522"
        else:
            raise ValueError(part)
    return jar


async def send(kit: Kit, steps: tuple[Step, ...]) -> tuple[list[RawResponse], dict[str, str]]:
    payload = b""
    methods: list[str] = []
    held: dict[str, str] = {}
    for index, step in enumerate(steps):
        jar: dict[str, str] = {}
        duplicates: list[str] = []
        for part in filter(None, step.cookies.split("+")):
            found = await cookies_for(kit, part)
            if GATEWAY_COOKIE in found and GATEWAY_COOKIE in jar:
                duplicates.append(f"{GATEWAY_COOKIE}={jar[GATEWAY_COOKIE]}")
            jar.update(found)
        held.update(jar)
        host = (step.host or "{host}").replace("{host}", kit.host)
        target = step.target.replace("{host}", kit.host)
        body = step.body
        if body == LOGIN:
            body = urllib.parse.urlencode(logon_form(f"http://{kit.host}", "alice", PASSWORDS["alice"]))
        headers = [(name, value.replace("{host}", kit.host)) for name, value in step.headers]
        cookie_value = "; ".join([*duplicates, cookie_header(jar)]) if jar else ""
        if cookie_value:
            headers.append(("Cookie", cookie_value))
        last = index == len(steps) - 1
        payload += request(step.method, target, host=host, headers=headers, body=body.encode(), close=last)
        methods.append(step.method)
    return await exchange(kit.port, payload, methods), held


async def try_the_mailbox(kit: Kit, jar: dict[str, str]) -> list[RawResponse]:
    """The attacker, with every cookie they now hold, asks for the mailbox and for messages."""
    cookie = [("Cookie", cookie_header(jar))] if jar else []
    answers = []
    answers += await exchange(kit.port, request("GET", "/owa/", host=kit.host, headers=cookie), ["GET"])
    answers += await exchange(kit.port, request("POST", "/owa/service.svc?action=FindItem", host=kit.host,
                                                headers=[*XHR, *cookie], body=FIND_ITEM_BODY.encode()), ["POST"])
    return answers


async def breaches(kit: Kit, name: str, responses: list[RawResponse], jar: dict[str, str], mark: int) -> list[str]:
    """What the attacker got that they must not have: in these responses, in the mailbox asked for with
    every cookie they now hold, and in what reached Exchange since `mark`."""
    breach = Breach()
    for index, response in enumerate(responses):
        breach.check_response(f"{name} [response {index + 1}: {response.status}]", response)
    for response in await try_the_mailbox(kit, jar):
        breach.check_response(f"{name} [then GET /owa/ or FindItem: {response.status}]", response)
    breach.check_upstream(kit.upstream_since(mark))
    return breach.problems


@pytest.mark.parametrize("vector", VECTORS, ids=[vector.name for vector in VECTORS])
async def test_attacker_without_second_factor_gets_nothing(kit: Kit, vector: Vector) -> None:
    await cookies_for(kit, "+".join({part for step in vector.steps for part in step.cookies.split("+")
                                     if part in ("foreign", "old_gw", "old_cadata", "dave")}))  # set up first
    mark = kit.mark()
    responses, jar = await send(kit, vector.steps)
    assert responses, f"{vector.name}: no response at all"
    for response in responses:
        jar.update(set_cookies(response))
    problems = await breaches(kit, vector.name, responses, jar, mark)
    assert not problems, "\n".join(problems)


async def test_the_corpus_is_large_and_uniquely_named() -> None:
    names = [vector.name for vector in VECTORS]
    assert len(names) >= 60
    assert len(set(names)) == len(names)


# --- Vectors that need a prepared pending session ---------------------------------------------------------

Scenario = Callable[[Kit], Awaitable[tuple[list[RawResponse], dict[str, str]]]]


async def complete_with_push_pending(kit: Kit) -> tuple[list[RawResponse], dict[str, str]]:
    jar, token = await kit.pending_with_token("alice")
    cookie = [("Cookie", cookie_header(jar))]
    origin = [("Origin", f"http://{kit.host}")]
    sent = await exchange(kit.port, request("POST", "/_gateway/mfa/push", host=kit.host,
                                            headers=[*FORM, *origin, *cookie], body=f"csrf_token={token}".encode()),
                          ["POST"])
    completed = await exchange(kit.port, request("GET", "/_gateway/mfa/complete", host=kit.host, headers=cookie),
                               ["GET"])
    return sent + completed, jar


async def complete_after_rejected_push(kit: Kit) -> tuple[list[RawResponse], dict[str, str]]:
    jar, token = await kit.pending_with_token("alice")
    cookie = [("Cookie", cookie_header(jar))]
    origin = [("Origin", f"http://{kit.host}")]
    sent = await exchange(kit.port, request("POST", "/_gateway/mfa/push", host=kit.host,
                                            headers=[*FORM, *origin, *cookie], body=f"csrf_token={token}".encode()),
                          ["POST"])
    kit.demo.monosign.state.answer_latest_push("alice", approve=False)
    answers = sent
    for _ in range(3):
        answers += await exchange(kit.port, request("GET", "/_gateway/mfa/complete", host=kit.host, headers=cookie),
                                  ["GET"])
    return answers, jar


async def bobs_token_on_alices_session(kit: Kit) -> tuple[list[RawResponse], dict[str, str]]:
    alice, _ = await kit.pending_with_token("alice")
    _, bobs_token = await kit.pending_with_token("bob")
    code, _ = kit.demo.monosign.state.current_code("alice")  # even the right code must not pass
    answers = await exchange(kit.port, request(
        "POST", "/_gateway/mfa/verify", host=kit.host,
        headers=[*FORM, ("Origin", f"http://{kit.host}"), ("Cookie", cookie_header(alice))],
        body=urllib.parse.urlencode({"code": code, "csrf_token": bobs_token}).encode()), ["POST"])
    return answers, alice


async def token_from_an_older_session(kit: Kit) -> tuple[list[RawResponse], dict[str, str]]:
    _, old_token = await kit.pending_with_token("alice")
    current, _ = await kit.pending_with_token("alice")
    answers = await exchange(kit.port, request(
        "POST", "/_gateway/mfa/verify", host=kit.host,
        headers=[*FORM, ("Origin", f"http://{kit.host}"), ("Cookie", cookie_header(current))],
        body=urllib.parse.urlencode({"code": "000000", "csrf_token": old_token}).encode()), ["POST"])
    return answers, current


async def guessing_codes(kit: Kit) -> tuple[list[RawResponse], dict[str, str]]:
    jar, token = await kit.pending_with_token("bob")
    answers: list[RawResponse] = []
    for guess in ("000000", "111111", "123456", "999999", "654321", "000001", "1234567", "12345a"):
        answers += await exchange(kit.port, request(
            "POST", "/_gateway/mfa/verify", host=kit.host,
            headers=[*FORM, ("Origin", f"http://{kit.host}"), ("Cookie", cookie_header(jar))],
            body=urllib.parse.urlencode({"code": guess, "csrf_token": token}).encode()), ["POST"])
    kit.demo.monosign.state.unlock("bob")
    return answers, jar


SCENARIOS: dict[str, Scenario] = {
    "complete without an approved push": complete_with_push_pending,
    "complete after the push was rejected": complete_after_rejected_push,
    "bob's CSRF token on alice's session": bobs_token_on_alices_session,
    "a CSRF token from an older session": token_from_an_older_session,
    "guessing codes until locked out": guessing_codes,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_mfa_endpoints_do_not_let_the_attacker_through(kit: Kit, name: str) -> None:
    mark = kit.mark()
    responses, jar = await SCENARIOS[name](kit)
    for response in responses:
        jar.update(set_cookies(response))
    problems = await breaches(kit, name, responses, jar, mark)
    assert not problems, "\n".join(problems)


async def test_the_attackers_tools_work(kit: Kit) -> None:
    """The corpus would prove nothing if its cookies were dead: each works where it should."""
    foreign = await kit.foreign_cadata()
    mark = kit.mark()
    direct = await exchange(kit.demo.owa.port, request("GET", "/owa/", host=f"127.0.0.1:{kit.demo.owa.port}",
                                                       headers=[("Cookie", cookie_header(foreign))]), ["GET"])
    assert direct[0].status == 200
    assert "Alice Archer" in direct[0].text  # Exchange itself accepts them
    dave = await kit.dave_session()
    assert dave[GATEWAY_COOKIE]
    seen = Breach()
    seen.check_response("a mailbox page", direct[0])
    assert seen.problems, "the breach check recognises mailbox content"
    reached = Breach()
    reached.check_upstream(kit.upstream_since(mark))
    assert reached.problems, "the upstream check recognises a protected request that carried Exchange cookies"


# --- Push fatigue: buzzing alice's phone until she approves out of habit --------------------------------------

PUSH_LIMIT = 3
EXTRA_SIGN_INS = 3


async def test_push_fatigue_is_stopped_by_the_push_limit(captured_logs: CapturedLogs) -> None:
    """With alice's password the attacker signs in again and again (one push is pending per session,
    so each new session may send one) and presses "Send request" twice on each. The gateway sends
    at most GATEWAY_MFA_MAX_PUSHES pushes per user, then answers "Too many attempts" (429) and writes
    an audit event. A stack of its own: alice's push count in the shared one stays untouched."""
    async with running_demo(DemoPorts(0, 0, 0, 0), settings_overrides={"gateway_mfa_max_pushes": PUSH_LIMIT}) as demo:
        kit = Kit(demo)
        mark = kit.mark()
        presses: list[list[RawResponse]] = []
        jar: dict[str, str] = {}
        for _ in range(PUSH_LIMIT + EXTRA_SIGN_INS):
            jar, token = await kit.pending_with_token("alice")
            headers = [*FORM, ("Origin", f"http://{kit.host}"), ("Cookie", cookie_header(jar))]
            presses.append([])
            for _ in range(2):
                presses[-1] += await exchange(kit.port, request("POST", "/_gateway/mfa/push", host=kit.host,
                                                                headers=headers, body=f"csrf_token={token}".encode()),
                                              ["POST"])
        statuses = [[answer.status for answer in session] for session in presses]
        assert statuses == [[303, 303]] * PUSH_LIMIT + [[429, 429]] * EXTRA_SIGN_INS, statuses
        refused = [answer for session in presses[PUSH_LIMIT:] for answer in session]
        assert all("Too many attempts" in answer.text for answer in refused)
        assert all(int(answer.header("Retry-After") or 0) > 0 for answer in refused)
        sent = [call for call in demo.monosign.state.calls if call["operation"] == "start_push"]
        assert len(sent) == PUSH_LIMIT  # the phone buzzed no more than the limit allows

        audit = events(captured_logs(), "gateway.audit")
        assert len([event for event in audit if event["event"] == "push_sent"]) == PUSH_LIMIT
        too_many = [event for event in audit if event.get("reason") == "too_many_pushes"]
        assert len(too_many) == len(refused)
        assert {event["user"] for event in too_many} == {"alice"}

        problems = await breaches(kit, "push fatigue", [answer for session in presses for answer in session], jar, mark)
        assert not problems, "\n".join(problems)
