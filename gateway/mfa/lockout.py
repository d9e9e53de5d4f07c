"""Smart lockout of the second factor: who is paused after failures, counted four ways in the store.

Why not one counter per user: whoever holds a user's password could then keep the user out of the
second factor for as long as they liked, by typing wrong codes. Why not one per address: a whole
office behind one NAT address would share it. So a failure (a wrong or malformed code, a rejected
push) is counted per

- user and client network (`/24`, `/64` by default): the low threshold (`GATEWAY_MFA_MAX_FAILURES`);
- user, from anywhere: a much higher one (`GATEWAY_MFA_MAX_FAILURES_USER`);
- client address, whichever the user: its own (`GATEWAY_MFA_MAX_FAILURES_IP`);
- user and familiar device, when the browser carries a valid familiar-device cookie
  (gateway.mfa.device_cookie): the low threshold.

and a browser is judged by the counts that apply to it: a familiar device only by its own (failures
elsewhere do not lock it out), any other browser by its user-and-network, user and address counts.

Each count lives in a window of `GATEWAY_MFA_LOCKOUT_SECONDS` that starts at its first failure.
Reaching a threshold sets a lock of that same length, starting then: a separate counter, so the
pause is always the full length however the failures were spread. Both live in the session store,
so every replica sees them. Keys are Monosign's user Id, not the typed name: `CORP\\alice`,
`alice@corp.example` and `ALICE` share one count. The store only offers counters, not their expiry,
so the remaining wait is known exactly where the lock was set and reported as the full length
elsewhere (an upper bound).

Pushes (push fatigue) are limited the same way, by budgets instead of thresholds of failures
(`push_budgets`): a browser with a valid familiar-device cookie for the user spends only its own
budget (`max_pushes` per device), so whoever has the password cannot spend it; any other browser
spends its user-and-network budget (`max_pushes`) and the user's budget for unfamiliar browsers
(`PUSH_USER_FACTOR` x `max_pushes`, all networks together), narrowest first.

The decisions (`client_network`, `counted`, `judged_by`, `attempts_left`, `push_budgets`) are pure and
table-tested; `Lockout` does the store's I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.sessions.base import SessionStore

_MAX_REMEMBERED_LOCKS = 10_000


class Scope(StrEnum):
    NETWORK = "network"  # user and client network
    USER = "user"        # user, from anywhere
    IP = "ip"            # client address, any user
    DEVICE = "device"    # user and familiar device


_SCOPE_SUFFIXES = {Scope.NETWORK: "user-net", Scope.USER: "user", Scope.IP: "ip", Scope.DEVICE: "user-device"}
# The counters' names in the store, by what is counted: the second factor ("mfa"), or a portal
# site's first factor ("signin", gateway.profiles.portal: its user key names the site and the
# typed account, since nobody is known yet).
COUNTED = ("mfa", "signin")
_PUSHES = {Scope.DEVICE: "mfa-push-user-device", Scope.NETWORK: "mfa-push-user-net", Scope.USER: "mfa-push-user"}
# Pushes from the user's unfamiliar browsers, all networks together, per window: this many times the
# per-network budget. Higher than one network's, so that an attacker on one network cannot spend
# the user's pushes from every other; bounded, so that many networks cannot buzz the phone without end.
PUSH_USER_FACTOR = 2
# How long a used one-time code is remembered: a TOTP code lives 30 s, and verifiers accept a few
# steps of clock skew either side; ten minutes is comfortably longer.
CODE_REUSE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who is trying: the Monosign user, from which address, on which familiar device (if any)."""

    user_id: str
    client_ip: str
    device_id: str | None = None  # a valid familiar-device cookie's id for this user, else None


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5          # per user and network, and per user and familiar device
    max_failures_user: int = 50    # per user, from anywhere
    max_failures_ip: int = 30      # per client address
    network_prefix_v4: int = 24
    network_prefix_v6: int = 64

    def threshold(self, scope: Scope) -> int:
        if scope is Scope.USER:
            return self.max_failures_user
        if scope is Scope.IP:
            return self.max_failures_ip
        return self.max_failures


# One host rotates through its whole /64 by itself (SLAAC privacy addresses): for the address count
# an IPv6 /64 is one address, or every new address would be a fresh count of its own.
ADDRESS_PREFIX_V6 = 64


def _client_address(client_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address failures are counted on: without an IPv6 zone id (`%eth0`: any text, not part of
    the address), and the IPv4 address an IPv6 one carries when it carries one: IPv4-mapped
    (`::ffff:192.0.2.1`), 6to4 (`2002:c000:0201::/48`, a /48 of its own for every IPv4 address)
    and Teredo (its client's public IPv4 address). Otherwise one IPv4 address would be thousands of
    IPv6 networks. None for something that is not an address."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # drops the zone id
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def client_network(client_ip: str, *, prefix_v4: int = 24, prefix_v6: int = 64) -> str:
    """The network an address belongs to for the per-user-and-network count, as `net/prefix`.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, Teredo) is that IPv4 address, and a
    zone id is no part of it (`_client_address`). Something that is not an address (the peer of a
    Unix socket) is its own network."""
    address = _client_address(client_ip)
    if address is None:
        return client_ip
    prefix = prefix_v4 if address.version == 4 else prefix_v6
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def client_address_key(client_ip: str) -> str:
    """The key of the per-address count: the IPv4 address (also when an IPv6 one carries it), or
    the IPv6 address's /64 (`ADDRESS_PREFIX_V6`); something that is not an address is its own key."""
    address = _client_address(client_ip)
    if address is None:
        return client_ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{ADDRESS_PREFIX_V6}", strict=False))
    return str(address)


def counted(attempt: Attempt, policy: LockoutPolicy) -> dict[Scope, str]:
    """Every count a failure of this attempt goes into, with its key."""
    network = client_network(attempt.client_ip, prefix_v4=policy.network_prefix_v4,
                             prefix_v6=policy.network_prefix_v6)
    keys = {Scope.NETWORK: f"{attempt.user_id}\x00{network}", Scope.USER: attempt.user_id,
            Scope.IP: client_address_key(attempt.client_ip)}
    if attempt.device_id is not None:
        keys[Scope.DEVICE] = f"{attempt.user_id}\x00{attempt.device_id}"
    return keys


def judged_by(attempt: Attempt) -> tuple[Scope, ...]:
    """The counts whose lock stops this attempt: a familiar device's own only, or the other three."""
    if attempt.device_id is not None:
        return (Scope.DEVICE,)
    return (Scope.NETWORK, Scope.USER, Scope.IP)


def attempts_left(policy: LockoutPolicy, counts: Mapping[Scope, int]) -> int:
    """Attempts before a lock, from the counts that judge the attempt (the closest to its threshold)."""
    return max(0, min((policy.threshold(scope) - count for scope, count in counts.items()), default=0))


@dataclass(frozen=True, slots=True)
class PushBudget:
    """One count a push is taken from: its scope, its key, and how many pushes it allows per window."""

    scope: Scope
    key: str
    limit: int


def push_budgets(attempt: Attempt, policy: LockoutPolicy, max_pushes: int) -> tuple[PushBudget, ...]:
    """The budgets a push of this attempt is taken from, narrowest first (a push is sent only if
    every one still allows it): a familiar device's own budget only, else the user-and-network
    budget and then the user's budget for unfamiliar browsers."""
    keys = counted(attempt, policy)
    if attempt.device_id is not None:
        return (PushBudget(Scope.DEVICE, keys[Scope.DEVICE], max_pushes),)
    return (PushBudget(Scope.NETWORK, keys[Scope.NETWORK], max_pushes),
            PushBudget(Scope.USER, keys[Scope.USER], PUSH_USER_FACTOR * max_pushes))


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    attempts_left: int
    locked: tuple[Scope, ...]  # the scopes this failure locked (empty: not locked), judging or not
    locks_this_browser: bool   # one of them judges this attempt: show the locked page


class Lockout:
    def __init__(self, store: SessionStore, *, policy: LockoutPolicy, seconds: float, max_pushes: int = 10,
                 clock: Callable[[], float] = time.time, counting: str = "mfa") -> None:
        if counting not in COUNTED:
            raise ValueError(f"counting is one of {COUNTED}")
        self._store = store
        self._failures = {scope: f"{counting}-fail-{suffix}" for scope, suffix in _SCOPE_SUFFIXES.items()}
        self._locks = {scope: f"{counting}-lock-{suffix}" for scope, suffix in _SCOPE_SUFFIXES.items()}
        self.policy = policy
        self.max_pushes = max_pushes
        self.seconds = seconds
        self._clock = clock
        self._locked_at: OrderedDict[tuple[Scope, str], float] = OrderedDict()
        self._in_flight: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, user_id: str) -> AsyncIterator[None]:
        """Serialise a user's code checks in this process.

        Failures are counted when Monosign has answered; without this, a burst of parallel guesses
        would all pass the lockout check before the first failure is counted. Across replicas the
        overshoot is bounded by the number of replicas (and Monosign's own lockout).
        """
        lock, users = self._in_flight.get(user_id, (asyncio.Lock(), 0))
        self._in_flight[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._in_flight[user_id]
            if users <= 1:
                del self._in_flight[user_id]
            else:
                self._in_flight[user_id] = (lock, users - 1)

    async def spend_push(self, attempt: Attempt) -> Scope | None:
        """Takes a push from this attempt's budgets (`push_budgets`), narrowest first; returns the
        scope of the first budget already spent in the window (the push must not be sent), None when
        every budget allowed it (push fatigue: someone with the password must not be able to buzz
        the user's phone without end, nor spend the pushes of the user's familiar browsers). A
        refused push stops at the budget that refused it: it does not spend the wider ones."""
        for budget in push_budgets(attempt, self.policy, self.max_pushes):
            if await self._store.hit(_PUSHES[budget.scope], budget.key, self.seconds) > budget.limit:
                return budget.scope
        return None

    async def wait_seconds(self, attempt: Attempt) -> float:
        """Seconds until this attempt may be made (0: not locked)."""
        keys = counted(attempt, self.policy)
        scopes = judged_by(attempt)
        locks = await asyncio.gather(*(self._store.count(self._locks[scope], keys[scope]) for scope in scopes))
        waits = [self._remaining(scope, keys[scope]) for scope, count in zip(scopes, locks, strict=True) if count > 0]
        return max(waits, default=0.0)

    async def record_failure(self, attempt: Attempt) -> FailureOutcome:
        keys = counted(attempt, self.policy)
        counts = dict(zip(keys, await asyncio.gather(
            *(self._store.hit(self._failures[scope], key, self.seconds) for scope, key in keys.items())
        ), strict=True))
        locked = []
        for scope, count in counts.items():
            if count >= self.policy.threshold(scope):
                await self._store.hit(self._locks[scope], keys[scope], self.seconds)
                await self._store.clear(self._failures[scope], keys[scope])
                self._remember(scope, keys[scope])
                locked.append(scope)
        judging = judged_by(attempt)
        left = attempts_left(self.policy, {scope: counts[scope] for scope in judging})
        return FailureOutcome(left, tuple(locked), any(scope in judging for scope in locked))

    async def first_use_of_code(self, user_id: str, code: str) -> bool:
        """True the first time a code Monosign accepted is used for this user; False for a replay.

        A one-time code is one-time whatever Monosign does about it (RFC 6238 §5.2 asks the
        verifier to refuse a second use; Monosign's API does not promise it): a code read over a
        shoulder, or replayed by whoever relayed it, must not pass a second session. The store
        keeps only a keyed hash of the pair, for longer than any code stays valid."""
        return await self._store.claim_once(f"code-used:{user_id}:{code}", CODE_REUSE_SECONDS)

    async def succeeded(self, attempt: Attempt) -> None:
        """A passed second factor forgets the user's failures (overall, from this network, on this
        device). The address keeps its count: one attacker's own account must not reset the count
        of a password-spraying address."""
        keys = counted(attempt, self.policy)
        await asyncio.gather(*(self._store.clear(self._failures[scope], key)
                               for scope, key in keys.items() if scope is not Scope.IP))

    def _remember(self, scope: Scope, key: str) -> None:
        self._locked_at[(scope, key)] = self._clock()
        self._locked_at.move_to_end((scope, key))
        while len(self._locked_at) > _MAX_REMEMBERED_LOCKS:
            self._locked_at.popitem(last=False)

    def _remaining(self, scope: Scope, key: str) -> float:
        locked_at = self._locked_at.get((scope, key))
        if locked_at is None:
            return self.seconds
        return max(1.0, locked_at + self.seconds - self._clock())
