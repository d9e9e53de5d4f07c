"""A real redis-server on 127.0.0.1 for tests: free port, temp dir, no persistence, killed at the end.

    with RedisServer.running(tmp_path) as server:
        server.url            # redis://127.0.0.1:<port>/0
        server.stop(); server.start()   # an outage and a recovery, same port

Skips locally when redis-server is missing and fails in CI (tests/tools.py).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.tools import require_redis_server

_START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS-only redis-server (see `make_tls_files`)."""

    cert: Path
    key: Path
    ca: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A private CA and a certificate for 127.0.0.1, as PEM files in `directory`."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    issued.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files


class RedisServer:
    """A redis-server; with `tls`, TLS only; with `sentinel_for=(host, port)`, a Sentinel
    monitoring that master as the service `mymaster`."""

    def __init__(
        self,
        directory: Path,
        *,
        extra_args: list[str] | None = None,
        tls: TlsFiles | None = None,
        sentinel_for: tuple[str, int] | None = None,
    ) -> None:
        self.binary = require_redis_server()
        self.directory = directory
        self.port = free_port()
        self.extra_args = extra_args or []
        self.tls = tls
        self.sentinel_for = sentinel_for
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain synchronous client, for looking at what the gateway wrote."""
        # No retries: a probe of a server that is not up yet must fail at once.
        options = {"socket_timeout": 5, "retry": Retry(NoBackoff(), 0)}
        if self.tls is not None:
            options.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]

    def _command(self) -> list[str]:
        if self.sentinel_for is not None:
            host, port = self.sentinel_for
            config = self.directory / "sentinel.conf"
            config.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor mymaster {host} {port} 1\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
            )
            return [self.binary, str(config), "--sentinel", "--loglevel", "warning"]
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            listen = [
                "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no",
            ]
        return [
            self.binary, "--bind", "127.0.0.1", *listen,
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            "--daemonize", "no", "--loglevel", "warning", *self.extra_args,
        ]

    def start(self) -> None:
        assert self.process is None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        command = self._command()
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.directory
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self.process = None
                raise RuntimeError(f"redis-server exited at start: {stderr.strip()[:500]}")
            try:
                with self.client() as probe:
                    probe.ping()
                return
            except (redis.AuthenticationError, redis.ResponseError):
                return  # it answers (asking for a password): it is up
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not answer within 10 s") from None
                time.sleep(0.05)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) inside the block: connections stay open and nothing answers,
        as with a Redis stuck on a slow disk or a paused VM."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            if self.process is not None:
                self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a clean shutdown) and wait for it."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    @classmethod
    @contextmanager
    def running(
        cls,
        directory: Path,
        *,
        extra_args: list[str] | None = None,
        tls: TlsFiles | None = None,
        sentinel_for: tuple[str, int] | None = None,
    ) -> Iterator[RedisServer]:
        for attempt in range(3):  # the free port may be taken between choosing and binding it
            server = cls(directory, extra_args=extra_args, tls=tls, sentinel_for=sentinel_for)
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        try:
            yield server
        finally:
            server.stop()
