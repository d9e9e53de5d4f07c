"""Client addresses for network rules: IPv4-mapped IPv6 read as IPv4, and nothing else unwrapped."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.config import Action, parse_config
from gateway.policy.addresses import client_address
from gateway.policy.rules import RuleRequest, RuleSet

INTERNAL = ipaddress.ip_network("10.0.0.0/8")
SITE = """\
sites:
  - name: intranet
    hosts: [intranet.example.com]
    upstream: http://127.0.0.1:9
    profile: passthrough
    rules:
      - { networks: ["10.0.0.0/8"], action: bypass }
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::FFFF:a01:203", "10.1.2.3"),
        ("2001:db8::1", "2001:db8::1"),
        ("2002:a01:203::1", "2002:a01:203::1"),  # 6to4 of 10.1.2.3: an IPv6 host, not 10.1.2.3
        ("2001:0:4136:e378:8000:63bf:f5fe:fdfc", "2001:0:4136:e378:8000:63bf:f5fe:fdfc"),  # Teredo
        ("::10.1.2.3", "::a01:203"),  # IPv4-compatible (deprecated): not unwrapped either
        ("10.1.2.3:443", None),
        ("[::1]", None),
        ("010.1.2.3", None),  # leading zeros: refused by the strict parser
        ("", None),
        ("localhost", None),
    ],
)
def test_only_ipv4_mapped_addresses_are_read_as_ipv4(text: str, expected: str | None) -> None:
    address = client_address(text)
    assert (str(address) if address is not None else None) == expected


@pytest.mark.parametrize("outsider", ["2002:a01:203::1", "2001:0:4136:e378:8000:63bf:f5fe:fdfc", "::10.1.2.3"])
def test_an_ipv6_address_carrying_an_internal_ipv4_address_is_not_internal(outsider: str) -> None:
    address = client_address(outsider)
    assert address is not None
    assert address not in INTERNAL
    rules = RuleSet(parse_config(SITE).sites[0].rules)
    assert rules.decide(RuleRequest(method="GET", lower_path="/", client_ip=outsider)).action is Action.DENY
    assert rules.decide(RuleRequest(method="GET", lower_path="/", client_ip="::ffff:10.1.2.3")).action is Action.BYPASS
