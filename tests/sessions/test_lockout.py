"""The smart lockout's counters in the session store, over the memory backend and a real redis-server
(the same tests, two replicas sharing one store)."""

from __future__ import annotations

import asyncio

from gateway.mfa.lockout import Attempt, Lockout, LockoutPolicy, Scope
from tests.sessions.conftest import StoreFactory

POLICY = LockoutPolicy(max_failures=3, max_failures_user=6, max_failures_ip=5)
ATTACKER = Attempt("alice-id", "198.51.100.7")  # has alice's password, from the internet
USER_AT_HOME = Attempt("alice-id", "203.0.113.20")
USER_ON_LAPTOP = Attempt("alice-id", "203.0.113.20", device_id="laptop")


def replicas(make_store: StoreFactory) -> tuple[Lockout, Lockout]:
    first, second = (Lockout(make_store(), policy=POLICY, seconds=60) for _ in range(2))
    return first, second


async def test_an_attacker_locks_only_their_own_network(make_store: StoreFactory) -> None:
    here, there = replicas(make_store)
    outcomes = [await (here if index % 2 else there).record_failure(ATTACKER) for index in range(3)]
    assert [outcome.attempts_left for outcome in outcomes] == [2, 1, 0]
    assert outcomes[-1].locked == (Scope.NETWORK,)
    assert outcomes[-1].locks_this_browser
    assert await here.wait_seconds(ATTACKER) > 0
    assert await there.wait_seconds(Attempt("alice-id", "198.51.100.200")) > 0  # the whole /24
    assert await there.wait_seconds(USER_AT_HOME) == 0  # the user elsewhere is not locked out
    assert await there.wait_seconds(Attempt("bob-id", "198.51.100.7")) == 0  # nor another user there


async def test_many_networks_reach_the_users_overall_count_but_not_a_familiar_device(
        make_store: StoreFactory) -> None:
    here, there = replicas(make_store)
    for network in range(6):  # one failure from each of six networks: six in all
        attempt = Attempt("alice-id", f"198.51.{network}.7")
        outcome = await (here if network % 2 else there).record_failure(attempt)
    assert Scope.USER in outcome.locked
    assert await here.wait_seconds(USER_AT_HOME) > 0  # a browser the gateway does not know: paused
    assert await there.wait_seconds(USER_ON_LAPTOP) == 0  # the user's familiar browser: not
    # The familiar device has its own low count.
    for _ in range(2):
        assert not (await here.record_failure(USER_ON_LAPTOP)).locks_this_browser
    last = await there.record_failure(USER_ON_LAPTOP)
    assert last.locks_this_browser
    assert Scope.DEVICE in last.locked
    assert await here.wait_seconds(USER_ON_LAPTOP) > 0
    assert await here.wait_seconds(Attempt("alice-id", "203.0.113.20", device_id="phone")) == 0


async def test_an_office_behind_one_address(make_store: StoreFactory) -> None:
    """One colleague's failures do not take another's attempts; the address has its own, higher count."""
    here, _ = replicas(make_store)
    office = "192.0.2.10"
    for _ in range(2):
        await here.record_failure(Attempt("carol-id", office))
    first = await here.record_failure(Attempt("dave-id", office))
    assert first.attempts_left == 2  # dave's own: 3 - 1, not carol's two taken away
    assert not first.locked
    fourth = await here.record_failure(Attempt("erin-id", office))
    assert fourth.attempts_left == 1  # now the address's count (5) is the closest
    fifth = await here.record_failure(Attempt("frank-id", office))
    assert fifth.locked == (Scope.IP,)
    assert await here.wait_seconds(Attempt("grace-id", office)) > 0  # spraying from one address stops


async def test_success_forgets_the_users_counts_not_the_addresss(make_store: StoreFactory) -> None:
    here, there = replicas(make_store)
    for _ in range(2):
        await here.record_failure(USER_ON_LAPTOP)
    await there.succeeded(USER_ON_LAPTOP)
    outcome = await here.record_failure(USER_ON_LAPTOP)
    assert outcome.attempts_left == 2  # device count started again
    for _ in range(3):
        await here.record_failure(Attempt("mallory-id", USER_ON_LAPTOP.client_ip))
    # The address had 3 of alice's and now 3 of mallory's: 6 >= 5, locked, success or not.
    assert await here.wait_seconds(Attempt("bob-id", USER_ON_LAPTOP.client_ip)) > 0


async def test_parallel_failures_are_each_counted(make_store: StoreFactory) -> None:
    here, there = replicas(make_store)
    outcomes = await asyncio.gather(*((here, there)[index % 2].record_failure(Attempt("u", f"10.9.{index}.1"))
                                      for index in range(6)))
    # Six networks, one failure each: only the user's overall count (6) can lock, exactly once.
    assert sum(Scope.USER in outcome.locked for outcome in outcomes) == 1
    assert await here.wait_seconds(Attempt("u", "10.10.0.1")) > 0
