"""Table tests for the header policy (both directions), forwarding headers, cookies and client IPs."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.policy.headers import (
    HOP_BY_HOP,
    client_ip,
    forwarded_request_headers,
    forwarding_headers,
    request_headers_for_upstream,
    response_headers_for_client,
)


def _proxy(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_hop_by_hop_list() -> None:
    assert {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    } == HOP_BY_HOP


def test_reference_hop_by_hop_vector_does_not_reach_upstream() -> None:
    headers = _proxy(
        ("Host", "mail.example"),
        ("Connection", "keep-alive, X-Secret"),
        ("X-Secret", "s"),
        ("Keep-Alive", "5"),
        ("TE", "trailers"),
        ("Proxy-Authorization", "x"),
        ("Accept", "*/*"),
    )
    result = request_headers_for_upstream(headers, peer_trusted=False)
    assert list(result.items()) == [("Host", "mail.example"), ("Accept", "*/*")]


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "Proxy-Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "Expect",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
        "X-CommonAccessToken",
        "X-IsFromCafe",
        "X_Custom",
        "x_forwarded_for",
        "X-Forwarded_For",
    ],
)
@pytest.mark.parametrize("trusted", [False, True])
def test_always_dropped(name: str, trusted: bool) -> None:
    result = request_headers_for_upstream(_proxy((name, "v"), ("Accept", "x")), peer_trusted=trusted)
    assert name not in result
    assert list(result.items()) == [("Accept", "x")]


@pytest.mark.parametrize(
    "name",
    [
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "X-Forwarded-Uri",
        "X-Forwarded-Prefix",
        "X-Forwarded-Email",
        "x-forwarded-whatever",
        "X-Real-IP",
        "X-Request-Id",
        "X-Original-Host",
        "X-Host",
    ],
)
def test_forwarding_claims_dropped_unless_peer_trusted(name: str) -> None:
    headers = _proxy((name, "v"))
    assert name not in request_headers_for_upstream(headers, peer_trusted=False)
    assert request_headers_for_upstream(headers, peer_trusted=True)[name] == "v"


def test_every_connection_value_and_token_is_honoured() -> None:
    headers = _proxy(
        ("connection", "X-A ,x-b"),
        ("CONNECTION", "X-C"),
        ("X-A", "1"),
        ("X-B", "2"),
        ("x-c", "3"),
        ("X-D", "4"),
    )
    assert list(request_headers_for_upstream(headers, peer_trusted=True).items()) == [("X-D", "4")]


def test_extra_drop_is_case_insensitive_and_host_is_kept() -> None:
    headers = _proxy(("Host", "h"), ("X-Gateway-Thing", "1"), ("Cookie", "a=b"))
    result = request_headers_for_upstream(headers, peer_trusted=False, drop=("x-gateway-thing",))
    assert list(result.items()) == [("Host", "h"), ("Cookie", "a=b")]


def test_duplicates_and_order_are_kept() -> None:
    headers = _proxy(("Accept", "a"), ("Cookie", "x=1"), ("Accept", "b"), ("Authorization", "NTLM abc"))
    result = request_headers_for_upstream(headers, peer_trusted=False)
    assert list(result.items()) == [("Accept", "a"), ("Cookie", "x=1"), ("Accept", "b"), ("Authorization", "NTLM abc")]


def test_plain_dict_input_is_accepted() -> None:
    result = request_headers_for_upstream({"connection": "x-a", "X-A": "1", "Accept": "*/*"}, peer_trusted=False)
    assert list(result.items()) == [("Accept", "*/*")]


def test_reference_underscore_and_case_smuggling_upstream_sees_one_gateway_value() -> None:
    # python-proxy-engineering §2.2: every spelling and a duplicate, from an untrusted peer.
    headers = _proxy(
        ("X_Forwarded_For", "6.6.6.1"),
        ("x-forwarded-for", "6.6.6.2"),
        ("X-FORWARDED-FOR", "6.6.6.3"),
        ("X-Forwarded-For", "6.6.6.4"),
        ("X-Forwarded-Host", "evil.example"),
        ("X_Forwarded_Host", "evil.example"),
        ("Forwarded", "for=6.6.6.5"),
    )
    upstream = request_headers_for_upstream(headers, peer_trusted=False)
    forwarding_headers(upstream, client_ip="203.0.113.7", proto="https", host="mail.example", peer_trusted=False)
    assert upstream.getall("X-Forwarded-For") == ["203.0.113.7"]
    assert upstream.getall("X-Forwarded-Host") == ["mail.example"]
    assert upstream.getall("Forwarded") == ["for=203.0.113.7;proto=https;host=mail.example"]
    assert not any("_" in name for name in upstream)
    assert "6.6.6" not in repr(upstream)


def test_forwarding_headers_for_untrusted_peer_overwrite_even_if_left_in() -> None:
    headers: CIMultiDict[str] = CIMultiDict(
        [("X-Forwarded-For", "6.6.6.6"), ("X_Forwarded_Proto", "http"), ("X-Forwarded-Proto", "http")]
    )
    forwarding_headers(headers, client_ip="198.51.100.1", proto="https", host="mail.example", peer_trusted=False)
    assert dict(headers) == {
        "X-Forwarded-For": "198.51.100.1",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "mail.example",
        "Forwarded": "for=198.51.100.1;proto=https;host=mail.example",
    }


def test_forwarding_headers_append_to_trusted_chain() -> None:
    headers: CIMultiDict[str] = CIMultiDict(
        [
            ("X-Forwarded-For", "192.0.2.60, 10.0.0.2"),
            ("X-Forwarded-For", "10.0.0.3"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "internal"),
            ("Forwarded", "for=192.0.2.60"),
        ]
    )
    forwarding_headers(headers, client_ip="10.0.0.4", proto="https", host="mail.example:8443", peer_trusted=True)
    assert headers.getall("X-Forwarded-For") == ["192.0.2.60, 10.0.0.2, 10.0.0.3, 10.0.0.4"]
    assert headers.getall("X-Forwarded-Proto") == ["https"]
    assert headers.getall("X-Forwarded-Host") == ["mail.example:8443"]
    assert headers.getall("Forwarded") == ['for=192.0.2.60, for=10.0.0.4;proto=https;host="mail.example:8443"']


def test_forwarded_quotes_ipv6() -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    forwarding_headers(headers, client_ip="2001:db8:cafe::17", proto="https", host="mail.example", peer_trusted=False)
    assert headers["X-Forwarded-For"] == "2001:db8:cafe::17"
    assert headers["Forwarded"] == 'for="[2001:db8:cafe::17]";proto=https;host=mail.example'


def test_response_headers() -> None:
    headers = _proxy(
        ("Connection", "close, X-Internal"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("X-Internal", "1"),
        ("Content-Length", "10"),
        ("Content-Encoding", "gzip"),
        ("Set-Cookie", "a=1; path=/"),
        ("WWW-Authenticate", "Negotiate"),
        ("Set-Cookie", "b=2; path=/"),
        ("WWW-Authenticate", "NTLM"),
        ("Proxy-Authenticate", "Basic"),
        ("Upgrade", "h2c"),
        ("X_Backend", "kept"),
    )
    assert list(response_headers_for_client(headers).items()) == [
        ("Content-Length", "10"),
        ("Content-Encoding", "gzip"),
        ("Set-Cookie", "a=1; path=/"),
        ("WWW-Authenticate", "Negotiate"),
        ("Set-Cookie", "b=2; path=/"),
        ("WWW-Authenticate", "NTLM"),
        ("X_Backend", "kept"),
    ]


TRUSTED = [ip_network("10.0.0.0/8"), ip_network("2001:db8:1::/48")]


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),  # untrusted peer: header ignored
        ("203.0.113.9", [], "203.0.113.9"),
        ("10.0.0.5", [], "10.0.0.5"),  # trusted peer, no header: the peer
        ("10.0.0.5", ["1.2.3.4"], "1.2.3.4"),
        ("10.0.0.5", ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),  # right-most untrusted, spoofed left part ignored
        ("10.0.0.5", ["6.6.6.6, 1.2.3.4, 10.0.0.9"], "1.2.3.4"),  # trusted hops skipped
        ("10.0.0.5", ["6.6.6.6", "1.2.3.4, 10.1.1.1"], "1.2.3.4"),  # several headers, in order
        ("10.0.0.5", ["10.0.0.8, 10.0.0.9"], "10.0.0.8"),  # all trusted: the left-most
        ("10.0.0.5", ["garbage, 1.2.3.4"], "1.2.3.4"),
        ("10.0.0.5", ["1.2.3.4, garbage"], "10.0.0.5"),  # garbage where a proxy wrote: the peer
        ("10.0.0.5", ["1.2.3.4:5678"], "1.2.3.4"),
        ("10.0.0.5", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.5", ["2001:DB8::1"], "2001:db8::1"),
        ("10.0.0.5", [" , 1.2.3.4 ,"], "1.2.3.4"),
        ("2001:db8:1::5", ["198.51.100.3"], "198.51.100.3"),
        ("::ffff:10.0.0.5", ["198.51.100.3"], "198.51.100.3"),  # IPv4-mapped peer
        ("::ffff:203.0.113.9", ["198.51.100.3"], "203.0.113.9"),
        ("not-an-ip", ["198.51.100.3"], "not-an-ip"),
    ],
)
def test_client_ip(peer: str, xff: list[str], expected: str) -> None:
    headers = _proxy(*(("X-Forwarded-For", value) for value in xff))
    assert client_ip(peer, headers, TRUSTED) == expected


def test_client_ip_without_trusted_networks_is_the_peer() -> None:
    assert client_ip("10.0.0.5", _proxy(("X-Forwarded-For", "1.2.3.4")), []) == "10.0.0.5"


_NAMES = st.sampled_from([
    "Host", "Accept", "Cookie", "X-Custom", "Connection", "connection", "Keep-Alive", "TE", "Upgrade",
    "X-Forwarded-For", "x-forwarded-for", "X_Forwarded_For", "X-Forwarded-Proto", "X-Forwarded-Host",
    "X-Forwarded-Port", "Forwarded", "FORWARDED", "X-Real-IP", "X-Request-Id", "Expect", "X-Original-URL",
    "X-Http-Method-Override", "X_Custom", "Proxy-Connection", "Transfer-Encoding",
])
_VALUES = st.sampled_from([
    "1", "203.0.113.9", "203.0.113.9, 10.0.0.1", " , 198.51.100.2 ,", "for=192.0.2.60;proto=http", "",
    "keep-alive", "close, X-Custom", "X-Forwarded-For", "x-forwarded-port, Forwarded", "Upgrade, TE",
])


@given(
    st.lists(st.tuples(_NAMES, _VALUES), max_size=12),
    st.booleans(),
    st.lists(st.sampled_from(["X-Custom", "x-request-id", "Expect", "Cookie"]), max_size=2),
    st.sampled_from(["203.0.113.7", "2001:db8::5"]),
)
def test_forwarded_request_headers_is_the_filter_then_the_forwarding_headers(
        pairs: list[tuple[str, str]], trusted: bool, drop: list[str], client: str) -> None:
    headers = CIMultiDictProxy(CIMultiDict(pairs))
    composed = request_headers_for_upstream(headers, peer_trusted=trusted, drop=drop)
    forwarding_headers(composed, client_ip=client, proto="https", host="mail.example", peer_trusted=trusted)
    fused = forwarded_request_headers(headers, peer_trusted=trusted, client_ip=client, proto="https",
                                      host="mail.example", drop=drop)
    assert list(fused.items()) == list(composed.items())
