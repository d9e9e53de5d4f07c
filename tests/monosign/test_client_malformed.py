"""Error mapping of bodies that are not the contract (respx: these cannot come from our simulator)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from gateway.monosign import (
    BreakerState,
    CircuitBreaker,
    MonosignClient,
    MonosignUnreachable,
    UnexpectedResponse,
)
from gateway.monosign.client import MAX_BODY_BYTES

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


async def test_html_502_from_a_proxy_is_unreachable(mock: respx.MockRouter, client: MonosignClient) -> None:
    mock.get(LOOKUP).mock(return_value=httpx.Response(502, text="<h1>Bad Gateway</h1>",
                                                      headers={"content-type": "text/html"}))
    with pytest.raises(MonosignUnreachable) as info:
        await client.lookup_user("john.smith")
    assert (info.value.reason, info.value.http_status) == ("http", 502)
    await client.aclose()


async def test_an_envelope_on_a_5xx_is_still_read(mock: respx.MockRouter, client: MonosignClient) -> None:
    mock.get(LOOKUP).mock(return_value=httpx.Response(500, json={"Success": True, "Code": 1, "Data": USER}))
    assert (await client.lookup_user("john.smith")).id == "7f1c"
    await client.aclose()


async def test_bodies_without_envelope_count_towards_the_breaker(mock: respx.MockRouter,
                                                                 client: MonosignClient) -> None:
    route = mock.get(LOOKUP).mock(return_value=httpx.Response(200, text="<html/>",
                                                              headers={"content-type": "text/html"}))
    for _ in range(3):
        with pytest.raises(UnexpectedResponse):
            await client.lookup_user("john.smith")
    assert client.breaker_state is BreakerState.OPEN
    assert route.call_count == 3
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
    await client.start_push("7f1c", "203.0.113.9", "Mozilla/5.0")
    request = route.calls.last.request
    assert request.headers["MonoSign-AppId"] == "id"
    assert request.headers["MonoSign-AppKey"] == "key"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    import json

    assert json.loads(request.content) == {"UserId": "7f1c", "ClientIp": "203.0.113.9", "UserAgent": "Mozilla/5.0",
                                           "Application": "Exchange OWA"}
    await client.aclose()
