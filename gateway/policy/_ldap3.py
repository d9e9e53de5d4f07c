"""ldap3, imported once with its known import-time warning silenced (see gateway.identity.ldap_backend).

Imported lazily by the configuration's filter check (gateway.config.ldap) and by the backend."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # ldap3 2.9.1 imports pyasn1's tagMap/typeMap, deprecated since pyasn1 0.6 (a pyasn1 that removes
    # them breaks ldap3: the locks pin pyasn1, and tests/identity catch it).
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=r"(tagMap|typeMap) is deprecated")
    import ldap3
    from ldap3.core import exceptions as ldap_errors
    from ldap3.core.tls import Tls
    from ldap3.operation.search import parse_filter

__all__ = ["Tls", "check_filter_syntax", "ldap3", "ldap_errors"]


def check_filter_syntax(search_filter: str) -> None:
    """Raise ValueError when ldap3 cannot parse the filter (before any directory sees it)."""
    try:
        parse_filter(search_filter, None, False, True, None, False)
    except ldap_errors.LDAPException as exc:
        raise ValueError(f"not a valid LDAP filter ({exc})") from None
