"""The worker side: `serve` started by the supervisor with the listening socket(s) inherited.

A worker is the ordinary gateway (`gateway.server.run_gateway`) with three differences: its main
listener is the supervisor's socket (no bind of its own), its admin application listens on a
private Unix socket that only the supervisor reads, and it drains and exits by itself when the
supervisor disappears (killed with SIGKILL, say), so no orphan keeps serving. Every log line of a
worker carries `worker: <index>` (set by the serve command's logging set-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

import uvloop

from gateway.observability.logging import get_logger
from gateway.server import Gateway, run_gateway
from gateway.settings import Settings

log = get_logger("gateway.worker")

PARENT_CHECK_INTERVAL = 1.0  # seconds between checks that the supervisor is still there


def run_worker(settings: Settings, *, index: int, listen_fds: Sequence[int], admin_socket: str) -> int:
    """Serve on the inherited sockets until SIGTERM/SIGINT (or the supervisor's death); return 0."""
    sockets = [socket.socket(fileno=fd) for fd in listen_fds]
    supervisor_pid = os.getppid()
    watchers: list[asyncio.Task[None]] = []

    def started(gateway: Gateway) -> None:
        watchers.append(asyncio.get_running_loop().create_task(_watch_supervisor(supervisor_pid)))

    try:
        return uvloop.run(run_gateway(settings, on_started=started, listen_sockets=sockets,
                                      admin_path=admin_socket, started_event="worker_started"))
    finally:
        for sock in sockets:
            sock.close()
        if os.getppid() != supervisor_pid:
            _remove_runtime_files(Path(admin_socket))


def _remove_runtime_files(admin_socket: Path) -> None:
    """An orphan cleans up what its dead supervisor would have: its socket file, and the private
    directory once the last worker has left it (removing a directory that is not empty fails)."""
    with contextlib.suppress(OSError):
        admin_socket.unlink(missing_ok=True)
        admin_socket.parent.rmdir()


async def _watch_supervisor(supervisor_pid: int) -> None:
    while True:
        await asyncio.sleep(PARENT_CHECK_INTERVAL)
        if os.getppid() != supervisor_pid:
            # Re-parented: the supervisor is gone. Drain like on SIGTERM rather than serve unsupervised.
            log.error("supervisor_gone", message="supervisor gone; shutting down this worker",
                      supervisor_pid=supervisor_pid)
            os.kill(os.getpid(), signal.SIGTERM)
            return
