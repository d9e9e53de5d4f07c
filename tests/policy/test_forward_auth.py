"""Forward auth's reading of the original request: one unambiguous description, canonicalised like a proxied one."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.policy.forward_auth import ForwardAuthRefused, OriginalRequest, original_request
from gateway.policy.paths import canonicalize


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


def traefik(method: str = "GET", proto: str = "https", host: str = "wiki.example.com",
            uri: str = "/page") -> list[tuple[str, str]]:
    return [("X-Forwarded-Method", method), ("X-Forwarded-Proto", proto), ("X-Forwarded-Host", host),
            ("X-Forwarded-Uri", uri)]


def nginx(url: str = "https://wiki.example.com/page", method: str = "GET") -> list[tuple[str, str]]:
    return [("X-Original-URL", url), ("X-Original-Method", method)]


@pytest.mark.parametrize(
    ("given", "method", "url"),
    [
        (traefik(), "GET", "https://wiki.example.com/page"),
        (traefik(method="POST", uri="/admin/x?y=1"), "POST", "https://wiki.example.com/admin/x?y=1"),
        (traefik(proto="HTTP", host="Wiki.Example.COM:80"), "GET", "http://wiki.example.com/page"),
        (traefik(host="wiki.example.com:8443"), "GET", "https://wiki.example.com:8443/page"),
        (traefik(uri="/a/%7euser/b"), "GET", "https://wiki.example.com/a/~user/b"),
        (nginx(), "GET", "https://wiki.example.com/page"),
        (nginx("http://wiki.example.com:80/x?q=%2F"), "GET", "http://wiki.example.com/x?q=%2F"),
        (nginx("https://wiki.example.com"), "GET", "https://wiki.example.com/"),
        (nginx("https://wiki.example.com?a=1"), "GET", "https://wiki.example.com/?a=1"),
        (nginx(method="PROPFIND"), "PROPFIND", "https://wiki.example.com/page"),
        (nginx(method="get"), "get", "https://wiki.example.com/page"),  # kept: rules compare exactly
    ],
)
def test_an_unambiguous_description_is_read(given: list[tuple[str, str]], method: str, url: str) -> None:
    request = original_request(headers(*given))
    assert isinstance(request, OriginalRequest)
    assert request.method == method
    assert request.url == url


# Every spelling the canonicalisation refuses is refused here too, from either description: a path
# the other proxy normalises differently never gets a decision in another spelling.
NON_CANONICAL_PATHS = [
    "/admin%2fx", "/admin%2Fx", "/public/..%2fadmin", "/public/../admin", "/public/./admin", "/admin%5cx",
    "/admin\\x", "/public/%2e%2e/admin", "/public/%2e./admin", "/public/..;/admin", "/admin./x", "/admin /x",
    "//admin", "/admin#x", "/adm%00in", "/adm%25in", "/%u0061dmin", "/adm%c0%aein", "/admin%EF%BC%8Fx",
    "/admin\x00", "/admin\t",
]


@pytest.mark.parametrize("path", NON_CANONICAL_PATHS)
@pytest.mark.parametrize("style", ["forwarded", "nginx"])
def test_a_path_outside_the_canonical_grammar_is_refused_from_both_proxies(path: str, style: str) -> None:
    given = traefik(uri=path) if style == "forwarded" else nginx(f"https://wiki.example.com{path}")
    with pytest.raises(ForwardAuthRefused) as refused:
        original_request(headers(*given))
    assert path not in refused.value.reason


@pytest.mark.parametrize("path", ["/Admin", "/admin/", "/ADMIN/x", "/admin;jsessionid=1/x", "/admin/x.", "/%61dmin"])
def test_what_is_accepted_is_exactly_what_the_proxy_would_decide_on(path: str) -> None:
    try:
        proxied = canonicalize(path)
    except ValueError:
        proxied = None
    try:
        asked = original_request(headers(*traefik(uri=path))).target
    except ForwardAuthRefused:
        asked = None
    assert asked == proxied


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ([], "nothing to decide on"),
        ([*traefik(), ("X-Forwarded-Uri", "/other")], "X-Forwarded-Uri sent more than once"),
        ([*traefik(), ("X-Forwarded-Host", "evil.example")], "X-Forwarded-Host sent more than once"),
        ([*nginx(), ("X-Original-URL", "https://wiki.example.com/admin")], "X-Original-URL sent more than once"),
        ([*nginx(), ("X-Forwarded-Uri", "/admin")], "both X-Original-* and X-Forwarded-*"),
        ([*traefik(), ("X-Original-URL", "https://wiki.example.com/admin")], "both X-Original-* and X-Forwarded-*"),
        (traefik()[1:], "X-Forwarded-Method missing"),
        (traefik()[:3], "X-Forwarded-Uri missing"),
        (nginx()[:1], "X-Original-Method missing"),
        (nginx()[1:], "X-Original-URL missing"),
        (traefik(method=""), "X-Forwarded-Method missing"),
        (traefik(method="GET /x"), "X-Forwarded-Method: not a method"),
        (traefik(method="G\u00c9T"), "X-Forwarded-Method: not a method"),
        (traefik(proto="ftp"), "X-Forwarded-Proto: not http or https"),
        (traefik(proto="https, http"), "X-Forwarded-Proto: not http or https"),
        (traefik(host="wiki.example.com, evil.example"), "X-Forwarded-Host: more than one host"),
        (traefik(host="evil.example/x"), "X-Forwarded-Host: not a host"),
        (traefik(host="user@wiki.example.com"), "X-Forwarded-Host: not a host"),
        (traefik(host="wiki.\u212aexample.com"), "X-Forwarded-Host: not a host"),
        (traefik(uri="admin"), "X-Forwarded-Uri: not a path"),
        (traefik(uri="https://evil.example/admin"), "X-Forwarded-Uri: not a path"),
        (traefik(uri="?x=1"), "X-Forwarded-Uri: not a path"),
        (nginx("/page"), "X-Original-URL is not an absolute http(s) URL"),
        (nginx("javascript:alert(1)"), "X-Original-URL is not an absolute http(s) URL"),
        (nginx("ftp://wiki.example.com/x"), "X-Original-URL: not http or https"),
        (nginx("https://user@wiki.example.com/x"), "X-Original-URL: not a host"),
    ],
)
def test_an_ambiguous_or_broken_description_is_refused(given: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(ForwardAuthRefused) as refused:
        original_request(headers(*given))
    assert reason in refused.value.reason


def test_header_names_are_read_in_any_case() -> None:
    given = [(name.lower(), value) for name, value in traefik(uri="/x")]
    assert original_request(headers(*given)).target.path == "/x"
