"""What callers of the session store rely on: the record, the store interface, the one error type.

A session is a `SessionRecord` kept server-side. The browser holds only an opaque cookie value,
`<id>.<secret>`: the id locates the record, the secret (with the server key) decrypts it. Callers
never see storage keys or ciphertext; they pass the cookie value around and get records back.

Every operation may raise `StoreUnavailable` (the backend cannot be reached or answered badly):
callers fail closed on it. A cookie value that is malformed, foreign, expired or tampered with is
never an error: `load` answers `None` ("no session").
"""

from __future__ import annotations

import json
import operator
import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol


class StoreError(Exception):
    """Base of the session store's errors."""


class StoreUnavailable(StoreError):
    """The store's backend cannot be reached or failed; callers fail closed (no session, no entry)."""


class SessionState(StrEnum):
    PENDING = "pending"    # first factor (Exchange's login) passed, waiting for the second factor
    COMPLETE = "complete"  # second factor passed
    EXEMPT = "exempt"      # passed without a second factor (user exception or system mailbox)


# A module constant: every passed request asks, and an Enum member lookup costs a few times a set's.
_PASSED_STATES = frozenset({SessionState.COMPLETE, SessionState.EXEMPT})


@dataclass(slots=True)
class SessionRecord:
    """One gateway session. Every field is JSON-serialisable; times are epoch seconds (time.time()).

    `version` is the compare-and-set counter: `save` succeeds only when the stored version equals
    this one, and then increments both. Callers never set it themselves.
    """

    state: SessionState
    typed_username: str = ""                    # as typed on Exchange's logon form
    normalised_usernames: list[str] = field(default_factory=list)  # every normalised form known
    user_id: str = ""                           # Monosign user Id (the key for counters and lockouts)
    user_name: str = ""                         # Monosign UserName
    email: str = ""
    display_name: str = ""
    upstream_set_cookies: list[str] = field(default_factory=list)  # held Set-Cookie values, byte for byte
    destination: str = "/owa/"                  # where to go after MFA (validated relative path)
    created_at: float = field(default_factory=time.time)
    mfa_at: float | None = None                 # second factor passed (or exemption granted)
    last_activity: float = field(default_factory=time.time)  # last user (not background) request
    csrf_token: str = ""
    push_request_id: str | None = None
    push_expires_at: float | None = None
    push_number: str | None = None              # number matching: the two digits the page shows
    failures: int = 0                           # failed codes / rejected pushes in this session
    cadata_hash: str | None = None              # hash of cadata + cadataKey bound at MFA
    client_ip: str = ""                         # client address at login
    # The site whose sign-in made the session ("": the environment's Exchange site). A session is
    # valid on that site only (or on its session group's sites, when the site has one).
    site: str = ""
    groups: list[str] = field(default_factory=list)  # the directory's groups (portal first factors)
    first_factor: str = ""                      # how the first factor passed: exchange, ldap, file, monosign
    second_factor: str = ""                     # how the second passed: totp, push, fail_open, exception
    version: int = 0

    @property
    def passed(self) -> bool:
        """True when this session may reach the upstream (second factor passed, or exempt)."""
        return self.state in _PASSED_STATES

    def copy(self) -> SessionRecord:
        """An independent copy (lists are copied too). On every passed request (the session cache
        hands out copies), so no asdict/JSON round trip (10x the cost), nor dataclasses.replace (5x):
        the values in field order straight into __init__, then the two lists copied."""
        duplicate = SessionRecord(*_record_values(self))
        duplicate.normalised_usernames = list(self.normalised_usernames)
        duplicate.upstream_set_cookies = list(self.upstream_set_cookies)
        duplicate.groups = list(self.groups)
        return duplicate

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = str(self.state)
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        """Build a record; unknown keys are ignored (a newer replica may have added fields)."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["state"] = SessionState(values["state"])
        return cls(**values)

    @classmethod
    def from_json(cls, raw: bytes) -> SessionRecord:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("a session record is a JSON object")
        return cls.from_dict(data)


# Every field of a record, in the order __init__ takes them (all are __init__ parameters).
_RECORD_FIELDS = tuple(item.name for item in fields(SessionRecord))
assert all(item.init for item in fields(SessionRecord)), "SessionRecord.copy passes every field to __init__"
_record_values = operator.attrgetter(*_RECORD_FIELDS)


class SessionStore(Protocol):
    """The session store as callers use it (see `gateway.sessions.store.EncryptedSessionStore`).

    `ttl` is in seconds (see `gateway.sessions.lifetime.session_ttl`); every record and counter
    expires. Every method may raise `StoreUnavailable`.
    """

    async def create(self, record: SessionRecord, ttl: float) -> str:
        """Store a new session and return the cookie value that opens it. Sets `record.version`."""
        ...

    async def load(self, cookie_value: str) -> SessionRecord | None:
        """The session this cookie value opens, or None (unknown, expired, malformed, tampered)."""
        ...

    def cached(self, cookie_value: str) -> SessionRecord | None:
        """What `load` would return, when the in-process cache of passed sessions has it (no I/O,
        no await: the data path of a signed-in browser). None says nothing: ask `load`.

        The cache's own record, not a copy: read it, and `copy()` it before changing anything."""
        ...

    async def save(self, cookie_value: str, record: SessionRecord, ttl: float) -> bool:
        """Compare-and-set on `record.version`: False when the session changed since it was loaded
        (or is gone); reload and decide again. On success `record.version` is incremented."""
        ...

    async def rotate(self, cookie_value: str, record: SessionRecord, ttl: float) -> str | None:
        """Move the session to a new id and secret (every change of privilege), atomically: the old
        cookie value stops working exactly when the new one starts. Compare-and-set like `save`;
        None when the session changed since it was loaded or is gone."""
        ...

    async def delete(self, cookie_value: str) -> None:
        """End the session (logoff, timeout, lockout). Unknown or malformed values are ignored."""
        ...

    async def hit(self, counter: str, key: str, window_seconds: float) -> int:
        """Atomically count one event for `key` (e.g. a user id or client IP) under `counter` (e.g.
        "otp-fail-user"), and return the count in the current fixed window. The window starts at
        the first hit and expires with it."""
        ...

    async def count(self, counter: str, key: str) -> int:
        """The current count (0 when none or expired)."""
        ...

    async def clear(self, counter: str, key: str) -> None:
        """Forget the count (e.g. after a successful second factor)."""
        ...

    async def claim_once(self, key: str, ttl: float) -> bool:
        """True for exactly one caller per `key` within `ttl` (across replicas): one use only."""
        ...

    async def release(self, key: str) -> None:
        """Give up a `claim_once` claim before its `ttl` (a lock's holder is done): the next
        `claim_once(key, ...)` succeeds again."""
        ...

    async def ping(self) -> None:
        """Readiness: return when the backend answers, raise StoreUnavailable otherwise."""
        ...

    async def readiness_problem(self) -> str | None:
        """`ping` as a readiness check (gateway.observability.readiness): None when the store answers."""
        ...

    async def aclose(self) -> None:
        """Release connections. The store is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class Stored:
    """A session entry as a backend holds it: the sealed blob, its compare-and-set version, and
    the proof of the session secret that writes must present."""

    version: int
    data: bytes
    proof: bytes = b""


class Backend(Protocol):
    """Raw storage under the store's encryption layer: keys are opaque strings, values opaque bytes.

    A session entry holds a version, the sealed blob and a `proof`: a one-way digest of the
    session's secret. Writes and deletes of a session must present the same proof, so a caller
    that knows a session's id but not its secret cannot overwrite, move or end it.

    Each method is atomic on its own; all raise StoreUnavailable on any backend failure. TTLs are
    seconds (fractions allowed) and always given: nothing is stored for ever.
    """

    async def get(self, key: str) -> Stored | None: ...

    async def add(self, key: str, data: bytes, proof: bytes, ttl: float) -> bool:
        """Store with version 1 unless the key exists (then False)."""
        ...

    async def compare_and_set(self, key: str, expected_version: int, proof: bytes, data: bytes, ttl: float) -> bool:
        """Replace the blob and increment the version if both the version and the proof match."""
        ...

    async def move(
        self, old_key: str, expected_version: int, proof: bytes,
        new_key: str, data: bytes, new_proof: bytes, ttl: float,
    ) -> bool:
        """If `old_key` holds `expected_version` and `proof`, and `new_key` is free: delete
        `old_key` and store `data` under `new_key` with version `expected_version + 1`, in one step."""
        ...

    async def delete_session(self, key: str, proof: bytes) -> None:
        """Delete a session entry if its proof matches."""
        ...

    async def delete(self, key: str) -> None:
        """Delete a counter or claim."""
        ...

    async def incr(self, key: str, window: float) -> int:
        """Increment a counter; the first increment starts its expiry of `window` seconds."""
        ...

    async def get_count(self, key: str) -> int: ...

    async def set_nx(self, key: str, ttl: float) -> bool:
        """Create `key` unless it exists: True for the one caller that created it."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
