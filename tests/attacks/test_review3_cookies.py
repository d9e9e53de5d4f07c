"""Review 3: the Cookie header as the gateway forwards it, read by a parser more lenient than ASP.NET.

The attacker has a passed session of their own (bob) and Exchange cookies for alice (FBA cookies
can be minted by anyone with her password; here they come from a sign-in at the simulator itself).
They hide alice's `cadata*` pairs inside the value of another pair, behind a space, a tab, a comma
or another separator: the binding check reads one pair (`PBack`, say) and bob's cadata, while a
parser between the gateway and Exchange that also ends pairs at those bytes (a load balancer, a WAF,
a future Exchange build; the simulator's `cookie_reader="lenient"`) reads alice's first. The gateway
forwards only RFC 6265 cookie-pairs, rebuilt into one header, so every reader reads what the
binding check read.

Exchange's routing hints (`X-BEResource`, `X-AnonResource*`, `X-BackEndCookie*`, any case) reach
Exchange only from a client with a passed session.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.sim.owa.wire import parse_cookie_header
from tests.attacks.raw_http import RawResponse, exchange
from tests.attacks.test_redteam2_cookies import minted_alice_cookies
from tests.flow.conftest import CADATA_NAMES, HOST, FlowEnv, flow_environment, owa_config
from tests.logs import CapturedLogs, events

# Each spelling hides alice's pairs (`hidden`, a list of `name=value`) in front of the attacker's own
# cookies (`own`, a `; `-joined header part) and returns the Cookie header line(s) as bytes.
Spelling = Callable[[list[str], str], list[bytes]]


def inside(host_pair: str, separator: str) -> Spelling:
    return lambda hidden, own: [f"{host_pair}{separator}{separator.join(hidden)}; {own}".encode()]


SPELLINGS: dict[str, Spelling] = {
    "space": inside("PBack=0", " "),
    "tab": inside("PBack=0", "\t"),
    "comma": inside("PBack=0", ","),
    "comma space": inside("PBack=0", ", "),
    "spaces": inside("X-OWA-JS-PSD=1", "   "),
    "vertical tab": inside("PBack=0", "\x0b"),
    "form feed": inside("PBack=0", "\x0c"),
    "space tab": inside("ClientId=ABC", " \t"),
    "quoted": lambda hidden, own: [f'PBack="0 {" ".join(hidden)} "; {own}'.encode()],
    "nbsp (utf-8)": lambda hidden, own: [b"PBack=0\xc2\xa0" + "\xa0".join(hidden).encode() + b"; " + own.encode()],
    "one per pair": lambda hidden, own: ["; ".join(f"p{i}=0 {pair}" for i, pair in enumerate(hidden)).encode()
                                         + b"; " + own.encode()],
    "own header line": lambda hidden, own: [f"PBack=0 {' '.join(hidden)}".encode(), own.encode()],
    "trailing comma": lambda hidden, own: [f"PBack=0,{','.join(hidden)},; {own}".encode()],
}


async def signed_in_bob(env: FlowEnv) -> str:
    attacker = env.browser()
    await attacker.sign_in("bob")
    return "; ".join(f"{name}={value}" for name, value in attacker.cookies.items())


async def get_mailbox(env: FlowEnv, cookie_lines: list[bytes]) -> RawResponse:
    payload = f"GET /owa/ HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n".encode()
    payload += b"".join(b"Cookie: " + line + b"\r\n" for line in cookie_lines) + b"\r\n"
    answers = await exchange(env.port, payload, ["GET"])
    assert answers, "no answer"
    return answers[0]


async def test_the_lenient_reader_is_fooled_by_these_spellings_when_nothing_is_in_between() -> None:
    """The simulator's lenient reader takes alice's hidden pairs for real ones: the test can fail."""
    async with flow_environment(owa=owa_config(cookie_reader="lenient")) as env:
        alice = await minted_alice_cookies(env.owa.base_url)
        hidden = [f"{name}={value}" for name, value in alice.items()]
        for label, spelling in SPELLINGS.items():
            lines = [line.decode("utf-8") for line in spelling(hidden, "PBack=0")]
            read = parse_cookie_header(lines, lenient=True)
            assert {name: read.get(name) for name in alice} == alice, label


async def test_hidden_pairs_never_reach_a_lenient_reader(captured_logs: CapturedLogs) -> None:
    async with flow_environment(owa=owa_config(cookie_reader="lenient")) as env:
        own = await signed_in_bob(env)
        alice = await minted_alice_cookies(env.owa.base_url)
        hidden = [f"{name}={value}" for name, value in alice.items()]
        assert "Bob Baker" in (await get_mailbox(env, [own.encode()])).text  # the session works as is
        problems, forwarded = [], 0
        for label, spelling in SPELLINGS.items():
            answer = await get_mailbox(env, spelling(hidden, own))
            if "Alice Archer" in answer.text:
                problems.append(f"{label}: alice's mailbox")
            elif answer.status == 400:
                continue  # the request parser refuses control characters in a header: nothing forwarded
            elif answer.status != 200 or "Bob Baker" not in answer.text:
                problems.append(f"{label}: the attacker's own session stopped working ({answer.status})")
            forwarded += 1
        assert problems == []
        assert forwarded >= 10
        dropped = [event for event in events(captured_logs(), "gateway.audit") if event["event"] == "cookie_dropped"]
        assert len(dropped) == forwarded
        assert {event["reason"] for event in dropped} <= {"hidden_pair", "bad_name"}
        assert all("cadata" not in str(event) for event in dropped)  # neither names nor values are logged


# Every spelling of every routing hint: by name, case and prefix, or hidden in another pair's value
# (the simulator's lenient reader would find those).
HINTS = ["X-BEResource=localhost~1942062522", "x-beresource=srv", "X-BERESOURCE=srv",
         "X-AnonResource=true", "x-anonresource-backend=srv", "X-AnonResource-BackEnd=srv",
         "X-BackEndCookie=S-1-5-21-1004336348-1177238915-682003330-1104=u56Lnp2ejJqBx8nK",
         "x-backendcookie=S-1-5-21-1=abc", "X-BACKENDCOOKIE=x", "X-BackEndCookie2=x", "X-BackEndCookie-Alt=x",
         "X-BEResourceX=srv", "PBack=0 X-BEResource=srv", "ClientId=1,X-AnonResource=true",
         "UC=1\tX-BackEndCookie=x", "\xa0X-BEResource=srv"]


@pytest.mark.parametrize("request_line", [
    "GET /owa/auth/logon.aspx HTTP/1.1",           # anonymous page
    "GET /owa/ HTTP/1.1",                          # no session: never forwarded at all
    "POST /owa/auth.owa HTTP/1.1",                 # the credential post
    "GET /EWS/Exchange.asmx HTTP/1.1",             # Windows authentication
    "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1",
])
async def test_routing_hints_never_reach_exchange_without_a_passed_session(request_line: str) -> None:
    async with flow_environment(owa=owa_config(cookie_reader="lenient")) as env:
        recorder = env.owa.state.recorder
        mark = recorder.requests()[-1].id if recorder.requests() else 0
        body = b"username=alice&password=x&destination=x&flags=4" if request_line.startswith("POST") else b""
        payload = (f"{request_line}\r\nHost: {HOST}\r\nConnection: close\r\n"
                   f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                   f"Cookie: {'; '.join(HINTS)}; PBack=0\r\n\r\n").encode() + body
        assert await exchange(env.port, payload, [request_line.split()[0]])
        for record in (record for record in recorder.requests() if record.id > mark):
            hints = [name for name in record.cookie_names
                     if name.lower().startswith(("x-beresource", "x-anonresource", "x-backendcookie"))]
            assert hints == [], (record.target, hints)


async def test_routing_hints_still_reach_exchange_with_a_passed_session() -> None:
    async with flow_environment() as env:
        own = await signed_in_bob(env)
        mark = env.owa.state.recorder.requests()[-1].id
        answer = await get_mailbox(env, [f"{own}; X-BackEndCookie=S-1-5-21-1=abc; X-BEResource=srv".encode()])
        assert "Bob Baker" in answer.text
        forwarded = [record for record in env.owa.state.recorder.requests() if record.id > mark]
        assert forwarded
        assert {"X-BackEndCookie", "X-BEResource"} <= set(forwarded[-1].cookie_names)
        assert sorted(n.lower() for n in forwarded[-1].cookie_names if n.lower() in CADATA_NAMES) == sorted(
            CADATA_NAMES)
