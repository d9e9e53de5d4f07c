"""A real redis-server on 127.0.0.1 for tests: free port, temp dir, no persistence, killed at the end.

    with RedisServer.running(tmp_path) as server:
        server.url            # redis://127.0.0.1:<port>/0
        server.stop(); server.start()   # an outage and a recovery, same port

Skips locally when redis-server is missing and fails in CI (tests/tools.py).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.tools import require_redis_server

_START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, directory: Path, *, extra_args: list[str] | None = None) -> None:
        self.binary = require_redis_server()
        self.directory = directory
        self.port = free_port()
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain synchronous client, for looking at what the gateway wrote."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        assert self.process is None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            "--daemonize", "no", "--loglevel", "warning", *self.extra_args,
        ]
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
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not answer within 10 s") from None
                time.sleep(0.05)

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
    def running(cls, directory: Path, *, extra_args: list[str] | None = None) -> Iterator[RedisServer]:
        for attempt in range(3):  # the free port may be taken between choosing and binding it
            server = cls(directory, extra_args=extra_args)
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
