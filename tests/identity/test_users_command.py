"""`monosign-gateway users add`: the hash it writes signs the user in; what it refuses."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.identity import Identity
from gateway.identity.file_backend import FileFirstFactor
from gateway.identity.users_file import parse_users_file


def add(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "s3cret pässword\n") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", "add", *args, "--password-stdin"])


async def test_added_users_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    users = tmp_path / "users.yml"
    assert add(monkeypatch, "alice", "--file", str(users), "--email", "alice@example.org",
               "--display-name", "Alice Example", "--groups", "staff, admins,") == 0
    assert "added alice" in capsys.readouterr().err
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert add(monkeypatch, "bob", "--file", str(users), stdin="bob's\r\n") == 0
    text = users.read_text()
    assert "s3cret" not in text
    assert "$argon2id$v=19$m=65536,t=3,p=4$" in text  # argon2-cffi's defaults (RFC 9106, low memory)
    backend = await FileFirstFactor.load(users)
    assert await backend.authenticate("alice", "s3cret pässword") == Identity(
        "alice", "Alice Example", "alice@example.org", ("staff", "admins"), "alice")
    assert isinstance(await backend.authenticate("bob", "bob's"), Identity)


def test_the_file_keeps_its_mode_and_comments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "users.yml"
    users.write_text("# site users\nusers:\n")
    os.chmod(users, 0o640)
    assert add(monkeypatch, "alice", "--file", str(users)) == 0
    assert stat.S_IMODE(users.stat().st_mode) == 0o640
    assert users.read_text().startswith("# site users\nusers:\n  \"alice\":\n")
    assert [path.name for path in tmp_path.iterdir()] == ["users.yml"]  # no temporary file left


@pytest.mark.parametrize(
    ("name", "stdin", "existing", "message"),
    [
        ("alice", "\n", None, "empty password"),
        ("alice", "", None, "empty password"),
        (" alice", "pw\n", None, "white space"),
        ("ali\x00ce", "pw\n", None, "control character"),
        ("Jürgen", "pw\n", None, "outside printable ASCII"),
        ("ALICE", "pw\n", "alice", "already exists"),
        ("bob", "pw\n", "users: {}\n", "cannot append"),
        ("bob", "pw\n", "users: [\n", "not valid YAML"),
    ],
)
def test_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                 name: str, stdin: str, existing: str | None, message: str) -> None:
    users = tmp_path / "users.yml"
    if existing == "alice":
        assert add(monkeypatch, "alice", "--file", str(users)) == 0
    elif existing is not None:
        users.write_text(existing)
    before = users.read_text() if users.exists() else None
    assert add(monkeypatch, name, "--file", str(users), stdin=stdin) == 1
    assert message in capsys.readouterr().err
    assert (users.read_text() if users.exists() else None) == before


def test_asks_twice_without_password_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["first", "second", "same", "same"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    users = tmp_path / "users.yml"
    assert main(["users", "add", "alice", "--file", str(users)]) == 1
    assert "differ" in capsys.readouterr().err
    assert main(["users", "add", "alice", "--file", str(users)]) == 0
    assert parse_users_file(users.read_text()).find("alice") is not None
