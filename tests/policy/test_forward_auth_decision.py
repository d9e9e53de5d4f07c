"""Forward auth's decision: the asking peer, the described request, the site's rules, the session."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.config import parse_config
from gateway.policy.forward_auth import SessionFactors, Verdict, decide
from gateway.policy.rules import Identity
from gateway.policy.sites import SiteIndex
from gateway.policy.users import parse_username

SITES = SiteIndex(parse_config("""\
sites:
  - name: wiki
    hosts: [wiki.example.com]
    upstream: http://127.0.0.1:9
    profile: passthrough
    rules:
      - { paths: ["/health"], methods: [GET, HEAD], action: bypass }
      - { paths: ["/admin"], groups: [wiki-admins], action: two_factor }
      - { paths: ["/admin"], action: deny }
      - { paths: ["/drafts"], action: two_factor }
      - { networks: ["10.0.0.0/8"], action: one_factor }
      - { methods: [GET], action: bypass }
"""))

ALICE = Identity(parse_username("alice"), frozenset({"wiki-admins"}))
BOB = Identity(parse_username("bob"))


def ask(path: str, *, method: str = "GET", host: str = "wiki.example.com", client_ip: str = "192.0.2.7",
        session: SessionFactors | None = None, trusted: bool = True) -> tuple[Verdict, int]:
    headers = CIMultiDict([("X-Forwarded-Method", method), ("X-Forwarded-Proto", "https"),
                           ("X-Forwarded-Host", host), ("X-Forwarded-Uri", path)])
    decision = decide(headers, peer_trusted=trusted, client_ip=client_ip, sites=SITES, session=session)
    return decision.verdict, decision.status


@pytest.mark.parametrize(
    ("path", "method", "client_ip", "session", "expected"),
    [
        ("/health", "GET", "192.0.2.7", None, (Verdict.ALLOW, 200)),
        ("/health", "POST", "192.0.2.7", None, (Verdict.DENY, 403)),  # past the GET rules, none left: deny
        ("/page", "GET", "192.0.2.7", None, (Verdict.ALLOW, 200)),
        ("/page", "POST", "192.0.2.7", None, (Verdict.DENY, 403)),  # no rule: default deny
        ("/page", "POST", "10.1.2.3", None, (Verdict.SIGN_IN, 401)),
        ("/page", "POST", "10.1.2.3", SessionFactors(BOB, second_factor=False), (Verdict.ALLOW, 200)),
        ("/drafts/x", "GET", "192.0.2.7", None, (Verdict.SIGN_IN, 401)),
        ("/drafts/x", "GET", "192.0.2.7", SessionFactors(BOB, second_factor=False), (Verdict.SIGN_IN, 401)),
        ("/drafts/x", "GET", "192.0.2.7", SessionFactors(BOB, second_factor=True), (Verdict.ALLOW, 200)),
        ("/admin", "GET", "192.0.2.7", None, (Verdict.SIGN_IN, 401)),  # a group rule: sign in first
        ("/admin/x", "GET", "192.0.2.7", SessionFactors(BOB, second_factor=True), (Verdict.DENY, 403)),
        ("/Admin/x", "GET", "192.0.2.7", SessionFactors(ALICE, second_factor=True), (Verdict.ALLOW, 200)),
        ("/admin;x=1/y", "GET", "192.0.2.7", SessionFactors(BOB, second_factor=True), (Verdict.DENY, 403)),
    ],
)
def test_the_rules_decide_as_for_proxied_requests(path: str, method: str, client_ip: str,
                                                  session: SessionFactors | None,
                                                  expected: tuple[Verdict, int]) -> None:
    assert ask(path, method=method, client_ip=client_ip, session=session) == expected


def test_an_untrusted_peer_gets_403_whatever_it_describes() -> None:
    assert ask("/health", trusted=False) == (Verdict.DENY, 403)


@pytest.mark.parametrize("host", ["other.example.com", "wiki.example.com.evil", "evil/wiki.example.com"])
def test_a_host_no_site_lists_is_denied(host: str) -> None:
    assert ask("/page", host=host)[1] == 403


@pytest.mark.parametrize("path", ["/admin%2fx", "/public/../admin", "/admin%5cx", "//admin", "/adm%00in"])
def test_an_undecidable_description_is_a_403_to_the_proxy(path: str) -> None:
    assert ask(path) == (Verdict.BAD_REQUEST, 403)
