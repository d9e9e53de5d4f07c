"""Inputs for Monosign are checked before anything is sent: the grammar as a table, then the client
against the simulator (a refused value makes no call and leaves the breaker alone)."""

from __future__ import annotations

import pytest

from gateway.monosign import BreakerState, InputRefused, MonosignClient, inputs
from gateway.policy.user_agent import ClientDevice
from gateway.sim.monosign import MonosignSimulator

ACCEPTED_USER_NAMES = [
    "alice", "ALICE", "CORP\\alice", "corp/alice", "alice@corp.example", "first.last+tag@corp.example",
    "o'brien", "svc_backup$", "a", "x" * 256, "Jean Paul", "user-01", "HealthMailbox{x}", "a#b!c&d^e~f",
]
# Spellings a caller could type to make Monosign answer oddly: wildcards and filters, quotes and
# markup, query and path syntax, controls, outside ASCII, padding, length.
REFUSED_USER_NAMES = [
    "",
    "*",
    "alice*",
    "a*)(uid=*",
    "(|(cn=*))",
    'alice"',
    "<script>alert(1)</script>",
    "alice%00",
    "alice?x=1",
    "alice;drop",
    "alice:admin",
    "alice,bob",
    "a=b",
    "[alice]",
    "alice|bob",
    "alice`id`",
    "alice\x00",
    "alice\r\nX-Injected: 1",
    "alice\t",
    " alice",
    "alice ",
    "al\u0131ce",  # dotless i
    "ａｌｉｃｅ",  # fullwidth
    "alice\u202e",  # right-to-left override
    "alice\u200b",  # zero-width space
    "x" * 257,
    "x" * 100_000,
]
REFUSED_IDS = ["", "../../users", "a/b", "a b", "a?b", "a#b", "-leading", "\u00e9t\u00e9", "a\nb", "x" * 129,
               "%2e%2e"]
REFUSED_ADDRESSES = ["", "localhost", "1.2.3", "1.2.3.4.5", "256.1.1.1", "fe80::1%eth0", "1.2.3.4 ", "::g",
                     "1.2.3.4\n", "http://1.2.3.4/"]
REFUSED_CODES = ["", "12345", "123456789", "12345a", "١٢٣٤٥٦", " 123456", "123 456", "+123456", "0x1234",
                 "123456\n"]
REFUSED_NUMBERS = ["", "1", "123", "4a", "٤٢", " 4", "-1", "+4", "4.", "04\n"]


@pytest.mark.parametrize("name", ACCEPTED_USER_NAMES)
def test_user_names_accepted(name: str) -> None:
    assert inputs.user_name(name) == name


@pytest.mark.parametrize("name", REFUSED_USER_NAMES, ids=repr)
def test_user_names_refused(name: str) -> None:
    with pytest.raises(InputRefused) as info:
        inputs.user_name(name)
    assert info.value.field == "user name"
    if name:
        assert name not in str(info.value)  # the value itself is never in the message


@pytest.mark.parametrize("value", REFUSED_IDS, ids=repr)
def test_identifiers_refused(value: str) -> None:
    with pytest.raises(InputRefused):
        inputs.identifier("user id", value)


@pytest.mark.parametrize("value", ["7f1c", "b2e0-11aa", "0123456789abcdef0123456789abcdef", "user:1.2_3",
                                   "{6f9619ff-8b86-d011-b42d-00cf4fc964ff}"])
def test_identifiers_accepted(value: str) -> None:
    assert inputs.identifier("user id", value) == value


@pytest.mark.parametrize("value", REFUSED_ADDRESSES, ids=repr)
def test_addresses_refused(value: str) -> None:
    with pytest.raises(InputRefused):
        inputs.client_address(value)


@pytest.mark.parametrize(("value", "canonical"), [("203.0.113.9", "203.0.113.9"), ("2001:DB8::1", "2001:db8::1"),
                                                  ("2001:0db8:0000::0001", "2001:db8::1")])
def test_addresses_accepted_in_canonical_form(value: str, canonical: str) -> None:
    assert inputs.client_address(value) == canonical


@pytest.mark.parametrize("value", REFUSED_CODES, ids=repr)
def test_codes_refused(value: str) -> None:
    with pytest.raises(InputRefused):
        inputs.one_time_code(value)


@pytest.mark.parametrize("value", REFUSED_NUMBERS, ids=repr)
def test_number_challenges_refused(value: str) -> None:
    with pytest.raises(InputRefused):
        inputs.number_challenge(value)


@pytest.mark.parametrize("name", REFUSED_USER_NAMES, ids=repr)
async def test_a_refused_user_name_never_reaches_monosign(client: MonosignClient, sim: MonosignSimulator,
                                                          name: str) -> None:
    for _ in range(client.breaker.threshold + 1):
        with pytest.raises(InputRefused):
            await client.lookup_user(name)
    assert list(sim.state.calls) == []
    assert client.breaker_state is BreakerState.CLOSED
    assert client.stats.calls == {}


async def test_refused_values_of_every_operation_never_reach_monosign(client: MonosignClient,
                                                                      sim: MonosignSimulator) -> None:
    user = await client.lookup_user("alice")
    sim.state.calls.clear()
    device = ClientDevice("Chrome", "Windows")
    for address in REFUSED_ADDRESSES:
        with pytest.raises(InputRefused):
            await client.start_push(user.id, address, device)
    for user_id in REFUSED_IDS:
        with pytest.raises(InputRefused):
            await client.start_push(user_id, "203.0.113.9", device)
        with pytest.raises(InputRefused):
            await client.verify_code(user_id, "123456")
        with pytest.raises(InputRefused):
            await client.push_status(user_id)
    for number in REFUSED_NUMBERS:
        with pytest.raises(InputRefused):
            await client.start_push(user.id, "203.0.113.9", device, number_challenge=number)
    for code in REFUSED_CODES:
        with pytest.raises(InputRefused):
            await client.verify_code(user.id, code)
    with pytest.raises(InputRefused):  # a description that is not one of the parser's names
        await client.start_push(user.id, "203.0.113.9", ClientDevice("Approve me: IT test <b>", "Windows"))
    assert list(sim.state.calls) == []
    assert client.breaker_state is BreakerState.CLOSED
