"""Edge checks (policy.edge): table tests, and a property for the host normaliser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.policy.edge import (
    EdgeRejection,
    allowed_host_set,
    check_edge,
    loopback_aliases,
    new_request_id,
    normalise_host,
    valid_request_id,
)

ALLOWED = allowed_host_set(["mail.example.com", "Autodiscover.Example.com:443", "[::1]:8443", "10.0.0.5:8080"],
                           scheme="https")


def _headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


@pytest.mark.parametrize(
    ("value", "scheme", "expected"),
    [
        ("mail.example.com", "https", "mail.example.com"),
        ("MAIL.Example.COM", "https", "mail.example.com"),
        ("mail.example.com:443", "https", "mail.example.com"),
        ("mail.example.com:443", "http", "mail.example.com:443"),
        ("mail.example.com:80", "http", "mail.example.com"),
        ("mail.example.com:8443", "https", "mail.example.com:8443"),
        ("[::1]:443", "https", "[::1]"),
        ("[2001:DB8::1]", "https", "[2001:db8::1]"),
        ("10.0.0.5", "https", "10.0.0.5"),
        (" mail.example.com ", "https", "mail.example.com"),
        ("a b", "https", None),
        ("mail.example.com:@evil", "https", None),
        ("mail.example.com:80@evil", "https", None),
        ("user@mail.example.com", "https", None),
        ("mail.example.com/x", "https", None),
        ("mail.example.com\\x", "https", None),
        ("mail%2eexample.com", "https", None),
        ("mail.example.com:", "https", None),
        ("mail.example.com:99999", "https", None),
        ("mail.example.com:8a", "https", None),
        ("", "https", None),
        ("[::1", "https", None),
        ("m\u00e4il.example.com", "https", None),
        ("\u212aey.example.com", "https", None),  # KELVIN SIGN lower-cases to an ASCII "k"
    ],
)
def test_normalise_host(value: str, scheme: str, expected: str | None) -> None:
    assert normalise_host(value, scheme=scheme) == expected


def test_allowed_host_set_normalises_configuration() -> None:
    assert frozenset({"mail.example.com", "autodiscover.example.com", "[::1]:8443", "10.0.0.5:8080"}) == ALLOWED


@pytest.mark.parametrize(
    ("target", "version", "headers", "expected"),
    [
        ("/owa/", (1, 1), [("Host", "mail.example.com")], None),
        ("/owa/", (1, 1), [("Host", "mail.example.com:443")], None),
        ("/owa/", (1, 1), [("Host", "AUTODISCOVER.example.com")], None),
        ("/owa/", (1, 1), [("Host", "[::1]:8443")], None),
        ("/owa/", (1, 0), [("Host", "mail.example.com")], None),
        ("/owa/", (1, 0), [("Host", "mail.example.com"), ("Content-Length", "4")], None),
        ("http://evil/owa/", (1, 1), [("Host", "mail.example.com")], EdgeRejection.NOT_ORIGIN_FORM),
        ("https://mail.example.com/owa/", (1, 1), [("Host", "mail.example.com")], EdgeRejection.NOT_ORIGIN_FORM),
        ("*", (1, 1), [("Host", "mail.example.com")], EdgeRejection.NOT_ORIGIN_FORM),
        ("evil:443", (1, 1), [("Host", "mail.example.com")], EdgeRejection.NOT_ORIGIN_FORM),
        ("", (1, 1), [("Host", "mail.example.com")], EdgeRejection.NOT_ORIGIN_FORM),
        ("/owa/", (1, 0), [("Host", "mail.example.com"), ("Transfer-Encoding", "chunked")],
         EdgeRejection.TE_ON_HTTP10),
        ("/owa/", (1, 1), [], EdgeRejection.MISSING_HOST),
        ("/owa/", (1, 0), [], EdgeRejection.MISSING_HOST),
        ("/owa/", (1, 1), [("Host", "mail.example.com"), ("host", "mail.example.com")], EdgeRejection.DUPLICATE_HOST),
        ("/owa/", (1, 1), [("Host", "mail.example.com evil")], EdgeRejection.INVALID_HOST),
        ("/owa/", (1, 1), [("Host", "")], EdgeRejection.INVALID_HOST),
        ("/owa/", (1, 1), [("Host", "evil.example")], EdgeRejection.UNKNOWN_HOST),
        ("/owa/", (1, 1), [("Host", "mail.example.com.evil.example")], EdgeRejection.UNKNOWN_HOST),
        ("/owa/", (1, 1), [("Host", "mail.example.com:8443")], EdgeRejection.UNKNOWN_HOST),
        ("/owa/", (1, 1), [("Host", "[::1]")], EdgeRejection.UNKNOWN_HOST),
    ],
)
def test_check_edge(target: str, version: tuple[int, int], headers: list[tuple[str, str]],
                    expected: EdgeRejection | None) -> None:
    assert check_edge(target, version, _headers(*headers), allowed_hosts=ALLOWED, scheme="https") is expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [("abc-123", True), ("0f" * 32, True), ("a.b:c_d", True), ("x" * 65, False), ("", False), (None, False),
     ("has space", False), ("new\nline", False), ("semi;colon", False), ("ünïcode", False)],
)
def test_valid_request_id(value: str | None, valid: bool) -> None:
    assert valid_request_id(value) is valid


def test_new_request_ids_are_valid_and_distinct() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(valid_request_id(value) and len(value) == 32 for value in ids)


@given(st.text(max_size=80))
def test_normalised_hosts_are_stable_and_safe(value: str) -> None:
    host = normalise_host(value, scheme="https")
    if host is not None:
        assert normalise_host(host, scheme="https") == host
        assert host == host.lower()
        assert not any(char in host for char in " \t\r\n@/\\%?#")


@pytest.mark.parametrize(
    ("public_host", "scheme", "aliases"),
    [
        ("127.0.0.1:8080", "http", {"localhost:8080", "[::1]:8080"}),
        ("localhost:8080", "http", {"127.0.0.1:8080", "[::1]:8080"}),
        ("LOCALHOST:8080", "http", {"127.0.0.1:8080", "[::1]:8080"}),
        ("[::1]:8080", "http", {"localhost:8080", "127.0.0.1:8080"}),
        ("127.0.0.1", "http", {"localhost", "[::1]"}),
        ("127.0.0.1:80", "http", {"localhost", "[::1]"}),  # the default port is no port
        ("localhost:443", "https", {"127.0.0.1", "[::1]"}),
        ("localhost:443", "http", {"127.0.0.1:443", "[::1]:443"}),
        ("mail.example.com", "https", set()),
        ("mail.example.com:8080", "http", set()),
        ("127.0.0.2:8080", "http", set()),  # loopback, but not a name people type for it
        ("localhost.example.com:8080", "http", set()),
        ("mylocalhost:8080", "http", set()),
        ("[::2]:8080", "http", set()),
        ("10.0.0.1:8080", "http", set()),
        ("a b", "http", set()),
    ],
)
def test_loopback_aliases(public_host: str, scheme: str, aliases: set[str]) -> None:
    assert loopback_aliases(public_host, scheme=scheme) == aliases
