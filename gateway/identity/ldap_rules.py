"""Pure pieces of the `ldap` first factor: the name a user binds as, Active Directory's bind
sub-codes, group names from DNs; and (from gateway.policy.ldap_filters, where the configuration
checks them too) filter escaping and templates. No I/O; table-tested.
"""

from __future__ import annotations

import re
import string
from typing import Literal

from gateway.identity.base import FailureKind
from gateway.policy.ldap_filters import (
    IN_CHAIN_GROUP_FILTER,
    UserBind,
    escape_filter_value,
    fill_filter,
    template_fields,
)
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
