"""The store's pure parts: tickets, record sealing, the cache, lifetimes, record JSON, settings."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sessions.base import SessionRecord, SessionState
from gateway.sessions.cache import PassedSessionCache
from gateway.sessions.crypto import RecordCipher
from gateway.sessions.lifetime import SessionTimeouts, session_ttl
from gateway.sessions.ticket import TICKET_LENGTH, Ticket, parse_ticket
from gateway.settings import SettingsError, load_settings
from tests.settings_env import with_required_settings

# --- tickets -----------------------------------------------------------------------------------------


def test_ticket_round_trip_and_shape() -> None:
    ticket = Ticket.new()
    value = ticket.value
    assert len(value) == TICKET_LENGTH == 66
    assert value[22] == "."
    assert parse_ticket(value) == ticket
    assert len(ticket.storage_id) == 64
    assert ticket.storage_id != ticket.id.hex()


def test_tickets_are_unique_and_never_printed() -> None:
    tickets = [Ticket.new() for _ in range(1000)]
    assert len({ticket.value for ticket in tickets}) == 1000
    assert repr(tickets[0]) == "Ticket(<redacted>)"
    assert tickets[0].value not in f"{tickets[0]!r} {tickets[0]!s}"


def test_non_canonical_base64_is_rejected() -> None:
    ticket = Ticket.new()
    value = ticket.value
    # The id's last character carries 4 spare bits: flipping one spells the same bytes differently.
    last = value[21]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]
    variant = value[:21] + sibling + value[22:]
    decoded = base64.urlsafe_b64decode(variant[:22] + "==")
    assert decoded == ticket.id
    assert parse_ticket(variant) is None


@given(st.text(max_size=80))
def test_parse_ticket_never_raises(text: str) -> None:
    parsed = parse_ticket(text)
    assert parsed is None or parsed.value == text


# --- sealing -----------------------------------------------------------------------------------------

def test_sealed_records_open_only_with_secret_key_and_storage_key() -> None:
    cipher = RecordCipher(b"server key one, long enough for a test")
    secret = Ticket.new().secret
    blob = cipher.seal(b'{"state":"pending"}', secret, "s:abc")
    assert cipher.open(blob, secret, "s:abc") == b'{"state":"pending"}'
    assert cipher.open(blob, Ticket.new().secret, "s:abc") is None
    assert cipher.open(blob, secret, "s:abd") is None
    assert RecordCipher(b"another server key, long enough too!!").open(blob, secret, "s:abc") is None
    assert cipher.open(b"\x02" + blob[1:], secret, "s:abc") is None, "unknown format version"
    assert cipher.open(blob[:10], secret, "s:abc") is None
    assert cipher.open(b"", secret, "s:abc") is None


def test_sealing_hides_length_and_never_repeats() -> None:
    cipher = RecordCipher(b"server key one, long enough for a test")
    secret = Ticket.new().secret
    short = cipher.seal(b"{}", secret, "k")
    longer = cipher.seal(b"{" + b" " * 200 + b"}", secret, "k")
    assert len(short) == len(longer), "lengths are padded to a block of 256"
    assert cipher.seal(b"{}", secret, "k") != short, "a fresh nonce every time"


def test_previous_keys_open_but_never_seal() -> None:
    old, new = b"the old server key, long enough!!", b"the new server key, long enough!!"
    secret = Ticket.new().secret
    blob = RecordCipher(old).seal(b"{}", secret, "k")
    rotating = RecordCipher(new, [old])
    assert rotating.open(blob, secret, "k") == b"{}"
    resealed = rotating.seal(b"{}", secret, "k")
    assert RecordCipher(old).open(resealed, secret, "k") is None
    assert RecordCipher(new).open(resealed, secret, "k") == b"{}"


def test_counter_names_are_keyed_hashes() -> None:
    one = RecordCipher(b"server key one, long enough for a test")
    two = RecordCipher(b"server key two, long enough for a test")
    assert one.name_hash("counter", "otp", "alice") == one.name_hash("counter", "otp", "alice")
    assert one.name_hash("counter", "otp", "alice") != two.name_hash("counter", "otp", "alice")
    assert one.name_hash("counter", "otp", "alice") != one.name_hash("counter", "otpa", "lice")
    assert "alice" not in one.name_hash("counter", "otp", "alice")


# --- records -----------------------------------------------------------------------------------------

def test_record_json_ignores_unknown_fields_and_rejects_bad_state() -> None:
    record = SessionRecord(SessionState.EXEMPT, typed_username="svc-healthmailbox")
    data = record.to_dict()
    data["added_by_a_newer_release"] = True
    assert SessionRecord.from_dict(data) == record
    data["state"] = "superuser"
    with pytest.raises(ValueError, match="superuser"):
        SessionRecord.from_dict(data)
    with pytest.raises(ValueError, match="JSON object"):
        SessionRecord.from_json(b"[1, 2]")


@pytest.mark.parametrize(
    ("state", "passed"),
    [(SessionState.PENDING, False), (SessionState.COMPLETE, True), (SessionState.EXEMPT, True)],
)
def test_passed(state: SessionState, passed: bool) -> None:
    assert SessionRecord(state).passed is passed


# --- the cache -----------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_expires_entries_after_max_age() -> None:
    clock = FakeClock()
    cache = PassedSessionCache(max_age=2.0, clock=clock)
    cache.put("cookie", SessionRecord(SessionState.COMPLETE))
    clock.now += 1.9
    assert cache.get("cookie") is not None
    clock.now += 0.1
    assert cache.get("cookie") is None
    assert len(cache) == 0


def test_cache_is_lru_bounded() -> None:
    clock = FakeClock()
    cache = PassedSessionCache(max_age=60, max_entries=3, clock=clock)
    for name in ("a", "b", "c"):
        cache.put(name, SessionRecord(SessionState.COMPLETE))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("d", SessionRecord(SessionState.COMPLETE))
    assert len(cache) == 3
    assert cache.get("b") is None, "the least recently used entry went first"
    assert all(cache.get(name) is not None for name in ("a", "c", "d"))


def test_cache_keeps_only_passed_sessions_and_can_be_off() -> None:
    cache = PassedSessionCache(max_age=60)
    cache.put("x", SessionRecord(SessionState.COMPLETE))
    cache.put("x", SessionRecord(SessionState.PENDING))
    assert cache.get("x") is None, "a pending record evicts, never fills"
    off = PassedSessionCache(max_age=0)
    off.put("x", SessionRecord(SessionState.COMPLETE))
    assert off.get("x") is None
    assert not off.enabled


# --- lifetimes -----------------------------------------------------------------------------------------

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("created", "mfa", "activity", "now", "expected"),
    [
        (T0, None, T0, T0, 100.0),                 # fresh pending: idle bound
        (T0, None, T0 + 50, T0 + 60, 90.0),        # activity moves the idle end
        (T0, T0 + 10, T0 + 995, T0 + 995, 15.0),   # absolute end (mfa + 1000) comes first
        (T0, None, T0 + 950, T0 + 960, 40.0),      # pending: absolute counts from creation
        (T0, T0 + 10, T0 + 10, T0 + 200, -90.0),   # idle for too long: ended
        (T0, None, T0 - 500, T0, 100.0),           # a last_activity before creation counts as creation
    ],
)
def test_remaining(created: float, mfa: float | None, activity: float, now: float, expected: float) -> None:
    record = SessionRecord(SessionState.PENDING, created_at=created, mfa_at=mfa, last_activity=activity)
    timeouts = SessionTimeouts(idle=100, absolute=1000)
    assert timeouts.remaining(record, now) == pytest.approx(expected)
    assert timeouts.expired(record, now) is (expected <= 0)
    assert session_ttl(record, now, idle=100, absolute=1000) == pytest.approx(expected)


# --- settings --------------------------------------------------------------------------------------------

@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return with_required_settings(monkeypatch)


def test_store_settings_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(env_file=None)
    assert settings.gateway_session_cache_seconds == 2
    assert settings.gateway_redis_prefix == "msgw:"
    assert settings.gateway_redis_timeout == 2
    assert settings.gateway_redis_ca_file is None


def test_redis_needs_a_shared_secret(env: pytest.MonkeyPatch) -> None:
    env.setenv("GATEWAY_SESSION_STORE", "redis")
    env.setenv("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert any(line.startswith("GATEWAY_SESSION_SECRET: required") for line in info.value.problems)


@pytest.mark.parametrize("name", ["GATEWAY_SESSION_SECRET", "GATEWAY_SESSION_SECRET_PREVIOUS"])
def test_short_secrets_are_refused_without_being_shown(env: pytest.MonkeyPatch, name: str) -> None:
    env.setenv(name, "tooshort-hunter2")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert any(line.startswith(f"{name}: at least 32 characters") for line in info.value.problems)
    assert "hunter2" not in str(info.value)


def test_empty_values_mean_unset(env: pytest.MonkeyPatch) -> None:
    env.setenv("GATEWAY_SESSION_SECRET", "")
    env.setenv("GATEWAY_REDIS_CA_FILE", "")
    settings = load_settings(env_file=None)
    assert settings.gateway_session_secret is None
    assert settings.gateway_redis_ca_file is None
