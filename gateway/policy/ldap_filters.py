"""LDAP filter templates, pure: RFC 4515 escaping, `{field}` templates, the AD in-chain group filter.

Below the configuration (gateway.config.ldap checks a site's filters with them) and the `ldap`
first factor (gateway.identity.ldap_rules re-exports them). No I/O; table-tested.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Literal

__all__ = ["IN_CHAIN_GROUP_FILTER", "UserBind", "escape_filter_value", "fill_filter", "template_fields"]

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
