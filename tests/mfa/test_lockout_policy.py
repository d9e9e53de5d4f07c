"""Table tests for the smart lockout's pure decisions: client networks, what a failure counts on,
what judges an attempt, attempts left; and the familiar-device cookie."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.mfa.device_cookie import DeviceCookie
from gateway.mfa.lockout import (
    PUSH_USER_FACTOR,
    Attempt,
    LockoutPolicy,
    PushBudget,
    Scope,
    attempts_left,
    client_network,
    counted,
    judged_by,
    push_budgets,
)
from gateway.policy.cookies import RequestCookies

NETWORKS = [
    ("203.0.113.9", 24, 64, "203.0.113.0/24"),
    ("203.0.113.250", 24, 64, "203.0.113.0/24"),
    ("203.0.114.9", 24, 64, "203.0.114.0/24"),
    ("10.1.2.3", 16, 64, "10.1.0.0/16"),
    ("10.1.2.3", 32, 64, "10.1.2.3/32"),
    ("2001:db8:1:2:3:4:5:6", 24, 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2::ffff", 24, 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", 24, 64, "2001:db8:1:3::/64"),
    ("2001:db8:1:2:3:4:5:6", 24, 48, "2001:db8:1::/48"),
    ("2001:DB8:0001:0002::1", 24, 64, "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.7", 24, 64, "198.51.100.0/24"),  # IPv4-mapped: its IPv4 network
    ("::1", 24, 64, "::/64"),
    ("127.0.0.1", 24, 64, "127.0.0.0/24"),
    ("unix-socket-peer", 24, 64, "unix-socket-peer"),  # not an address: its own network
]


@pytest.mark.parametrize(("address", "v4", "v6", "network"), NETWORKS)
def test_client_network(address: str, v4: int, v6: int, network: str) -> None:
    assert client_network(address, prefix_v4=v4, prefix_v6=v6) == network


@given(st.ip_addresses(), st.integers(8, 32), st.integers(16, 128))
def test_the_network_holds_the_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, v4: int,
                                       v6: int) -> None:
    network = ipaddress.ip_network(client_network(str(address), prefix_v4=v4, prefix_v6=v6))
    if isinstance(address, ipaddress.IPv6Address):  # an IPv4 address it carries is what counts
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            address = embedded
    assert address in network
    assert network.prefixlen == (v4 if address.version == 4 else v6)


POLICY = LockoutPolicy(max_failures=5, max_failures_user=50, max_failures_ip=30)


def test_what_a_failure_counts_on() -> None:
    stranger = Attempt("u1", "203.0.113.9")
    assert counted(stranger, POLICY) == {Scope.NETWORK: "u1\x00203.0.113.0/24", Scope.USER: "u1",
                                         Scope.IP: "203.0.113.9"}
    familiar = Attempt("u1", "203.0.113.9", "dev-A")
    assert counted(familiar, POLICY)[Scope.DEVICE] == "u1\x00dev-A"
    assert set(counted(familiar, POLICY)) == set(Scope)
    # Same office (one /24), other user: another per-user-and-network key, the same address key.
    colleague = counted(Attempt("u2", "203.0.113.9"), POLICY)
    assert colleague[Scope.NETWORK] != counted(stranger, POLICY)[Scope.NETWORK]
    assert colleague[Scope.IP] == counted(stranger, POLICY)[Scope.IP]


def test_what_judges_an_attempt() -> None:
    assert judged_by(Attempt("u1", "203.0.113.9")) == (Scope.NETWORK, Scope.USER, Scope.IP)
    assert judged_by(Attempt("u1", "203.0.113.9", "dev-A")) == (Scope.DEVICE,)  # its own count only


@pytest.mark.parametrize(("counts", "left"), [
    ({}, 0),
    ({Scope.NETWORK: 0, Scope.USER: 0, Scope.IP: 0}, 5),
    ({Scope.NETWORK: 1, Scope.USER: 1, Scope.IP: 1}, 4),
    ({Scope.NETWORK: 1, Scope.USER: 48, Scope.IP: 1}, 2),  # close to the user's overall threshold
    ({Scope.NETWORK: 0, Scope.USER: 3, Scope.IP: 29}, 1),  # a busy office address
    ({Scope.NETWORK: 5, Scope.USER: 5, Scope.IP: 5}, 0),
    ({Scope.NETWORK: 9, Scope.USER: 9, Scope.IP: 9}, 0),
    ({Scope.DEVICE: 2}, 3),
])
def test_attempts_left(counts: dict[Scope, int], left: int) -> None:
    assert attempts_left(POLICY, counts) == left


# --- The familiar-device cookie ----------------------------------------------------------------------------
NOW = 1_800_000_000.0
COOKIE = DeviceCookie(keys=(b"k" * 32,), secure=True, lifetime=30 * 86400)


def test_issue_and_read_back() -> None:
    device, header = COOKIE.issue("user-1", NOW)
    name, _, rest = header.partition("=")
    value = rest.split(";", 1)[0]
    assert name == "__Host-msgw-device"
    assert header.endswith("; Path=/; Max-Age=2592000; Secure; HttpOnly; SameSite=Lax")
    assert COOKIE.device_id(value, "user-1", NOW) == device
    assert COOKIE.read(RequestCookies([f"msgw=x; {name}={value}"]), "user-1", NOW) == device
    assert "user-1" not in header  # the cookie names nobody
    # Renewal keeps the id (and so the device's own count).
    again, _ = COOKIE.issue("user-1", NOW + 100, device)
    assert again == device


def test_plain_http_cookie() -> None:
    plain = DeviceCookie(keys=(b"k" * 32,), secure=False, lifetime=86400)
    _, header = plain.issue("u", NOW)
    assert header.startswith("msgw-device=v1.")
    assert header.endswith("; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax")


def _value(user: str = "user-1", now: float = NOW, cookie: DeviceCookie = COOKIE) -> str:
    return cookie.issue(user, now)[1].split("=", 1)[1].split(";", 1)[0]


def _forgeries() -> list[tuple[str, str]]:
    value = _value()
    version, device, expires, mac = value.split(".")
    other_mac = _value("user-2").split(".")[3]
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    return [
        ("empty", ""),
        ("garbage", "hello"),
        ("other version", f"v2.{device}.{expires}.{mac}"),
        ("longer expiry", f"{version}.{device}.{int(expires) + 86400}.{mac}"),
        ("other device", f"{version}.{'A' * 22}.{expires}.{mac}"),
        ("another user's mac", f"{version}.{device}.{expires}.{other_mac}"),
        ("flipped mac", f"{version}.{device}.{expires}.{flipped}"),
        ("no mac", f"{version}.{device}.{expires}"),
        ("padded", f" {value}"),
        ("extra part", f"{value}.x"),
        ("negative expiry", f"{version}.{device}.-1.{mac}"),
        ("quoted", f'"{value}"'),
        ("upper-case version", value.replace("v1.", "V1.", 1)),
        ("non-ASCII digits", f"{version}.{device}.{'١' * 10}.{mac}"),
    ]


@pytest.mark.parametrize(("why", "value"), _forgeries())
def test_forged_or_altered_values_are_no_device(why: str, value: str) -> None:
    assert COOKIE.device_id(value, "user-1", NOW) is None, why


def test_another_user_expired_other_key_disabled() -> None:
    value = _value("user-1")
    assert COOKIE.device_id(value, "user-2", NOW) is None  # bound to its user
    assert COOKIE.device_id(value, "user-1", NOW + 30 * 86400) is None  # expired, whatever Max-Age did
    assert COOKIE.device_id(value, "user-1", NOW + 30 * 86400 - 1) is not None
    assert DeviceCookie(keys=(b"j" * 32,), secure=True, lifetime=86400).device_id(value, "user-1", NOW) is None
    # Key rotation: a cookie signed with the previous key still opens while that key is listed.
    rotated = DeviceCookie(keys=(b"j" * 32, b"k" * 32), secure=True, lifetime=86400)
    assert rotated.device_id(value, "user-1", NOW) is not None
    assert DeviceCookie(keys=(b"k" * 32,), secure=True, lifetime=0).device_id(value, "user-1", NOW) is None


def test_two_different_cookies_are_no_device() -> None:
    first, second = _value(), _value()
    assert COOKIE.read(RequestCookies([f"__Host-msgw-device={first}; __Host-msgw-device={second}"]),
                       "user-1", NOW) is None
    assert COOKIE.read(RequestCookies([f"__host-msgw-device={first}"]), "user-1", NOW) is None  # exact name


# A push from a familiar device is taken from that device's own budget only; from any other browser,
# from its user-and-network budget and then from the user's budget for unfamiliar browsers.
U = "user-1"
PUSH_BUDGETS = [
    ("unfamiliar, IPv4", Attempt(U, "203.0.113.9"), 10,
     [(Scope.NETWORK, f"{U}\x00203.0.113.0/24", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, same /24", Attempt(U, "203.0.113.250"), 10,
     [(Scope.NETWORK, f"{U}\x00203.0.113.0/24", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, next /24", Attempt(U, "203.0.114.9"), 10,
     [(Scope.NETWORK, f"{U}\x00203.0.114.0/24", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, IPv4-mapped", Attempt(U, "::ffff:203.0.113.9"), 10,
     [(Scope.NETWORK, f"{U}\x00203.0.113.0/24", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, 6to4", Attempt(U, "2002:cb00:7109::1"), 10,
     [(Scope.NETWORK, f"{U}\x00203.0.113.0/24", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, IPv6 /64", Attempt(U, "2001:db8:1:2::99"), 10,
     [(Scope.NETWORK, f"{U}\x002001:db8:1:2::/64", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, IPv6 zone id", Attempt(U, "fe80::1%eth0"), 10,
     [(Scope.NETWORK, f"{U}\x00fe80::/64", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, not an address", Attempt(U, "unix-peer"), 10,
     [(Scope.NETWORK, f"{U}\x00unix-peer", 10), (Scope.USER, U, 20)]),
    ("unfamiliar, a limit of one", Attempt(U, "198.51.100.7"), 1,
     [(Scope.NETWORK, f"{U}\x00198.51.100.0/24", 1), (Scope.USER, U, 2)]),
    ("familiar device", Attempt(U, "203.0.113.9", "dev-a"), 10, [(Scope.DEVICE, f"{U}\x00dev-a", 10)]),
    ("familiar device, attacker's network", Attempt(U, "198.51.100.7", "dev-a"), 10,
     [(Scope.DEVICE, f"{U}\x00dev-a", 10)]),
    ("another familiar device", Attempt(U, "203.0.113.9", "dev-b"), 3, [(Scope.DEVICE, f"{U}\x00dev-b", 3)]),
    ("another user's familiar device", Attempt("user-2", "203.0.113.9", "dev-a"), 10,
     [(Scope.DEVICE, "user-2\x00dev-a", 10)]),
]


@pytest.mark.parametrize(("case", "attempt", "max_pushes", "budgets"), PUSH_BUDGETS,
                         ids=[row[0] for row in PUSH_BUDGETS])
def test_push_budgets(case: str, attempt: Attempt, max_pushes: int, budgets: list[tuple[Scope, str, int]]) -> None:
    assert push_budgets(attempt, POLICY, max_pushes) == tuple(PushBudget(*budget) for budget in budgets), case


@given(st.integers(1, 10_000), st.booleans())
def test_push_fatigue_stays_bounded(max_pushes: int, familiar: bool) -> None:
    """Whatever the browser: every push is taken from a budget of at most PUSH_USER_FACTOR x the
    limit, an unfamiliar browser's always from the user's own, and no familiar device's budget is
    one an unfamiliar browser spends (what the attacker spends never reaches the user's laptop)."""
    attempt = Attempt(U, "198.51.100.7", "dev-a" if familiar else None)
    budgets = push_budgets(attempt, POLICY, max_pushes)
    assert budgets
    assert all(0 < budget.limit <= PUSH_USER_FACTOR * max_pushes for budget in budgets)
    unfamiliar = push_budgets(Attempt(U, "198.51.100.7"), POLICY, max_pushes)
    assert PushBudget(Scope.USER, U, PUSH_USER_FACTOR * max_pushes) in unfamiliar
    assert not {budget.scope for budget in unfamiliar} & {Scope.DEVICE}
    if familiar:
        assert [budget.scope for budget in budgets] == [Scope.DEVICE]
