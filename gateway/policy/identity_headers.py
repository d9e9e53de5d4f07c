"""Identity handed to the upstream in headers, and every client-sent spelling of them removed (pure).

An upstream that trusts `Remote-User` trusts whatever reaches it under a name it reads as that one.
Servers and frameworks read header names loosely: case-insensitively (all of them), `_` as `-`
(CGI, PHP, Django, Rack and WSGI map both to `HTTP_REMOTE_USER`), around white space. Advisories
came from exactly that: oauth2-proxy's `X_Forwarded_Email`, Caddy's `copy_headers`, Louketo keeping
identity headers on routes that skipped sign-in. So the rule here is deliberately wider than any one
reader: a client header is removed when its name, reduced to its ASCII letters and digits and
lower-cased, equals the reduced name of an identity header (`Remote-User`, `remote_user`,
`REMOTE-USER `, `Remote.User` and `RemoteUser` are all one name). Every occurrence goes, on every
route, `bypass` included; the gateway's own values are added after, once each, only for a session
that passed.

Values: printable ASCII goes as it is, except `%`; anything else (non-ASCII letters, controls) and
`%` itself are sent percent-encoded as UTF-8, so no CR, LF or NUL can reach the upstream, a receiver
that decodes gets the exact value back, and one that does not still sees only ASCII. Groups are one
comma-separated header; a `,` inside a group name is percent-encoded too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from multidict import CIMultiDict

__all__ = [
    "ASSERTION_HEADER",
    "IdentityClaims",
    "IdentityHeaderNames",
    "IdentityHeaders",
    "header_key",
    "header_value",
]

ASSERTION_HEADER = "X-Monosign-Assertion"
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_VERBATIM = re.compile(r"[\x20-\x24\x26-\x7e]*")  # printable ASCII but '%'
_VERBATIM_GROUP = re.compile(r"[\x20-\x24\x26-\x2b\x2d-\x7e]*")  # ... and but ','


def header_key(name: str) -> str:
    """The name as the loosest reader would read it: ASCII letters and digits, lower-cased."""
    return _NOT_ALNUM.sub("", name.lower())


def header_value(text: str, *, verbatim: re.Pattern[str] = _VERBATIM) -> str:
    if verbatim.fullmatch(text):
        return text.strip(" ")
    return "".join(char if verbatim.fullmatch(char) else _escape(char) for char in text).strip(" ")


def _escape(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class IdentityHeaderNames:
    """Which header carries what; None leaves a claim out. Defaults are Authelia's."""

    user: str | None = "Remote-User"
    email: str | None = "Remote-Email"
    name: str | None = "Remote-Name"
    groups: str | None = "Remote-Groups"

    def all(self) -> tuple[str, ...]:
        return tuple(name for name in (self.user, self.email, self.name, self.groups) if name)


@dataclass(frozen=True, slots=True)
class IdentityClaims:
    user: str
    email: str | None = None
    name: str | None = None
    groups: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class IdentityHeaders:
    """One site's identity headers: the names to strip from clients and the values to set."""

    names: IdentityHeaderNames = field(default_factory=IdentityHeaderNames)
    extra_stripped: tuple[str, ...] = (ASSERTION_HEADER,)
    _keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = frozenset(header_key(name) for name in (*self.names.all(), *self.extra_stripped))
        if "" in keys:
            raise ValueError("an identity header name needs letters or digits")
        object.__setattr__(self, "_keys", keys)

    def is_identity_header(self, name: str) -> bool:
        return header_key(name) in self._keys

    def strip(self, headers: CIMultiDict[str]) -> list[str]:
        """Remove every client header read as an identity header; the names removed, as spelled (for the audit)."""
        removed = [name for name, _ in headers.items() if header_key(name) in self._keys]
        for name in set(removed):
            headers.popall(name, None)
        return removed

    def values(self, claims: IdentityClaims) -> list[tuple[str, str]]:
        """The headers to send for a passed session, each once."""
        names = self.names
        pairs: list[tuple[str, str]] = []
        if names.user:
            pairs.append((names.user, header_value(claims.user)))
        if names.email and claims.email:
            pairs.append((names.email, header_value(claims.email)))
        if names.name and claims.name:
            pairs.append((names.name, header_value(claims.name)))
        if names.groups and claims.groups:
            pairs.append((names.groups, _groups_value(claims.groups)))
        return pairs

    def apply(self, headers: CIMultiDict[str], claims: IdentityClaims | None) -> list[str]:
        """Strip every client spelling, then set the session's values (none without a passed session)."""
        removed = self.strip(headers)
        if claims is not None:
            for name, value in self.values(claims):
                headers[name] = value
        return removed


def _groups_value(groups: Iterable[str]) -> str:
    return ",".join(header_value(group, verbatim=_VERBATIM_GROUP) for group in groups if group.strip(" "))
