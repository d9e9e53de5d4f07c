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

from dataclasses import dataclass
from enum import StrEnum

from gateway.monosign import MonosignClient, MonosignUser
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


async def identify(typed: str, monosign: MonosignClient, exceptions: list[str]) -> Identity:
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
