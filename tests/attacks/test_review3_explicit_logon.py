"""Review 3: Exchange's explicit-logon confusion (ProxyShell family), in every spelling, through the gateway.

Each request goes over a raw socket to a running gateway in front of the Exchange simulator: it must
be refused (403, audited) before anything reaches Exchange, whatever the spelling; what clients send
still passes.
"""

from __future__ import annotations

from tests.attacks.raw_http import exchange, request
from tests.flow.conftest import HOST, flow_environment
from tests.logs import CapturedLogs, events
from tests.policy.test_explicit_logon_spellings import CLEAN, CONFUSED

PASSWORD_ONLY = tuple(target for target in CLEAN if not target.lower().startswith(("/owa", "/ecp")))


async def test_every_spelling_is_refused_before_exchange(captured_logs: CapturedLogs) -> None:
    async with flow_environment() as env:
        recorder = env.owa.state.recorder
        problems, forbidden = [], 0
        for target in CONFUSED:
            mark = recorder.requests()[-1].id if recorder.requests() else 0
            answers = await exchange(env.port, request("GET", target, host=HOST), ["GET"])
            # 404: `/autodiscover;x/` is no vdir to the gateway, so it is refused before the rule.
            if not answers or answers[0].status not in (403, 404):
                problems.append(f"{target}: {answers[0].status if answers else 'no answer'}")
            forbidden += bool(answers) and answers[0].status == 403
            reached = [record.target for record in recorder.requests() if record.id > mark]
            if reached:
                problems.append(f"{target}: reached Exchange as {reached}")
        assert problems == []
        refused = [event for event in events(captured_logs(), "gateway.audit")
                   if event.get("reason") == "autodiscover path confusion"]
        assert len(refused) == forbidden >= len(CONFUSED) - 1


async def test_an_email_cookie_is_read_as_asp_net_reads_params() -> None:
    """`Request.Params["Email"]` reads cookies too: the self-reference may come from there."""
    async with flow_environment() as env:
        for cookie in ("Email=autodiscover/autodiscover.json?@evil.com", "EMAIL=autodiscover/autodiscover.json%3F@x",
                       "email=AutoDiscover%u002Fautodiscover.JSON", "Email=x@evil.com/mapi/nspi"):
            for target in ("/autodiscover/autodiscover.json/mapi/nspi", "/EWS/Exchange.asmx"):
                answers = await exchange(env.port, request("GET", target, host=HOST, headers=[("Cookie", cookie)]),
                                         ["GET"])
                assert answers[0].status == 403, (cookie, target)
        answers = await exchange(env.port, request("GET", "/EWS/Exchange.asmx", host=HOST,
                                                   headers=[("Cookie", "Email=alice@corp.example")]), ["GET"])
        assert answers[0].status == 401  # the simulator's NTLM challenge: the request reached Exchange


async def test_a_form_body_is_refused_where_email_could_come_from_it() -> None:
    """`Request.Params["Email"]` reads form fields as well; no client of these endpoints posts a form."""
    async with flow_environment() as env:
        body = b"Email=autodiscover/autodiscover.json%3F@evil.com"
        for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                             "Application/X-WWW-Form-Urlencoded; charset=utf-8"):
            for target in ("/autodiscover/autodiscover.json/mapi/nspi", "/autodiscover/autodiscover.xml"):
                answers = await exchange(env.port, request("POST", target, host=HOST, body=body,
                                                           headers=[("Content-Type", content_type)]), ["POST"])
                assert answers[0].status == 403, (content_type, target)


async def test_what_clients_send_still_reaches_exchange() -> None:
    async with flow_environment() as env:
        recorder = env.owa.state.recorder
        for target in PASSWORD_ONLY:
            mark = recorder.requests()[-1].id if recorder.requests() else 0
            answers = await exchange(env.port, request("GET", target, host=HOST), ["GET"])
            assert answers[0].status != 403, target
            assert [record for record in recorder.requests() if record.id > mark], target
