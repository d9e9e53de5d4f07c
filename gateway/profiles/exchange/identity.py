"""Who signed in, once Exchange accepted the password: the MFA verdict for a typed user name.

Order matters, and each bypass is narrow:

0. A name Exchange may read as another account (anything outside ASCII: best fit to the server's
   code page) is refused before anything else: no verdict on it would be about the right person.

1. Exchange's generated system mailboxes (Managed Availability probes) skip MFA, decided on the
   typed name's shape alone, before Monosign is asked (they are not Monosign users).
2. `MONOSIGN_USER_EXCEPTIONS` entries that match a form of the typed name skip MFA without a
   Monosign call, so an excepted account still works while Monosign is down.
3. Otherwise Monosign's `by-username` lookup names the user (its Id keys every counter); entries
   matching Monosign's UserName or Email also skip MFA.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gateway.monosign import MonosignClient, MonosignUser, UserNotAssigned, UserNotFound
from gateway.policy.users import (
    UserName,
    check_exchange_reading,
    is_system_mailbox,
    matches_exception,
    parse_username,
)


class Verdict(StrEnum):
    SECOND_FACTOR = "second_factor"
    EXCEPTION = "exception"
    SYSTEM_MAILBOX = "system_mailbox"


@dataclass(frozen=True, slots=True)
class Identity:
    verdict: Verdict
    name: UserName
    user: MonosignUser | None  # None when MFA was skipped before asking Monosign

    @property
    def forms(self) -> list[str]:
        """Every lower-cased name known for the user (for the session record)."""
        known = set(self.name.forms)
        if self.user is not None:
            known.add(self.user.user_name.lower())
            if self.user.email:
                known.add(self.user.email.lower())
        return sorted(known)


async def identify(typed: str, monosign: MonosignClient, exceptions: Sequence[str]) -> Identity:
    """The verdict for `typed` (the logon form's `username`).

    Raises ValueError when the name does not parse (nothing to decide on: fail closed),
    AmbiguousUserName (a ValueError) when Exchange may have read it as another account, and the
    MonosignError of the lookup (UserNotFound, UserNotAssigned, MonosignUnreachable, ...).
    """
    name = parse_username(typed)
    check_exchange_reading(typed)
    if is_system_mailbox(name):
        return Identity(Verdict.SYSTEM_MAILBOX, name, None)
    if matches_exception(name.forms, exceptions):
        return Identity(Verdict.EXCEPTION, name, None)
    user = await monosign.lookup_user(name.typed)
    monosign_forms = [form for form in (user.user_name, user.email) if form]
    if matches_exception([*name.forms, *monosign_forms], exceptions):
        return Identity(Verdict.EXCEPTION, name, user)
    return Identity(Verdict.SECOND_FACTOR, name, user)


class SessionUserCheck(StrEnum):
    SAME = "same"
    UNREADABLE = "unreadable"        # no user name Exchange would read as the typed one
    OTHER_USER = "other_user"


def named_form(name: UserName) -> str:
    """The one lower-cased form that says exactly whom a typed name names: the UPN, `domain\\account`,
    or the bare account (which Exchange reads in its default domain)."""
    if name.upn is not None:
        return name.upn
    return f"{name.domain}\\{name.account}" if name.domain is not None else name.account


def names_exempt_user(typed: str, known_forms: Iterable[str]) -> SessionUserCheck:
    """`names_session_user` for a session without a Monosign user (an exception or a system
    mailbox): the exact form the typed name names must be one its user signed in with."""
    try:
        name = parse_username(typed)
        check_exchange_reading(typed)
    except ValueError:
        return SessionUserCheck.UNREADABLE
    return SessionUserCheck.SAME if named_form(name) in set(known_forms) else SessionUserCheck.OTHER_USER


async def names_session_user(typed: str, user_id: str, known_forms: Iterable[str],
                             monosign: MonosignClient) -> SessionUserCheck:
    """Whether `typed` (a form's user name, e.g. the expired-password page's) names the user of a
    passed session, by the rules of sign-in: a name Exchange may read as another account is no
    one's; a session Monosign knows (`user_id`) is matched by Monosign's lookup of the typed name,
    as at sign-in; an exempt one by `names_exempt_user` (`known_forms`:
    `SessionRecord.normalised_usernames`).

    Raises the MonosignError of the lookup when Monosign cannot answer (MonosignUnreachable, ...);
    a name Monosign does not know (UserNotFound, UserNotAssigned) is another user.
    """
    readable = names_exempt_user(typed, known_forms)
    if readable is SessionUserCheck.UNREADABLE or not user_id:
        return readable
    try:
        user = await monosign.lookup_user(parse_username(typed).typed)
    except (UserNotFound, UserNotAssigned):
        return SessionUserCheck.OTHER_USER
    return SessionUserCheck.SAME if user.id == user_id else SessionUserCheck.OTHER_USER
