"""Red team, fourth pass: the per-address count (password spraying) against address rotation.

The count was keyed by the exact address text. One IPv6 host rotates through its whole /64 by
itself, and one IPv4 address is a /48 of 6to4 addresses (and a Teredo address): every new spelling
was a fresh count, so an attacker spraying passwords over many users never reached
`GATEWAY_MFA_MAX_FAILURES_IP`. Now an IPv6 address counts as its /64, one that carries an IPv4
address (mapped, 6to4, Teredo) as that IPv4 address, and a zone id is no part of it. Real servers:
the simulators, the gateway and its store; X-Forwarded-For names each attempt's address (127.0.0.1
is a trusted proxy here).
"""

from __future__ import annotations

import pytest

from gateway.mfa.lockout import Attempt, LockoutPolicy, Scope, client_address_key, client_network, counted
from tests.flow.conftest import EnvFactory
from tests.flow.test_smart_lockout import at_mfa_page, fail, from_address

SETTINGS = {"gateway_trusted_proxies": "127.0.0.1/32", "gateway_mfa_max_failures": 3,
            "gateway_mfa_max_failures_user": 6, "gateway_mfa_max_failures_ip": 5}

# One attacker, four spellings of where it is: each list is one address to the per-address count.
ROTATIONS = {
    "one IPv6 /64": ["2001:db8:1:2::a", "2001:db8:1:2:1:2:3:4", "2001:db8:1:2:ffff::1", "2001:db8:1:2::d"],
    "6to4 of one IPv4": ["2002:c633:6407:1::1", "2002:c633:6407:2::1", "2002:c633:6407:ffff::9", "198.51.100.7"],
    "mapped, 6to4, Teredo": ["::ffff:198.51.100.7", "2002:c633:6407::1", "2001:0:4136:e378:8000:63bf:39cc:9bf8",
                             "198.51.100.7"],
}


@pytest.mark.parametrize("rotation", list(ROTATIONS), ids=list(ROTATIONS))
async def test_rotating_addresses_do_not_reset_the_spraying_count(start_env: EnvFactory, rotation: str) -> None:
    env = await start_env(**SETTINGS)
    first, second, third, fourth = ROTATIONS[rotation]
    # Two guesses each for alice and bob (below their own per-network count of 3) ...
    for user, address in (("alice", first), ("bob", second)):
        browser = from_address(env, address)
        await at_mfa_page(browser, user)
        assert await fail(browser, 2) == [200, 200]
    # ... and alice's third, the fifth guess from "another" address reaches the address's count of 5.
    alice = from_address(env, third)
    await at_mfa_page(alice, "alice")
    assert await fail(alice, 1) == [429]
    # Bob again, from a fourth spelling: his own counts are low (2 of 3), the address's is reached.
    bob = from_address(env, fourth)
    assert (await bob.password("bob")).location == "/_gateway/mfa"
    assert (await bob.mfa_page()).status == 429


@pytest.mark.parametrize(("address", "key"), [
    ("203.0.113.9", "203.0.113.9"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("::FFFF:cb00:7109", "203.0.113.9"),
    ("2002:cb00:7109::1", "203.0.113.9"),
    ("2002:cb00:7109:beef:1:2:3:4", "203.0.113.9"),
    ("2001:0:4136:e378:8000:63bf:34ff:8ef6", "203.0.113.9"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::1%eth0", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::1%25anything", "2001:db8:1:2::/64"),
    ("fe80::1%1", "fe80::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("unix-socket-peer", "unix-socket-peer"),
])
def test_the_address_key(address: str, key: str) -> None:
    assert client_address_key(address) == key
    assert counted(Attempt("u1", address), LockoutPolicy())[Scope.IP] == key


@pytest.mark.parametrize(("address", "network"), [
    ("2002:cb00:7109::1", "203.0.113.0/24"),
    ("2002:cb00:7109:ffff::1", "203.0.113.0/24"),
    ("2001:0:4136:e378:8000:63bf:34ff:8ef6", "203.0.113.0/24"),
    ("2001:db8:1:2::1%eth0", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.9", "203.0.113.0/24"),
])
def test_the_network_of_an_address_that_carries_ipv4(address: str, network: str) -> None:
    assert client_network(address) == network
