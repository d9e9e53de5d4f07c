"""The users file of the `file` first factor: its format, parsed and appended to. Pure, no I/O.

Format (YAML; the keys are Authelia's, so its users files with argon2id hashes work unchanged)::

    users:
      alice:
        password: "$argon2id$v=19$m=65536,t=3,p=4$...$..."   # required; argon2id only
        displayname: Alice Example                          # optional
        email: alice@example.org                            # optional
        groups: [staff, admins]                             # optional
        disabled: false                                     # optional; true refuses the sign-in

Names follow the first factor's user-name rules (gateway/identity/usernames.py) and are unique
ignoring ASCII case (a sign-in as ``ALICE`` finds ``alice``). A duplicate YAML key, an unknown key
(``disable:`` for ``disabled:``) or a hash that is not argon2id makes the whole file invalid: the
gateway then refuses to start, or keeps the previous content when it reloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError

from gateway.identity.usernames import InvalidUserName, validate_username

__all__ = [
    "UserRecord",
    "UsersFile",
    "UsersFileError",
    "add_user",
    "new_password_hasher",
    "parse_users_file",
]

_USER_KEYS = frozenset({"password", "displayname", "email", "groups", "disabled"})


class UsersFileError(ValueError):
    """The users file cannot be used; the message says where and why (never a hash or password)."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    password_hash: str
    display_name: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class UsersFile:
    """The users, keyed by their name lower-cased (ASCII case only: names are ASCII by default)."""

    users: Mapping[str, UserRecord]

    def find(self, name: str) -> UserRecord | None:
        return self.users.get(_key(name))


def new_password_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106's low-memory choice: 64 MiB, 3 passes, 4 lanes)."""
    return PasswordHasher(type=Type.ID)


def _key(name: str) -> str:
    # ASCII lower-casing only: str.lower() would fold e.g. the Kelvin sign into "k" for non-ASCII names.
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (PyYAML silently keeps the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise UsersFileError(f"line {key_node.start_mark.line + 1}: {key!r} appears twice")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_users_file(text: str, *, allow_non_ascii: bool = False) -> UsersFile:
    """Parse and validate the whole file; raise UsersFileError naming the first problem."""
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise UsersFileError(f"{where}not valid YAML ({getattr(exc, 'problem', None) or 'syntax error'})") from None
    if document is None:
        return UsersFile({})
    if not isinstance(document, dict) or set(document) - {"users"}:
        raise UsersFileError("expected one top-level key, 'users:'")
    entries = document.get("users") or {}
    if not isinstance(entries, dict):
        raise UsersFileError("'users:' must map user names to their settings")
    users: dict[str, UserRecord] = {}
    for name, fields in entries.items():
        record = _parse_user(name, fields, allow_non_ascii=allow_non_ascii)
        key = _key(record.name)
        if key in users:
            raise UsersFileError(f"user {record.name!r}: same name as {users[key].name!r} (names ignore case)")
        users[key] = record
    return UsersFile(users)


def _parse_user(name: object, fields: object, *, allow_non_ascii: bool) -> UserRecord:
    if not isinstance(name, str):
        raise UsersFileError(f"user name {name!r} is not a string (quote it)")
    label = f"user {name!r}"
    try:
        parsed = validate_username(name, allow_non_ascii=allow_non_ascii)
    except InvalidUserName as exc:
        raise UsersFileError(f"{label}: {exc}") from None
    if parsed.typed != name:
        raise UsersFileError(f"{label}: leading or trailing white space")
    if not isinstance(fields, dict):
        raise UsersFileError(f"{label}: expected its settings (password:, email:, ...)")
    unknown = sorted(str(key) for key in set(fields) - _USER_KEYS)
    if unknown:
        raise UsersFileError(f"{label}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(_USER_KEYS))})")
    password_hash = fields.get("password")
    if not isinstance(password_hash, str):
        raise UsersFileError(f"{label}: password: is required (an argon2id hash; see `monosign-gateway users add`)")
    check_argon2id_hash(password_hash, label)
    groups = fields.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(group, str) and group.strip() for group in groups):
        raise UsersFileError(f"{label}: groups: must be a list of names")
    disabled = fields.get("disabled", False)
    if not isinstance(disabled, bool):
        raise UsersFileError(f"{label}: disabled: must be true or false")
    return UserRecord(
        name=name,
        password_hash=password_hash,
        display_name=_optional_text(fields, "displayname", label),
        email=_optional_text(fields, "email", label),
        groups=tuple(groups),
        disabled=disabled,
    )


def check_argon2id_hash(password_hash: str, label: str) -> None:
    try:
        parameters = extract_parameters(password_hash)
    except InvalidHashError:
        raise UsersFileError(f"{label}: password: is not an argon2 hash") from None
    if parameters.type is not Type.ID:
        raise UsersFileError(f"{label}: password: must be argon2id (this is {parameters.type.name.lower()})")


def _optional_text(fields: Mapping[str, object], key: str, label: str) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsersFileError(f"{label}: {key}: must be text")
    return value


_NEW_FILE_HEADER = (
    "# Users of the gateway's `file` first factor (docs/identity.md).\n"
    "# Add one with: monosign-gateway users add NAME --file THIS_FILE\n"
)


def add_user(text: str, record: UserRecord, *, allow_non_ascii: bool = False) -> str:
    """The file's text with `record` appended as a block at its end (comments and layout kept).

    Raises UsersFileError when the file is invalid, already has the user, or is not laid out so that a
    block appended at its end belongs to `users:` (e.g. written in flow style); the result is parsed
    again and must hold exactly the old users plus the new one.
    """
    before = parse_users_file(text, allow_non_ascii=allow_non_ascii)
    if before.find(record.name) is not None:
        raise UsersFileError(f"user {record.name!r} already exists (edit the file to change it)")
    if not text.strip():
        prefix = _NEW_FILE_HEADER + "users:\n"
    else:
        prefix = text if text.endswith("\n") else text + "\n"
        if "users" not in (yaml.safe_load(text) or {}):
            prefix += "users:\n"
    result = prefix + _render_user(record)
    cannot = UsersFileError("cannot append to this file: write 'users:' last and in block style")
    try:
        after = parse_users_file(result, allow_non_ascii=allow_non_ascii)
    except UsersFileError:
        raise cannot from None
    if dict(after.users) != {**before.users, _key(record.name): record}:
        raise cannot
    return result


def _render_user(record: UserRecord) -> str:
    # Every value double-quoted: none is read as a number, a boolean or null.
    lines = [f"  {_quote(record.name)}:", f"    password: {_quote(record.password_hash)}"]
    if record.display_name is not None:
        lines.append(f"    displayname: {_quote(record.display_name)}")
    if record.email is not None:
        lines.append(f"    email: {_quote(record.email)}")
    if record.groups:
        lines.append(f"    groups: {_json_list(record.groups)}")
    if record.disabled:
        lines.append("    disabled: true")
    return "\n".join(lines) + "\n"


def _json_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(item) for item in items) + "]"


def _quote(text: str) -> str:
    """A YAML double-quoted scalar: readable for printable text, escaped otherwise (YAML would fold
    line separators such as U+2028 or NEL that JSON leaves as they are)."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)
