"""What every benchmark needs: free ports, the processes it starts (stopped by process id, never by
name), nginx configurations, wrk runs, and CPU time and memory read from /proc."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.wrk import WrkResult, parse_wrk

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The start of every nginx configuration here: one worker, its pid file and error log named after the
# configuration, no access log, temporary files in the workspace. The caller's part closes the http block.
NGINX_HEAD = """worker_processes 1;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;
"""


@dataclass
class Target:
    name: str
    url: str
    cpu_pid: int | None  # the process whose CPU time per request is reported


@dataclass
class Row:
    target: str
    connections: int
    result: WrkResult
    cpu_us_per_request: float | None


def add_wrk_options(parser: argparse.ArgumentParser) -> None:
    """--duration, --connections (a list of counts) and --threads, the same in every bench that runs wrk."""
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=lambda text: [int(part) for part in text.split(",")], default="10,50",
                        help="wrk connection counts (default 10,50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")


def tools_missing(*tools: str) -> bool:
    """True, with a line on stderr saying how to install them, when any of these programs is not on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        print(f"This benchmark needs {' and '.join(missing)}: apt-get install -y {' '.join(missing)}", file=sys.stderr)
    return bool(missing)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(part) for part in text.split()]


def clean_environment() -> dict[str, str]:
    """This process's environment without any gateway setting (each bench sets its own)."""
    return {key: value for key, value in os.environ.items() if not key.upper().startswith(("GATEWAY_", "MONOSIGN_"))}


def gateway_environment(*, gateway_port: int, admin_port: int, upstream_url: str,
                        monosign_url: str = "http://127.0.0.1:9", api_key: str = "bench", api_secret: str = "bench",
                        public_url: str | None = None, **settings: str) -> dict[str, str]:
    """`clean_environment()` plus the settings of one `serve` on 127.0.0.1 (`settings`: more of them,
    by their environment names). Monosign defaults to a port nothing listens on: benches that never
    sign in need its settings, not its answers."""
    return {
        **clean_environment(),
        "MONOSIGN_API_URL": monosign_url, "MONOSIGN_API_KEY": api_key, "MONOSIGN_API_SECRET": api_secret,
        "GATEWAY_PUBLIC_URL": public_url or f"http://127.0.0.1:{gateway_port}",
        "GATEWAY_UPSTREAM_URL": upstream_url,
        "GATEWAY_LISTEN": f"127.0.0.1:{gateway_port}", "GATEWAY_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        **settings,
    }


def write_nginx_config(directory: Path, name: str, http_body: str) -> Path:
    """`directory/name.conf`: NGINX_HEAD, then `http_body` (the rest of the http block, indented)."""
    config = directory / f"{name}.conf"
    config.write_text(NGINX_HEAD.format(dir=directory, name=name) + http_body + "}\n")
    return config


def run_wrk(url: str, connections: int, duration: int, threads: int, headers: Sequence[str] = ()) -> WrkResult:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


@contextmanager
def workspace() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    try:
        directory.chmod(0o755)  # nginx workers may run as another user
        (directory / "tmp").mkdir()
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Processes:
    """Everything a bench started, stopped by process id (never by name)."""

    def __init__(self) -> None:
        self._popen: list[subprocess.Popen[bytes]] = []
        self._nginx_configs: list[Path] = []

    def nginx(self, config: Path) -> int:
        subprocess.run(["nginx", "-c", str(config), "-e", str(config.with_suffix(".startup.log"))], check=True)
        self._nginx_configs.append(config)
        pid_file = config.parent / (config.stem + ".pid")
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return int(pid_file.read_text())

    def start(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        process: subprocess.Popen[bytes] = subprocess.Popen(command, **kwargs)
        self._popen.append(process)
        return process

    def stop_all(self) -> None:
        for process in self._popen:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._popen:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for config in self._nginx_configs:
            pid_file = config.parent / (config.stem + ".pid")
            with suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGQUIT)  # nginx: graceful stop
            deadline = time.monotonic() + 10
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)


@contextmanager
def bench_run() -> Iterator[tuple[Path, Processes]]:
    """A workspace and the processes a bench starts in it; every one stopped (by id) on the way out."""
    processes = Processes()
    with workspace() as directory:
        try:
            yield directory, processes
        finally:
            processes.stop_all()
