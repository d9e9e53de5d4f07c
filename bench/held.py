"""`python -m bench.held`: gateway memory per held connection, for Exchange's long-lived clients.

Two scenarios, each with a fresh gateway (`serve`, one worker) in front of a fresh OWA simulator
(`sim owa`), both subprocesses on 127.0.0.1:

- `pinned`: N client connections (default 1,000) each complete an NTLM handshake on
  `/OAB/…/oab.xml` and stay open, idle: every one holds its own pinned upstream connection. Then each
  sends one more request without credentials, which must still be answered 200 (its pin survived).
- `held`: M ActiveSync `Ping`s (default 10,000) held by the simulator for a long heartbeat: M
  requests in flight at once, each with a client connection and an upstream connection.

Reported: the gateway's RSS before (after a warm-up) and with everything held, the difference per
connection (goal ≤ 50 KiB), and the errors. Every held request costs the gateway two file
descriptors (client and upstream), so the bench raises its soft `RLIMIT_NOFILE` to the hard limit
(the children inherit it) and lowers M to what that limit allows, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import spnego

from bench.common import Processes, free_port, gateway_environment, rss_kib, wait_for_port, workspace

OAB = "/OAB/00000000-0000-0000-0000-000000000000/oab.xml"
PING = "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=BENCH{index:05d}&DeviceType=Bench"
USER, PASSWORD = "CORP\\alice", "AlicePass1!"
GOAL_KIB = 50
# File descriptors a gateway needs besides its connections (stdio, epoll, listeners, signal pipe, logs).
FD_RESERVE = 64
CONCURRENT_OPENS = 100

# A WBXML Ping asking for a 3540 s heartbeat (MS-ASCMD): the simulator holds it until its cap.
PING_BODY = (bytes([0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x48, 0x03]) + b"3540\x00"
             + bytes([0x01, 0x49, 0x4A, 0x4B, 0x03]) + b"1\x00" + bytes([0x01, 0x4C, 0x03]) + b"Email\x00"
             + bytes([0x01, 0x01, 0x01, 0x01]))


@dataclass
class Result:
    scenario: str
    connections: int
    baseline_kib: int
    held_kib: int
    errors: int
    seconds: float

    @property
    def per_connection_kib(self) -> float:
        return (self.held_kib - self.baseline_kib) / self.connections if self.connections else 0.0


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, list[str]], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers.get("content-length", ["0"])[0])
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


def request_bytes(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: mail.corp.example", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def ntlm_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client connection that completed NTLM on the gateway (and so holds a pinned upstream one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    context = spnego.client(USER, PASSWORD, protocol="ntlm", hostname="mail.corp.example")
    token = context.step()
    assert token is not None
    writer.write(request_bytes("GET", OAB, [("Authorization", "NTLM " + base64.b64encode(token).decode())]))
    status, headers, _ = await read_answer(reader)
    challenge = next(value for value in headers.get("www-authenticate", []) if value.startswith("NTLM "))
    if status != 401:
        raise RuntimeError(f"leg 2: {status}")
    token = context.step(base64.b64decode(challenge[5:]))
    assert token is not None
    writer.write(request_bytes("GET", OAB, [("Authorization", "NTLM " + base64.b64encode(token).decode())]))
    status, _, _ = await read_answer(reader)
    if status != 200:
        raise RuntimeError(f"leg 3: {status}")
    return reader, writer


async def held_ping(port: int, index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    writer.write(request_bytes("POST", PING.format(index=index), [
        ("Authorization", auth), ("Content-Type", "application/vnd.ms-sync.wbxml"), ("MS-ASProtocolVersion", "14.1"),
    ], PING_BODY))
    await writer.drain()
    return reader, writer


def sim_counter(sim_port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{sim_port}/_sim/counters", timeout=10) as answer:
        counters = json.loads(answer.read())
    return int(counters.get("requests_per_path", {}).get(path, 0))


def start_stack(processes: Processes, directory: Path, name: str, *, pool: int) -> tuple[int, int, int]:
    """A simulator and a gateway in front of it: (gateway pid, gateway port, simulator port)."""
    sim_port, gateway_port, admin_port = free_port(), free_port(), free_port()
    logs = (directory / f"{name}-sim.log").open("wb")
    processes.start([sys.executable, "-m", "gateway", "sim", "owa", "--listen", f"127.0.0.1:{sim_port}",
                     "--activesync-max-heartbeat", "3540"], stdout=logs, stderr=subprocess.STDOUT)
    environment = gateway_environment(gateway_port=gateway_port, admin_port=admin_port,
                                      upstream_url=f"http://127.0.0.1:{sim_port}",
                                      public_url="http://mail.corp.example", GATEWAY_UPSTREAM_POOL_SIZE=str(pool))
    gateway_log = (directory / f"{name}-gateway.log").open("wb")
    gateway = processes.start([sys.executable, "-m", "gateway", "serve"], env=environment, cwd=directory,
                              stdout=gateway_log, stderr=subprocess.STDOUT)
    wait_for_port(sim_port)
    wait_for_port(gateway_port)
    return gateway.pid, gateway_port, sim_port


async def warm_up(port: int) -> None:
    for _ in range(20):
        _reader, writer = await ntlm_connection(port)
        writer.close()


async def pinned_scenario(count: int, pid: int, port: int) -> Result:
    await warm_up(port)
    await asyncio.sleep(0.5)
    baseline = rss_kib(pid)
    started = time.monotonic()
    gate = asyncio.Semaphore(CONCURRENT_OPENS)

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        async with gate:
            try:
                return await ntlm_connection(port)
            except (OSError, RuntimeError, asyncio.IncompleteReadError):
                return None

    connections = await asyncio.gather(*(one() for _ in range(count)))
    errors = sum(1 for connection in connections if connection is None)
    await asyncio.sleep(1.0)
    held = rss_kib(pid)
    elapsed = time.monotonic() - started

    async def still_authenticated(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> bool:
        reader, writer = connection
        async with gate:
            writer.write(request_bytes("GET", OAB, []))
            try:
                status, _, _ = await read_answer(reader)
            except (OSError, asyncio.IncompleteReadError):
                return False
            return status == 200

    alive = [connection for connection in connections if connection is not None]
    errors += sum(1 for ok in await asyncio.gather(*(still_authenticated(c) for c in alive)) if not ok)
    for _, writer in alive:
        writer.close()
    return Result("pinned NTLM connections, idle", count, baseline, held, errors, elapsed)


async def held_scenario(count: int, pid: int, port: int, sim_port: int) -> Result:
    warm = [await held_ping(port, 99_000 + index) for index in range(20)]
    deadline = time.monotonic() + 30
    while sim_counter(sim_port, "/microsoft-server-activesync") < 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    for _, writer in warm:
        writer.close()
    await asyncio.sleep(1.0)
    baseline = rss_kib(pid)
    started = time.monotonic()
    gate = asyncio.Semaphore(CONCURRENT_OPENS)

    async def one(index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        async with gate:
            try:
                return await held_ping(port, index)
            except OSError:
                return None

    connections = await asyncio.gather(*(one(index) for index in range(count)))
    errors = sum(1 for connection in connections if connection is None)
    target = 20 + count - errors
    deadline = time.monotonic() + 300
    while sim_counter(sim_port, "/microsoft-server-activesync") < target and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    reached = sim_counter(sim_port, "/microsoft-server-activesync") - 20
    errors += max(0, count - errors - reached)
    await asyncio.sleep(1.0)
    held = rss_kib(pid)
    elapsed = time.monotonic() - started
    # A held Ping must still be held: any bytes already on a client connection mean it was answered.
    answered = sum(1 for connection in connections if connection is not None and len(connection[0]._buffer))
    errors += answered
    for connection in connections:
        if connection is not None:
            connection[1].close()
    return Result("ActiveSync Pings in flight", count, baseline, held, errors, elapsed)


def print_results(results: list[Result]) -> None:
    print(f"{'scenario':34} {'conns':>7} {'RSS before':>11} {'RSS held':>10} {'KiB/conn':>9} {'errors':>7} "
          f"{'setup s':>8}")
    for result in results:
        print(f"{result.scenario:34} {result.connections:>7} {result.baseline_kib / 1024:>8.1f} MiB "
              f"{result.held_kib / 1024:>6.1f} MiB {result.per_connection_kib:>9.1f} {result.errors:>7} "
              f"{result.seconds:>8.1f}")
    worst = max((result.per_connection_kib for result in results), default=0.0)
    verdict = "met" if worst <= GOAL_KIB and all(result.errors == 0 for result in results) else "NOT met"
    print(f"\ngoal: ≤ {GOAL_KIB} KiB of gateway memory per held connection, no errors: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.held", description=__doc__.splitlines()[0])
    parser.add_argument("--pinned", type=int, default=1000, help="pinned NTLM connections (default 1000)")
    parser.add_argument("--held", type=int, default=10_000, help="ActiveSync Pings in flight (default 10000)")
    args = parser.parse_args(argv)
    hard = raise_fd_limit()
    held = min(args.held, (hard - FD_RESERVE) // 2)
    if held < args.held:
        print(f"RLIMIT_NOFILE hard limit is {hard}: each held request takes two of the gateway's descriptors, "
              f"so {held} Pings instead of {args.held} (raise the hard limit to hold more).\n")
    processes = Processes()
    results: list[Result] = []
    with workspace() as directory:
        try:
            if args.pinned:
                pid, port, _ = start_stack(processes, directory, "pinned", pool=256)
                results.append(asyncio.run(pinned_scenario(args.pinned, pid, port)))
                processes.stop_all()
                processes = Processes()
            if held:
                pid, port, sim_port = start_stack(processes, directory, "held", pool=held + 64)
                results.append(asyncio.run(held_scenario(held, pid, port, sim_port)))
        finally:
            processes.stop_all()
    print_results(results)
    return 0 if all(result.errors == 0 for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
