"""`python -m bench.scale`: the authenticated path with the memory and the Redis store, 1 and 2 workers.

Every target is a gateway in front of one nginx, which plays Exchange just enough: `POST
/owa/auth.owa` answers a successful forms login (302 with `cadata` and `cadataKey` cookies) and
`/owa/bench.txt` is a 1 KiB file. Monosign is the simulator (`sim monosign`, users with known TOTP
secrets), Redis a local `redis-server`. Each gateway gets one real sign-in (password, then a one-time
code); wrk then loads `GET /owa/bench.txt` with that session's cookies: the owa-app route, so every
request is checked against the session (cookie, store, cadata binding) before it is forwarded.

Targets, all running at once and measured interleaved:

- `memory` and `redis`: one worker, the default session cache (`GATEWAY_SESSION_CACHE_SECONDS=2`);
- `memory-nocache` and `redis-nocache`: the cache off, so every request reads the session from the
  store (and, for Redis, makes one round trip): the store's own per-request cost;
- `redis-2w`: `GATEWAY_WORKERS=2` with the default cache.

CPU per request is the gateway's whole process tree (supervisor and workers) from /proc.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pyotp

from bench.common import (
    Processes,
    Row,
    Target,
    add_wrk_options,
    bench_run,
    children,
    clean_environment,
    cpu_seconds,
    free_port,
    gateway_environment,
    run_wrk,
    tools_missing,
    wait_for_port,
    write_nginx_config,
)
from bench.wrk import WrkResult

FILE_PATH = "/owa/bench.txt"
SESSION_SECRET = "bench-session-secret-0123456789abcdefghijklmn"
API_KEY, API_SECRET = "bench-app-id", "bench-app-key"
PASSWORD = "BenchPass1!"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# nginx's http block (bench.common.write_nginx_config adds the rest).
NGINX_OWA = """    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        # Exchange's answer to a good password: the session cookies and a redirect to the mailbox.
        location = /owa/auth.owa {{
            add_header Set-Cookie "cadata=BenchCadataValue0123456789; path=/; HttpOnly" always;
            add_header Set-Cookie "cadataKey=BenchCadataKey0123456789; path=/; HttpOnly" always;
            add_header Set-Cookie "cadataTTL=BenchTTL; path=/; HttpOnly" always;
            return 302 /owa/;
        }}
    }}
"""


@dataclass(frozen=True)
class Config:
    name: str
    store: str
    workers: int
    cache_seconds: float


CONFIGS = (
    Config("memory", "memory", 1, 2.0),
    Config("redis", "redis", 1, 2.0),
    Config("memory-nocache", "memory", 1, 0.0),
    Config("redis-nocache", "redis", 1, 0.0),
    Config("redis-2w", "redis", 2, 2.0),
)


def _request(port: int, method: str, target: str, headers: dict[str, str], body: bytes | None = None
             ) -> tuple[int, http.client.HTTPMessage, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def _absorb(cookies: dict[str, str], headers: http.client.HTTPMessage) -> None:
    for value in headers.get_all("Set-Cookie") or []:
        name, _, rest = value.partition("=")
        cookie_value = rest.split(";", 1)[0]
        if cookie_value:
            cookies[name.strip()] = cookie_value
        else:
            cookies.pop(name.strip(), None)


def sign_in(port: int, user: str, totp_secret: str) -> str:
    """Password, MFA page, one-time code through the gateway; returns the Cookie header for wrk."""
    origin = f"http://127.0.0.1:{port}"
    base = {"Host": f"127.0.0.1:{port}", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"}
    cookies: dict[str, str] = {}

    def cookie_header() -> dict[str, str]:
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())} if cookies else {}

    form = urllib.parse.urlencode({"destination": f"{origin}/owa/", "flags": "4", "forcedownlevel": "0",
                                   "username": user, "password": PASSWORD, "passwordText": "", "isUtf8": "1"})
    status, headers, _ = _request(port, "POST", "/owa/auth.owa", {
        **base, "Content-Type": "application/x-www-form-urlencoded", "Origin": origin,
        "Sec-Fetch-Site": "same-origin"}, form.encode())
    _absorb(cookies, headers)
    if status != 302 or headers.get("Location") != "/_gateway/mfa":
        raise RuntimeError(f"password step: {status} {headers.get('Location')}")
    status, headers, page = _request(port, "GET", "/_gateway/mfa", {**base, **cookie_header()})
    match = _CSRF.search(page)
    if status != 200 or match is None:
        raise RuntimeError(f"MFA page: {status}")
    body = urllib.parse.urlencode({"code": pyotp.TOTP(totp_secret).now(), "csrf_token": match.group(1)})
    status, headers, _ = _request(port, "POST", "/_gateway/mfa/verify", {
        **base, **cookie_header(), "Content-Type": "application/x-www-form-urlencoded", "Origin": origin,
        "Sec-Fetch-Site": "same-origin"}, body.encode())
    _absorb(cookies, headers)
    if status != 302:
        raise RuntimeError(f"code step: {status}")
    status, _, _ = _request(port, "GET", FILE_PATH, {**base, **cookie_header()})
    if status != 200:
        raise RuntimeError(f"the signed-in request got {status}")
    return cookie_header()["Cookie"]


def tree_cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def measure(target: Target, pids: list[int], cookie: str, connections: int, duration: int, threads: int) -> Row:
    before = tree_cpu_seconds(pids)
    result = run_wrk(target.url, connections, duration, threads, [f"Cookie: {cookie}"])
    per_request = (tree_cpu_seconds(pids) - before) / result.requests * 1e6 if result.requests else None
    return Row(target.name, connections, result, per_request)


def print_table(rows: list[Row]) -> None:
    print(f"{'target':<16} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} {'errors':>6}")
    for row in rows:
        cpu = f"{row.cpu_us_per_request:.0f}" if row.cpu_us_per_request is not None else "-"
        result: WrkResult = row.result
        print(f"{row.target:<16} {row.connections:>5} {result.requests_per_second:>10.0f} {result.p50_ms:>8.2f} "
              f"{result.p99_ms:>8.2f} {cpu:>11} {result.errors:>6}")


def print_summary(rows: list[Row], connection_counts: list[int]) -> None:
    def rate(name: str, connections: int) -> float:
        return next(row.result.requests_per_second for row in rows
                    if row.target == name and row.connections == connections)

    print(f"\nRatios (targets: redis ≥ 0.85 × memory; redis-2w ≥ 1.6 × redis where the cores allow; "
          f"this machine has {os.cpu_count()} CPUs shared with wrk):")
    for n in connection_counts:
        print(f"  {n:>3} connections: redis/memory {rate('redis', n) / rate('memory', n):.2f}, without the cache "
              f"{rate('redis-nocache', n) / rate('memory-nocache', n):.2f}; "
              f"2 workers/1 worker {rate('redis-2w', n) / rate('redis', n):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    add_wrk_options(parser)
    args = parser.parse_args(argv)
    if tools_missing("wrk", "nginx", "redis-server"):
        return 1
    connection_counts: list[int] = args.connections
    with bench_run() as (directory, processes):
        return _run(args, directory, processes, connection_counts)


def _run(args: argparse.Namespace, directory: Path, processes: Processes, connection_counts: list[int]) -> int:
    www = directory / "www" / "owa"
    www.mkdir(parents=True)
    (www / "bench.txt").write_bytes(b"x" * 1024)
    owa_port, redis_port, monosign_port = free_port(), free_port(), free_port()
    owa_conf = write_nginx_config(directory, "owa", NGINX_OWA.format(dir=directory, port=owa_port))
    processes.nginx(owa_conf)
    processes.start(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                     "--appendonly", "no", "--dir", str(directory)], stdout=subprocess.DEVNULL)

    secrets = {f"bench{index}": pyotp.random_base32() for index in range(len(CONFIGS))}
    users_file = directory / "monosign-users.json"
    users_file.write_text(json.dumps({"users": [
        {"user_name": name, "mfa_methods": ["Totp"], "totp_secret": secret} for name, secret in secrets.items()
    ]}))
    clean = clean_environment()
    monosign_log = (directory / "monosign.log").open("wb")
    processes.start([sys.executable, "-m", "gateway", "sim", "monosign", "--listen", f"127.0.0.1:{monosign_port}",
                     "--users", str(users_file)],
                    env={**clean, "MONOSIGN_API_KEY": API_KEY, "MONOSIGN_API_SECRET": API_SECRET},
                    stdout=monosign_log, stderr=subprocess.STDOUT)
    for port in (owa_port, redis_port, monosign_port):
        wait_for_port(port)

    targets: list[tuple[Target, list[int], str]] = []
    for index, config in enumerate(CONFIGS):
        port, admin_port = free_port(), free_port()
        environment = gateway_environment(
            gateway_port=port, admin_port=admin_port, upstream_url=f"http://127.0.0.1:{owa_port}",
            monosign_url=f"http://127.0.0.1:{monosign_port}", api_key=API_KEY, api_secret=API_SECRET,
            GATEWAY_SESSION_STORE=config.store, GATEWAY_SESSION_SECRET=SESSION_SECRET,
            GATEWAY_SESSION_CACHE_SECONDS=str(config.cache_seconds), GATEWAY_WORKERS=str(config.workers),
            # Each target its own keys, so no target reads another's sessions or counters.
            GATEWAY_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", GATEWAY_REDIS_PREFIX=f"bench{index}:",
        )
        log_file = (directory / f"gateway-{config.name}.log").open("wb")
        gateway = processes.start([sys.executable, "-m", "gateway", "serve"], env=environment, cwd=directory,
                                  stdout=log_file, stderr=subprocess.STDOUT)
        wait_for_port(port, timeout=60)  # connections wait in the listen queue until a worker is ready
        user = f"bench{index}"
        cookie = sign_in(port, user, secrets[user])
        pids = [gateway.pid, *children(gateway.pid)]
        targets.append((Target(config.name, f"http://127.0.0.1:{port}{FILE_PATH}", gateway.pid), pids, cookie))

    print(f"wrk -t{args.threads} -c<N> -d{args.duration}s --latency, GET {FILE_PATH} with a signed-in session's "
          f"cookies, targets interleaved; {os.cpu_count()} CPUs shared by wrk, nginx, Redis and the gateways.\n")
    for target, _pids, cookie in targets:  # warm-up: connections, pools, caches
        run_wrk(target.url, 10, 2, args.threads, [f"Cookie: {cookie}"])
    rows = [measure(target, pids, cookie, connections, args.duration, args.threads)
            for connections in connection_counts for target, pids, cookie in targets]
    print_table(rows)
    print_summary(rows, connection_counts)
    if any(row.result.errors for row in rows):
        print("\nSome requests failed (see the errors column): the numbers above are not valid.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
