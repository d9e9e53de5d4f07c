"""`monosign-gateway explain`: which site and which rule decide a request, and why the earlier rules did not.

The request is read as the proxy reads it: the `Host` by the edge's host normalisation, the path by
the proxy's canonicalisation (a target the proxy refuses is said to be refused, with its reason),
the route class by the site's profile; on an exchange site, a `served:` line says what the profile
does with the rules' action (gateway.config.exchange.SERVING). The configuration is `--config`, else
`GATEWAY_CONFIG_FILE`, else the environment's one Exchange site. Nothing is contacted.

Exit status: 0 when the request was explained (whatever the decision), 1 when the configuration
cannot be loaded, 2 for a bad option.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Action, GatewayConfig, Rule
    from gateway.policy.routes import RouteClass
    from gateway.policy.rules import Identity

ACTION_MEANINGS = {
    "deny": "refused; nothing is forwarded",
    "bypass": "forwarded without a gateway sign-in",
    "one_factor": "forwarded once the user is signed in (first factor)",
    "two_factor": "forwarded once the user has passed the second factor",
    "pinned": "forwarded over the client connection's own upstream connection (Windows authentication), "
              "without the MFA page",
}


# How an exchange site serves a request once its rules chose (gateway.config.exchange.Serving).
EXCHANGE_SERVING = {
    "refused": "refused by the gateway",
    "public": "Exchange's public pages' handler: forwarded with no session (no cookie, no Authorization); "
              "an answer that would set an Exchange session is refused",
    "redirect": "redirected to /owa/",
    "sign-in": "Exchange's logon post: forwarded and observed, Exchange's session held back until the second factor",
    "sign-out": "the gateway session ends, then Exchange's logoff is forwarded",
    "second-factor": "forwarded only for a session that passed the second factor (else the logon or MFA page, or 440)",
    "client": "the non-browser client's handler: forwarded on its own credential, which Exchange checks",
    "client-pinned": "the non-browser client's handler: forwarded over the client connection's own upstream "
                     "connection (NTLM/Negotiate)",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="the Host the client sends, e.g. wiki.example.com")
    parser.add_argument("--method", default="GET", help="the request method (default: GET)")
    parser.add_argument("--path", required=True, help="the request target as sent, e.g. /admin/x?y=1")
    parser.add_argument("--ip", default="", metavar="ADDRESS",
                        help="the client's address (after trusted proxies); without it no network condition holds")
    parser.add_argument("--user", metavar="NAME", help="the signed-in user; without it the user is not known yet")
    parser.add_argument("--groups", default="", metavar="A,B", help="the user's groups, comma-separated (with --user)")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="the configuration file (default: GATEWAY_CONFIG_FILE; without one, the environment)")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), metavar="PATH",
                        help="settings file to read besides the environment (default: .env)")


def load_for_explain(args: argparse.Namespace, out: Callable[[str], None]) -> GatewayConfig | None:
    """The configuration the gateway would use, saying where it came from; None (reported) when unusable."""
    from gateway.config import ConfigError, load_config, sites_from_settings
    from gateway.settings import SettingsError, load_settings

    path = args.config or (Path(os.environ["GATEWAY_CONFIG_FILE"]) if os.environ.get("GATEWAY_CONFIG_FILE") else None)
    if path is None:
        try:
            settings = load_settings(env_file=args.env_file)
        except SettingsError as exc:
            for problem in exc.problems:
                out(f"settings: {problem}")
            return None
        path = settings.gateway_config_file
        if path is None:
            config = sites_from_settings(settings)
            out(f"configuration: the environment's one exchange site (no GATEWAY_CONFIG_FILE); "
                f"digest {config.digest[:12]}")
            return config
    try:
        config = load_config(path)
    except ConfigError as exc:
        for config_problem in exc.problems:
            out(str(config_problem))
        return None
    out(f"configuration: {path}; digest {config.digest[:12]}")
    return config


def describe_rule(rule: Rule) -> str:
    parts = []
    for name in ("paths", "methods", "networks", "users", "groups", "route_classes"):
        values = getattr(rule, name)
        if values is not None:
            parts.append(f"{name}: [{', '.join(str(value) for value in values)}]")
    parts.append(f"action: {rule.action.value}")
    return "{" + ", ".join(parts) + "}"


def explain(config: GatewayConfig, *, host: str, method: str, raw_target: str, client_ip: str,
            identity: Identity | None, out: Callable[[str], None]) -> None:
    from gateway.config import Profile
    from gateway.policy.paths import BadTarget, canonicalize
    from gateway.policy.routes import classify
    from gateway.policy.rules import RuleRequest, trace
    from gateway.policy.sites import HostMatch, SiteIndex

    who = f"user {identity.user.typed}" if identity is not None else "no user yet"
    if identity is not None and identity.groups:
        who += f", groups {', '.join(sorted(identity.groups))}"
    out(f"request: {method} {raw_target} from {client_ip or 'an address not given'}, {who}")
    selection = SiteIndex(config).select(host)
    if selection.match is HostMatch.INVALID:
        out(f"host: {host!r} is not a host name: refused with 400 before any site")
        return
    if selection.match is HostMatch.MISDIRECTED or selection.site is None:
        out(f"host: {selection.host}: no site lists it and there is no default_site: refused with 421")
        return
    site = selection.site
    how = "one of its hosts" if selection.match is HostMatch.LISTED else "no site lists it: the default_site"
    out(f"site: {site.name} ({selection.host}: {how}); profile {site.profile.value}, upstream {site.upstream}")
    try:
        target = canonicalize(raw_target)
    except BadTarget as exc:
        out(f"path: refused with 400 before any rule ({exc.reason})")
        return
    out(f"path: {target.lower_path} (canonical, lower-case; the query is not matched)")
    if target.lower_path.split("/")[1] == "_gateway":
        out("decision: the gateway's own pages (/_gateway/): no rule applies")
        return
    route_class = classify(method, target) if site.profile is Profile.EXCHANGE else None
    if route_class is not None:
        out(f"route class: {route_class.value}")
    walked, decision = trace(site.rules, RuleRequest(method, target.lower_path, client_ip, route_class, identity))
    for entry in walked:
        out(f"rules[{entry.index}] {describe_rule(entry.rule)}")
        if entry.needs_identity:
            out(f"    undecided: {'; '.join(entry.matched)}")
        elif entry.matches:
            out(f"    matches: {'; '.join(entry.matched)}")
        else:
            out(f"    no match: {'; '.join(entry.failed)}")
    if route_class is not None:
        out(f"served: {_exchange_served(route_class, decision.action)}")
    if decision.action is None:
        out(f"decision: sign in first: rules[{decision.rule}] names users or groups, so it is decided once the "
            "user is known (run again with --user and --groups)")
    elif decision.rule is None:
        out(f"decision: deny: no rule matched ({len(walked)} tried), and no match means deny")
    else:
        out(f"decision: {decision.action.value} by rules[{decision.rule}]: {ACTION_MEANINGS[decision.action.value]}")


def _exchange_served(route_class: RouteClass, action: Action | None) -> str:
    """What the exchange profile does with the rules' action for this route class."""
    from gateway.config.exchange import CLIENT_CLASSES, Serving, serving
    from gateway.policy.routes import RouteClass

    if action is None:
        return ("only Exchange's authentication challenge passes (without the request's body) until the "
                "credential names a user; then the rules decide again with that user")
    how = serving(route_class, action)
    if how is Serving.REFUSED:
        status = 404 if route_class is RouteClass.OTHER else 403
        audited = " (audited as the client's decision)" if route_class in CLIENT_CLASSES else ""
        return f"{EXCHANGE_SERVING[how.value]}: {status}{audited}"
    return EXCHANGE_SERVING[how.value]


def run(args: argparse.Namespace) -> int:
    from gateway.policy.rules import Identity
    from gateway.policy.users import parse_username

    identity = None
    groups = frozenset(group.strip().lower() for group in args.groups.split(",") if group.strip())
    if args.user is not None:
        try:
            identity = Identity(parse_username(args.user), groups)
        except ValueError as exc:
            print(f"--user: {exc}", file=sys.stderr)
            return 2
    elif groups:
        print("--groups needs --user", file=sys.stderr)
        return 2
    config = load_for_explain(args, print)
    if config is None:
        return 1
    explain(config, host=args.host, method=args.method, raw_target=args.path, client_ip=args.ip,
            identity=identity, out=print)
    return 0
