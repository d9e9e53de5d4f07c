"""`python -m bench.session`: what a complete session costs, and a login storm.

1. Requests through a complete session against unauthenticated forwarding, side by side in one run.
   nginx serves the same 1 KiB file at `/owa/auth/bench.txt` (owa-public: no session needed) and at
   `/owa/bench.txt` (owa-app: the gateway checks the session cookie and the bound cadata) and passes
   everything else to the OWA simulator, so both paths cost the upstream the same and the difference
   is the gateway's session check. One login (password, push) gives the cookies; wrk sends them with
   `-H`. Goal: within 10 % of the unauthenticated req/s (the check never costs a round trip).
2. A login storm: N users (default 200) at once, each doing password → MFA page → push → wait for
   the approval (the Monosign simulator approves after a delay) → complete → mailbox. Reports errors,
   login latency and Monosign calls per login, read from the simulator's call list.

Every server is a subprocess on a free 127.0.0.1 port (simulators and gateway through the CLI), and
everything started here is stopped by process id at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Processes,
    add_wrk_options,
    clean_environment,
    cpu_seconds,
    free_port,
    gateway_environment,
    run_wrk,
    tools_missing,
    wait_for_port,
    workspace,
    write_nginx_config,
)
from bench.instructions import callgrind_command, counted, send_requests
from bench.wrk import WrkResult

PUBLIC_PATH = "/owa/auth/bench.txt"  # owa-public
SESSION_PATH = "/owa/bench.txt"  # owa-app: needs a complete session
API_KEY = "bench-app-id"
API_SECRET = "bench-app-secret-not-a-real-one"
GOAL_RATIO = 0.90

# nginx's http block (bench.common.write_nginx_config adds the rest). nginx plays Exchange here: a
# header buffer as large as IIS's (16 KB), so that the cadata cookies forwarded on the session path
# do not send nginx down its large-header path (1 KB by default), a cost Exchange does not have.
NGINX_FRONT = """    default_type application/octet-stream;
    client_header_buffer_size 16k;
    upstream owa {{ server 127.0.0.1:{owa}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location = {public} {{ root {dir}/www; }}
        location = {session} {{ root {dir}/www; }}
        location / {{
            proxy_pass http://owa;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
"""


# --- Pure helpers (table-tested in tests/test_bench_session.py) -----------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    result: WrkResult
    cpu_us: float | None  # gateway CPU time per request


@dataclass(frozen=True, slots=True)
class Comparison:
    """One connection count: the public path without cookies, the public path carrying the session's
    cookies (the same request bytes as the session path), and the session path."""

    connections: int
    public: Measured
    public_with_cookies: Measured
    session: Measured

    @property
    def ratio(self) -> float:
        """What the session check costs: session against the same request bytes without the check."""
        return self.session.result.requests_per_second / self.public_with_cookies.result.requests_per_second

    @property
    def ratio_bare(self) -> float:
        """Session against a request without any cookie (adds the cost of carrying 1.6 KB of cookies)."""
        return self.session.result.requests_per_second / self.public.result.requests_per_second

    @property
    def within_goal(self) -> bool:
        errors = sum(m.result.errors for m in (self.public, self.public_with_cookies, self.session))
        return self.ratio >= GOAL_RATIO and errors == 0


def median_result(results: list[WrkResult]) -> WrkResult:
    """The round with the median req/s (rounds are interleaved, so noise hits both paths alike)."""
    ordered = sorted(results, key=lambda result: result.requests_per_second)
    return ordered[len(ordered) // 2]


def calls_per_login(calls: list[dict[str, Any]], logins: int) -> dict[str, float]:
    """Monosign API calls per login, by operation (the simulator's call list), plus `total`."""
    if logins <= 0:
        return {}
    by_operation = Counter(str(call.get("operation")) for call in calls)
    result = {operation: count / logins for operation, count in sorted(by_operation.items())}
    result["total"] = len(calls) / logins
    return result


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def users_files(count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(OWA simulator users, Monosign simulator users) for `count` push users storm000, storm001, ..."""
    names = [f"storm{index:03d}" for index in range(count)]
    owa = {"users": [{"username": name, "password": f"{name}-Pass1!", "display_name": f"Storm User {name[5:]}"}
                     for name in names]}
    monosign = {"users": [{"user_name": name, "display_name": f"Storm User {name[5:]}", "mfa_methods": ["Push"]}
                          for name in names]}
    return owa, monosign


# --- Servers --------------------------------------------------------------------------------------------


@dataclass
class Stack:
    gateway_url: str
    monosign_url: str
    gateway_pid: int
    admin_url: str


def start_stack(directory: Path, processes: Processes, *, users: int, approve_delay: float,
                profile: Path | None = None, wrapper: list[str] | None = None) -> Stack:
    owa_port, monosign_port, front_port, gateway_port, admin_port = (free_port() for _ in range(5))
    owa_users, monosign_users = users_files(users)
    (directory / "owa-users.json").write_text(json.dumps(owa_users))
    (directory / "monosign-users.json").write_text(json.dumps(monosign_users))
    www = directory / "www"
    for path in (PUBLIC_PATH, SESSION_PATH):
        (www / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (www / path.lstrip("/")).write_bytes(b"x" * 1024)

    environment = clean_environment()
    logs = (directory / "servers.log").open("wb")
    python = sys.executable
    processes.start([python, "-m", "gateway", "sim", "owa", "--listen", f"127.0.0.1:{owa_port}",
                     "--users", str(directory / "owa-users.json"), "--redirect-scheme", "request",
                     "--no-samesite-none"], env=environment, stdout=logs, stderr=subprocess.STDOUT)
    processes.start([python, "-m", "gateway", "sim", "monosign", "--listen", f"127.0.0.1:{monosign_port}",
                     "--users", str(directory / "monosign-users.json"), "--auto-approve",
                     "--auto-approve-delay", str(approve_delay)],
                    env={**environment, "MONOSIGN_API_KEY": API_KEY, "MONOSIGN_API_SECRET": API_SECRET},
                    stdout=logs, stderr=subprocess.STDOUT)
    front = write_nginx_config(directory, "front", NGINX_FRONT.format(
        dir=directory, port=front_port, owa=owa_port, public=PUBLIC_PATH, session=SESSION_PATH))
    wait_for_port(owa_port)
    processes.nginx(front)
    command = [python, "-m", "gateway", "serve"]
    if profile is not None:
        command = [python, "-m", "cProfile", "-o", str(profile.resolve()), "-m", "gateway", "serve"]
    command = [*(wrapper or []), *command]
    gateway = processes.start(command, cwd=directory, stdout=logs, stderr=subprocess.STDOUT, env=gateway_environment(
        gateway_port=gateway_port, admin_port=admin_port, upstream_url=f"http://127.0.0.1:{front_port}",
        monosign_url=f"http://127.0.0.1:{monosign_port}", api_key=API_KEY, api_secret=API_SECRET))
    for port in (monosign_port, front_port, gateway_port):
        wait_for_port(port, timeout=180 if wrapper else 15)
    return Stack(f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{monosign_port}", gateway.pid,
                 f"http://127.0.0.1:{admin_port}")


# --- One user signing in ---------------------------------------------------------------------------------


class LoginFailed(RuntimeError):
    pass


async def sign_in(client: httpx.AsyncClient, base: str, user: str, password: str, *, timeout: float = 60.0) -> None:
    """Password, push, approval (by the simulator), complete, mailbox: raises LoginFailed on any surprise."""
    form = {"destination": f"{base}/owa/", "flags": "4", "forcedownlevel": "0", "username": user,
            "password": password, "passwordText": "", "isUtf8": "1"}
    answer = await client.post("/owa/auth.owa", data=form)
    if answer.status_code != 302 or not answer.headers.get("Location", "").endswith("/_gateway/mfa"):
        raise LoginFailed(f"password step: {answer.status_code} {answer.headers.get('Location')}")
    page = await client.get("/_gateway/mfa")
    token = page.text.partition('name="csrf_token" value="')[2].partition('"')[0]
    if page.status_code != 200 or not token:
        raise LoginFailed(f"MFA page: {page.status_code}")
    sent = await client.post("/_gateway/mfa/push", data={"csrf_token": token},
                             headers={"Origin": base, "Sec-Fetch-Site": "same-origin"})
    if sent.status_code != 303:
        raise LoginFailed(f"push: {sent.status_code}")
    deadline = time.monotonic() + timeout
    while True:  # what the page's script does, at its interval
        status = await client.get("/_gateway/mfa/status")
        if status.status_code == 200 and status.json().get("status") == "approved":
            break
        if status.status_code != 200 or status.json().get("status") not in ("pending", "approved"):
            raise LoginFailed(f"status: {status.status_code} {status.text[:80]}")
        if time.monotonic() > deadline:
            raise LoginFailed("no approval in time")
        await asyncio.sleep(2.0)
    done = await client.get("/_gateway/mfa/complete")
    if done.status_code not in (302, 303) or "cadata" not in done.cookies:
        raise LoginFailed(f"complete: {done.status_code}")
    mailbox = await client.get("/owa/")
    if mailbox.status_code != 200 or "Inbox" not in mailbox.text:
        raise LoginFailed(f"mailbox: {mailbox.status_code}")


async def session_cookies(stack: Stack) -> str:
    """One complete session's Cookie header (gateway cookie + Exchange's cadata cookies)."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        await sign_in(client, stack.gateway_url, "storm000", "storm000-Pass1!")
        probe = await client.get(SESSION_PATH)
        if probe.status_code != 200 or len(probe.content) != 1024:
            raise LoginFailed(f"the session does not reach {SESSION_PATH}: {probe.status_code}")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


# --- Part 1: session vs unauthenticated ----------------------------------------------------------------------


def measure(url: str, pid: int, connections: int, duration: int, threads: int,
            headers: list[str]) -> tuple[WrkResult, float | None]:
    before = cpu_seconds(pid)
    result = run_wrk(url, connections, duration, threads, headers)
    used = cpu_seconds(pid) - before
    return result, (used / result.requests * 1e6 if result.requests else None)


def compare(stack: Stack, cookie: str, *, connections: list[int], duration: int, threads: int,
            rounds: int) -> list[Comparison]:
    public_url, session_url = stack.gateway_url + PUBLIC_PATH, stack.gateway_url + SESSION_PATH
    cookie_header = [f"Cookie: {cookie}"]
    cases = [(public_url, []), (public_url, cookie_header), (session_url, cookie_header)]
    for url, headers in cases:  # warm-up: connections, pools, the session cache
        run_wrk(url, 10, 2, threads, headers)
    comparisons = []
    for count in connections:
        rounds_seen: list[list[Measured]] = [[], [], []]
        for _ in range(rounds):  # interleaved, so drift and noise hit every case alike
            for index, (url, headers) in enumerate(cases):
                rounds_seen[index].append(Measured(*measure(url, stack.gateway_pid, count, duration, threads,
                                                            headers)))
        medians = [median_measured(seen) for seen in rounds_seen]
        comparisons.append(Comparison(count, *medians))
    return comparisons


def median_measured(seen: list[Measured]) -> Measured:
    middle = median_result([measured.result for measured in seen])
    return next(measured for measured in seen if measured.result is middle)


def print_comparisons(comparisons: list[Comparison], rounds: int) -> None:
    print(f"{'request':<44} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU µs/req':>10} {'err':>4}")
    for item in comparisons:
        for label, measured in ((f"GET {PUBLIC_PATH}, no cookies", item.public),
                                (f"GET {PUBLIC_PATH}, session cookies", item.public_with_cookies),
                                (f"GET {SESSION_PATH}, complete session", item.session)):
            result, cpu = measured.result, measured.cpu_us
            shown_cpu = f"{cpu:.0f}" if cpu is not None else "-"
            print(f"{label:<44} {item.connections:>5} {result.requests_per_second:>8.0f} {result.p50_ms:>7.2f} "
                  f"{result.p99_ms:>7.2f} {shown_cpu:>10} {result.errors:>4}")
    print(f"\nComplete session against unauthenticated forwarding (median of {rounds} interleaved rounds; "
          f"goal: ratio >= {GOAL_RATIO:.2f} against the same request bytes):")
    for item in comparisons:
        verdict = "within goal" if item.within_goal else "OUTSIDE GOAL"
        extra_cpu = (item.session.cpu_us or 0.0) - (item.public_with_cookies.cpu_us or 0.0)
        print(f"  {item.connections:>3} connections: req/s ratio {item.ratio:.3f} (against no cookies at all "
              f"{item.ratio_bare:.3f}); session check {extra_cpu:+.0f} µs CPU per request -> {verdict}")


def count_instructions(stack: Stack, cookie: str, directory: Path, requests: int, keep: Path | None) -> int:
    """The gateway under callgrind: user-space instructions per request on the public path carrying
    the session's cookies and on the session path, and the difference (what the check costs)."""
    port = int(stack.gateway_url.rsplit(":", 1)[1])
    headers = [f"Cookie: {cookie}"]
    counts: dict[str, float] = {}
    failed_any = 0
    for path in (PUBLIC_PATH, SESSION_PATH):
        send_requests(port, 300, 2, path, headers)  # warm-up: connections, pools, the session cache
        failed, dump = counted(stack.gateway_pid, directory, partial(send_requests, port, requests, 2, path, headers))
        if dump is None:
            return 1
        failed_any += failed
        counts[path] = dump.total / requests
        if keep is not None:
            shutil.copy(dump.path, f"{keep}.{'session' if path == SESSION_PATH else 'public'}")
        print(f"GET {path:<22} with the session's cookies: {counts[path]:>10,.0f} instructions per request "
              f"({failed} not 200)")
    extra = counts[SESSION_PATH] - counts[PUBLIC_PATH]
    print(f"session check: {extra:+,.0f} instructions per request ({extra / counts[PUBLIC_PATH]:+.1%}; "
          f"user space of the gateway only, {requests} requests on 2 keep-alive connections)")
    return 1 if failed_any else 0


# --- Part 2: the login storm ------------------------------------------------------------------------------------


@dataclass
class StormResult:
    users: int
    seconds: float
    durations: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    max_in_flight: int = 0


async def collect_calls(monosign_url: str, stop: asyncio.Event, into: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    """The simulator keeps the newest 1000 calls: read them often enough to lose none."""
    async with httpx.AsyncClient(timeout=10) as control:
        while True:
            for call in (await control.get(f"{monosign_url}/_sim/calls")).json():
                key = (call.get("time"), call.get("method"), call.get("path"), call.get("user"), call.get("operation"))
                into[key] = call
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)


async def storm(stack: Stack, users: int) -> StormResult:
    async with httpx.AsyncClient(timeout=10) as control:
        await control.delete(f"{stack.monosign_url}/_sim/calls")
        await control.delete(f"{stack.monosign_url}/_sim/stats")
    calls: dict[tuple[Any, ...], dict[str, Any]] = {}
    stop = asyncio.Event()
    collector = asyncio.create_task(collect_calls(stack.monosign_url, stop, calls))
    result = StormResult(users=users, seconds=0.0)
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)

    async def one(index: int) -> None:
        name = f"storm{index:03d}"
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits) as client:
                await sign_in(client, stack.gateway_url, name, f"{name}-Pass1!")
            result.durations.append(time.monotonic() - started)
        except (LoginFailed, httpx.HTTPError) as exc:
            result.errors.append(f"{name}: {type(exc).__name__}: {exc}")

    started = time.monotonic()
    await asyncio.gather(*(one(index) for index in range(users)))
    result.seconds = time.monotonic() - started
    stop.set()
    await collector
    result.calls = list(calls.values())
    async with httpx.AsyncClient(timeout=10) as control:
        result.max_in_flight = (await control.get(f"{stack.monosign_url}/_sim/stats")).json()["max_in_flight"]
    return result


def print_storm(result: StormResult, approve_delay: float) -> None:
    logins = len(result.durations)
    print(f"\nLogin storm: {result.users} users at once (password, push approved after {approve_delay:g} s, "
          f"complete, mailbox): {logins} signed in, {len(result.errors)} errors, {result.seconds:.1f} s in all")
    if result.durations:
        print(f"  login time: median {statistics.median(result.durations):.2f} s, "
              f"p95 {percentile(result.durations, 0.95):.2f} s, max {max(result.durations):.2f} s")
    per_login = calls_per_login(result.calls, logins)
    shown = ", ".join(f"{operation} {value:.2f}" for operation, value in per_login.items())
    print(f"  Monosign calls per login (the simulator's call list): {shown}")
    print(f"  Monosign requests in flight at once, at most: {result.max_in_flight}")
    for error in result.errors[:10]:
        print(f"  error: {error}", file=sys.stderr)


# --- Entry point ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.session", description=__doc__.splitlines()[0])
    add_wrk_options(parser)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per connection count (default 5)")
    parser.add_argument("--users", type=int, default=200, help="users in the login storm (default 200; 0 skips it)")
    parser.add_argument("--approve-delay", type=float, default=1.0,
                        help="seconds the Monosign simulator waits before approving a push (default 1)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run the gateway under cProfile and write its stats to FILE when it stops")
    parser.add_argument("--instructions", type=int, metavar="N",
                        help="instead of wrk: count the gateway's instructions under callgrind over N requests "
                             "per path (noise-free; compare before and after a change)")
    parser.add_argument("--out", type=Path, metavar="PREFIX",
                        help="with --instructions: keep callgrind's files as PREFIX.public and PREFIX.session")
    args = parser.parse_args(argv)
    if tools_missing("nginx", *(("valgrind", "callgrind_control") if args.instructions else ("wrk",))):
        return 1
    processes = Processes()
    with workspace() as directory:
        try:
            wrapper = callgrind_command(directory) if args.instructions else None
            stack = start_stack(directory, processes, users=max(args.users, 1), approve_delay=args.approve_delay,
                                profile=args.profile, wrapper=wrapper)
            cookie = asyncio.run(session_cookies(stack))
            if args.instructions:
                return count_instructions(stack, cookie, directory, args.instructions, args.out)
            print(f"wrk -t{args.threads} -c<N> -d{args.duration}s --latency through one gateway process; "
                  f"1 KiB file from nginx on both paths; {os.cpu_count()} CPUs shared by wrk and the servers.\n")
            connections: list[int] = args.connections
            comparisons = compare(stack, cookie, connections=connections, duration=args.duration,
                                  threads=args.threads, rounds=args.rounds)
            print_comparisons(comparisons, args.rounds)
            failed = False
            if args.users:
                result = asyncio.run(storm(stack, args.users))
                print_storm(result, args.approve_delay)
                failed = bool(result.errors)
            return 1 if failed else 0
        finally:
            processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
