"""The typed user name, checked before any backend uses it. Pure, no I/O.

The rules are gateway/policy/users.py's (`parse_username`): ASCII white space trimmed (a Unicode space
stays and is refused), at most `MAX_USERNAME_LENGTH` characters, no control, format or line/paragraph
separator characters, at most one ``\\`` or ``@``, no empty parts. On top of them, a first factor
refuses names outside printable ASCII unless its backend is configured to accept them
(`allow_non_ascii`): two spellings that a directory folds together (fullwidth letters, compatibility
forms) would otherwise reach Monosign as two different users.
"""

from __future__ import annotations

from gateway.policy.users import MAX_USERNAME_LENGTH, UserName, parse_username

__all__ = ["MAX_USERNAME_LENGTH", "InvalidUserName", "validate_username"]


class InvalidUserName(ValueError):
    """A typed name no backend may use. The message never contains the name."""


def validate_username(typed: str, *, allow_non_ascii: bool = False) -> UserName:
    """Parse and check the typed name; raise InvalidUserName (with a reason fit for the audit log)."""
    try:
        name = parse_username(typed)
    except ValueError as exc:
        raise InvalidUserName(str(exc)) from None
    if not allow_non_ascii and not (name.typed.isascii() and name.typed.isprintable()):
        raise InvalidUserName("username outside printable ASCII")
    return name
