"""The supervisor: one listening socket, N worker processes, restarts with back-off, one drain.

The supervisor binds the main listener itself and starts each worker as `python -m gateway serve`
with that socket inherited (`pass_fds`). The workers accept from the one shared queue, so when a
worker dies, the connections waiting in the queue go to the others at once, and `GATEWAY_LISTEN`
with port 0 means the same port for everyone. (SO_REUSEPORT would give each worker a queue of its
own: the connections the kernel had hashed to a dead worker would be reset or wait for its restart.)

Start-up: a worker that exits before it is ready stops the whole start (exit 1): a broken
installation should fail loudly, not loop. Afterwards a dead worker is logged and restarted, at
once after a healthy run and with growing delays when it keeps dying (`gateway.workers.backoff`).

SIGTERM/SIGINT: the supervisor closes its copy of the listening socket and passes SIGTERM to every
worker; each stops accepting, finishes its in-flight requests within `GATEWAY_SHUTDOWN_GRACE` and
exits; the supervisor exits 0 when all have (1 when one had to be killed after the grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway import __version__
from gateway.observability.logging import get_logger
from gateway.observability.metrics import register_process_metrics
from gateway.server import LISTEN_BACKLOG
from gateway.settings import Settings
from gateway.workers.admin import RunningWorker, build_supervisor_admin_app, query_worker
from gateway.workers.backoff import RestartPolicy, next_restart

log = get_logger("gateway.supervisor")

READY_TIMEOUT = 60.0         # seconds a new worker has to answer on its admin socket
READY_POLL_INTERVAL = 0.05
KILL_AFTER_GRACE = 10.0      # seconds past GATEWAY_SHUTDOWN_GRACE before a worker is killed


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on every address `host` resolves to (one for an IP address), like aiohttp's
    TCPSite would; every socket gets the port the first one got (for port 0)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, _type, _proto, _name, address in dict.fromkeys(infos):
            if sockets:
                port = sockets[0].getsockname()[1]
            sockets.append(socket.create_server((address[0], port), family=family, backlog=LISTEN_BACKLOG))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _url(scheme: str, address: object) -> str:
    assert isinstance(address, tuple)
    host, port = address[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@dataclass
class WorkerSlot:
    index: int
    admin_socket: str
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0  # time.monotonic() of the current process's start
    ready: bool = False
    quick_failures: int = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


@dataclass
class SupervisorMetrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        register_process_metrics(self.registry)
        self.configured = Gauge("gateway_workers_configured", "Worker processes configured (GATEWAY_WORKERS).",
                                registry=self.registry)
        self.running = Gauge("gateway_workers_running", "Worker processes running and ready.",
                             registry=self.registry)
        self.restarts = Counter("gateway_worker_restarts_total", "Workers restarted after they died, by worker.",
                                ("worker",), registry=self.registry)


class Supervisor:
    """Run `settings.gateway_workers` workers until SIGTERM/SIGINT; `run()` returns the exit status."""

    def __init__(self, settings: Settings, *, env_file: Path, policy: RestartPolicy | None = None,
                 ready_timeout: float = READY_TIMEOUT, kill_after_grace: float = KILL_AFTER_GRACE) -> None:
        self.settings = settings
        self.configured_workers = settings.gateway_workers
        self.draining = False
        self._env_file = env_file
        self._policy = policy or RestartPolicy()
        self._ready_timeout = ready_timeout
        self._kill_after_grace = kill_after_grace
        self._metrics = SupervisorMetrics()
        self.registry = self._metrics.registry
        self._metrics.configured.set(self.configured_workers)
        self._metrics.running.set_function(lambda: len(self.running_workers()))
        self._slots: list[WorkerSlot] = []
        self._sockets: list[socket.socket] = []
        self._stop = asyncio.Event()
        self._killed_any = False
        self._start_failed = False

    def stop(self) -> None:
        """Begin the shutdown, as SIGTERM does."""
        self._stop.set()

    def reload(self) -> None:
        """SIGHUP: every worker reads GATEWAY_CONFIG_FILE again (each also watches it itself)."""
        for slot in self._slots:
            if slot.process is not None and slot.ready and slot.alive:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGHUP)
        log.info("config_reload_forwarded", message="SIGHUP sent to the workers", workers=len(self._slots))

    def running_workers(self) -> Sequence[RunningWorker]:
        return [RunningWorker(slot.index, slot.admin_socket) for slot in self._slots if slot.ready and slot.alive]

    async def run(self) -> int:
        runtime = Path(tempfile.mkdtemp(prefix="monosign-gateway-"))  # 0700: the admin sockets are ours
        admin = web.AppRunner(build_supervisor_admin_app(self), access_log=None, shutdown_timeout=1.0,
                              handler_cancellation=True)
        loop = asyncio.get_running_loop()
        try:
            listen = self.settings.gateway_listen
            self._sockets = bind_listeners(listen.host, listen.port)
            await admin.setup()
            site = web.TCPSite(admin, self.settings.gateway_admin_listen.host,
                               self.settings.gateway_admin_listen.port)
            await site.start()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stop.set)
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            self._slots = [WorkerSlot(index, str(runtime / f"worker-{index}.sock"))
                           for index in range(1, self.configured_workers + 1)]
            started = [loop.create_future() for _ in self._slots]
            monitors = [asyncio.create_task(self._supervise(slot, ready))
                        for slot, ready in zip(self._slots, started, strict=True)]
            start_up = asyncio.gather(*started)
            stop_wait = asyncio.create_task(self._stop.wait())
            waiters: set[asyncio.Future[Any]] = {start_up, stop_wait}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if not self._stop.is_set() and all(start_up.result()):  # (not stopped: start_up is done)
                scheme = "https" if self.settings.gateway_tls_cert_file else "http"
                log.info("gateway_started", version=__version__,
                         listen=[_url(scheme, sock.getsockname()) for sock in self._sockets],
                         admin_listen=[_url("http", address) for address in admin.addresses],
                         workers=self.configured_workers,
                         worker_pids=[slot.process.pid for slot in self._slots if slot.process is not None],
                         upstream=self.settings.gateway_upstream_url, public_url=self.settings.gateway_public_url)
                await self._stop.wait()
            elif not self._stop.is_set():
                self._start_failed = True
                log.error("worker_start_failed", message="a worker failed to start; stopping",
                          workers=self.configured_workers)
            if not self._start_failed:
                log.info("shutting_down", message="no new connections; in-flight requests may finish",
                         grace_s=self.settings.gateway_shutdown_grace, workers=self.configured_workers)
            start_up.cancel()
            stop_wait.cancel()
            await self._shutdown(monitors)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            self._close_sockets()
            await admin.cleanup()
            shutil.rmtree(runtime, ignore_errors=True)
        code = 1 if self._start_failed or self._killed_any else 0
        log.info("gateway_stopped", exit_status=code)
        return code

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    # --- one slot's life -------------------------------------------------------------------------
    async def _supervise(self, slot: WorkerSlot, started: asyncio.Future[bool]) -> None:
        await self._spawn(slot)
        ready = await self._wait_ready(slot)
        if not started.done():
            started.set_result(ready)
        if not ready:
            await self._give_up(slot)
            return
        while True:
            assert slot.process is not None
            returncode = await slot.process.wait()
            slot.ready = False
            if self._stop.is_set():
                return
            uptime = time.monotonic() - slot.started_at
            decision = next_restart(self._policy, slot.quick_failures, uptime)
            slot.quick_failures = decision.quick_failures
            log.error("worker_exited", worker=slot.index, pid=slot.process.pid, exit=describe_exit(returncode),
                      uptime_s=round(uptime, 1))
            log.warning("worker_restarting", worker=slot.index, delay_s=decision.delay,
                        quick_failures=decision.quick_failures)
            self._metrics.restarts.labels(str(slot.index)).inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), decision.delay)
            if self._stop.is_set():
                return
            await self._spawn(slot)
            if await self._wait_ready(slot):
                log.info("worker_restarted", worker=slot.index, pid=slot.process.pid)
            elif slot.alive and not self._stop.is_set():
                log.error("worker_not_ready", message="restarted worker did not become ready; killing it",
                          worker=slot.index,
                          timeout_s=self._ready_timeout)
                slot.process.kill()

    async def _give_up(self, slot: WorkerSlot) -> None:
        """The first start of this slot failed (or shutdown began meanwhile): no restart."""
        assert slot.process is not None
        if not self._stop.is_set():
            if slot.alive:
                log.error("worker_not_ready", message="worker did not become ready; killing it", worker=slot.index,
                          timeout_s=self._ready_timeout)
                slot.process.kill()
            returncode = await slot.process.wait()
            log.error("worker_exited_during_start", worker=slot.index, pid=slot.process.pid,
                      exit=describe_exit(returncode))
        await slot.process.wait()  # during shutdown, the supervisor has sent SIGTERM

    def worker_command(self, slot: WorkerSlot, fds: Sequence[int]) -> list[str]:
        """The command line of a worker: `serve` again, told which sockets and slot are its own."""
        command = [sys.executable, "-m", "gateway", "serve", "--env-file", str(self._env_file),
                   "--worker", str(slot.index), "--admin-socket", slot.admin_socket]
        for fd in fds:
            command += ["--listen-fd", str(fd)]
        return command

    async def _spawn(self, slot: WorkerSlot) -> None:
        fds = [sock.fileno() for sock in self._sockets]
        slot.ready = False
        slot.process = await asyncio.create_subprocess_exec(*self.worker_command(slot, fds), pass_fds=fds,
                                                            stdin=asyncio.subprocess.DEVNULL)
        slot.started_at = time.monotonic()
        if self._stop.is_set():  # shutdown began while it was being started
            slot.process.terminate()

    async def _wait_ready(self, slot: WorkerSlot) -> bool:
        """True once the worker answers /healthz on its admin socket; False if it exits first, does
        not answer within the timeout, or shutdown begins."""
        deadline = time.monotonic() + self._ready_timeout
        while slot.alive and not self._stop.is_set() and time.monotonic() < deadline:
            # A socket file left by a killed predecessor refuses connections until the new worker
            # replaces it (the event loop removes a stale socket file when it binds).
            with contextlib.suppress(OSError, TimeoutError, aiohttp.ClientError):
                async with asyncio.timeout(1.0):
                    status, _ = await query_worker(slot.admin_socket, "/healthz")
                if status == 200:
                    slot.ready = slot.alive
                    return slot.ready
            await asyncio.sleep(READY_POLL_INTERVAL)
        return False

    # --- shutdown --------------------------------------------------------------------------------
    async def _shutdown(self, monitors: list[asyncio.Task[None]]) -> None:
        self.draining = True
        self._stop.set()
        self._close_sockets()  # the workers' copies close as each one stops accepting
        for slot in self._slots:
            if slot.alive:
                assert slot.process is not None
                slot.process.terminate()
        # Each worker serves on for the delay, then drains for the grace period.
        limit = self.settings.gateway_shutdown_delay + self.settings.gateway_shutdown_grace + self._kill_after_grace
        done, pending = await asyncio.wait(monitors, timeout=limit)
        if pending:
            for slot in self._slots:
                if slot.alive:
                    assert slot.process is not None
                    log.error("worker_stop_timeout", message="worker did not stop within the grace period; killing it",
                              worker=slot.index,
                              pid=slot.process.pid, grace_s=self.settings.gateway_shutdown_grace)
                    slot.process.kill()
                    self._killed_any = True
            await asyncio.wait(pending)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("worker_supervision_failed", error=repr(task.exception()))
        for slot in self._slots:
            if slot.process is not None and slot.process.returncode is not None:
                log.info("worker_stopped", worker=slot.index, pid=slot.process.pid,
                         exit=describe_exit(slot.process.returncode))


def run_supervisor(settings: Settings, *, env_file: Path) -> int:
    import uvloop

    return uvloop.run(Supervisor(settings, env_file=env_file).run())
