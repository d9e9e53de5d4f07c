"""`python -m bench` (`./dev bench`): the gateway next to nginx, measured side by side in one run.

Three targets serve the same 1 KiB file: nginx serving it directly, nginx (1 worker, upstream
keep-alive) as a reverse proxy to that nginx, and the gateway (1 worker) in front of the same nginx.
wrk loads each at 10 and 50 connections; the table gives req/s, p50, p99, CPU time per request of the
proxy process (utime+stime from /proc) and the ratios. Then a 1 GiB download through the gateway with
its RSS sampled. Configs are generated into a temporary directory, every server binds a free port on
127.0.0.1, and everything started here is stopped by process id at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import (
    Processes,
    Row,
    Target,
    add_wrk_options,
    bench_run,
    children,
    cpu_seconds,
    free_port,
    gateway_environment,
    rss_kib,
    run_wrk,
    tools_missing,
    wait_for_port,
    write_nginx_config,
)

FILE_PATH = "/owa/auth/bench.txt"  # owa-public: the gateway forwards it without a session
BIG_PATH = "/owa/auth/big.bin"

# The http blocks of the two nginx targets (bench.common.write_nginx_config adds the rest).
NGINX_STATIC = """    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
    }}
"""

NGINX_PROXY = """    upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
"""


def measure(target: Target, connections: int, duration: int, threads: int) -> Row:
    before = cpu_seconds(target.cpu_pid) if target.cpu_pid else None
    result = run_wrk(target.url, connections, duration, threads)
    per_request = None
    if before is not None and target.cpu_pid and result.requests:
        per_request = (cpu_seconds(target.cpu_pid) - before) / result.requests * 1e6
    return Row(target.name, connections, result, per_request)


def download_rss(port: int, pid: int, path: str) -> tuple[int, int, int, float]:
    """Download through the gateway; return (bytes, RSS before KiB, peak RSS KiB, seconds)."""
    baseline = rss_kib(pid)
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path)
    response = connection.getresponse()
    received = 0
    while chunk := response.read(1 << 20):
        received += len(chunk)
    connection.close()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    return received, baseline, peak, elapsed


def print_table(rows: list[Row]) -> None:
    print(f"{'target':<16} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} {'errors':>6}")
    for row in rows:
        cpu = f"{row.cpu_us_per_request:.0f}" if row.cpu_us_per_request is not None else "-"
        result = row.result
        print(f"{row.target:<16} {row.connections:>5} {result.requests_per_second:>10.0f} {result.p50_ms:>8.2f} "
              f"{result.p99_ms:>8.2f} {cpu:>11} {result.errors:>6}")


def print_summary(rows: list[Row], connection_counts: list[int]) -> None:
    def find(name: str, connections: int) -> Row:
        return next(row for row in rows if row.target == name and row.connections == connections)

    print("\nGateway against the targets (goals: ≥ 0.15 × nginx-proxy req/s, ≤ 150 µs CPU per request, "
          "≤ 3 ms added p99 at 10 connections):")
    for connections in connection_counts:
        gateway, proxy, direct = (find(name, connections) for name in ("gateway", "nginx-proxy", "nginx-direct"))
        ratio = gateway.result.requests_per_second / proxy.result.requests_per_second
        added = gateway.result.p99_ms - direct.result.p99_ms
        added_proxy = gateway.result.p99_ms - proxy.result.p99_ms
        cpu = gateway.cpu_us_per_request or 0.0
        print(f"  {connections:>3} connections: req/s ratio gateway/nginx-proxy {ratio:.2f}; "
              f"gateway CPU {cpu:.0f} µs/request; p99 added over nginx-direct {added:+.2f} ms, "
              f"over nginx-proxy {added_proxy:+.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    add_wrk_options(parser)
    parser.add_argument("--download-mib", type=int, default=1024, help="size of the download (0 skips it)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run the gateway under cProfile and write its stats to FILE")
    args = parser.parse_args(argv)
    if tools_missing("wrk", "nginx"):
        return 1
    connection_counts: list[int] = args.connections
    with bench_run() as (directory, processes):
        return _run(args, directory, processes, connection_counts)


def _run(args: argparse.Namespace, directory: Path, processes: Processes, connection_counts: list[int]) -> int:
    www = directory / "www" / "owa" / "auth"
    www.mkdir(parents=True)
    (www / "bench.txt").write_bytes(b"x" * 1024)
    if args.download_mib:
        with (www / "big.bin").open("wb") as big:  # sparse: no disk space, real bytes on the wire
            big.truncate(args.download_mib * 1024 * 1024)
    static_port, proxy_port, gateway_port, admin_port = (free_port() for _ in range(4))
    static_conf = write_nginx_config(directory, "static", NGINX_STATIC.format(dir=directory, port=static_port))
    proxy_conf = write_nginx_config(directory, "proxy",
                                    NGINX_PROXY.format(dir=directory, port=proxy_port, upstream=static_port))
    static_master = processes.nginx(static_conf)
    proxy_master = processes.nginx(proxy_conf)
    wait_for_port(static_port)
    wait_for_port(proxy_port)

    environment = gateway_environment(gateway_port=gateway_port, admin_port=admin_port,
                                      upstream_url=f"http://127.0.0.1:{static_port}")
    command = [sys.executable, "-m", "gateway", "serve"]
    if args.profile:
        command = [sys.executable, "-m", "cProfile", "-o", str(args.profile.resolve()), "-m", "gateway", "serve"]
    log_file = (directory / "gateway.log").open("wb")
    gateway = processes.start(command, env=environment, cwd=directory, stdout=log_file, stderr=subprocess.STDOUT)
    wait_for_port(gateway_port)

    targets = [
        Target("nginx-direct", f"http://127.0.0.1:{static_port}{FILE_PATH}", children(static_master)[0]),
        Target("nginx-proxy", f"http://127.0.0.1:{proxy_port}{FILE_PATH}", children(proxy_master)[0]),
        Target("gateway", f"http://127.0.0.1:{gateway_port}{FILE_PATH}", gateway.pid),
    ]
    print(f"wrk -t{args.threads} -c<N> -d{args.duration}s --latency against each target, "
          f"interleaved; 1 KiB file; {os.cpu_count()} CPUs shared by wrk and the servers.\n")
    for target in targets:  # warm-up: connections, pools, caches
        run_wrk(target.url, 10, 2, args.threads)
    rows = [measure(target, connections, args.duration, args.threads)
            for connections in connection_counts for target in targets]
    print_table(rows)
    print_summary(rows, connection_counts)

    if args.download_mib:
        received, baseline, peak, elapsed = download_rss(gateway_port, gateway.pid, BIG_PATH)
        expected = args.download_mib * 1024 * 1024
        print(f"\nDownload of {received / 2**20:.0f} MiB through the gateway in {elapsed:.1f} s "
              f"({received / 2**20 / elapsed:.0f} MiB/s): RSS {baseline / 1024:.1f} MiB before, "
              f"peak {peak / 1024:.1f} MiB, growth {(peak - baseline) / 1024:.1f} MiB (goal ≤ 32 MiB)")
        if received != expected:
            print(f"  incomplete download: {received} of {expected} bytes", file=sys.stderr)
            return 1
    if args.profile:
        print(f"\ncProfile stats are written to {args.profile} when the gateway exits "
              f"(python -m pstats {args.profile}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
