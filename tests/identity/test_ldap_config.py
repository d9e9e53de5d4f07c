"""LdapConfig refuses settings that cannot work or that would send passwords in clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.identity.ldap_config import LdapConfig
from gateway.identity.ldap_rules import IN_CHAIN_GROUP_FILTER

BASE = {"url": "ldaps://ldap.example.org", "base_dn": "dc=example,dc=org"}


def test_defaults() -> None:
    config = LdapConfig(**BASE)
    assert (config.host, config.port, config.uses_tls, config.tls_verify) == ("ldap.example.org", 636, True, True)
    assert config.user_filter == "(uid={username})"
    assert LdapConfig(url="ldap://dc1:3268", base_dn="x", start_tls=True).port == 3268
    assert LdapConfig(url="ldap://dc1", base_dn="x", start_tls=True).port == 389
    assert LdapConfig(**BASE, nested_groups=True).effective_group_filter == IN_CHAIN_GROUP_FILTER


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "http://ldap.example.org"}, "ldap:// or ldaps://"),
        ({"url": "ldaps://"}, "host"),
        ({"url": "ldaps://ldap:99999"}, "bad port"),
        ({"url": "ldaps://ldap/dc=example,dc=org"}, "only ldap"),
        ({"url": "ldap://ldap.example.org"}, "in clear"),
        ({"url": "ldaps://ldap.example.org", "start_tls": True}, "start_tls is for ldap://"),
        ({"user_filter": "uid={username}"}, "parenthesised"),
        ({"user_filter": "(uid={username}"}, "parenthesised"),
        ({"user_filter": "(objectClass=person)"}, "must contain"),
        ({"user_filter": "(uid={username})(cn={username})"}, "not a valid LDAP filter"),
        ({"group_filter": "(member={dn})(cn=x)"}, "not a valid LDAP filter"),
        ({"user_filter": "(uid={user})"}, "unknown field user"),
        ({"user_filter": "(uid={username!r})"}, "plain"),
        ({"group_filter": "(member={userdn})"}, "unknown field userdn"),
        ({"disabled_filter": "(uid={username})"}, "unknown field"),
        ({"bind_dn": "cn=svc"}, "go together"),
        ({"bind_password_file": "/run/secrets/x"}, "go together"),
        ({"nested_groups": True, "group_filter": "(member={dn})"}, "leave group_filter unset"),
        ({"timeout": 0}, "greater than 0"),
        ({"pool_size": 0}, "greater than or equal to 1"),
        ({"user_bind": "kerberos"}, "search"),
        ({"bind_password": "secret"}, "Extra inputs"),
    ],
)
def test_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LdapConfig(**{**BASE, **changes})


def test_plain_ldap_only_when_asked() -> None:
    assert not LdapConfig(url="ldap://127.0.0.1", base_dn="x", allow_plaintext=True).uses_tls


def test_bind_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret \n")
    config = LdapConfig(**BASE, bind_dn="cn=svc", bind_password_file=secret)
    assert config.read_bind_password() == "s3cret "  # one trailing newline removed, nothing else
    assert LdapConfig(**BASE).read_bind_password() is None
