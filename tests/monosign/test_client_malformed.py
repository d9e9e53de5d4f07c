"""Error mapping of bodies that are not the contract (respx: these cannot come from our simulator)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from gateway.monosign import (
    BreakerState,
    CircuitBreaker,
    ErrorPage,
    InputRefused,
    MonosignClient,
    MonosignUnreachable,
    UnexpectedResponse,
)
from gateway.monosign.client import MAX_BODY_BYTES
from gateway.policy.user_agent import ClientDevice

BASE = "https://monosign.test"
LOOKUP = f"{BASE}/api/v1.4/users/by-username"
USER = {"Id": "7f1c", "UserName": "john.smith", "Email": "j@example.com", "DisplayName": "John",
        "Source": "ad", "MfaMethods": ["Push"]}


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> MonosignClient:
    return MonosignClient(base_url=BASE, api_key="id", api_secret="key",
                          breaker=CircuitBreaker(threshold=3, cooldown=60))


@pytest.mark.parametrize(
    ("response", "why"),
    [
        (httpx.Response(200, text="<html><body>Corporate proxy: please sign in</body></html>",
                        headers={"content-type": "text/html"}), "content type 'text/html'"),
        (httpx.Response(200, content=b'{"Success": true, "Code": 1, "Data": {"Id": "7f',
                        headers={"content-type": "application/json"}), "not valid JSON"),
        (httpx.Response(200, content=b'{"Success": true, "Code": 1, "Data": {}}',
                        headers={"content-type": "text/plain"}), "content type 'text/plain'"),
        (httpx.Response(200, json={"Code": 1, "Data": USER}), "no boolean 'Success'"),
        (httpx.Response(200, json={"Success": True, "Code": 1, "Data": {"Id": "7f1c"}}), "Success without"),
        (httpx.Response(200, json={"Success": True, "Code": 1}), "Success without an object"),
        (httpx.Response(200, json={"Success": True, "Code": 7, "Data": USER}), "Success true with Code 7"),
        (httpx.Response(418, json={"Success": False, "Code": 77, "Message": "?"}), "unknown failure Code 77"),
        (httpx.Response(200, content=b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}",
                        headers={"content-type": "application/json"}), "larger than"),
    ],
)
async def test_not_the_contract_is_never_a_yes(mock: respx.MockRouter, client: MonosignClient,
                                               response: httpx.Response, why: str) -> None:
    mock.get(LOOKUP).mock(return_value=response)
    with pytest.raises(UnexpectedResponse) as info:
        await client.lookup_user("john.smith")
    assert why in str(info.value)
    assert info.value.http_status == response.status_code
    await client.aclose()


async def test_html_502_from_a_proxy_is_an_error_page_not_unreachable(mock: respx.MockRouter,
                                                                      client: MonosignClient) -> None:
    mock.get(LOOKUP).mock(return_value=httpx.Response(502, text="<h1>Bad Gateway</h1>",
                                                      headers={"content-type": "text/html"}))
    with pytest.raises(ErrorPage) as info:
        await client.lookup_user("john.smith")
    assert not isinstance(info.value, MonosignUnreachable)  # an HTTP answer: never fail-open
    assert info.value.http_status == 502
    await client.aclose()


async def test_an_envelope_on_a_5xx_is_still_read(mock: respx.MockRouter, client: MonosignClient) -> None:
    mock.get(LOOKUP).mock(return_value=httpx.Response(500, json={"Success": True, "Code": 1, "Data": USER}))
    assert (await client.lookup_user("john.smith")).id == "7f1c"
    await client.aclose()


# Answers a caller could make Monosign (or a proxy in front of it) give by shaping its input: each
# is an HTTP answer, so it fails closed and never counts towards the breaker (nor fail-open).
ODD_ANSWERS = [
    httpx.Response(200, text="<html/>", headers={"content-type": "text/html"}),
    httpx.Response(500, text="<h1>Internal Server Error</h1>", headers={"content-type": "text/html"}),
    httpx.Response(502, text="<h1>Bad Gateway</h1>", headers={"content-type": "text/html"}),
    httpx.Response(503, text="", headers={"content-type": "text/plain"}),
    httpx.Response(500, content=b'{"Success": tru', headers={"content-type": "application/json"}),
    httpx.Response(500, content=b"[1, 2, 3]", headers={"content-type": "application/json"}),
    httpx.Response(200, content=b"\xff\xfe garbage", headers={"content-type": "application/json"}),
    httpx.Response(500, content=b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}",
                   headers={"content-type": "application/json"}),
    httpx.Response(400, json={"Success": False}),
    httpx.Response(200, json={"Success": True, "Code": 1, "Data": {"Id": 7}}),
]


@pytest.mark.parametrize("response", ODD_ANSWERS, ids=lambda response: f"{response.status_code}")
async def test_odd_answers_never_count_towards_the_breaker(mock: respx.MockRouter, client: MonosignClient,
                                                           response: httpx.Response) -> None:
    route = mock.get(LOOKUP).mock(return_value=response)
    for _ in range(5):  # the breaker's threshold is 3
        with pytest.raises(UnexpectedResponse) as info:
            await client.lookup_user("john.smith")
        assert not isinstance(info.value, MonosignUnreachable)
    assert client.breaker_state is BreakerState.CLOSED
    assert route.call_count == 5
    await client.aclose()


async def test_an_odd_answer_proves_monosign_reachable(mock: respx.MockRouter, client: MonosignClient) -> None:
    """Two transport failures, then an HTML 500: the failure count starts again."""
    mock.get(LOOKUP).mock(side_effect=[httpx.ConnectError("refused")] * 4 + ODD_ANSWERS[1:2]
                          + [httpx.ConnectError("refused")] * 4)
    for _ in range(2):  # each lookup tries twice (one retry on a connection error)
        with pytest.raises(MonosignUnreachable):
            await client.lookup_user("john.smith")
    with pytest.raises(ErrorPage):
        await client.lookup_user("john.smith")
    assert client.breaker.consecutive_failures == 0
    for _ in range(2):
        with pytest.raises(MonosignUnreachable):
            await client.lookup_user("john.smith")
    assert client.breaker_state is BreakerState.CLOSED
    await client.aclose()


async def test_connect_error_retried_once_for_get(mock: respx.MockRouter, client: MonosignClient) -> None:
    route = mock.get(LOOKUP).mock(side_effect=[httpx.ConnectError("refused"),
                                               httpx.Response(200, json={"Success": True, "Code": 1, "Data": USER})])
    assert (await client.lookup_user("john.smith")).user_name == "john.smith"
    assert route.call_count == 2
    verify = mock.post(f"{BASE}/api/v1.4/mfa/verify").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(MonosignUnreachable):
        await client.verify_code("7f1c", "123456")
    assert verify.call_count == 1
    await client.aclose()


async def test_headers_and_bodies_sent(mock: respx.MockRouter, client: MonosignClient) -> None:
    route = mock.post(f"{BASE}/api/v1.4/mfa/push").mock(
        return_value=httpx.Response(200, json={"Success": True, "Code": 1,
                                               "Data": {"RequestId": "b2e0", "ExpiresInSeconds": 60}}))
    await client.start_push("7f1c", "203.0.113.9", ClientDevice("Chrome", "Windows"))
    request = route.calls.last.request
    assert request.headers["MonoSign-AppId"] == "id"
    assert request.headers["MonoSign-AppKey"] == "key"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    import json

    context = {"App": "Exchange OWA", "Browser": "Chrome", "Os": "Windows", "ClientIp": "203.0.113.9"}
    assert json.loads(request.content) == {"UserId": "7f1c", "ClientIp": "203.0.113.9",
                                           "UserAgent": "Chrome on Windows", "Application": "Exchange OWA",
                                           "Context": context}
    await client.start_push("7f1c", "203.0.113.9", ClientDevice("Firefox", "Linux"), number_challenge="07")
    assert json.loads(route.calls.last.request.content)["NumberChallenge"] == "07"
    await client.aclose()


async def test_a_request_that_cannot_be_written_is_refused_not_unreachable(mock: respx.MockRouter,
                                                                           client: MonosignClient) -> None:
    mock.get(LOOKUP).mock(side_effect=httpx.LocalProtocolError("Illegal header value"))
    for _ in range(5):
        with pytest.raises(InputRefused):
            await client.lookup_user("john.smith")
    assert client.breaker_state is BreakerState.CLOSED
    assert client.breaker.consecutive_failures == 0
    await client.aclose()
