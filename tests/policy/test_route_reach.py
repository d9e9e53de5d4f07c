"""`reachable_classes`: every route class a rule's path can apply to, never fewer than `classify` gives
(a property over generated requests below generated patterns), and the table an operator reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy.paths import BadTarget, canonicalize
from gateway.policy.routes import RouteClass, classify, reachable_classes
from gateway.policy.rules import path_segments, pattern_segments

OWA = {RouteClass.OWA_PUBLIC, RouteClass.OWA_LOGIN, RouteClass.OWA_LOGOFF, RouteClass.OWA_APP}


@pytest.mark.parametrize(("pattern", "expected"), [
    ("/", set(RouteClass) - {RouteClass.GATEWAY}),
    ("/owa", OWA | {RouteClass.OTHER}),
    ("/owa/calendar", OWA | {RouteClass.OTHER}),
    ("/ecp", OWA | {RouteClass.OTHER}),
    ("/ews", {RouteClass.WINDOWS_AUTH, RouteClass.OWA_PUBLIC, RouteClass.OTHER}),
    ("/ews/exchange.asmx", {RouteClass.WINDOWS_AUTH, RouteClass.OTHER}),
    ("/ews/healthcheck.htm", {RouteClass.WINDOWS_AUTH, RouteClass.OWA_PUBLIC, RouteClass.OTHER}),
    ("/microsoft-server-activesync", {RouteClass.ACTIVESYNC, RouteClass.OWA_PUBLIC, RouteClass.OTHER}),
    ("/powershell", {RouteClass.POWERSHELL, RouteClass.OTHER}),
    ("/favicon.ico", {RouteClass.OWA_PUBLIC, RouteClass.OTHER}),
    ("/intranet", {RouteClass.OTHER}),
    ("/autodiscover/autodiscover.xml", {RouteClass.WINDOWS_AUTH, RouteClass.OTHER}),
])
def test_table(pattern: str, expected: set[RouteClass]) -> None:
    assert reachable_classes(pattern) == expected


SEGMENTS = ["owa", "ecp", "ews", "mapi", "rpc", "oab", "autodiscover", "microsoft-server-activesync", "powershell",
            "auth", "auth.owa", "owaauth.dll", "logoff.owa", "logoff.aspx", "healthcheck.htm", "favicon.ico",
            "calendar", "x", "OWA", "Auth", "ews;a=1", "owa;x", "auth;y", "", "service.svc", "emsmdb"]
METHODS = ["GET", "HEAD", "POST", "PUT", "RPC_IN_DATA", "get"]


@settings(max_examples=3000, deadline=None)
@given(pattern=st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=3),
       below=st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=3),
       method=st.sampled_from(METHODS))
def test_no_request_below_a_pattern_escapes_its_classes(pattern: list[str], below: list[str], method: str) -> None:
    try:
        # The rule's path is the request's leading segments without their parameters.
        canonical = canonicalize("/" + "/".join(segment.partition(";")[0] for segment in pattern if segment))
        target = canonicalize("/" + "/".join([*pattern, *below]))
    except BadTarget:
        return
    rule_path = canonical.lower_path.rstrip("/") or "/"
    if rule_path.startswith("/_gateway"):
        return
    # Only requests the rule's path matches, by the rules' own reading of segments.
    if path_segments(target.lower_path)[: len(pattern_segments(rule_path))] != pattern_segments(rule_path):
        return
    route_class = classify(method, target)
    if route_class is RouteClass.GATEWAY:
        return
    assert route_class in reachable_classes(rule_path), (rule_path, method, target.lower_path)
