"""Real servers for the proxy tests: a recording upstream, the gateway in-process or as a subprocess.

Everything binds 127.0.0.1 port 0 and is stopped by the helper that started it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.assembly import build_state
from gateway.server import Gateway
from gateway.settings import Settings, load_settings

PUBLIC_HOST = "mail.example.test"
PUBLIC_URL = f"http://{PUBLIC_HOST}"
CHUNK = 64 * 1024
GZIP_BODY = gzip.compress(b"<html>" + b"compressible " * 500 + b"</html>", mtime=0)


def pattern_chunk(index: int) -> bytes:
    """Deterministic, not trivially compressible data: chunk i of a download."""
    seed = hashlib.sha256(index.to_bytes(8, "big")).digest()
    return (seed * (CHUNK // len(seed)))[:CHUNK]


def pattern_sha256(mib: int) -> str:
    digest = hashlib.sha256()
    for index in range(mib * 1024 * 1024 // CHUNK):
        digest.update(pattern_chunk(index))
    return digest.hexdigest()


@dataclass
class SeenRequest:
    method: str
    raw_path: str
    version: str
    headers: list[tuple[str, str]]
    body_len: int
    body_sha256: str
    peer: str = ""  # the gateway's side of the upstream connection (host:port)

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class UpstreamState:
    seen: list[SeenRequest] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)  # raw paths whose client went away mid-response
    finished: list[str] = field(default_factory=list)


async def _read_body(request: web.Request) -> tuple[int, str]:
    digest = hashlib.sha256()
    length = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        length += len(chunk)
    return length, digest.hexdigest()


def build_upstream(state: UpstreamState) -> web.Application:
    """An upstream whose behaviour is chosen by the last path segment; it records every request."""

    async def handle(request: web.Request) -> web.StreamResponse:
        length, sha = await _read_body(request)
        version = f"{request.version.major}.{request.version.minor}"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        state.seen.append(SeenRequest(request.method, request.raw_path, version, list(request.headers.items()),
                                      length, sha, f"{peer[0]}:{peer[1]}" if peer else ""))
        action = request.path.rstrip("/").rsplit("/", 1)[-1].lower()
        query = request.query
        if action == "status":
            return web.Response(status=int(query["code"]), reason=query.get("reason"), text="status body")
        if action == "gzip":
            return web.Response(body=GZIP_BODY, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"})
        if action == "hop":
            return web.Response(text="hop", headers={
                "Connection": "keep-alive, X-Secret-Resp", "X-Secret-Resp": "s", "Keep-Alive": "timeout=5",
                "Proxy-Authenticate": "Basic", "Trailer": "X-T", "X-Kept": "yes",
                "Set-Cookie": "a=1; Path=/",
            })
        if action in ("big", "drip", "chunked"):
            return await _stream(request, state, action)
        if action == "slow":
            await asyncio.sleep(float(query.get("s", "5")))
            return web.Response(text="finally")
        return web.json_response({"method": request.method, "raw_path": request.raw_path,
                                  "headers": list(request.headers.items()), "body_len": length, "body_sha256": sha})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _stream(request: web.Request, state: UpstreamState, action: str) -> web.StreamResponse:
    query = request.query
    response = web.StreamResponse()
    if action == "big":
        mib = int(query.get("mb", "1"))
        response.content_length = mib * 1024 * 1024
        chunks, delay = mib * 1024 * 1024 // CHUNK, 0.0
    elif action == "drip":
        chunks, delay = int(query.get("n", "20")), float(query.get("delay", "0.1"))
    else:  # chunked: no Content-Length, several small writes
        chunks, delay = 5, 0.0
        response.enable_chunked_encoding()
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    try:
        for index in range(chunks):
            await response.write(pattern_chunk(index) if action != "chunked" else f"part {index}\n".encode())
            if delay:
                await asyncio.sleep(delay)
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        state.aborted.append(request.raw_path)
        raise
    state.finished.append(request.raw_path)
    return response


@dataclass
class RunningServer:
    url: str
    port: int


Upstream = tuple[RunningServer, UpstreamState]


@asynccontextmanager
async def run_upstream(*, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    state = UpstreamState()
    runner = web.AppRunner(build_upstream(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site.port
    scheme = "https" if ssl_context else "http"
    try:
        yield RunningServer(f"{scheme}://127.0.0.1:{port}", port), state
    finally:
        await runner.cleanup()


BASE_SETTINGS: dict[str, Any] = {
    "monosign_api_url": "http://127.0.0.1:9",
    "monosign_api_key": "test-app-id",
    "monosign_api_secret": "test-secret-never-logged",
    "gateway_public_url": PUBLIC_URL,
    "gateway_listen": "127.0.0.1:0",
    "gateway_admin_listen": "127.0.0.1:0",
}


def gateway_settings(upstream_url: str, **overrides: Any) -> Settings:
    return load_settings(env_file=None, **{**BASE_SETTINGS, "gateway_upstream_url": upstream_url, **overrides})


@dataclass
class InProcessGateway:
    gateway: Gateway
    url: str
    admin_url: str
    port: int


@asynccontextmanager
async def run_gateway(upstream_url: str, *, mfa: bool = True, **overrides: Any) -> AsyncIterator[InProcessGateway]:
    """The gateway in this process; `mfa=False` is the proxy without the MFA flow (its error pages still render)."""
    settings = gateway_settings(upstream_url, **overrides)
    gateway = Gateway(settings, state=None if mfa else build_state(settings, mfa=False))
    await gateway.start()
    try:
        url = gateway.main_addresses[0]
        yield InProcessGateway(gateway, url, gateway.admin_addresses[0], int(url.rsplit(":", 1)[1]))
    finally:
        await gateway.stop()


# --- Raw sockets -----------------------------------------------------------------------------------------


async def read_request_head(reader: asyncio.StreamReader) -> tuple[list[str], int] | None:
    """For a raw upstream in a test: the next request head's lines and its Content-Length (0 without
    one); None when the connection ended."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    return lines, length


async def read_until_quiet(reader: asyncio.StreamReader, timeout: float, *, reset_ends: bool = False) -> bytes:
    """What the server sends until it closes the connection or stays silent for `timeout` seconds.

    With `reset_ends`, a connection reset ends the reading too, and what arrived before it is kept.
    """
    received = bytearray()
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
        except TimeoutError:
            break
        except ConnectionResetError:
            if not reset_ends:
                raise
            break
        if not chunk:
            break
        received.extend(chunk)
    return bytes(received)


async def raw_exchange(port: int, data: bytes, *, timeout: float = 2.0, ssl_context: ssl.SSLContext | None = None
                       ) -> bytes:
    """Send bytes on a fresh connection; read until the server closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context,
                                                   server_hostname=PUBLIC_HOST if ssl_context else None)
    try:
        writer.write(data)
        await writer.drain()
        return await read_until_quiet(reader, timeout)
    finally:
        writer.close()
        with suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3}) ")


def status_codes(response: bytes) -> list[int]:
    """Every status line in a raw response stream (bodies here never contain one)."""
    return [int(code) for code in _STATUS_LINE.findall(response)]


# --- The gateway as a subprocess -----------------------------------------------------------------------------


def clean_environment(settings: dict[str, str]) -> dict[str, str]:
    """The parent's environment without any gateway setting, plus `settings`."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.upper().startswith(("GATEWAY_", "MONOSIGN_"))}
    environment.update(settings)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def subprocess_settings(upstream_url: str, **overrides: str) -> dict[str, str]:
    values = {key.upper(): str(value) for key, value in BASE_SETTINGS.items()}
    values["GATEWAY_UPSTREAM_URL"] = upstream_url
    values.update({key.upper(): value for key, value in overrides.items()})
    return values


class GatewayProcess:
    """`python -m gateway serve` with its stdout collected line by line (JSON logs)."""

    def __init__(self, environment: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"], env=environment, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self.stderr = ""
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""
        self.admin_url = ""
        self.port = 0

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if '"gateway_started"' in line:
                event = json.loads(line)
                self.url = event["listen"][0]
                self.admin_url = event["admin_listen"][0]
                self.port = int(self.url.rsplit(":", 1)[1])
                self._started.set()

    def wait_started(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._started.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"gateway did not start: {self.stderr}\n" + "\n".join(self.lines))

    def events(self) -> list[dict[str, Any]]:
        events = []
        for line in list(self.lines):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        assert self.process.stderr is not None
        assert self.process.stdout is not None
        if not self.process.stderr.closed:
            self.stderr = self.process.stderr.read()
            self.process.stderr.close()
        self.process.stdout.close()
        return code

    def stop(self) -> int:
        self.terminate()
        try:
            return self.wait()
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait()


@contextmanager
def gateway_process(upstream_url: str, cwd: Path, **overrides: str) -> Iterator[GatewayProcess]:
    process = GatewayProcess(clean_environment(subprocess_settings(upstream_url, **overrides)), cwd)
    try:
        process.wait_started()
        yield process
    finally:
        process.stop()
