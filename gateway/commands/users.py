"""`monosign-gateway users add NAME`: add a user to the `file` first factor's users file.

Asks for the password twice (no echo), or reads one line from stdin with `--password-stdin` (for
scripts: `printf '%s\\n' "$PASSWORD" | monosign-gateway users add ...`), hashes it with argon2id and
appends the user at the end of the file, keeping the rest of it (comments included) as it was. The
file is replaced atomically (a running gateway never reads half of it) and keeps its mode; a new
file is created readable by its owner only. Exit status: 0 added, 1 refused (the reason on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o600
DEFAULT_FILE = Path("users.yml")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user (asks for the password)",
                             description="Add a user to the users file, with an argon2id hash of the password.")
    add.add_argument("name", metavar="NAME", help="the user name people sign in with")
    add.add_argument("--file", type=Path, default=DEFAULT_FILE, metavar="PATH",
                     help=f"the users file (created when missing; default: {DEFAULT_FILE})")
    add.add_argument("--email", metavar="ADDRESS", help="the user's e-mail address")
    add.add_argument("--display-name", metavar="TEXT", help="the name shown to the user and sent upstream")
    add.add_argument("--groups", default="", metavar="A,B", help="comma-separated group names")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin instead of asking")
    add.set_defaults(_run=run_add)


def run(args: argparse.Namespace) -> int:  # pragma: no cover - replaced by the action's run
    raise SystemExit("choose an action")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _read_password(from_stdin: bool) -> str | None:
    """The password, or None after printing why there is none."""
    import getpass

    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    try:
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password again: ")
    except EOFError:
        print("error: no password given (use --password-stdin to pipe one)", file=sys.stderr)
        return None
    if first != second:
        print("error: the two passwords differ", file=sys.stderr)
        return None
    return first


def run_add(args: argparse.Namespace) -> int:
    from gateway.identity.usernames import InvalidUserName, validate_username
    from gateway.identity.users_file import UserRecord, UsersFileError, add_user, new_password_hasher

    try:
        name = validate_username(args.name)
    except InvalidUserName as exc:
        return _error(f"{exc}")
    if name.typed != args.name:
        return _error("the name has leading or trailing white space")
    groups = tuple(group.strip() for group in args.groups.split(",") if group.strip())
    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        return _error(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    if not password:
        return _error("empty password")
    record = UserRecord(name=args.name, password_hash=new_password_hasher().hash(password),
                        display_name=args.display_name, email=args.email, groups=groups)
    try:
        new_text = add_user(text, record)
    except UsersFileError as exc:
        return _error(f"{path}: {exc}")
    try:
        _replace(path, new_text)
    except OSError as exc:
        return _error(f"{path}: cannot write it ({exc.strerror or exc})")
    print(f"added {args.name} to {path}", file=sys.stderr)
    return 0


def _replace(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (atomic)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
