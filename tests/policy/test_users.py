"""Table tests for user-name parsing, system mailboxes and the MFA exception list."""

from __future__ import annotations

import pytest

from gateway.policy.users import (
    MAX_USERNAME_LENGTH,
    AmbiguousUserName,
    UserName,
    check_exchange_reading,
    is_system_mailbox,
    matches_exception,
    parse_username,
)

PARSED: list[tuple[str, UserName, set[str]]] = [
    ("alice", UserName("alice", "alice", None, None), {"alice"}),
    ("  ALICE ", UserName("ALICE", "alice", None, None), {"alice"}),
    ("CORP\\Alice", UserName("CORP\\Alice", "alice", "corp", None), {"corp\\alice", "alice"}),
    ("corp/alice", UserName("corp/alice", "alice", "corp", None), {"corp/alice", "corp\\alice", "alice"}),
    (
        "Alice@Corp.Example",
        UserName("Alice@Corp.Example", "alice", "corp.example", "alice@corp.example"),
        {"alice@corp.example", "alice"},
    ),
    (
        "corp.example\\alice",
        UserName("corp.example\\alice", "alice", "corp.example", None),
        {"corp.example\\alice", "alice", "alice@corp.example"},
    ),
    (
        "alice.smith@mail.corp.example",
        UserName("alice.smith@mail.corp.example", "alice.smith", "mail.corp.example", "alice.smith@mail.corp.example"),
        {"alice.smith@mail.corp.example", "alice.smith"},
    ),
    (
        "bob@localdomain",
        UserName("bob@localdomain", "bob", "localdomain", "bob@localdomain"),
        {"bob@localdomain", "bob"},
    ),
    ("Jürgen", UserName("Jürgen", "jürgen", None, None), {"jürgen"}),
    (
        "CORP\\alice smith",
        UserName("CORP\\alice smith", "alice smith", "corp", None),
        {"corp\\alice smith", "alice smith"},
    ),
    ("\tCORP\\bob\n", UserName("CORP\\bob", "bob", "corp", None), {"corp\\bob", "bob"}),
]


@pytest.mark.parametrize(("typed", "expected", "forms"), PARSED)
def test_parse_username(typed: str, expected: UserName, forms: set[str]) -> None:
    parsed = parse_username(typed)
    assert parsed == expected
    assert parsed.forms == forms


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "a" * (MAX_USERNAME_LENGTH + 1),
        "CORP\\a\\b",
        "CORP\\alice@corp.example",
        "alice@corp@example",
        "corp/alice/x",
        "corp/alice@x",
        "\\alice",
        "CORP\\",
        "@corp.example",
        "alice@",
        "CORP \\alice",
        "CORP\\ alice",
        "alice @corp.example",
        "ali\x00ce",
        "ali\x1bce",
        "alice\u200b",
        "ali\u2028ce",
        "ali\x85ce",
    ],
)
def test_parse_username_rejects(typed: str) -> None:
    with pytest.raises(ValueError, match=r"^(empty username|username too long|malformed username|control character)"):
        parse_username(typed)


def test_username_at_the_length_bound() -> None:
    assert parse_username("a" * MAX_USERNAME_LENGTH).account == "a" * MAX_USERNAME_LENGTH


def test_error_message_does_not_contain_the_name() -> None:
    with pytest.raises(ValueError, match="malformed username") as excinfo:
        parse_username("secretname\\x\\y")
    assert "secretname" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("HealthMailbox2f4a3e6e1bd3436a9b5f5e1e3c5a7a3e@corp.example", True),
        ("CORP\\HealthMailbox2f4a3e6", True),
        ("healthmailboxabc123", True),
        ("CORP\\extest_9b3d8e1f7c2a4", True),
        ("CORP\\SM_5f6b38e0e6cb4a7cb", True),
        ("SystemMailbox{1f05a927-8e4c-4b0c-9c2d-1e0c2b6c7d3e}@corp.example", True),
        ("SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}", True),
        ("FederatedEmail.4c1f4d8b-8179-4148-93bf-00a95fa1e042@corp.example", True),
        ("Migration.8f3e7716-2011-43e4-96b1-aba62d229136@corp.example", True),
        ("DiscoverySearchMailbox{D919BA05-46A6-415f-80AD-7E09334BB852}@corp.example", True),
        # near misses: real people and look-alikes must get MFA
        ("alice", False),
        ("CORP\\alice", False),
        ("healthmailbox", False),
        ("HealthMailbox-Admin@corp.example", False),
        ("healthmailboxes@corp.example", False),
        ("Migration.Team@corp.example", False),
        ("migrationadmin", False),
        ("FederatedEmailAdmin", False),
        ("SystemMailbox", False),
        ("SystemMailbox{not-a-guid}", False),
        ("extest", False),
        ("extestuser", False),
        ("sm_office", False),
        ("smith", False),
        ("DiscoverySearchMailbox", False),
        ("xhealthmailbox123", False),
    ],
)
def test_is_system_mailbox(typed: str, expected: bool) -> None:
    assert is_system_mailbox(parse_username(typed)) is expected


EXCEPTIONS = ["svc-scanner", "CORP\\bob", "carol@corp.example", "  ", "bad\\\\entry", "dave@corp.example"]


@pytest.mark.parametrize(
    ("forms", "expected"),
    [
        # a bare exception matches that account whatever the form
        (parse_username("svc-scanner").forms, True),
        (parse_username("SVC-SCANNER").forms, True),
        (parse_username("CORP\\svc-scanner").forms, True),
        (parse_username("svc-scanner@corp.example").forms, True),
        # a qualified exception matches its qualified forms
        (parse_username("corp\\BOB").forms, True),
        (parse_username("CORP/bob").forms, True),
        (parse_username("carol@CORP.example").forms, True),
        (parse_username("corp.example\\carol").forms, True),
        # ... and never the same account name in another domain, nor a bare name alone
        (parse_username("OTHER\\bob").forms, False),
        (parse_username("bob").forms, False),
        (parse_username("bob@other.example").forms, False),
        (parse_username("carol").forms, False),
        (parse_username("carol@other.example").forms, False),
        (parse_username("OTHER\\carol").forms, False),
        # the caller adds Monosign's UserName and Email, any spelling
        ([*parse_username("bob").forms, "CORP\\Bob", "bob@corp.example"], True),
        ([*parse_username("carol").forms, "CORP\\carol", "Carol@Corp.Example"], True),
        (["dave", "  DAVE@corp.example  "], True),
        (["erin", "CORP\\erin", "erin@corp.example"], False),
        ([], False),
        (["", "   ", "x\\y\\z"], False),
        (["Bad\\\\Entry"], False),
    ],
)
def test_matches_exception(forms: list[str] | frozenset[str], expected: bool) -> None:
    assert matches_exception(forms, EXCEPTIONS) is expected


def test_no_exceptions_match_nothing() -> None:
    assert matches_exception(parse_username("alice").forms, []) is False


@pytest.mark.parametrize(("typed", "ambiguous"), [
    ("alice", False),
    ("CORP\\alice.smith", False),
    ("alice.smith@corp.example", False),
    ("svc-scanner_01", False),
    ("alıce", True),            # dotless i: best fit to "i"
    ("ａｌｉｃｅ", True),          # fullwidth
    ("ālice", True),            # macron: best fit to "a"
    ("Jürgen", True),           # kept by code page 1252, not by 1251
    ("ali\u212Ae", True),        # Kelvin sign
    ("straße", True),
    ("İbrahim", True),
    ("alice\u00a0", True),       # NBSP: trimmed by the gateway's parser, kept by code page 1252
    ("\u3000alice", True),       # ideographic space
    ("аlice", True),            # Cyrillic a
])
def test_check_exchange_reading(typed: str, ambiguous: bool) -> None:
    if ambiguous:
        with pytest.raises(AmbiguousUserName, match="outside printable ASCII") as excinfo:
            check_exchange_reading(typed)
        assert typed not in str(excinfo.value)
    else:
        check_exchange_reading(typed)
