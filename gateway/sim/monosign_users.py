"""The Monosign simulator's users: built-in demo users, or a JSON file.

Demo users match the OWA simulator's (alice, bob, carol, dave of domain CORP, `<name>@corp.example`).
Their TOTP secrets are fixed and public: they exist for demos and tests, never for real accounts.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp

DEMO_DOMAIN = "CORP"
DEMO_MAIL_SUFFIX = "corp.example"
DEMO_SOURCE = "corp-ad"
KNOWN_METHODS = ("Push", "Totp")
_ID_NAMESPACE = uuid.UUID("6f0c3a4e-93c1-4d53-9b1e-2f5c6a1d0e77")


@dataclass(frozen=True, slots=True)
class SimUser:
    id: str
    user_name: str
    email: str
    display_name: str
    domain: str
    source: str
    mfa_methods: tuple[str, ...]
    assigned: bool
    totp_secret: str

    def answers_to(self, name: str) -> bool:
        """Monosign's by-username accepts the account name, the e-mail (UPN) and DOMAIN\\name, any case."""
        wanted = name.strip().casefold()
        forms = {self.user_name.casefold(), self.email.casefold(), f"{self.domain}\\{self.user_name}".casefold()}
        return wanted in forms

    def in_source(self, source: str) -> bool:
        """A user source is named by its slug or by a domain name set on it (NetBIOS or DNS)."""
        wanted = source.strip().casefold()
        mail_domain = self.email.rpartition("@")[2]
        return wanted in {self.source.casefold(), self.domain.casefold(), mail_domain.casefold()}

    def totp(self) -> pyotp.TOTP:
        return pyotp.TOTP(self.totp_secret)

    def as_api_data(self) -> dict[str, Any]:
        return {"Id": self.id, "UserName": self.user_name, "Email": self.email, "DisplayName": self.display_name,
                "Source": self.source, "MfaMethods": list(self.mfa_methods)}


def _user_id(user_name: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, user_name.casefold()))


def demo_users() -> tuple[SimUser, ...]:
    people = [
        # name, display name, methods, assigned to the application, TOTP secret (demo only)
        ("alice", "Alice Archer", ("Push", "Totp"), True, "PTJNG6OTZXOO4YM3PCW223DK6EIWGZVF"),
        ("bob", "Bob Baker", ("Totp",), True, "5DHWHK6AVNJ5BHXF7Q5QRFOG3QPDVYMN"),
        ("carol", "Carol Carter", ("Push", "Totp"), False, "KJAHDLUJB5UXNE4NXIMZHQXB6DMN3P3P"),
        ("dave", "Dave Dawson", ("Push",), True, "S7FE5JNUSTNHGDEF4WULHJC3BK427BZW"),
    ]
    return tuple(
        SimUser(id=_user_id(name), user_name=name, email=f"{name}@{DEMO_MAIL_SUFFIX}", display_name=display,
                domain=DEMO_DOMAIN, source=DEMO_SOURCE, mfa_methods=methods, assigned=assigned, totp_secret=secret)
        for name, display, methods, assigned, secret in people
    )


class UsersFileError(ValueError):
    """The users file cannot be used; the message says where and why."""


def _text(entry: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise UsersFileError(f"{where}.{key}: expected a non-empty string")
    return value.strip()


def _user_from_json(index: int, entry: Any) -> SimUser:
    where = f"users[{index}]"
    if not isinstance(entry, dict):
        raise UsersFileError(f"{where}: expected an object")
    user_name = _text(entry, "user_name", where)
    domain = _text(entry, "domain", where, DEMO_DOMAIN)
    methods = entry.get("mfa_methods", list(KNOWN_METHODS))
    if not isinstance(methods, list) or any(method not in KNOWN_METHODS for method in methods):
        raise UsersFileError(f"{where}.mfa_methods: expected a list of {', '.join(KNOWN_METHODS)}")
    assigned = entry.get("assigned", True)
    if not isinstance(assigned, bool):
        raise UsersFileError(f"{where}.assigned: expected true or false")
    secret = _text(entry, "totp_secret", where, pyotp.random_base32())
    try:
        pyotp.TOTP(secret).now()
    except Exception:  # pyotp raises binascii.Error / ValueError for bad base32
        raise UsersFileError(f"{where}.totp_secret: expected a base32 secret") from None
    return SimUser(
        id=_text(entry, "id", where, _user_id(user_name)),
        user_name=user_name,
        email=_text(entry, "email", where, f"{user_name}@{DEMO_MAIL_SUFFIX}"),
        display_name=_text(entry, "display_name", where, user_name),
        domain=domain,
        source=_text(entry, "source", where, DEMO_SOURCE),
        mfa_methods=tuple(methods),
        assigned=assigned,
        totp_secret=secret.upper(),
    )


def load_users(path: Path) -> tuple[SimUser, ...]:
    """Read `{"users": [{"user_name": "...", ...}]}` (or a bare list); see docs/simulators.md."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsersFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise UsersFileError(f"{path}: not valid JSON ({exc})") from None
    entries = document.get("users") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not entries:
        raise UsersFileError(f"{path}: expected {{\"users\": [...]}} with at least one user")
    users = tuple(_user_from_json(index, entry) for index, entry in enumerate(entries))
    seen: set[str] = set()
    for user in users:
        for key in (user.id.casefold(), user.user_name.casefold()):
            if key in seen:
                raise UsersFileError(f"{path}: {key!r} appears twice")
            seen.add(key)
    return users
