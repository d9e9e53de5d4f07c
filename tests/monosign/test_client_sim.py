"""The client against the Monosign simulator over loopback: every code, every fault, the breaker, the pool."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from gateway.assembly import monosign_client
from gateway.monosign import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    ErrorPage,
    InputRefused,
    InvalidApplicationKey,
    InvalidCode,
    MonosignUnreachable,
    PushStatus,
    PushUnknown,
    UnexpectedResponse,
    UserLocked,
    UserNotAssigned,
    UserNotFound,
)
from gateway.monosign.client import MonosignClient
from gateway.observability.readiness import CheckOutcome
from gateway.policy.user_agent import ClientDevice
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import FaultMode
from tests.monosign.conftest import API_KEY, ClientFactory


def api_calls(sim: MonosignSimulator) -> list[dict[str, object]]:
    return list(sim.state.calls)


@pytest.mark.parametrize("name", ["alice", "ALICE", "CORP\\alice", "alice@corp.example"])
async def test_lookup_finds_the_user_in_every_form(client: MonosignClient, name: str) -> None:
    user = await client.lookup_user(name)
    assert user.user_name == "alice"
    assert user.email == "alice@corp.example"
    assert user.display_name == "Alice Archer"
    assert user.has_push
    assert user.has_totp


async def test_lookup_sends_the_user_source(make_client: ClientFactory, sim: MonosignSimulator) -> None:
    assert (await make_client(user_source="corp.example").lookup_user("bob")).user_name == "bob"
    with pytest.raises(UserNotFound):
        await make_client(user_source="other-source").lookup_user("bob")
    assert sim.state.calls[-1]["user"] == "bob"


async def test_unknown_user(client: MonosignClient) -> None:
    with pytest.raises(UserNotFound) as info:
        await client.lookup_user("nobody")
    assert info.value.code == 21
    assert "MONOSIGN_USER_SOURCE" in info.value.operator_hint


async def test_user_not_assigned(client: MonosignClient) -> None:
    with pytest.raises(UserNotAssigned) as info:
        await client.lookup_user("carol")
    assert info.value.code == 22
    assert info.value.internal_message == "This user not assigned to this application."
    assert "assign the user" in info.value.operator_hint


async def test_wrong_secret_is_code_12(make_client: ClientFactory) -> None:
    client = make_client(api_secret="not-the-secret")
    with pytest.raises(InvalidApplicationKey) as info:
        await client.lookup_user("alice")
    assert info.value.code == 12
    assert "MONOSIGN_API_KEY / MONOSIGN_API_SECRET" in info.value.operator_hint
    # A "no" with an envelope proves Monosign is up: the breaker stays closed.
    assert client.breaker_state is BreakerState.CLOSED


@pytest.mark.parametrize(("mode", "expected"), [(FaultMode.CODE_12, InvalidApplicationKey),
                                                (FaultMode.CODE_22, UserNotAssigned)])
async def test_forced_codes(client: MonosignClient, sim: MonosignSimulator, mode: FaultMode,
                            expected: type[Exception]) -> None:
    await sim.set_faults(mode)
    with pytest.raises(expected):
        await client.lookup_user("alice")


async def test_push_approved(client: MonosignClient, sim: MonosignSimulator) -> None:
    user = await client.lookup_user("alice")
    push = await client.start_push(user.id, "203.0.113.9", ClientDevice("Chrome", "Windows"))
    assert push.expires_in == 60
    assert await client.push_status(push.request_id) is PushStatus.PENDING
    sim.state.answer_latest_push("alice", approve=True)
    assert await client.push_status(push.request_id) is PushStatus.APPROVED
    assert sim.state.pushes[push.request_id].client_ip == "203.0.113.9"
    assert sim.state.pushes[push.request_id].application == "Exchange OWA"


async def test_push_rejected(client: MonosignClient, sim: MonosignSimulator) -> None:
    user = await client.lookup_user("dave")
    push = await client.start_push(user.id, "203.0.113.9", ClientDevice("Chrome", "Windows"))
    sim.state.answer_push(push.request_id, approve=False)
    assert await client.push_status(push.request_id) is PushStatus.REJECTED


async def test_push_expired_then_unknown(client: MonosignClient, sim: MonosignSimulator) -> None:
    user = await client.lookup_user("alice")
    push = await client.start_push(user.id, "203.0.113.9", ClientDevice("Chrome", "Windows"))
    later = time.time() + 61
    sim.state.clock = lambda: later
    assert await client.push_status(push.request_id) is PushStatus.EXPIRED
    much_later = later + 3600
    sim.state.clock = lambda: much_later
    with pytest.raises(PushUnknown):
        await client.push_status(push.request_id)


async def test_unknown_push_id_is_quoted_into_one_segment(client: MonosignClient, sim: MonosignSimulator) -> None:
    with pytest.raises(PushUnknown) as info:
        await client.push_status("no-such-push")
    assert info.value.code == 33
    calls = len(api_calls(sim))
    with pytest.raises(InputRefused):  # outside the id grammar: never sent at all
        await client.push_status("../../users/by-username?userName=alice")
    assert len(api_calls(sim)) == calls
    assert all(call["operation"] == "push_status" for call in api_calls(sim))


async def test_verify_code(client: MonosignClient, sim: MonosignSimulator) -> None:
    user = await client.lookup_user("bob")
    code, _ = sim.state.current_code("bob")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(InvalidCode) as info:
        await client.verify_code(user.id, wrong)
    assert info.value.code == 31
    await client.verify_code(user.id, code)
    with pytest.raises(InvalidCode):  # a code is good once
        await client.verify_code(user.id, code)


async def test_lockout_after_wrong_codes(client: MonosignClient, sim: MonosignSimulator) -> None:
    user = await client.lookup_user("bob")
    code, _ = sim.state.current_code("bob")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(2):
        with pytest.raises(InvalidCode):
            await client.verify_code(user.id, wrong)
    with pytest.raises(UserLocked) as info:
        await client.verify_code(user.id, wrong)
    assert info.value.code == 32
    assert info.value.retry_after == 300
    code, _ = sim.state.current_code("bob")
    with pytest.raises(UserLocked):  # even the right code, while locked
        await client.verify_code(user.id, code)


async def test_refused_connection(client: MonosignClient, sim: MonosignSimulator) -> None:
    await sim.set_faults(FaultMode.REFUSE)
    with pytest.raises(MonosignUnreachable) as info:
        await client.lookup_user("alice")
    assert info.value.reason == "refused"
    assert info.value.http_status == 0
    assert "cannot reach the Monosign API (connection refused)" in info.value.operator_hint
    assert "firewall" in info.value.operator_hint
    await sim.clear_faults()
    assert (await client.lookup_user("alice")).user_name == "alice"


async def test_nothing_listening(make_client: ClientFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(MonosignUnreachable) as info:
        await client.lookup_user("alice")
    assert info.value.reason == "refused"


async def test_unresolvable_host(make_client: ClientFactory) -> None:
    client = make_client(base_url="http://monosign.invalid")
    with pytest.raises(MonosignUnreachable) as info:
        await client.lookup_user("alice")
    assert info.value.reason == "dns"


async def test_slow_beyond_the_timeout(make_client: ClientFactory, sim: MonosignSimulator) -> None:
    client = make_client(timeout=0.5)
    await sim.set_faults(FaultMode.NONE, delay=5)
    started = time.monotonic()
    with pytest.raises(MonosignUnreachable) as info:
        await client.lookup_user("alice")
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 2


async def test_bad_gateway_page_is_an_answer_not_unreachable(client: MonosignClient, sim: MonosignSimulator) -> None:
    await sim.set_faults(FaultMode.HTML_502)
    for _ in range(client.breaker.threshold + 1):
        with pytest.raises(ErrorPage) as info:
            await client.lookup_user("alice")
        assert not isinstance(info.value, MonosignUnreachable)
        assert info.value.http_status == 502
    assert client.breaker_state is BreakerState.CLOSED


async def test_reset_get_is_retried_once_post_is_not(client: MonosignClient, sim: MonosignSimulator) -> None:
    user = await client.lookup_user("alice")
    await sim.set_faults(FaultMode.RESET)
    sim.state.calls.clear()
    with pytest.raises(MonosignUnreachable) as info:
        await client.lookup_user("alice")
    assert info.value.reason == "reset"
    assert len(api_calls(sim)) == 2
    sim.state.calls.clear()
    with pytest.raises(MonosignUnreachable):
        await client.start_push(user.id, "203.0.113.9", ClientDevice("Chrome", "Windows"))
    assert len(api_calls(sim)) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_fails_fast_probes_and_closes(make_client: ClientFactory,
                                                          sim: MonosignSimulator) -> None:
    clock = Clock()
    client = make_client(breaker=CircuitBreaker(threshold=3, cooldown=30, clock=clock))
    await sim.set_faults(FaultMode.RESET)
    for _ in range(3):
        with pytest.raises(MonosignUnreachable):
            await client.lookup_user("alice")
    assert client.breaker_state is BreakerState.OPEN
    ready, reason = await client.readiness()
    assert not ready
    assert "circuit open" in reason
    assert await client.readiness_check() == CheckOutcome(problem=reason, state="open")
    calls_before = len(api_calls(sim))
    await sim.clear_faults()
    started = time.monotonic()
    with pytest.raises(CircuitOpen) as info:
        await client.lookup_user("alice")
    assert time.monotonic() - started < 0.1
    assert isinstance(info.value, MonosignUnreachable)  # the fail mode applies as for unreachable
    assert len(api_calls(sim)) == calls_before  # failing fast: Monosign was not called
    clock.now += 30
    assert (await client.readiness())[0]  # ready again, so that traffic can probe
    assert (await client.lookup_user("alice")).user_name == "alice"  # the probe
    assert client.breaker_state is BreakerState.CLOSED
    assert await client.readiness() == (True, "monosign circuit closed")
    assert await client.readiness_check() == CheckOutcome(problem=None, state="closed")


async def test_failed_probe_reopens(make_client: ClientFactory, sim: MonosignSimulator) -> None:
    clock = Clock()
    client = make_client(breaker=CircuitBreaker(threshold=1, cooldown=5, clock=clock))
    await sim.set_faults(FaultMode.REFUSE)
    with pytest.raises(MonosignUnreachable):
        await client.lookup_user("alice")
    clock.now += 5
    with pytest.raises(MonosignUnreachable) as info:
        await client.lookup_user("alice")
    assert not isinstance(info.value, CircuitOpen)  # that was the probe, and it failed
    assert client.breaker_state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        await client.lookup_user("alice")


async def test_many_concurrent_lookups_share_the_pool(make_client: ClientFactory, sim: MonosignSimulator) -> None:
    client = make_client(max_connections=8, timeout=20)
    await sim.set_faults(FaultMode.NONE, delay=0.02)
    users = await asyncio.gather(*(client.lookup_user(name) for name in ["alice", "bob", "dave"] * 100))
    assert len(users) == 300
    assert {user.user_name for user in users} == {"alice", "bob", "dave"}
    stats = sim.state
    assert 1 < stats.max_in_flight_seen <= 8
    assert 1 < stats.max_connections_seen <= 8
    assert all(call["authorized"] for call in api_calls(sim))


async def test_from_settings_uses_paths_and_codes(sim: MonosignSimulator) -> None:
    from gateway.settings import load_settings
    from tests.monosign.conftest import API_SECRET

    settings = load_settings(
        env_file=None, monosign_api_url=sim.url + "/", monosign_api_key=API_KEY, monosign_api_secret=API_SECRET,
        gateway_public_url="https://mail.example.com", gateway_upstream_url="http://127.0.0.1:1",
        monosign_path_user_lookup="/api/v9/people", monosign_breaker_threshold=2,
    )
    async with monosign_client(settings) as client:
        assert client.breaker.threshold == 2
        assert client.paths.user_lookup == "/api/v9/people"
        with pytest.raises(UnexpectedResponse) as info:  # the simulator has no such path: 404 text/plain
            await client.lookup_user("alice")
        assert info.value.http_status == 404
