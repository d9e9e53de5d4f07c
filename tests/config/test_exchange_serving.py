"""An exchange site's rules choose how each request is served: the (route class, action) table, the
handler each entry gets, and the rules refused when the file loads because they could reach a class
their action cannot serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from gateway.config import Action, ConfigError, load_config, parse_config
from gateway.config.exchange import SERVING, Serving, exchange_rules, serving
from gateway.core import RequestContext, Route
from gateway.policy.routes import RouteClass
from gateway.profiles.exchange.profile import handler_for

S = Serving
R = RouteClass
# Every (class, action) pair; None: it cannot work, and a rule that could reach it is refused.
EXPECTED: dict[RouteClass, dict[Action, Serving | None]] = {
    R.OWA_PUBLIC: {Action.DENY: S.REFUSED, Action.BYPASS: S.PUBLIC, Action.TWO_FACTOR: S.SECOND_FACTOR},
    R.OWA_LOGIN: {Action.DENY: S.REFUSED, Action.BYPASS: S.PUBLIC, Action.TWO_FACTOR: S.SIGN_IN},
    R.OWA_LOGOFF: {Action.DENY: S.REFUSED, Action.BYPASS: S.PUBLIC, Action.TWO_FACTOR: S.SIGN_OUT},
    R.OWA_APP: {Action.DENY: S.REFUSED, Action.BYPASS: S.PUBLIC, Action.TWO_FACTOR: S.SECOND_FACTOR},
    R.ACTIVESYNC: {Action.DENY: S.REFUSED, Action.BYPASS: S.CLIENT, Action.PINNED: S.CLIENT_PINNED},
    R.WINDOWS_AUTH: {Action.DENY: S.REFUSED, Action.PINNED: S.CLIENT_PINNED},
    R.POWERSHELL: {Action.DENY: S.REFUSED, Action.PINNED: S.CLIENT_PINNED},
    R.ROOT: {Action.DENY: S.REFUSED, Action.BYPASS: S.REDIRECT, Action.TWO_FACTOR: S.SECOND_FACTOR},
    R.OTHER: {Action.DENY: S.REFUSED, Action.BYPASS: S.PUBLIC, Action.TWO_FACTOR: S.SECOND_FACTOR},
}
PAIRS = [(route, action) for route in RouteClass if route is not RouteClass.GATEWAY for action in Action]


@pytest.mark.parametrize(("route", "action"), PAIRS, ids=[f"{r.value}-{a.value}" for r, a in PAIRS])
def test_the_table(route: RouteClass, action: Action) -> None:
    expected = EXPECTED[route].get(action)
    assert SERVING.get((route, action)) is expected
    # At request time a pair the table lacks is refused (fail closed), and so is an undecided rule.
    assert serving(route, action) is (expected or Serving.REFUSED)
    assert serving(route, None) is Serving.REFUSED


def test_the_table_has_no_other_entries() -> None:
    assert len(SERVING) == sum(len(row) for row in EXPECTED.values())


def _named(name: str) -> Route:
    async def handle(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
        raise AssertionError(name)

    handle.__name__ = name
    return Route(handle)


HANDLERS = {route: _named(route.value) for route in RouteClass}
# (class, serving) -> the name of the handler that serves it ("403"/"404": the gateway's refusals)
HANDLED: list[tuple[RouteClass, Serving, str]] = [
    (R.OWA_PUBLIC, S.PUBLIC, "owa-public"),
    (R.OWA_APP, S.PUBLIC, "owa-public"),
    (R.OWA_LOGIN, S.PUBLIC, "owa-public"),
    (R.OTHER, S.PUBLIC, "owa-public"),
    (R.OWA_LOGIN, S.SIGN_IN, "owa-login"),
    (R.OWA_LOGOFF, S.SIGN_OUT, "owa-logoff"),
    (R.OWA_APP, S.SECOND_FACTOR, "owa-app"),
    (R.OWA_PUBLIC, S.SECOND_FACTOR, "owa-app"),
    (R.ROOT, S.SECOND_FACTOR, "owa-app"),
    (R.OTHER, S.SECOND_FACTOR, "owa-app"),
    (R.ROOT, S.REDIRECT, "root"),
    (R.OWA_APP, S.REFUSED, "deny"),
    (R.ROOT, S.REFUSED, "deny"),
    (R.OTHER, S.REFUSED, "not_found"),
    # The non-browser classes' handler decides itself, with the user its credential names.
    (R.ACTIVESYNC, S.CLIENT, "activesync"),
    (R.ACTIVESYNC, S.REFUSED, "activesync"),
    (R.WINDOWS_AUTH, S.CLIENT_PINNED, "windows-auth"),
    (R.POWERSHELL, S.REFUSED, "powershell"),
    # Never produced by the table, refused all the same.
    (R.OWA_APP, S.CLIENT_PINNED, "deny"),
]


@pytest.mark.parametrize(("route", "how", "handler"), HANDLED)
def test_each_way_of_serving_has_its_handler(route: RouteClass, how: Serving, handler: str) -> None:
    assert handler_for(HANDLERS, route, how).handle.__name__ == handler


def test_the_environments_rules_only_use_the_table() -> None:
    variants = [exchange_rules(), exchange_rules(ecp=False, activesync=False, windows_auth=False, powershell=True),
                exchange_rules(activesync_networks=["10.0.0.0/8"], windows_auth_users=["alice"],
                               powershell=True, powershell_users=["corp\\admin"])]
    for rules in variants:
        parse_config(f'{{"sites": [{{"name": "m", "hosts": ["m.example"], "upstream": "http://x", '
                     f'"profile": "exchange", "rules": {rules!r}}}]}}'.replace("'", '"'))


SITE = """\
sites:
  - name: mail
    hosts: [mail.example.com]
    upstream: https://exchange01.corp.example
    profile: exchange
    rules:
      - { paths: ["/ecp"], action: deny }
      - { route_classes: [owa-public], action: bypass }
      - { route_classes: [owa-login, owa-logoff, owa-app], action: two_factor }
      - { route_classes: [activesync], networks: ["10.0.0.0/8"], action: bypass }
      - { route_classes: [windows-auth], users: [alice], action: pinned }
      - { route_classes: [root], action: bypass }
"""

# (what to replace in SITE, with what, the problem lines expected)
REFUSED: list[tuple[str, str, list[str]]] = [
    ("{ route_classes: [activesync], networks", "{ route_classes: [activesync, windows-auth], networks",
     ["gateway.yaml:10: sites[0].rules[3].action: bypass cannot serve windows-auth, which this rule can reach "
      "(these clients authenticate the connection (NTLM/Negotiate): write pinned); narrow it to route_classes: "
      "[activesync]"]),
    ("[windows-auth], users: [alice], action: pinned", "[windows-auth], users: [alice], action: two_factor",
     ["gateway.yaml:11: sites[0].rules[4].action: two_factor cannot serve windows-auth, which this rule can "
      "reach (those clients cannot show the MFA page)"]),
    ("[owa-login, owa-logoff, owa-app], action: two_factor", "[owa-login, owa-logoff, owa-app], action: pinned",
     ["gateway.yaml:9: sites[0].rules[2].action: pinned cannot serve owa-login, owa-logoff, owa-app, which this "
      "rule can reach (pinned is the non-browser clients' connection-bound forwarding)"]),
    ('{ paths: ["/ecp"], action: deny }', '{ paths: ["/ews"], action: pinned }',
     ["gateway.yaml:7: sites[0].rules[0].action: pinned cannot serve owa-public, other, which this rule can "
      "reach (pinned is the non-browser clients' connection-bound forwarding); narrow it to route_classes: "
      "[windows-auth]"]),
    ('{ paths: ["/ecp"], action: deny }', '{ paths: ["/ecp"], action: one_factor }',
     ["gateway.yaml:7: sites[0].rules[0].action: one_factor is not an action of the exchange profile: "
      "Exchange's own logon form is the first factor; its session needs the second (two_factor)"]),
    ('{ paths: ["/ecp"], action: deny }', '{ paths: ["/owa"], groups: [staff], action: two_factor }',
     ["gateway.yaml:7: sites[0].rules[0].groups: users and groups are read from the credential of activesync, "
      "windows-auth and powershell only, and this rule can reach owa-public, owa-login, owa-logoff, owa-app, other"]),
    ("{ route_classes: [root], action: bypass }", "{ users: [bob], action: deny }",
     ["gateway.yaml:12: sites[0].rules[5].users: users and groups are read from the credential of activesync, "
      "windows-auth and powershell only, and this rule can reach owa-public, owa-login, owa-logoff, owa-app, "
      "root, other; narrow it to route_classes: [activesync, windows-auth, powershell]"]),
    ("{ route_classes: [root], action: bypass }", "{ action: two_factor }",
     ["gateway.yaml:12: sites[0].rules[5].action: two_factor cannot serve activesync, windows-auth, powershell, "
      "which this rule can reach (those clients cannot show the MFA page); narrow it to route_classes: "
      "[owa-public, owa-login, owa-logoff, owa-app, root, other]"]),
]


def test_the_site_loads(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(SITE)
    assert len(load_config(path).sites[0].rules) == 6


@pytest.mark.parametrize(("old", "new", "expected"), REFUSED)
def test_a_rule_that_could_reach_a_class_its_action_cannot_serve_is_refused(
        tmp_path: Path, old: str, new: str, expected: list[str]) -> None:
    assert old in SITE
    path = tmp_path / "gateway.yaml"
    path.write_text(SITE.replace(old, new))
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert [line.removeprefix(f"{tmp_path}/") for line in str(raised.value).splitlines()] == expected


@pytest.mark.parametrize("rule", [
    '{ paths: ["/owa/calendar"], action: bypass }',  # OWA's published calendars, anonymous
    '{ paths: ["/ews"], route_classes: [windows-auth], users: [alice], action: pinned }',
    '{ paths: ["/intranet"], action: two_factor }',
    '{ action: deny }',
    '{ methods: [PROPFIND], action: deny }',
])
def test_rules_that_fit_load(tmp_path: Path, rule: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(SITE + f"      - {rule}\n")
    assert len(load_config(path).sites[0].rules) == 7
