"""Site selection by Host: listed hosts, the default site, misdirected (421), invalid (400)."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from gateway.policy.sites import HostMatch, SiteIndex, host_name

CONFIG = """
sites:
  - { name: mail, hosts: [mail.example.com], upstream: 'https://ex', profile: exchange }
  - { name: wiki, hosts: [wiki.example.com, wiki, '10.0.0.7', '[2001:db8::7]'], upstream: 'http://w',
      profile: passthrough, rules: [{ action: bypass }] }
"""

WITH_DEFAULT = SiteIndex(parse_config(CONFIG + "default_site: mail\n"))
WITHOUT_DEFAULT = SiteIndex(parse_config(CONFIG))


@pytest.mark.parametrize(("host", "match", "site"), [
    ("mail.example.com", HostMatch.LISTED, "mail"),
    ("MAIL.Example.COM", HostMatch.LISTED, "mail"),
    ("mail.example.com:443", HostMatch.LISTED, "mail"),
    ("mail.example.com:8443", HostMatch.LISTED, "mail"),  # the port is the listener's
    (" wiki.example.com ", HostMatch.LISTED, "wiki"),
    ("wiki", HostMatch.LISTED, "wiki"),
    ("10.0.0.7:80", HostMatch.LISTED, "wiki"),
    ("[2001:DB8:0::7]:8080", HostMatch.LISTED, "wiki"),
    ("[2001:db8::7]", HostMatch.LISTED, "wiki"),
    ("other.example.com", HostMatch.DEFAULT, "mail"),
    ("mail.example.com.evil", HostMatch.DEFAULT, "mail"),
    ("wiki.example.com.", HostMatch.INVALID, None),  # not the configured spelling; never a guess
    ("", HostMatch.INVALID, None),
    ("mail.example.com:99999", HostMatch.INVALID, None),
    ("mail.example.com/x", HostMatch.INVALID, None),
    ("mail.example.com@evil", HostMatch.INVALID, None),
    ("*.example.com", HostMatch.INVALID, None),
    ("wiKi.example.com", HostMatch.LISTED, "wiki"),
    ("wi\u212ai.example.com", HostMatch.INVALID, None),  # KELVIN SIGN lower-cases to k: refused before
    ("mail example.com", HostMatch.INVALID, None),
])
def test_select_with_a_default_site(host: str, match: HostMatch, site: str | None) -> None:
    selection = WITH_DEFAULT.select(host)
    assert selection.match is match
    assert (selection.site.name if selection.site else None) == site
    assert (selection.rules is not None) is (site is not None)
    assert selection.status == {HostMatch.INVALID: 400}.get(match)


def test_without_a_default_site_an_unknown_host_is_misdirected() -> None:
    selection = WITHOUT_DEFAULT.select("other.example.com")
    assert selection.match is HostMatch.MISDIRECTED
    assert selection.status == 421
    assert selection.site is None
    assert selection.host == "other.example.com"
    assert WITHOUT_DEFAULT.select("Wiki:8080").site is not None


def test_the_selected_sites_rules_are_compiled_once() -> None:
    first, second = WITH_DEFAULT.select("wiki"), WITH_DEFAULT.select("wiki.example.com")
    assert first.rules is second.rules
    assert first.site is not None
    assert WITH_DEFAULT.rules(first.site) is first.rules


@pytest.mark.parametrize(("value", "name"), [
    ("Host.Example", "host.example"), ("host:1", "host"), ("[::1]:1", "[::1]"), ("127.0.0.1:8080", "127.0.0.1"),
    ("bad host", None), ("h\u00e9", None),
])
def test_host_name(value: str, name: str | None) -> None:
    assert host_name(value) == name
