"""The Exchange profile's rules, as data: today's route-class table written as an ordered rule list.

Why data and not code: the same list is what an `exchange` site without `rules:` gets, what
`sites_from_settings` builds from the `GATEWAY_POLICY_*` settings, and what `monosign-gateway explain`
shows; so the environment-only gateway and a file that names no rules decide alike, rule by rule.

What each action means for an Exchange site (the profile's handlers do the rest):

- ``bypass`` on ``owa-public`` (logon page, its resources, health checks): forwarded with no session;
  on ``root``: the profile answers with a redirect to ``/owa/``; on ``activesync``: forwarded, and
  Exchange checks the Basic credential itself.
- ``two_factor`` on ``owa-login``, ``owa-logoff``, ``owa-app``: Exchange's forms login is observed, and
  its session is held back until the second factor.
- ``pinned`` on ``windows-auth`` and ``powershell``: forwarded over the client connection's own
  upstream connection (NTLM/Negotiate), with no MFA page (these clients cannot show one).
- ``deny`` on ``other``: the profile answers 404 there, as before.

`SERVING` is that table, (route class, action) → how the profile serves the request
(gateway.profiles.exchange holds the handlers); a pair it leaves out cannot work, and a rule that
could reach one is refused when the configuration loads (`rule_problems`), at the key:

- ``two_factor`` on ``activesync``, ``windows-auth``, ``powershell``: those clients cannot show a page;
- ``pinned`` anywhere else: it is the non-browser clients' connection-bound forwarding;
- ``bypass`` on ``windows-auth`` and ``powershell``: they authenticate the connection (NTLM/Negotiate),
  so they are served ``pinned``;
- ``one_factor``: Exchange's own logon form is the first factor, and its session never reaches the
  browser before the second (``two_factor``);
- ``users`` / ``groups`` on a browser class: the user is read from the credential of the
  non-browser clients only.

``bypass`` on an OWA class (a published calendar, say) forwards the request with no session: nothing
of one goes upstream (no cookie, no ``Authorization``), and an answer that sets an Exchange session
is refused, as on Exchange's own public pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from gateway.policy.routes import RouteClass, reachable_classes

__all__ = ["CLIENT_CLASSES", "SERVING", "Serving", "exchange_rules", "rule_problems", "serving"]

RuleData = dict[str, Any]


class Serving(StrEnum):
    """How the exchange profile serves a request, once its site's rules chose the action."""

    REFUSED = "refused"  # 403; 404 on `other`
    PUBLIC = "public"  # forwarded with no session (Exchange's own public pages' handler)
    REDIRECT = "redirect"  # the root: to /owa/
    SIGN_IN = "sign-in"  # Exchange's logon post observed, its session held back for the second factor
    SIGN_OUT = "sign-out"  # the gateway session ends, then forwarded
    SECOND_FACTOR = "second-factor"  # forwarded only for a session that passed the second factor
    CLIENT = "client"  # a non-browser client, on its credential
    CLIENT_PINNED = "client-pinned"  # the same, over the client connection's own upstream connection


# The non-browser classes: their users are read from the credential, and their handler decides.
CLIENT_CLASSES = frozenset({RouteClass.ACTIVESYNC, RouteClass.WINDOWS_AUTH, RouteClass.POWERSHELL})
_OWA = (RouteClass.OWA_PUBLIC, RouteClass.OWA_LOGIN, RouteClass.OWA_LOGOFF, RouteClass.OWA_APP)
_SECOND_FACTOR = {RouteClass.OWA_PUBLIC: Serving.SECOND_FACTOR, RouteClass.OWA_LOGIN: Serving.SIGN_IN,
                  RouteClass.OWA_LOGOFF: Serving.SIGN_OUT, RouteClass.OWA_APP: Serving.SECOND_FACTOR}

SERVING: dict[tuple[RouteClass, str], Serving] = {
    **{(route, "deny"): Serving.REFUSED for route in RouteClass if route is not RouteClass.GATEWAY},
    **{(route, "bypass"): Serving.PUBLIC for route in _OWA},
    **{(route, "two_factor"): _SECOND_FACTOR[route] for route in _OWA},
    (RouteClass.ACTIVESYNC, "bypass"): Serving.CLIENT,
    (RouteClass.ACTIVESYNC, "pinned"): Serving.CLIENT_PINNED,
    (RouteClass.WINDOWS_AUTH, "pinned"): Serving.CLIENT_PINNED,
    (RouteClass.POWERSHELL, "pinned"): Serving.CLIENT_PINNED,
    (RouteClass.ROOT, "bypass"): Serving.REDIRECT,
    (RouteClass.ROOT, "two_factor"): Serving.SECOND_FACTOR,
    (RouteClass.OTHER, "bypass"): Serving.PUBLIC,
    (RouteClass.OTHER, "two_factor"): Serving.SECOND_FACTOR,
}


def serving(route_class: RouteClass, action: str | None) -> Serving:
    """How a request of `route_class` is served under `action` (None, a rule that needs the user
    decided without one, and a pair the table leaves out: refused, fail closed)."""
    if action is None:
        return Serving.REFUSED
    return SERVING.get((route_class, action), Serving.REFUSED)


_WHY = {
    "two_factor": "those clients cannot show the MFA page",
    "pinned": "pinned is the non-browser clients' connection-bound forwarding",
    "bypass": "these clients authenticate the connection (NTLM/Negotiate): write pinned",
    "one_factor": "Exchange's own logon form is the first factor; its session needs the second (two_factor)",
}


def _reach(paths: Sequence[str] | None, route_classes: Iterable[RouteClass] | None) -> list[RouteClass]:
    """The classes a rule with these conditions can apply to, in the enumeration's order."""
    reach = frozenset(RouteClass) - {RouteClass.GATEWAY}
    if paths is not None:
        reach = frozenset().union(*(reachable_classes(pattern) for pattern in paths))
    if route_classes is not None:
        reach &= frozenset(route_classes)
    return [route for route in RouteClass if route in reach]


def rule_problems(paths: Sequence[str] | None, route_classes: Sequence[RouteClass] | None, action: str,
                  *, names_users: bool) -> list[tuple[str, str]]:
    """What stops one rule of an exchange site from working, as (key, message): an action that
    cannot serve a class the rule can reach, users or groups on a class that cannot name its user."""
    problems: list[tuple[str, str]] = []
    reach = _reach(paths, route_classes)
    unfit = [route for route in reach if (route, action) not in SERVING]
    if action == "one_factor":
        problems.append(("action", f"one_factor is not an action of the exchange profile: {_WHY[action]}"))
    elif unfit:
        fitting = [route.value for route in reach if route not in unfit]
        hint = (f"; narrow it to route_classes: [{', '.join(fitting)}]" if fitting else "")
        problems.append(("action", f"{action} cannot serve {', '.join(r.value for r in unfit)}, which this rule "
                                   f"can reach ({_WHY.get(action, 'not an action for them')}){hint}"))
    if names_users:
        browsers = [route for route in reach if route not in CLIENT_CLASSES]
        if browsers:
            clients = [route.value for route in reach if route in CLIENT_CLASSES]
            hint = f"; narrow it to route_classes: [{', '.join(clients)}]" if clients else ""
            problems.append(("users", f"users and groups are read from the credential of activesync, windows-auth "
                                      f"and powershell only, and this rule can reach "
                                      f"{', '.join(r.value for r in browsers)}{hint}"))
    return problems


def _client_class(route_class: str, *, allow: bool, action: str, networks: list[str],
                  users: list[str]) -> list[RuleData]:
    """An allow rule narrowed by networks and users, then a deny for the rest of the class."""
    rules: list[RuleData] = []
    if allow:
        rule: RuleData = {"route_classes": [route_class], "action": action}
        if networks:
            rule["networks"] = list(networks)
        if users:
            rule["users"] = list(users)
        rules.append(rule)
        if not (networks or users):
            return rules
    rules.append({"route_classes": [route_class], "action": "deny"})
    return rules


def exchange_rules(
    *,
    ecp: bool = True,
    activesync: bool = True,
    activesync_networks: list[str] | None = None,
    activesync_users: list[str] | None = None,
    windows_auth: bool = True,
    windows_auth_networks: list[str] | None = None,
    windows_auth_users: list[str] | None = None,
    powershell: bool = False,
    powershell_networks: list[str] | None = None,
    powershell_users: list[str] | None = None,
) -> list[RuleData]:
    """The ordered rules of an Exchange site; the defaults are the `GATEWAY_POLICY_*` defaults."""
    rules: list[RuleData] = []
    if not ecp:
        # As GATEWAY_POLICY_ECP=deny always did: every /ecp path, its logon page included.
        rules.append({"paths": ["/ecp"], "action": "deny"})
    rules.append({"route_classes": ["owa-public"], "action": "bypass"})
    rules.append({"route_classes": ["owa-login", "owa-logoff", "owa-app"], "action": "two_factor"})
    rules += _client_class("activesync", allow=activesync, action="bypass",
                           networks=activesync_networks or [], users=activesync_users or [])
    rules += _client_class("windows-auth", allow=windows_auth, action="pinned",
                           networks=windows_auth_networks or [], users=windows_auth_users or [])
    rules += _client_class("powershell", allow=powershell, action="pinned",
                           networks=powershell_networks or [], users=powershell_users or [])
    rules.append({"route_classes": ["root"], "action": "bypass"})
    rules.append({"route_classes": ["other"], "action": "deny"})
    return rules
