"""The supervisor's own decisions, with scripted worker processes (real subprocesses that answer
/healthz on their admin socket like a worker, then behave as told): start-up failure, crash loop
back-off, a worker that outlives the grace period. The real worker is covered in test_workers.py."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings, load_settings
from gateway.workers.backoff import RestartPolicy
from gateway.workers.supervisor import Supervisor, WorkerSlot, bind_listeners, describe_exit
from tests.logs import CapturedLogs, events

FAKE_WORKER = textwrap.dedent('''
    """A stand-in worker: answers /healthz on its admin socket, then does what argv[3] says."""
    import asyncio, signal, sys
    from aiohttp import web

    admin_socket, index, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]

    async def main() -> int:
        if behaviour == "exit-at-start":
            return 3
        app = web.Application()
        app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.UnixSite(runner, admin_socket).start()
        stop = asyncio.Event()
        if behaviour != "ignore-sigterm":
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if behaviour.startswith("crash-after:"):
            await asyncio.sleep(float(behaviour.split(":")[1]))
            return 1
        await stop.wait()
        await runner.cleanup()
        return 0

    sys.exit(asyncio.run(main()))
''')


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "monosign_api_url": "http://127.0.0.1:9", "monosign_api_key": "k", "monosign_api_secret": "s",
        "gateway_public_url": "http://mail.example.test", "gateway_upstream_url": "http://127.0.0.1:9",
        "gateway_listen": "127.0.0.1:0", "gateway_admin_listen": "127.0.0.1:0", "gateway_workers": 2,
        # Never contacted by the supervisor itself.
        "gateway_session_store": "redis", "gateway_redis_url": "redis://127.0.0.1:1/0",
        "gateway_session_secret": "supervisor-test-secret-0123456789abcdef",
        **overrides,
    }
    return load_settings(env_file=None, **values)


class ScriptedSupervisor(Supervisor):
    def __init__(self, settings: Settings, script: Path, behaviour: Callable[[int], str], **kwargs: Any) -> None:
        super().__init__(settings, env_file=Path(".env"), **kwargs)
        self.script = script
        self.behaviour = behaviour
        self.spawned: list[tuple[int, float]] = []  # (worker index, time.monotonic())

    def worker_command(self, slot: WorkerSlot, fds: Sequence[int]) -> list[str]:
        self.spawned.append((slot.index, time.monotonic()))
        return [sys.executable, str(self.script), slot.admin_socket, str(slot.index), self.behaviour(slot.index)]


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "fake_worker.py"
    path.write_text(FAKE_WORKER)
    return path


def log_events(lines: list[str], name: str) -> list[dict[str, Any]]:
    return [event for event in events(lines) if event.get("event") == name]


async def test_a_worker_failing_at_start_stops_the_start(script: Path, captured_logs: CapturedLogs) -> None:
    supervisor = ScriptedSupervisor(settings(), script, lambda index: "exit-at-start" if index == 2 else "serve")
    code = await asyncio.wait_for(supervisor.run(), 30)
    assert code == 1
    lines = captured_logs()
    failed = log_events(lines, "worker_exited_during_start")
    assert [(event["worker"], event["exit"]) for event in failed] == [(2, "exit status 3")]
    assert not log_events(lines, "gateway_started")
    assert log_events(lines, "gateway_stopped")[0]["exit_status"] == 1
    assert len(supervisor.spawned) == 2  # no restart during start-up


@pytest.mark.slow
async def test_a_crash_loop_backs_off_and_a_steady_worker_is_left_alone(script: Path,
                                                                        captured_logs: CapturedLogs) -> None:
    policy = RestartPolicy(stable_after=5.0, first_delay=0.2, max_delay=0.8)
    supervisor = ScriptedSupervisor(settings(), script, lambda index: "crash-after:0.1" if index == 1 else "serve",
                                    policy=policy)
    task = asyncio.create_task(supervisor.run())
    deadline = time.monotonic() + 30
    while len(log_events(captured_logs(), "worker_restarting")) < 5:
        assert time.monotonic() < deadline, captured_logs()
        assert not task.done()
        await asyncio.sleep(0.05)
    assert len(supervisor.running_workers()) >= 1  # worker 2 serves throughout
    supervisor.stop()
    assert await asyncio.wait_for(task, 30) == 0
    lines = captured_logs()
    restarts = log_events(lines, "worker_restarting")
    assert {event["worker"] for event in restarts} == {1}
    assert [event["delay_s"] for event in restarts[:5]] == [0.2, 0.4, 0.8, 0.8, 0.8]
    assert [event["quick_failures"] for event in restarts[:5]] == [1, 2, 3, 4, 5]
    exits = log_events(lines, "worker_exited")
    assert {event["exit"] for event in exits} == {"exit status 1"}
    # The delays were really waited: each spawn of worker 1 at least its delay after the previous death.
    spawns = [moment for index, moment in supervisor.spawned if index == 1]
    gaps = [later - earlier for earlier, later in itertools.pairwise(spawns)]
    for gap, delay in zip(gaps, [0.2, 0.4, 0.8, 0.8], strict=False):
        assert gap >= delay + 0.1  # + the 0.1 s it ran before crashing
    assert [index for index, _ in supervisor.spawned].count(2) == 1


async def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(script: Path,
                                                                       captured_logs: CapturedLogs) -> None:
    supervisor = ScriptedSupervisor(settings(gateway_shutdown_grace=0.2), script,
                                    lambda index: "ignore-sigterm" if index == 1 else "serve", kill_after_grace=0.3)
    task = asyncio.create_task(supervisor.run())
    deadline = time.monotonic() + 30
    while len(supervisor.running_workers()) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    started = time.monotonic()
    supervisor.stop()
    assert await asyncio.wait_for(task, 30) == 1
    assert 0.4 < time.monotonic() - started < 5
    killed = log_events(captured_logs(), "worker_stop_timeout")
    assert [event["worker"] for event in killed] == [1]
    stopped = {event["worker"]: event["exit"] for event in log_events(captured_logs(), "worker_stopped")}
    assert stopped == {1: "killed by SIGKILL", 2: "exit status 0"}


@pytest.mark.parametrize(("returncode", "text"), [
    (0, "exit status 0"), (3, "exit status 3"), (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM"),
    (-200, "killed by signal 200"),
])
def test_describe_exit(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text


def test_bind_listeners_gives_every_address_the_same_port() -> None:
    sockets = bind_listeners("localhost", 0)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1
        assert ports != {0}
        assert all(sock.type == socket.SOCK_STREAM for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_bind_listeners_reports_a_taken_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError, match="in use"):
        bind_listeners("127.0.0.1", taken.getsockname()[1])
