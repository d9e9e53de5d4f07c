"""`python -m bench.instructions`: the gateway's user-space instructions per forwarded request.

CPU time per request on a shared 2-CPU machine moves by ±10 % from run to run; an instruction count
does not (two runs agree within 0.3 %), so this is what tells whether a small change to the hot path
pays. The gateway (`serve`, one process) runs under valgrind's callgrind in front of nginx serving a
1 KiB file, with instrumentation off; after a warm-up (connections, pools, caches) it is switched on
(`callgrind_control -i on`), a client sends N requests on keep-alive connections, one at a time,
and the total count is divided by N. Kernel time is not counted (see `python -m bench` for it);
`--out` keeps callgrind's file for `callgrind_annotate`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    Processes,
    bench_run,
    free_port,
    gateway_environment,
    tools_missing,
    wait_for_port,
    write_nginx_config,
)
from bench.rules import CONFIG

FILE_PATH = "/owa/auth/bench.txt"  # owa-public: forwarded without a session
NGINX_STATIC = """    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
    }}
"""
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *([0-9]+)\r\n", re.IGNORECASE)
_TOTALS = re.compile(r"^(?:summary|totals): +([0-9]+)", re.MULTILINE)


def send_requests(port: int, count: int, connections: int, path: str, headers: list[str]) -> int:
    """`count` GETs round-robin over `connections` keep-alive connections, each answer read whole;
    returns how many were not 200."""
    head = "".join(f"{header}\r\n" for header in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}\r\n".encode()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(connections)]
    failed = 0
    try:
        for index in range(count):
            sock = sockets[index % connections]
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                received += _recv(sock)
            response_head, _, body = received.partition(b"\r\n\r\n")
            length = _CONTENT_LENGTH.search(response_head + b"\r\n")
            while length is not None and len(body) < int(length.group(1)):
                body += _recv(sock)
            failed += not response_head.startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in sockets:
            sock.close()
    return failed


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("the gateway closed the connection")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests counted (default 2000)")
    parser.add_argument("--warm-up", type=int, default=300, help="requests before counting (default 300)")
    parser.add_argument("--connections", type=int, default=2, help="keep-alive connections (default 2)")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="an extra request header (repeatable)")
    parser.add_argument("--out", type=Path, help="keep callgrind's output file here")
    parser.add_argument("--sites", action="store_true",
                        help="serve from a configuration file of 3 sites and 20 rules (bench.rules), the counted "
                             "requests going to its Exchange site: the cost of serving by site")
    args = parser.parse_args(argv)
    if tools_missing("nginx", "valgrind", "callgrind_control"):
        return 1
    with bench_run() as (directory, processes):
        return _run(args, directory, processes)


def _run(args: argparse.Namespace, directory: Path, processes: Processes) -> int:
    www = directory / "www" / "owa" / "auth"
    www.mkdir(parents=True)
    (www / "bench.txt").write_bytes(b"x" * 1024)
    static_port, gateway_port, admin_port = (free_port() for _ in range(3))
    processes.nginx(write_nginx_config(directory, "static", NGINX_STATIC.format(dir=directory, port=static_port)))
    wait_for_port(static_port)
    upstream = f"http://127.0.0.1:{static_port}"
    extra = {"GATEWAY_CONFIG_FILE": str(sites_file(directory, upstream))} if args.sites else {}
    environment = gateway_environment(gateway_port=gateway_port, admin_port=admin_port, upstream_url=upstream,
                                      **extra)
    log = (directory / "gateway.log").open("wb")
    gateway = processes.start([*callgrind_command(directory), sys.executable, "-m", "gateway", "serve"],
                              env=environment, cwd=directory, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(gateway_port, timeout=180)
    send_requests(gateway_port, args.warm_up, args.connections, FILE_PATH, args.header)
    failed, dump = counted(gateway.pid, directory, lambda: send_requests(
        gateway_port, args.requests, args.connections, FILE_PATH, args.header))
    if dump is None:
        return 1
    if args.out:
        shutil.copy(dump.path, args.out)
    served = "3 sites, 20 rules" if args.sites else "no configuration file"
    print(f"{dump.total / args.requests:,.0f} instructions per request (user space, {args.requests} "
          f"requests for {FILE_PATH} on {args.connections} keep-alive connections, {served}; {failed} not 200)")
    return 1 if failed else 0


def sites_file(directory: Path, upstream: str) -> Path:
    """bench.rules' 3 sites and 20 rules, its Exchange site on this bench's host and upstream."""
    config = CONFIG.replace("hosts: [mail.example.com, autodiscover.example.com]", "hosts: [127.0.0.1]")
    config = config.replace("upstream: https://exchange01.corp.example", f"upstream: {upstream}")
    path = directory / "gateway.yaml"
    path.write_text(config)
    return path


def callgrind_command(directory: Path) -> list[str]:
    """The prefix that runs a process under callgrind with counting off until `counted` turns it on."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={directory}/callgrind.out"]


@dataclass(frozen=True, slots=True)
class Dump:
    path: Path
    total: int  # instructions counted


def counted(pid: int, directory: Path, work: Callable[[], int]) -> tuple[int, Dump | None]:
    """Run `work` (it returns how many requests failed) with callgrind counting in process `pid`,
    started with `callgrind_command(directory)`; returns that and the dump (None, said on stderr,
    when callgrind wrote none)."""
    before = {path: path.stat().st_mtime for path in directory.glob("callgrind.out*")}
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
    failed = work()
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 30
    dumps: list[Path] = []
    while not dumps and time.monotonic() < deadline:  # the dump is written a moment after the request
        dumps = [path for path in directory.glob("callgrind.out*")
                 if path.stat().st_size > 0 and before.get(path) != path.stat().st_mtime]
        time.sleep(0.2)
    if not dumps:
        print("callgrind wrote no profile", file=sys.stderr)
        return failed, None
    path = max(dumps, key=lambda candidate: candidate.stat().st_mtime)
    totals = _TOTALS.search(path.read_text())
    if totals is None:
        print(f"no totals in {path.name}", file=sys.stderr)
        return failed, None
    return failed, Dump(path, int(totals.group(1)))


if __name__ == "__main__":
    sys.exit(main())
