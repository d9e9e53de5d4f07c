"""A bad configuration file: every problem at once, each with the file, the line and the key's path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

GOOD = """\
session_groups:
  - name: corp
    cookie_domain: example.com
sites:
  - name: mail
    hosts: [mail.example.com]
    upstream: https://exchange01.corp.example
    profile: exchange
    # only portal sites are in a session group
  - name: intranet
    hosts: [intranet.example.com]
    upstream: http://10.0.0.5:8080
    profile: passthrough
    rules:
      - paths: ["/health"]
        methods: [GET, HEAD]
        action: bypass
      - { paths: ["/admin"], networks: ["10.0.0.0/8"], action: two_factor }
      - { action: deny }
default_site: mail
"""


def problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    prefix = f"{tmp_path}{'/'}"
    lines = [problem.removeprefix(prefix) for problem in str(raised.value).splitlines()]
    assert len(lines) == len(raised.value.problems)
    return lines


def test_the_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(GOOD)
    assert load_config(path).sites[1].name == "intranet"


EXCHANGE_NOT_IN_A_GROUP = ("an exchange site cannot be in a session group: it signs in with Exchange's own forms "
                           "login and cookies, which the group's cookie does not carry (only portal sites share one)")
PASSTHROUGH_NOT_IN_A_GROUP = ("a passthrough site cannot be in a session group: it has no sign-in of its own, and "
                              "the gateway does not yet send its browsers to another site's (use a portal site)")
# A portal site in the group (the only profile that may be in one).
GROUPED = """\
session_groups:
  - name: corp
    cookie_domain: example.com
sites:
  - name: wiki
    hosts: [wiki.example.com]
    upstream: http://10.0.0.5:8080
    profile: portal
    first_factor: monosign
    session_group: corp
    rules: [{ action: two_factor }]
"""


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("session_group: corp", "session_group: staff",
     "gateway.yaml:10: sites[0].session_group: no session group is named 'staff' (see session_groups)"),
    ("[wiki.example.com]", "[wiki.example.org]",
     "gateway.yaml:6: sites[0].hosts[0]: wiki.example.org is not under the session group's cookie_domain example.com"),
    ("cookie_domain: example.com", "cookie_domain: other.example.com",
     "gateway.yaml:6: sites[0].hosts[0]: wiki.example.com is not under the session group's cookie_domain "
     "other.example.com"),
])
def test_a_portal_site_s_session_group(old: str, new: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(GROUPED)
    assert load_config(path).sites[0].session_group == "corp"
    assert problems(GROUPED.replace(old, new, 1), tmp_path) == [expected]


# (what to replace in GOOD, with what, the problem lines expected)
MISTAKES: list[tuple[str, str, str, list[str]]] = [
    ("a network that is no CIDR", '["10.0.0.0/8"]', '["10.0.0.0/33"]',
     ["gateway.yaml:18: sites[1].rules[1].networks[0]: not a CIDR (e.g. 10.0.0.0/8 or 2001:db8::/32) or IP address"]),
    ("a misspelt key", "networks:", "network:",
     ["gateway.yaml:18: sites[1].rules[1].network: unknown key; did you mean 'networks'?"]),
    ("an unknown action", "action: two_factor", "action: mfa",
     ["gateway.yaml:18: sites[1].rules[1].action: input should be 'deny', 'bypass', 'one_factor', 'two_factor' or "
      "'pinned'"]),
    ("a profile action on the wrong profile", "action: two_factor", "action: pinned",
     ["gateway.yaml:18: sites[1].rules[1].action: 'pinned' is an action of the exchange profile only"]),
    ("a reserved profile", "profile: passthrough", "profile: forms",
     ["gateway.yaml:13: sites[1].profile: the 'forms' profile is reserved for a later version; "
      "use exchange, passthrough or portal"]),
    # A portal site's first factor (docs/identity.md).
    ("a portal site without its first factor", "profile: passthrough", "profile: portal",
     ["gateway.yaml:10: sites[1].first_factor: required for the portal profile: ldap, file or monosign"]),
    ("a first factor on a passthrough site", "    profile: passthrough\n",
     "    profile: passthrough\n    first_factor: file\n",
     ["gateway.yaml:14: sites[1].first_factor: only for the portal profile (this site's is passthrough)"]),
    ("an unknown first factor", "    profile: passthrough\n", "    profile: portal\n    first_factor: sms\n",
     ["gateway.yaml:14: sites[1].first_factor: input should be 'ldap', 'file' or 'monosign'"]),
    ("ldap without its settings", "    profile: passthrough\n", "    profile: portal\n    first_factor: ldap\n",
     ["gateway.yaml:10: sites[1].ldap: required with first_factor: ldap (url, base_dn, ...; see docs/identity.md)"]),
    ("file without a users file", "    profile: passthrough\n", "    profile: portal\n    first_factor: file\n",
     ["gateway.yaml:10: sites[1].users_file: required with first_factor: file (see docs/identity.md)"]),
    ("a users file that is not there", "    profile: passthrough\n",
     "    profile: portal\n    first_factor: file\n    users_file: users.yaml\n",
     ["gateway.yaml:15: sites[1].users_file: no readable file at '{dir}/users.yaml'"]),
    ("an ldap URL that is none", "    profile: passthrough\n",
     "    profile: portal\n    first_factor: ldap\n    ldap: { url: 'ftp://dc1', base_dn: 'dc=corp' }\n",
     ["gateway.yaml:15: sites[1].ldap.url: must start with ldap:// or ldaps://"]),
    ("an ldap password file that is not there", "    profile: passthrough\n",
     "    profile: portal\n    first_factor: ldap\n    ldap: { url: 'ldaps://dc1', base_dn: 'dc=corp', "
     "bind_dn: 'cn=gw', bind_password_file: ldap-password }\n",
     ["gateway.yaml:15: sites[1].ldap.bind_password_file: no readable file at '{dir}/ldap-password'"]),
    ("an unknown ldap key", "    profile: passthrough\n",
     "    profile: portal\n    first_factor: ldap\n    ldap: { url: 'ldaps://dc1', base_dn: 'dc=corp', binddn: x }\n",
     ["gateway.yaml:15: sites[1].ldap.binddn: unknown key; did you mean 'bind_dn'?"]),
    ("ldap settings with another first factor", "    profile: passthrough\n",
     "    profile: portal\n    first_factor: monosign\n    ldap: { url: 'ldaps://dc1', base_dn: 'dc=corp' }\n",
     ["gateway.yaml:15: sites[1].ldap: only with first_factor: ldap (this site's is monosign)"]),
    ("an unknown profile", "profile: passthrough", "profile: proxy",
     ["gateway.yaml:13: sites[1].profile: input should be 'exchange', 'passthrough', 'portal' or 'forms'"]),
    ("a host with a port", "[intranet.example.com]", "[intranet.example.com:8443]",
     ["gateway.yaml:11: sites[1].hosts[0]: a host without port (sites are chosen by host name; the port is the "
      "listener's)"]),
    ("a host used by two sites", "[intranet.example.com]", "[MAIL.example.com]",
     ["gateway.yaml:11: sites[1].hosts[0]: mail.example.com is already a host of site 'mail'"]),
    ("a wildcard host", "[intranet.example.com]", "['*.example.com']",
     ["gateway.yaml:11: sites[1].hosts[0]: no wildcards: list each host name"]),
    ("an upstream that is no http URL", "http://10.0.0.5:8080", "ftp://10.0.0.5",
     ["gateway.yaml:12: sites[1].upstream: expected an http:// or https:// URL with a host name"]),
    ("credentials in the upstream", "http://10.0.0.5:8080", "http://user:pw@10.0.0.5",
     ["gateway.yaml:12: sites[1].upstream: credentials in the URL are not accepted; use the dedicated settings"]),
    ("a glob in a path", '["/admin"]', '["/admin/*"]',
     ["gateway.yaml:18: sites[1].rules[1].paths[0]: no wildcards: a path matches itself and everything below it "
      "(write /admin, not /admin/*)"]),
    ("a relative path", '["/health"]', '["health"]',
     ["gateway.yaml:15: sites[1].rules[0].paths[0]: expected a path starting with /"]),
    ("a dot segment", '["/health"]', '["/a/../health"]',
     ["gateway.yaml:15: sites[1].rules[0].paths[0]: not a canonical path (dot segment)"]),
    ("the gateway's own pages", '["/health"]', '["/_Gateway/mfa"]',
     ["gateway.yaml:15: sites[1].rules[0].paths[0]: /_gateway/ is the gateway's own (its pages); rules do not "
      "apply to it"]),
    ("path parameters in a path", '["/health"]', '["/health;v=1"]',
     ["gateway.yaml:15: sites[1].rules[0].paths[0]: no path parameters (;...): requests are matched without them"]),
    ("a user name that is none", '["/admin"], networks', '["/admin"], users: ["CORP\\\\a\\\\b"], networks',
     ["gateway.yaml:18: sites[1].rules[1].users[0]: not a user name (malformed username)"]),
    ("a user name outside ASCII", '["/admin"], networks', '["/admin"], users: [alıce], networks',
     ["gateway.yaml:18: sites[1].rules[1].users[0]: a user name outside printable ASCII is never matched "
      "(Exchange may read it as another account)"]),
    ("a passthrough site without rules", "    rules:\n", "    xrules:\n",
     ["gateway.yaml:10: sites[1].rules: required for this profile (with no rules every request would be denied)",
      "gateway.yaml:14: sites[1].xrules: unknown key; did you mean 'rules'?"]),
    ("a Python object tag", "name: intranet", "name: !!python/object:os.system x",
     ["gateway.yaml:10: not valid YAML: could not determine a constructor for the tag "
      "'tag:yaml.org,2002:python/object:os.system'"]),
    ("an empty condition", "methods: [GET, HEAD]", "methods: []",
     ["gateway.yaml:16: sites[1].rules[0].methods: an empty list matches nothing: leave the key out to match any "
      "value, or list values"]),
    ("a method that is no token", "methods: [GET, HEAD]", 'methods: [GET, "HE AD"]',
     ["gateway.yaml:16: sites[1].rules[0].methods[1]: not an HTTP method"]),
    ("a YAML boolean where text belongs", '["/admin"], networks', '["/admin"], users: [no], networks',
     ["gateway.yaml:18: sites[1].rules[1].users[0]: expected text, got a boolean (YAML reads yes/no/on/off/true/false "
      "unquoted as booleans: quote it)"]),
    ("a route class on a passthrough site", "{ action: deny }", "{ route_classes: [owa-app], action: deny }",
     ["gateway.yaml:19: sites[1].rules[2].route_classes[0]: the passthrough profile has no route classes; "
      "match on paths instead"]),
    ("a rule for the gateway's pages by route class", "    # only portal sites are in a session group\n",
     "    # only portal sites are in a session group\n"
     "    rules: [{ route_classes: [owa-app, gateway], action: deny }]\n",
     ["gateway.yaml:10: sites[0].rules[0].route_classes[1]: /_gateway/ is the gateway's own (its pages); rules do "
      "not apply to it"]),
    ("a default site that does not exist", "default_site: mail", "default_site: webmail",
     ["gateway.yaml:20: default_site: no site is named 'webmail'"]),
    ("a required key missing", "    upstream: http://10.0.0.5:8080\n", "",
     ["gateway.yaml:10: sites[1].upstream: required"]),
    ("two sites with one name", "name: intranet", "name: mail",
     ["gateway.yaml:10: sites[1].name: the site name 'mail' is used twice"]),
    ("a key written twice", "    profile: passthrough\n", "    profile: passthrough\n    profile: exchange\n",
     ["gateway.yaml:14: sites[1].profile: this key is written twice in the same mapping"]),
    ("an exchange site in a session group", "    # only portal sites are in a session group",
     "    session_group: corp",
     ["gateway.yaml:9: sites[0].session_group: " + EXCHANGE_NOT_IN_A_GROUP]),
    ("a passthrough site in a session group", "    profile: passthrough\n",
     "    profile: passthrough\n    session_group: corp\n",
     ["gateway.yaml:14: sites[1].session_group: " + PASSTHROUGH_NOT_IN_A_GROUP]),
    ("a cookie domain that is no parent domain", "cookie_domain: example.com", "cookie_domain: com",
     ["gateway.yaml:3: session_groups[0].cookie_domain: expected a parent domain with at least two labels, "
      "e.g. example.com"]),
    ("empty rules", "    rules:\n", "    rules: []\n    policy:\n",
     ["gateway.yaml:14: sites[1].rules: an empty list matches nothing: leave the key out to match any value, "
      "or list values",
      "gateway.yaml:15: sites[1].policy: unknown key; expected one of: assertion, first_factor, hosts, "
      "identity_headers, ldap, name, profile, rules, session_group, title, tls, upstream, users_file"]),
    ("a missing TLS file", "    profile: passthrough\n",
     "    profile: passthrough\n    tls: { cert_file: intranet.pem, key_file: intranet.key }\n",
     ["gateway.yaml:14: sites[1].tls.cert_file: no readable file at '{dir}/intranet.pem'",
      "gateway.yaml:14: sites[1].tls.key_file: no readable file at '{dir}/intranet.key'"]),
    ("broken YAML", "      - { action: deny }", "      - { action: deny",
     ["gateway.yaml:20: not valid YAML: expected ',' or '}', but got ':'"]),
]


@pytest.mark.parametrize(("old", "new", "expected"), [case[1:] for case in MISTAKES],
                         ids=[case[0] for case in MISTAKES])
def test_each_mistake_is_named_at_its_line(old: str, new: str, expected: list[str], tmp_path: Path) -> None:
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1), tmp_path)
    assert found == [line.replace("{dir}", str(tmp_path)) for line in expected]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (GOOD.replace('["10.0.0.0/8"]', '["10.0.0.0/33"]')
            .replace("methods: [GET, HEAD]", "methods: []")
            .replace("http://10.0.0.5:8080", "ftp://x")
            .replace("[mail.example.com]", "[mail.example.com:443]"))
    found = problems(text, tmp_path)
    assert [line.split(": ")[0] for line in found] == [
        "gateway.yaml:6", "gateway.yaml:12", "gateway.yaml:16", "gateway.yaml:18"]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "gateway.yaml: expected a mapping with `sites:` (see docs/sites.md)"),
    ("- a\n- b\n", "gateway.yaml:1: expected a mapping with `sites:` (see docs/sites.md)"),
    ("sites: []\n", "gateway.yaml:1: sites: an empty list matches nothing: leave the key out to match any value, "
                    "or list values"),
    ("site:\n  - name: a\n", "gateway.yaml:1: site: unknown key; did you mean 'sites'?"),
    ("sites: [x]\n", "gateway.yaml:1: sites[0]: input should be a valid dictionary or instance of Site"),
])
def test_the_shape_of_the_whole_file(text: str, expected: str, tmp_path: Path) -> None:
    found = problems(text, tmp_path)
    assert found[0] == expected


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(b"sites: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path)
