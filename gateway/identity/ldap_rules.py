"""Pure pieces of the `ldap` first factor: filter escaping and templates, the name a user binds as,
Active Directory's bind sub-codes, group names from DNs. No I/O; table-tested.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Literal

from gateway.identity.base import FailureKind
from gateway.policy.users import UserName

__all__ = [
    "IN_CHAIN_GROUP_FILTER",
    "UserBind",
    "account_part",
    "bind_name",
    "classify_ad_bind_failure",
    "escape_filter_value",
    "fill_filter",
    "first_rdn_value",
    "template_fields",
]

UserBind = Literal["search", "upn", "down_level"]

# AD's LDAP_MATCHING_RULE_IN_CHAIN: every group the DN is a member of, directly or through other groups.
IN_CHAIN_GROUP_FILTER = "(member:1.2.840.113556.1.4.1941:={dn})"

_FILTER_ESCAPES = str.maketrans({"\\": r"\5c", "*": r"\2a", "(": r"\28", ")": r"\29", "\x00": r"\00"})


def escape_filter_value(value: str) -> str:
    """RFC 4515 §3: the five characters a filter value may not hold literally, as ``\\XX``.

    One pass over the characters (not five replacements in a row), so an escape already typed by the
    user (``\\2a``) becomes ``\\5c2a``, the three characters it spells, never a wildcard.
    """
    return value.translate(_FILTER_ESCAPES)


def template_fields(template: str) -> set[str]:
    """The ``{name}`` fields of a filter template; ValueError for a format spec, conversion or index."""
    fields: set[str] = set()
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise ValueError(f"{{{field}}}: only plain {{name}} fields are allowed")
        fields.add(field)
    return fields


def fill_filter(template: str, values: Mapping[str, str]) -> str:
    """The template with each ``{field}`` replaced by its RFC 4515-escaped value."""
    return template.format_map({name: escape_filter_value(value) for name, value in values.items()})


def bind_name(name: UserName, mode: Literal["upn", "down_level"], domain: str | None) -> str | None:
    """The name Active Directory's simple bind gets for a typed name, or None when there is none.

    A qualified name (``alice@corp.example``, ``CORP\\alice``, ``CORP/alice``) is bound as typed, with
    ``/`` read as ``\\`` (AD accepts both forms in either mode); a bare name gets the configured domain:
    ``alice@<domain>`` in `upn` mode, ``<domain>\\alice`` in `down_level` mode (None without one).
    """
    if name.upn is not None:
        return name.typed
    if name.domain is not None:
        return name.typed.replace("/", "\\")
    if domain is None:
        return None
    return f"{name.typed}@{domain}" if mode == "upn" else f"{domain}\\{name.typed}"


def account_part(name: UserName) -> str:
    """The account as typed (case kept): ``alice`` of ``CORP\\alice`` and of ``alice@corp.example``."""
    typed = name.typed.replace("/", "\\")
    if name.upn is not None:
        return typed.split("@", 1)[0]
    if name.domain is not None:
        return typed.split("\\", 1)[1]
    return typed


_AD_DATA = re.compile(r"\bdata ([0-9a-f]{2,4})\b", re.IGNORECASE)

# Sub-codes AD sends only once the password was right (ldapwiki "Common Active Directory Bind Errors").
_AD_DISABLED = {
    "530": "logon not permitted at this time (AD 530)",
    "531": "logon not permitted at this workstation (AD 531)",
    "532": "password expired (AD 532)",
    "533": "account disabled (AD 533)",
    "701": "account expired (AD 701)",
    "773": "password must be reset (AD 773)",
}
# Sent whatever the password: reporting "disabled" would tell a guesser that the name exists.
_AD_REFUSED = {
    "525": "unknown user (AD 525)",
    "52e": "wrong password (AD 52e)",
    "775": "account locked out (AD 775)",
}


def classify_ad_bind_failure(message: str) -> tuple[FailureKind, str]:
    """invalidCredentials (49) as a failure kind and an audit reason, from AD's ``data XXX`` sub-code.

    Any other server (OpenLDAP sends no sub-code) or an unknown sub-code: bad credentials.
    """
    match = _AD_DATA.search(message or "")
    code = match.group(1).lower() if match else None
    if code in _AD_DISABLED:
        return FailureKind.ACCOUNT_DISABLED, _AD_DISABLED[code]
    if code in _AD_REFUSED:
        return FailureKind.BAD_CREDENTIALS, _AD_REFUSED[code]
    return FailureKind.BAD_CREDENTIALS, "bind refused (invalid credentials)"


_RDN_VALUE = re.compile(r"^[^=]+=((?:[^,+\\]|\\.)*)")


def first_rdn_value(dn: str) -> str:
    """The value of a DN's first RDN, unescaped (``cn=Smith\\, J (IT),ou=g`` -> ``Smith, J (IT)``).

    Falls back to the whole DN when it does not parse (a group is then named by its DN)."""
    match = _RDN_VALUE.match(dn)
    if not match or not match.group(1):
        return dn
    return _unescape_dn_value(match.group(1).strip())


def _unescape_dn_value(value: str) -> str:
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1:index + 3]
            if len(pair) == 2 and all(c in string.hexdigits for c in pair):
                out.append(int(pair, 16))
                index += 3
                continue
            out += value[index + 1].encode()
            index += 2
            continue
        out += char.encode()
        index += 1
    return out.decode("utf-8", errors="replace")
