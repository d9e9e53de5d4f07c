"""User names as Exchange accepts them, system mailboxes, and the MFA exception list.

Why: Exchange lets one account sign in as ``CORP\\alice``, ``corp/alice``, ``alice@corp.example`` or
``ALICE``; an exception list or a system-mailbox rule that compares raw strings either misses the
account (annoying) or, worse, matches the wrong one (an MFA bypass). So names are parsed into their
parts once, compared lower-cased, and the rules that *skip* MFA are deliberately narrow. Pure, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MAX_USERNAME_LENGTH",
    "AmbiguousUserName",
    "UserName",
    "check_exchange_reading",
    "is_system_mailbox",
    "matches_exception",
    "parse_username",
]

MAX_USERNAME_LENGTH = 256

_ASCII_SPACE = " \t\n\r\x0b\x0c"
_DNS_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")


@dataclass(frozen=True, slots=True)
class UserName:
    """A parsed user name. ``typed`` is what the user typed (trimmed); the other fields are lower-cased.

    ``domain`` is the NetBIOS (or DNS) domain of ``DOMAIN\\user``, or the suffix of ``user@suffix``;
    ``upn`` is set only for the ``user@suffix`` form.
    """

    typed: str
    account: str
    domain: str | None
    upn: str | None

    @property
    def forms(self) -> frozenset[str]:
        """Every lower-cased form worth matching: typed, account, ``domain\\account``, UPN, and
        ``account@domain`` when the domain looks like a DNS name."""
        return frozenset({self.typed.lower(), self.account, *_qualified_forms(self)})


def _qualified_forms(name: UserName) -> set[str]:
    """The forms that name the domain as well as the account."""
    forms: set[str] = set()
    if name.upn is not None:
        forms.add(name.upn)
    elif name.domain is not None:
        forms.add(f"{name.domain}\\{name.account}")
    if name.domain is not None and _DNS_NAME.fullmatch(name.domain):
        forms.add(f"{name.account}@{name.domain}")
    return forms


def parse_username(typed: str) -> UserName:
    """Parse ``DOMAIN\\user``, ``DOMAIN/user`` (as DavMail and Windows accept), ``user@suffix`` or ``user``.

    Raises ValueError for an empty name, one over ``MAX_USERNAME_LENGTH`` characters, control,
    format or separator characters, more than one ``\\`` or ``@``, both at once, or an empty or
    space-padded part. The message never contains the name.
    """
    # ASCII white space only: a Unicode space (NBSP, U+3000) trimmed here would be part of the
    # name to Exchange, so it stays and the name is refused as outside ASCII where that matters.
    name = typed.strip(_ASCII_SPACE)
    if not name:
        raise ValueError("empty username")
    if len(name) > MAX_USERNAME_LENGTH:
        raise ValueError("username too long")
    if any(unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp") for char in name):
        raise ValueError("control character in username")
    down_level = name.replace("/", "\\")
    if down_level.count("\\") + down_level.count("@") > 1:
        raise ValueError("malformed username")
    if "\\" in down_level:
        domain, account = down_level.split("\\")
        _check_parts(domain, account)
        return UserName(name, account.lower(), domain.lower(), None)
    if "@" in name:
        account, suffix = name.split("@")
        _check_parts(account, suffix)
        return UserName(name, account.lower(), suffix.lower(), name.lower())
    return UserName(name, name.lower(), None, None)


class AmbiguousUserName(ValueError):
    """A typed name that Exchange may read as another account than the one it spells."""


def check_exchange_reading(typed: str) -> None:
    """Raise AmbiguousUserName unless the name, exactly as typed (untrimmed), is printable ASCII.

    Why: Exchange does not sign in the typed string. FbaModule converts it to the server's ANSI
    code page with Windows' best fit (`Encoding.Default`), so a character the code page lacks
    becomes another one: fullwidth `ａ` and `ā` become `a`, dotless `ı` becomes `i`, `ş` becomes `s`
    on a Western server (and `ü` on a Cyrillic one). The gateway asks Monosign about the typed
    string; if the two readings differ, Exchange signs in `alice` while Monosign names the owner
    of `alıce`, whose second factor is not alice's. Every Windows code page keeps ASCII as it is,
    and no other character is safe on every one, so only ASCII names are read alike by both.
    """
    if not (typed.isascii() and typed.isprintable()):
        raise AmbiguousUserName("username outside printable ASCII")


def _check_parts(*parts: str) -> None:
    if any(not part or part != part.strip() for part in parts):
        raise ValueError("malformed username")


# Exchange's own system, health, arbitration and test mailboxes, by the exact shape of their logon
# names (lower-cased). The prefixes other OWA MFA modules use (healthmailbox*, extest*, migration*,
# ...) would also exempt a real person called "Migration.Team"; an exemption skips MFA, so only the
# generated shapes count:
_SYSTEM_MAILBOX_ACCOUNTS = re.compile(
    r"""
      healthmailbox[0-9a-f]+                       # HealthMailbox<guid hex> (also its 20-char SAM name)
    | extest_[0-9a-z]+                             # extest_<random>: Test-* cmdlets' CAS test user
    | sm_[0-9a-f]+                                 # SM_<hex>: SAM name of system/arbitration mailboxes
    | systemmailbox\{[0-9a-f-]{36}\}               # SystemMailbox{guid}
    | federatedemail\.[0-9a-f-]{36}                # FederatedEmail.<guid>
    | migration\.[0-9a-f-]{36}                     # Migration.<guid>
    | discoverysearchmailbox\{[0-9a-f-]{36}\}      # DiscoverySearchMailbox{guid}
    """,
    re.VERBOSE,
)


def is_system_mailbox(name: UserName) -> bool:
    """True for Exchange's generated system mailboxes (Managed Availability probes sign in to OWA).

    The account part (SAM name or UPN prefix) must have one of the generated shapes:
    ``HealthMailbox<hex>``, ``extest_<alnum>``, ``SM_<hex>``, ``SystemMailbox{<guid>}``,
    ``FederatedEmail.<guid>``, ``Migration.<guid>``, ``DiscoverySearchMailbox{<guid>}``.
    """
    return _SYSTEM_MAILBOX_ACCOUNTS.fullmatch(name.account) is not None


def matches_exception(forms: Iterable[str], exceptions: Iterable[str]) -> bool:
    """True when a ``MONOSIGN_USER_EXCEPTIONS`` entry names this user.

    ``forms`` are what is known about the user: the typed name's forms plus Monosign's UserName and
    Email (any spelling; each is parsed and expanded too). An entry matches when one of its forms
    equals one of the user's, case-insensitively. A domain-qualified entry (``CORP\\alice``,
    ``alice@corp.example``) matches only through its qualified forms, never through its bare account,
    so it cannot exempt ``alice`` of another domain; a bare entry (``alice``) matches that account in
    any domain, as the operator wrote it. Entries that do not parse are ignored.
    """
    known: set[str] = set()
    for form in forms:
        try:
            known |= parse_username(form).forms
        except ValueError:
            continue
    if not known:
        return False
    for entry in exceptions:
        try:
            exception = parse_username(entry)
        except ValueError:
            continue
        wanted = {exception.account} if exception.domain is None else _qualified_forms(exception)
        if wanted & known:
            return True
    return False
