"""The `file` first factor: sign-ins against a real users file, and its reload rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from argon2 import extract_parameters

from gateway.identity import Failure, FailureKind, FirstFactor, Identity
from gateway.identity.file_backend import FileFirstFactor
from gateway.identity.users_file import UsersFileError
from tests.identity.kit import fast_hash
from tests.logs import CapturedLogs, events

NON_ASCII_PASSWORD = "pässwörd Ünïcödé 日本語 ✓"


def users_text(**extra_users: str) -> str:
    text = (
        "users:\n"
        "  alice:\n"
        f"    password: '{fast_hash('alice password')}'\n"
        "    displayname: Alice Example\n"
        "    email: alice@example.org\n"
        "    groups: [staff, admins]\n"
        "  bob:\n"
        f"    password: '{fast_hash(NON_ASCII_PASSWORD)}'\n"
        "  carol:\n"
        f"    password: '{fast_hash('carol password')}'\n"
        "    disabled: true\n"
    )
    for name, password in extra_users.items():
        text += f"  {name}:\n    password: '{fast_hash(password)}'\n"
    return text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replace_file(path: Path, text: str) -> None:
    """As editors and `users add` do: a new file renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yml"
    path.write_text(users_text())
    return path


async def test_sign_ins(users_file: Path) -> None:
    backend = await FileFirstFactor.load(users_file)
    assert isinstance(backend, FirstFactor)
    assert await backend.authenticate(" ALICE ", "alice password") == Identity(
        username="alice", display_name="Alice Example", email="alice@example.org",
        groups=("staff", "admins"), directory_id="alice",
    )
    assert await backend.authenticate("bob", NON_ASCII_PASSWORD) == Identity("bob", None, None, (), "bob")
    wrong = await backend.authenticate("alice", "Alice password")
    unknown = await backend.authenticate("mallory", "alice password")
    assert wrong == Failure(FailureKind.BAD_CREDENTIALS, "wrong password")
    assert unknown == Failure(FailureKind.BAD_CREDENTIALS, "unknown user")
    assert await backend.authenticate("bob", "pässwörd") == Failure(FailureKind.BAD_CREDENTIALS, "wrong password")
    assert await backend.authenticate("alice", "") == Failure(FailureKind.BAD_CREDENTIALS, "wrong password")
    await backend.aclose()


async def test_a_disabled_account_is_reported_only_after_its_password(users_file: Path) -> None:
    backend = await FileFirstFactor.load(users_file)
    assert await backend.authenticate("carol", "carol password") == Failure(
        FailureKind.ACCOUNT_DISABLED, "account disabled in the users file")
    assert await backend.authenticate("carol", "guess") == Failure(FailureKind.BAD_CREDENTIALS, "wrong password")


@pytest.mark.parametrize("typed", ["", "a\x00", "ａｌｉｃｅ", "alice\nbob", "a" * 300, "a@b@c"])
async def test_names_that_do_not_validate(users_file: Path, typed: str) -> None:
    outcome = await (await FileFirstFactor.load(users_file)).authenticate(typed, "alice password")
    assert isinstance(outcome, Failure)
    assert outcome.kind is FailureKind.BAD_CREDENTIALS
    assert outcome.reason.startswith("username refused")


async def test_an_unknown_user_costs_a_hash_with_the_files_parameters(users_file: Path) -> None:
    backend = await FileFirstFactor.load(users_file)
    dummy = extract_parameters(backend._loaded.dummy_hash)
    assert dummy == extract_parameters(fast_hash("x"))  # the file's (cheap) parameters, not the defaults


async def test_reload_on_change_at_most_once_a_second(users_file: Path, captured_logs: CapturedLogs) -> None:
    clock = Clock()
    backend = await FileFirstFactor.load(users_file, clock=clock)
    replace_file(users_file, users_text(dave="dave password"))
    clock.now += 0.5  # not yet looked at
    assert (await backend.authenticate("dave", "dave password")).__class__ is Failure
    clock.now += 0.6
    assert isinstance(await backend.authenticate("dave", "dave password"), Identity)
    assert [e["users"] for e in events(captured_logs(), "gateway.identity") if e["event"] == "users_file_reloaded"] \
        == [4]


async def test_an_in_place_edit_is_seen_too(users_file: Path) -> None:
    clock = Clock()
    backend = await FileFirstFactor.load(users_file, clock=clock)
    with users_file.open("a") as handle:  # same inode; size and mtime change
        handle.write(f"  erin:\n    password: '{fast_hash('erin password')}'\n")
    clock.now += 1
    assert isinstance(await backend.authenticate("erin", "erin password"), Identity)


@pytest.mark.parametrize(
    "broken",
    [
        "users:\n  alice: {password: x\n",  # half-saved
        "users:\n  alice:\n    password: notahash\n",
        "users:\n  alice:\n    passwd: x\n",
        b"\xff\xfe not utf-8",
    ],
)
async def test_an_invalid_new_content_keeps_the_old_one(
    users_file: Path, captured_logs: CapturedLogs, broken: str | bytes
) -> None:
    clock = Clock()
    backend = await FileFirstFactor.load(users_file, clock=clock)
    temporary = users_file.with_suffix(".tmp")
    if isinstance(broken, bytes):
        temporary.write_bytes(broken)
    else:
        temporary.write_text(broken)
    os.replace(temporary, users_file)
    for _ in range(3):
        clock.now += 1.5
        assert isinstance(await backend.authenticate("alice", "alice password"), Identity)
    warnings = [e for e in events(captured_logs(), "gateway.identity") if e["event"] == "users_file_invalid"]
    assert len(warnings) == 1, "one warning per new version of the file, not one a second"
    assert warnings[0]["path"] == str(users_file)
    assert warnings[0]["action"] == "kept the users read before"
    # Fixed: read again.
    replace_file(users_file, users_text(dave="dave password"))
    clock.now += 1.5
    assert isinstance(await backend.authenticate("dave", "dave password"), Identity)


async def test_a_removed_file_keeps_the_users(users_file: Path, captured_logs: CapturedLogs) -> None:
    clock = Clock()
    backend = await FileFirstFactor.load(users_file, clock=clock)
    users_file.unlink()
    for _ in range(3):
        clock.now += 1.5
        assert isinstance(await backend.authenticate("alice", "alice password"), Identity)
    warnings = [e for e in events(captured_logs(), "gateway.identity") if e["event"] == "users_file_invalid"]
    assert len(warnings) == 1
    assert "cannot read it" in warnings[0]["reason"]


async def test_no_password_or_hash_is_logged(users_file: Path, captured_logs: CapturedLogs) -> None:
    clock = Clock()
    backend = await FileFirstFactor.load(users_file, clock=clock)
    replace_file(users_file, users_text().replace("password:", "pasword:", 1))
    clock.now += 1.5
    await backend.authenticate("alice", "alice password")
    await backend.authenticate("mallory", "mallory's secret")
    text = "\n".join(captured_logs())
    assert "users_file_invalid" in text
    for secret in ("alice password", "mallory's secret", "$argon2id$"):
        assert secret not in text


async def test_start_up_refuses_a_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await FileFirstFactor.load(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("users:\n  alice: {}\n")
    with pytest.raises(UsersFileError, match="password: is required"):
        await FileFirstFactor.load(bad)
