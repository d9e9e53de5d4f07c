"""Settings of the `ldap` first factor (Active Directory or OpenLDAP), as one small pydantic model:
a portal site's `ldap:` key in the configuration file (gateway.config.model.Site).

Examples (docs/identity.md explains each field):

    # OpenLDAP: find the user's DN with a service account, bind as it, groups by search
    LdapConfig(url="ldaps://ldap.example.org", base_dn="ou=people,dc=example,dc=org",
               bind_dn="cn=gateway,dc=example,dc=org", bind_password_file="/run/secrets/ldap",
               user_filter="(uid={username})", group_filter="(member={dn})",
               group_base_dn="ou=groups,dc=example,dc=org", ca_file="/etc/gateway/ldap-ca.pem")

    # Active Directory: bind as alice@corp.example, read the entry and memberOf as the user
    LdapConfig(url="ldaps://dc1.corp.example", base_dn="dc=corp,dc=example", user_bind="upn",
               user_domain="corp.example", user_filter="(sAMAccountName={account})",
               username_attribute="sAMAccountName", nested_groups=True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.policy.ldap_filters import IN_CHAIN_GROUP_FILTER, UserBind, fill_filter, template_fields

__all__ = ["LdapConfig"]

_USER_FIELDS = frozenset({"username", "account"})
_GROUP_FIELDS = frozenset({"dn", "username"})


class LdapConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    base_dn: str = Field(min_length=1)
    # Service account for the user search (and group search); both or neither (anonymous search).
    bind_dn: str | None = None
    bind_password_file: Path | None = None
    # How a user binds: the DN of the entry `user_filter` finds, or the typed name as UPN / DOMAIN\user
    # (Active Directory), a bare name completed with `user_domain`.
    user_bind: UserBind = "search"
    user_domain: str | None = None
    # {username}: the name as typed (trimmed); {account}: its account part (alice of CORP\alice).
    user_filter: str = "(uid={username})"
    # Group search: {dn} is the user's DN. Unset: the entry's memberOf (or, with nested_groups, AD's
    # in-chain search).
    group_filter: str | None = None
    group_base_dn: str | None = None
    nested_groups: bool = False
    # Refuse a user whose entry matches (checked after the password was proven), e.g. "(shadowExpire=0)".
    disabled_filter: str | None = None
    username_attribute: str = "uid"
    display_name_attribute: str = "displayName"
    email_attribute: str = "mail"
    group_name_attribute: str = "cn"
    ca_file: Path | None = None
    start_tls: bool = False
    tls_verify: bool = True
    # ldap:// without StartTLS sends passwords in clear: refused unless asked for (a directory on the
    # same host, or a test).
    allow_plaintext: bool = False
    timeout: float = Field(5.0, gt=0, le=120)
    pool_size: int = Field(4, ge=1, le=64)
    allow_non_ascii_usernames: bool = False

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("ldap", "ldaps"):
            raise ValueError("must start with ldap:// or ldaps://")
        if not parts.hostname:
            raise ValueError("needs a host name")
        try:
            parts.port  # noqa: B018 - raises for a bad port
        except ValueError:
            raise ValueError("bad port") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("only ldap[s]://host[:port] (base_dn and filters are separate settings)")
        return value

    @field_validator("user_filter", "group_filter", "disabled_filter")
    @classmethod
    def _check_filter_shape(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("(") and value.endswith(")") and _balanced(value)):
            raise ValueError("must be one parenthesised LDAP filter, e.g. (uid={username})")
        return value

    @model_validator(mode="after")
    def _check_together(self) -> Self:
        _check_fields("user_filter", self.user_filter, _USER_FIELDS, required=True)
        if self.group_filter is not None:
            _check_fields("group_filter", self.group_filter, _GROUP_FIELDS, required=False)
        if self.disabled_filter is not None:
            _check_fields("disabled_filter", self.disabled_filter, frozenset(), required=False)
        if (self.bind_dn is None) != (self.bind_password_file is None):
            raise ValueError("bind_dn and bind_password_file go together")
        if self.nested_groups and self.group_filter is not None:
            raise ValueError("nested_groups uses AD's in-chain search; leave group_filter unset")
        if self.scheme == "ldaps" and self.start_tls:
            raise ValueError("start_tls is for ldap:// URLs; ldaps:// is TLS already")
        if self.scheme == "ldap" and not self.start_tls and not self.allow_plaintext:
            raise ValueError("ldap:// without start_tls sends passwords in clear: use ldaps:// or "
                             "start_tls, or set allow_plaintext")
        return self

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None  # checked by _check_url
        return host

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (636 if self.scheme == "ldaps" else 389)

    @property
    def uses_tls(self) -> bool:
        return self.scheme == "ldaps" or self.start_tls

    @property
    def effective_group_filter(self) -> str | None:
        return IN_CHAIN_GROUP_FILTER if self.nested_groups else self.group_filter

    def read_bind_password(self) -> str | None:
        """The service account's password (the file's content, one trailing newline removed)."""
        if self.bind_password_file is None:
            return None
        text = self.bind_password_file.read_text(encoding="utf-8")
        return text[:-1] if text.endswith("\n") else text


def _balanced(value: str) -> bool:
    depth = 0
    for char in value.replace("\\(", "").replace("\\)", ""):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _check_fields(name: str, template: str, allowed: frozenset[str], *, required: bool) -> None:
    from gateway.policy._ldap3 import check_filter_syntax  # lazily: ldap3 only for an ldap site

    try:
        fields = template_fields(template)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    unknown = fields - allowed
    if unknown:
        known = ", ".join(f"{{{field}}}" for field in sorted(allowed)) or "none"
        raise ValueError(f"{name}: unknown field {', '.join(sorted(unknown))} (allowed: {known})")
    if required and not fields:
        raise ValueError(f"{name}: must contain {{username}} or {{account}}")
    try:
        check_filter_syntax(fill_filter(template, dict.fromkeys(fields, "x")))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
