"""The rule engine: first match wins, default deny, subject rules before sign-in; the compiled form
against the plain walk (tables, and a hypothesis property over generated rules and requests)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.model import Action, Rule
from gateway.policy.paths import canonicalize
from gateway.policy.routes import RouteClass, classify
from gateway.policy.rules import Identity, RuleRequest, RuleSet, decide_naively, trace
from gateway.policy.users import parse_username


def rules(*data: dict[str, Any]) -> list[Rule]:
    return [Rule.model_validate(item) for item in data]


def request(method: str = "GET", path: str = "/", ip: str = "192.0.2.10", *, user: str | None = None,
            groups: tuple[str, ...] = (), route_class: RouteClass | None = None) -> RuleRequest:
    identity = Identity(parse_username(user), frozenset(groups)) if user is not None else None
    return RuleRequest(method, canonicalize(path).lower_path, ip, route_class, identity)


INTRANET = rules(
    {"paths": ["/health"], "methods": ["GET", "HEAD"], "action": "bypass"},
    {"paths": ["/admin"], "networks": ["10.0.0.0/8"], "action": "two_factor"},
    {"paths": ["/admin"], "action": "deny"},
    {"paths": ["/reports"], "groups": ["Finance"], "action": "one_factor"},
    {"paths": ["/reports"], "action": "deny"},
    {"paths": ["/payroll"], "users": ["CORP\\carol", "dave"], "action": "two_factor"},
    {"action": "bypass"},
)

# (request, expected action (None: needs identity), expected rule index (None: default deny))
INTRANET_CASES: list[tuple[RuleRequest, Action | None, int | None]] = [
    (request("GET", "/health"), Action.BYPASS, 0),
    (request("HEAD", "/HEALTH/"), Action.BYPASS, 0),
    (request("get", "/health/live"), Action.BYPASS, 0),  # methods compared upper-cased
    (request("POST", "/health"), Action.BYPASS, 6),  # not rule 0: falls to the catch-all
    (request("GET", "/healthz"), Action.BYPASS, 6),  # whole segments: /healthz is not under /health
    (request("GET", "/admin", "10.1.2.3"), Action.TWO_FACTOR, 1),
    (request("GET", "/Admin/users", "10.255.0.1"), Action.TWO_FACTOR, 1),
    (request("GET", "/admin/users", "::ffff:10.1.2.3"), Action.TWO_FACTOR, 1),  # IPv4-mapped IPv6
    (request("GET", "/admin", "192.0.2.1"), Action.DENY, 2),
    (request("GET", "/admin", "not-an-ip"), Action.DENY, 2),
    (request("GET", "/admin", "2001:db8::1"), Action.DENY, 2),
    (request("GET", "/administrator"), Action.BYPASS, 6),
    (request("GET", "/%61dmin"), Action.DENY, 2),  # canonicalised first: %61 is "a"
    (request("GET", "/admin;jsessionid=1/users"), Action.DENY, 2),  # Java servers read /admin/users
    (request("GET", "/ADMIN;x"), Action.DENY, 2),
    (request("GET", "/admin;/x", "10.0.0.1"), Action.TWO_FACTOR, 1),
    (request("GET", "/admin%3bx"), Action.BYPASS, 6),  # an encoded ; is part of the name to every server
    (request("GET", "/health;v=1"), Action.BYPASS, 0),
    (request("GET", "/reports"), None, 3),  # needs the user first
    (request("GET", "/reports/q1", user="alice", groups=("finance",)), Action.ONE_FACTOR, 3),
    (request("GET", "/reports/q1", user="alice", groups=("FINANCE",)), Action.ONE_FACTOR, 3),
    (request("GET", "/reports/q1", user="alice", groups=("sales",)), Action.DENY, 4),
    (request("GET", "/reports/q1", user="alice"), Action.DENY, 4),
    (request("GET", "/payroll"), None, 5),
    (request("GET", "/payroll", user="corp\\carol"), Action.TWO_FACTOR, 5),
    (request("GET", "/payroll", user="CORP/Carol"), Action.TWO_FACTOR, 5),
    (request("GET", "/payroll", user="carol"), Action.BYPASS, 6),  # CORP\carol is domain-qualified
    (request("GET", "/payroll", user="dave@corp.example"), Action.TWO_FACTOR, 5),
    (request("GET", "/payroll", user="OTHER\\dave"), Action.TWO_FACTOR, 5),  # a bare entry: any domain
    (request("GET", "/payroll", user="dаve"), Action.BYPASS, 6),  # Cyrillic а: never listed
    (request("GET", "/"), Action.BYPASS, 6),
    (request("DELETE", "/anything/at/all"), Action.BYPASS, 6),
]


@pytest.mark.parametrize(("req", "action", "index"), INTRANET_CASES)
def test_intranet_table(req: RuleRequest, action: Action | None, index: int | None) -> None:
    for decision in (RuleSet(INTRANET).decide(req), decide_naively(INTRANET, req)):
        assert (decision.action, decision.rule) == (action, index)
        assert decision.needs_identity is (action is None)


def test_no_rule_matches_is_deny() -> None:
    only_health = rules({"paths": ["/health"], "action": "bypass"})
    elsewhere = request("GET", "/x")
    for decision in (RuleSet(only_health).decide(elsewhere), decide_naively(only_health, elsewhere)):
        assert decision.action is Action.DENY
        assert decision.rule is None
    assert RuleSet([]).decide(request()).action is Action.DENY


def test_root_pattern_matches_every_path() -> None:
    everything = rules({"paths": ["/"], "action": "two_factor"})
    for path in ("/", "/a", "/a/b/", "/%7Euser"):
        assert RuleSet(everything).decide(request("GET", path)).rule == 0


def test_a_subject_rule_before_sign_in_stops_the_walk_even_when_a_later_rule_would_admit() -> None:
    ordered = rules({"paths": ["/x"], "users": ["alice"], "action": "bypass"}, {"action": "bypass"})
    decision = RuleSet(ordered).decide(request("GET", "/x"))
    assert decision.needs_identity
    assert decision.rule == 0
    # ... but a subject rule whose other conditions fail is passed over, as any other rule.
    assert RuleSet(ordered).decide(request("GET", "/y")).rule == 1


def test_route_classes_match_the_profiles_class() -> None:
    exchange = rules({"route_classes": ["owa-public"], "action": "bypass"},
                     {"route_classes": ["owa-app", "owa-login"], "action": "two_factor"})
    cases = [("GET", "/owa/auth/logon.aspx", 0), ("POST", "/owa/auth.owa", 1), ("GET", "/owa/", 1),
             ("GET", "/ews/exchange.asmx", None)]
    for method, path, index in cases:
        target = canonicalize(path)
        req = RuleRequest(method, target.lower_path, "192.0.2.1", classify(method, target))
        assert RuleSet(exchange).decide(req).rule == index
        assert decide_naively(exchange, req).rule == index
    # A site without route classes (passthrough) never matches a route-class rule.
    assert RuleSet(exchange).decide(RuleRequest("GET", "/owa/", "192.0.2.1", None)).rule is None


def test_trace_says_why_each_earlier_rule_did_not_match() -> None:
    walked, decision = trace(INTRANET, request("POST", "/admin/x", "192.0.2.7"))
    assert decision.rule == 2
    assert [entry.index for entry in walked] == [0, 1, 2]
    assert walked[0].failed == ["path /admin/x is not under /health", "method POST is not in GET, HEAD"]
    assert walked[1].matched == ["path /admin/x is under /admin"]
    assert walked[1].failed == ["client 192.0.2.7 is not in 10.0.0.0/8"]
    assert walked[2].matches
    assert decision.reason == "rules[2]: path /admin/x is under /admin"


# --- Property: the compiled form decides as the plain walk does ------------------------------------------
SEGMENTS = ["a", "b", "admin", "x", "", "admin;p", "a;", ";x"]
PATTERNS = ["/", "/a", "/b", "/admin", "/a/b", "/a/admin", "/x/a", "/admin/x"]
NETWORKS = ["10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24", "2001:db8::/32", "0.0.0.0/0"]
ADDRESSES = ["10.1.2.3", "10.2.0.1", "192.0.2.9", "198.51.100.1", "2001:db8::5", "::ffff:10.1.0.1", "junk"]
METHODS = ["GET", "HEAD", "POST", "DELETE"]
USERS = ["alice", "bob", "corp\\carol", "carol@corp.example"]
GROUPS = ["ops", "finance"]
CLASSES = [RouteClass.OWA_APP, RouteClass.OWA_PUBLIC, RouteClass.ACTIVESYNC, RouteClass.OTHER]


def _maybe(values: list[Any]) -> st.SearchStrategy[list[Any] | None]:
    return st.none() | st.lists(st.sampled_from(values), min_size=1, max_size=3)


RULE = st.builds(
    lambda paths, methods, networks, users, groups, classes, action: Rule.model_validate(
        {key: value for key, value in {"paths": paths, "methods": methods, "networks": networks, "users": users,
                                       "groups": groups, "route_classes": classes, "action": action}.items()
         if value is not None}),
    _maybe(PATTERNS), _maybe(METHODS), _maybe(NETWORKS), _maybe(USERS), _maybe(GROUPS), _maybe(CLASSES),
    st.sampled_from(list(Action)),
)
REQUEST = st.builds(
    lambda method, segments, ip, route_class, user, groups: RuleRequest(
        method, "/" + "/".join(segments), ip, route_class,
        Identity(parse_username(user), frozenset(groups)) if user is not None else None),
    st.sampled_from([*METHODS, "get", "PUT"]),
    st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4),
    st.sampled_from(ADDRESSES),
    st.none() | st.sampled_from(CLASSES),
    st.none() | st.sampled_from([*USERS, "CORP\\Carol", "other\\alice", "dave"]),
    st.lists(st.sampled_from([*GROUPS, "OPS", "sales"]), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(RULE, max_size=8), st.lists(REQUEST, min_size=1, max_size=6))
def test_compiled_rules_decide_as_the_plain_walk(rule_list: list[Rule], requests: list[RuleRequest]) -> None:
    compiled = RuleSet(rule_list)
    for req in requests:
        expected = decide_naively(rule_list, req)
        decided = compiled.decide(req)
        assert (decided.action, decided.rule) == (expected.action, expected.rule), req
