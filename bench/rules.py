"""`python -m bench.rules`: what choosing a site and deciding its rules costs per request, in instructions.

A configuration of 3 sites and 20 rules, and a mix of requests over them (listed hosts, a default
site, paths that match early, late and not at all, networks, users), are decided N times in a child
Python under valgrind's callgrind; the same child doing no decision is counted too, and the difference
divided by N is the cost of one `SiteIndex.select` plus `RuleSet.decide`. Printed next to the gateway's
instructions per forwarded request (`python -m bench.instructions`, or `--per-request` to give the
figure), the ratio is the share of a request that site and rule selection would add.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """\
default_site: intranet
sites:
  - name: mail
    hosts: [mail.example.com, autodiscover.example.com]
    upstream: https://exchange01.corp.example
    profile: exchange
  - name: intranet
    hosts: [intranet.example.com, intranet]
    upstream: http://10.0.0.5:8080
    profile: passthrough
    rules:
      - { paths: ["/health", "/status"], methods: [GET, HEAD], action: bypass }
      - { paths: ["/static", "/favicon.ico", "/robots.txt"], action: bypass }
      - { paths: ["/admin"], networks: ["10.0.0.0/8"], groups: [intranet-admins], action: two_factor }
      - { paths: ["/admin"], action: deny }
      - { paths: ["/api/v1/internal"], networks: ["10.0.0.0/8", "192.168.0.0/16"], action: one_factor }
      - { paths: ["/api"], methods: [GET], action: two_factor }
      - { paths: ["/api"], action: deny }
      - { paths: ["/reports", "/finance"], users: [alice, bob], action: two_factor }
      - { networks: ["192.0.2.0/24"], action: one_factor }
      - { action: two_factor }
  - name: wiki
    hosts: [wiki.example.com]
    upstream: http://10.0.0.6:8080
    profile: passthrough
    rules:
      - { paths: ["/health"], action: bypass }
      - { paths: ["/public"], methods: [GET, HEAD], action: bypass }
      - { paths: ["/edit", "/delete"], methods: [POST], action: two_factor }
      - { paths: ["/admin"], groups: [wiki-admins], action: two_factor }
      - { paths: ["/admin"], action: deny }
      - { paths: ["/spaces/hr"], groups: [hr], action: two_factor }
      - { paths: ["/spaces/hr"], action: deny }
      - { networks: ["10.0.0.0/8"], action: one_factor }
      - { methods: [GET, HEAD], action: two_factor }
      - { action: deny }
"""

# (Host, method, path, client address): early, late and no matches, a default-site host, an IPv6 client.
REQUESTS = [
    ("intranet.example.com", "GET", "/health", "192.0.2.10"),
    ("intranet.example.com", "GET", "/static/app.js", "203.0.113.5"),
    ("intranet.example.com", "POST", "/admin/users", "10.1.2.3"),
    ("intranet.example.com", "GET", "/api/v1/internal/x", "192.168.1.4"),
    ("intranet.example.com", "GET", "/reports/2026/q3", "203.0.113.5"),
    ("intranet.example.com", "GET", "/some/deep/page/of/the/intranet", "2001:db8::7"),
    ("wiki.example.com", "GET", "/public/Home", "203.0.113.5"),
    ("wiki.example.com", "POST", "/edit/Page", "10.9.8.7"),
    ("wiki.example.com", "GET", "/spaces/hr/salaries", "10.9.8.7"),
    ("wiki.example.com:443", "GET", "/spaces/eng/design", "203.0.113.5"),
    ("unknown.example.com", "GET", "/", "203.0.113.5"),
    ("mail.example.com", "GET", "/owa/", "203.0.113.5"),
]

CHILD = """
import sys
from gateway.config import parse_config
from gateway.policy.paths import canonicalize
from gateway.policy.rules import RuleRequest
from gateway.policy.sites import SiteIndex

config = parse_config(open(sys.argv[1]).read())
index = SiteIndex(config)
requests = [(host, method, canonicalize(path).lower_path, address) for host, method, path, address in {requests!r}]
rounds = int(sys.argv[2])
for _ in range(rounds):
    for host, method, lower_path, address in requests:
        selection = index.select(host)
        if selection.rules is not None:
            selection.rules.decide(RuleRequest(method=method, lower_path=lower_path, client_ip=address))
"""

_TOTALS = re.compile(r"^(?:summary|totals): +([0-9]+)", re.MULTILINE)
DOCUMENTED_PER_REQUEST = 488_000  # docs/performance.md: bench.instructions on the anonymous path


def counted(directory: Path, rounds: int) -> int:
    script = directory / "child.py"
    script.write_text(CHILD.format(requests=REQUESTS))
    config = directory / "gateway.yaml"
    config.write_text(CONFIG)
    out = directory / f"callgrind.{rounds}.out"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script),
                    str(config), str(rounds)], check=True, capture_output=True)
    match = _TOTALS.search(out.read_text())
    if match is None:
        raise RuntimeError(f"no totals in {out.name}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="rounds over the request mix (default 2000)")
    parser.add_argument("--per-request", type=int, default=DOCUMENTED_PER_REQUEST,
                        help="the gateway's instructions per forwarded request (bench.instructions; "
                             f"default: the documented {DOCUMENTED_PER_REQUEST:,})")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("needs valgrind (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as workspace:
        directory = Path(workspace)
        baseline = counted(directory, 0)
        loaded = counted(directory, args.rounds)
    decisions = args.rounds * len(REQUESTS)
    per_decision = (loaded - baseline) / decisions
    print(f"3 sites, 20 rules, {len(REQUESTS)} kinds of request, {decisions:,} decisions")
    print(f"{'site + rules per request':<32}{per_decision:>12,.0f} instructions")
    print(f"{'forwarded request':<32}{args.per_request:>12,} instructions")
    print(f"{'share added':<32}{per_decision / args.per_request:>12.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
