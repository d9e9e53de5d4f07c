"""bench.rules: its configuration loads, and every request of its mix is decided (the count itself is
run by hand: `python -m bench.rules`)."""

from __future__ import annotations

from bench.rules import CONFIG, REQUESTS
from gateway.config import parse_config
from gateway.policy.paths import canonicalize
from gateway.policy.rules import RuleRequest
from gateway.policy.sites import HostMatch, SiteIndex


def test_the_bench_has_three_sites_and_twenty_rules_and_each_request_is_decided() -> None:
    config = parse_config(CONFIG)
    assert len(config.sites) == 3
    assert sum(len(site.rules) for site in config.sites if site.profile.value == "passthrough") == 20
    index = SiteIndex(config)
    matches = set()
    for host, method, path, address in REQUESTS:
        selection = index.select(host)
        matches.add(selection.match)
        assert selection.rules is not None
        selection.rules.decide(RuleRequest(method=method, lower_path=canonicalize(path).lower_path,
                                           client_ip=address))
    assert matches == {HostMatch.LISTED, HostMatch.DEFAULT}
