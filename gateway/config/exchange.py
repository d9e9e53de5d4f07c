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
"""

from __future__ import annotations

from typing import Any

__all__ = ["exchange_rules"]

RuleData = dict[str, Any]


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
