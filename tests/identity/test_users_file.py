"""The users file's format: what parses, what is refused (with where and why), appending a user."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.identity.users_file import UserRecord, UsersFileError, add_user, parse_users_file
from tests.identity.kit import fast_hash

HASH = fast_hash("secret")


def test_a_full_file() -> None:
    users = parse_users_file(
        "# comment\n"
        "users:\n"
        "  alice:\n"
        f"    password: '{HASH}'\n"
        "    displayname: Alice Example\n"
        "    email: alice@example.org\n"
        "    groups: [staff, admins]\n"
        "  Bob:\n"
        f"    password: '{HASH}'\n"
        "    disabled: true\n"
    )
    assert users.find("ALICE") == UserRecord("alice", HASH, "Alice Example", "alice@example.org",
                                             ("staff", "admins"), False)
    bob = users.find("bob")
    assert bob is not None
    assert bob.name == "Bob"
    assert bob.disabled
    assert bob.groups == ()
    assert users.find("carol") is None


@pytest.mark.parametrize("text", ["", "# only a comment\n", "users:\n", "users: {}\n"])
def test_empty_files(text: str) -> None:
    assert parse_users_file(text).users == {}


def _user(fields: str, name: str = "alice") -> str:
    return f"users:\n  {name}:\n{fields}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: [alice]\n", "must map user names"),
        ("people:\n  alice: {}\n", "one top-level key"),
        ("- alice\n", "one top-level key"),
        ("users:\n  alice: {password: x\n", "not valid YAML"),
        (_user(f"    password: '{HASH}'\n") + _user(f"    password: '{HASH}'\n").removeprefix("users:\n"),
         "'alice' appears twice"),
        (_user(f"    password: '{HASH}'\n") + _user(f"    password: '{HASH}'\n", "ALICE").removeprefix("users:\n"),
         "same name as 'alice'"),
        (_user(f"    password: '{HASH}'\n    password: '{HASH}'\n"), "'password' appears twice"),
        (_user("    email: a@x\n"), "password: is required"),
        (_user("    password: plain-text\n"), "not an argon2 hash"),
        (_user("    password: '$6$salt$sha512crypt'\n"), "not an argon2 hash"),
        (_user(f"    password: '{PasswordHasher(type=Type.I, memory_cost=1024, time_cost=1).hash('x')}'\n"),
         "must be argon2id"),
        (_user(f"    password: '{HASH}'\n    disable: true\n"), "unknown key disable"),
        (_user(f"    password: '{HASH}'\n    disabled: 'no'\n"), "disabled: must be true or false"),
        (_user(f"    password: '{HASH}'\n    groups: staff\n"), "groups: must be a list"),
        (_user(f"    password: '{HASH}'\n    groups: ['']\n"), "groups: must be a list"),
        (_user(f"    password: '{HASH}'\n    email: 12\n"), "email: must be text"),
        (_user(f"    password: '{HASH}'\n", name="123"), "not a string"),
        (_user(f"    password: '{HASH}'\n", name="'a*b\\x'"), None),  # accepted: printable ASCII
        (_user(f"    password: '{HASH}'\n", name="'Jürgen'"), "outside printable ASCII"),
        (_user(f"    password: '{HASH}'\n", name="' alice'"), "white space"),
        (_user(f"    password: '{HASH}'\n", name="'a@b@c'"), "malformed"),
        (_user("    - x\n"), "expected its settings"),
    ],
)
def test_refused_files(text: str, message: str | None) -> None:
    if message is None:
        parse_users_file(text)
        return
    with pytest.raises(UsersFileError, match=message) as refused:
        parse_users_file(text)
    assert HASH not in str(refused.value)


def test_non_ascii_names_when_allowed() -> None:
    users = parse_users_file(_user(f"    password: '{HASH}'\n", name="Jürgen"), allow_non_ascii=True)
    assert users.find("Jürgen") is not None
    assert users.find("jürgen") is not None  # ASCII case folded; ü kept


def test_add_user_to_a_new_file_and_append_keeping_comments() -> None:
    alice = UserRecord("alice", HASH, "Alice \"Al\" Example", "alice@example.org", ("staff", "a,b"))
    first = add_user("", alice)
    assert first.startswith("# Users of the gateway")
    assert parse_users_file(first).find("alice") == alice
    edited = first.replace("users:\n", "users:\n  # the admins\n")
    bob = UserRecord("no", HASH, groups=("yes", "null", "1"))  # YAML 1.1 would read these as bool/None/int
    second = add_user(edited, bob)
    assert second.startswith(edited)
    assert "# the admins" in second
    parsed = parse_users_file(second)
    assert parsed.find("no") == bob
    assert parsed.find("alice") == alice


def test_add_user_under_an_empty_users_key_and_to_a_comment_only_file() -> None:
    record = UserRecord("alice", HASH)
    assert parse_users_file(add_user("users:\n", record)).find("alice") == record
    assert parse_users_file(add_user("# hello\n", record)).find("alice") == record


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_user(f"    password: '{HASH}'\n", name="ALICE"), "already exists"),
        ("users: {}\n", "cannot append"),
        ("users: {bob: {password: '" + HASH + "'}}\n", "cannot append"),
        ("users: [x]\n", "must map"),
    ],
)
def test_add_user_refused(text: str, message: str) -> None:
    with pytest.raises(UsersFileError, match=message):
        add_user(text, UserRecord("alice", HASH))


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    name=st.from_regex(r"[A-Za-z0-9._-][A-Za-z0-9 ._()*-]{0,20}[A-Za-z0-9._-]", fullmatch=True),
    display_name=st.none() | TEXT,
    email=st.none() | TEXT,
    groups=st.lists(TEXT.filter(str.strip), max_size=4),
)
def test_whatever_the_values_a_user_reads_back_as_written(
    name: str, display_name: str | None, email: str | None, groups: list[str]
) -> None:
    record = UserRecord(name, HASH, display_name, email, tuple(groups))
    text = add_user("# users\nusers:\n", record)
    assert parse_users_file(text).find(name) == record
