"""The configuration file: the documented example loads, values come out canonical, the digest is stable."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ValidationError

from gateway.config import Action, ConfigError, GatewayConfig, Profile, load_config, parse_config
from gateway.config.exchange import exchange_rules
from gateway.config.model import ConfigModel, LocatedProblems
from gateway.policy.routes import RouteClass
from tests.portal.support import write_key

# The contract's example, as docs/sites.md shows it.
EXAMPLE = """\
sites:
  - name: mail
    hosts: [mail.example.com]
    upstream: https://exchange01.corp.example
    profile: exchange
  - name: intranet
    hosts: [intranet.example.com, intranet]
    upstream: http://10.0.0.5:8080
    profile: passthrough          # later: portal, forms
    rules:                        # ordered, first match wins; no match = deny
      - { paths: ["/health"], methods: [GET, HEAD], action: bypass }
      - { paths: ["/admin"], networks: ["10.0.0.0/8"], action: two_factor }
      - { paths: ["/admin"], action: deny }
      - { action: bypass }
default_site: mail                # for an unknown Host; without it, 421
"""


def test_the_contract_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(EXAMPLE)
    config = load_config(path)
    assert [site.name for site in config.sites] == ["mail", "intranet"]
    assert config.default_site == "mail"
    mail, intranet = config.sites
    assert mail.profile is Profile.EXCHANGE
    assert intranet.hosts == ["intranet.example.com", "intranet"]
    assert [rule.action for rule in intranet.rules] == [Action.BYPASS, Action.TWO_FACTOR, Action.DENY, Action.BYPASS]
    assert intranet.rules[0].methods == ["GET", "HEAD"]
    assert intranet.rules[1].networks == ["10.0.0.0/8"]


def test_an_exchange_site_without_rules_gets_the_profiles_rules() -> None:
    config = parse_config(EXAMPLE)
    expected = GatewayConfig.model_validate({"sites": [
        {"name": "x", "hosts": ["x.example"], "upstream": "https://x", "profile": "exchange",
         "rules": exchange_rules()}]})
    assert config.sites[0].rules == expected.sites[0].rules
    assert config.sites[0].rules[-1].route_classes == [RouteClass.OTHER]


@pytest.mark.parametrize(("written", "canonical"), [
    ("MAIL.Example.COM", "mail.example.com"),
    ("intranet", "intranet"),
    ("10.0.0.5", "10.0.0.5"),
    ("[0:0::1]", "[::1]"),
    ("::1", "[::1]"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_hosts_are_canonical(written: str, canonical: str) -> None:
    config = parse_config(f"sites: [{{name: a, hosts: ['{written}'], upstream: 'http://u', profile: passthrough,"
                          " rules: [{action: deny}]}]")
    assert config.sites[0].hosts == [canonical]


@pytest.mark.parametrize(("written", "canonical"), [
    ("/Admin", "/admin"),
    ("/admin/", "/admin"),
    ("/", "/"),
    ("/%7Euser", "/~user"),
    ("/a%2dz", "/a-z"),
    ("/caf%c3%a9", "/caf%c3%a9"),
    ("/café", "/caf%c3%a9"),
    ("/a b", "/a%20b"),
])
def test_path_patterns_are_canonical_as_requests_are(written: str, canonical: str) -> None:
    config = parse_config(f"sites: [{{name: a, hosts: [a], upstream: 'http://u', profile: passthrough,"
                          f" rules: [{{paths: ['{written}'], action: deny}}]}}]")
    assert config.sites[0].rules[0].paths == [canonical]


def test_methods_upper_cased_and_networks_normalised() -> None:
    config = parse_config("sites: [{name: a, hosts: [a], upstream: 'http://u', profile: passthrough, rules: ["
                          "{methods: [get, PROPFIND, get], networks: ['10.1.2.3/8', '192.0.2.1', '2001:DB8::/32'],"
                          " users: [' CORP\\Alice '], groups: [Finance], action: one_factor}]}]")
    rule = config.sites[0].rules[0]
    assert rule.methods == ["GET", "PROPFIND"]
    assert rule.networks == ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]
    assert rule.users == ["corp\\alice"]
    assert rule.groups == ["finance"]


def test_tls_files_are_relative_to_the_configuration_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "intranet.pem").write_text("cert")
    (tmp_path / "certs" / "intranet.key").write_text("key")
    path = tmp_path / "gateway.yaml"
    path.write_text("sites: [{name: a, hosts: [a], upstream: 'http://u', profile: passthrough, rules: [{action: deny}],"
                    " tls: {cert_file: certs/intranet.pem, key_file: certs/intranet.key}}]")
    tls = load_config(path).sites[0].tls
    assert tls is not None
    assert tls.cert_file == tmp_path / "certs" / "intranet.pem"
    assert tls.key_file == tmp_path / "certs" / "intranet.key"


def test_session_group() -> None:
    config = parse_config("""
session_groups:
  - { name: corp, cookie_domain: example.com }
sites:
  - { name: mail, hosts: [mail.example.com], upstream: 'https://ex', profile: exchange }
  - { name: wiki, hosts: [wiki.example.com], upstream: 'http://wiki', profile: portal, first_factor: monosign,
      session_group: corp, rules: [{ action: two_factor }] }
  - { name: crm, hosts: [crm.example.com], upstream: 'http://crm', profile: portal, first_factor: monosign,
      session_group: corp, rules: [{ action: two_factor }] }
""")
    assert [site.session_group for site in config.sites] == [None, "corp", "corp"]
    assert config.session_groups[0].cookie_domain == "example.com"


def test_digest_is_stable_and_follows_meaning_not_spelling() -> None:
    first = parse_config(EXAMPLE)
    respelt = parse_config(EXAMPLE.replace("[mail.example.com]", "[MAIL.example.com]")
                           .replace("methods: [GET, HEAD]", "methods: [get, head]")
                           .replace("# later: portal, forms", ""))
    reordered = parse_config("default_site: mail\n" + EXAMPLE.replace("default_site: mail", ""))
    changed = parse_config(EXAMPLE.replace("10.0.0.0/8", "10.0.0.0/16"))
    assert len(first.digest) == 64
    assert first.digest == respelt.digest == reordered.digest
    assert first.digest != changed.digest
    # Stable across processes: no hash randomisation, no object ids.
    assert first.digest == parse_config(EXAMPLE).digest


class _WithSecret(ConfigModel):
    """A model with a secret (as the portal's `bind_password` will be): `NAME_file` reads it."""

    file_secrets: ClassVar[frozenset[str]] = frozenset({"bind_password"})
    bind_password: str


def test_file_secret_indirection(tmp_path: Path) -> None:
    (tmp_path / "bind").write_text("s3cret\n")
    assert _WithSecret.model_validate({"bind_password_file": str(tmp_path / "bind")}).bind_password == "s3cret"
    relative = _WithSecret.model_validate({"bind_password_file": "bind"}, context={"base_dir": tmp_path})
    assert relative.bind_password == "s3cret"
    assert _WithSecret.model_validate({"bind_password": "inline"}).bind_password == "inline"
    for data in ({"bind_password": "x", "bind_password_file": str(tmp_path / "bind")},
                 {"bind_password_file": str(tmp_path / "missing")}, {"bind_password_file": 5}):
        with pytest.raises(ValidationError) as raised:
            _WithSecret.model_validate(data)
        cause = raised.value.errors()[0]["ctx"]["error"]
        assert isinstance(cause, LocatedProblems)
        assert cause.problems[0][0] == ("bind_password_file",)
        assert "s3cret" not in str(raised.value)


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "missing.yaml")
    assert str(raised.value).startswith(f"{tmp_path / 'missing.yaml'}: cannot read the file")


def test_a_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_config(path)


DOCS = Path(__file__).resolve().parents[2] / "docs"


def _yaml_blocks(document: str) -> list[str]:
    text = (DOCS / document).read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]


@pytest.mark.parametrize("document", ["sites.md", "configuration.md"])
def test_the_documented_files_load(document: str, tmp_path: Path) -> None:
    for name in ("certs/mail.pem", "certs/mail.key", "certs/gateway.pem", "certs/gateway.key",
                 "secrets/monosign-api-key", "secrets/monosign-api-secret"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("placeholder")
    (tmp_path / "keys").mkdir()
    for name in ("wiki-2026.pem", "wiki-2025.pem"):  # assertion keys are read at load: real ones
        write_key(tmp_path / "keys" / name)
    for name in ("users.yaml", "ldap-password"):  # a portal site's files
        (tmp_path / name).write_text("placeholder")
    files = [block for block in _yaml_blocks(document) if not block.startswith("rules:")]
    assert files
    for block in files:
        if block.startswith("settings:"):  # the settings part alone
            block = "sites: [{name: m, hosts: [m], upstream: 'https://m', profile: exchange}]\n" + block
        parse_config(block, base_dir=tmp_path)


def test_the_documented_exchange_rules_are_the_profiles() -> None:
    (block,) = [block for block in _yaml_blocks("sites.md") if block.startswith("rules:")]
    site = "sites:\n  - name: m\n    hosts: [m]\n    upstream: https://m\n    profile: exchange\n"
    documented = parse_config(site + textwrap.indent(block, "    "))
    assert documented.sites[0].rules == parse_config(EXAMPLE).sites[0].rules
