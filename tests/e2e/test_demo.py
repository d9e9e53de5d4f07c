"""`monosign-gateway demo` as a user runs it: a subprocess, its banner, a whole sign-in, Ctrl-C.

Also the README's first command (`./dev demo`), with options passed through, so the README stays true.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.demo import PortInUse, choose_port, second_factor_text
from gateway.sim.monosign_users import demo_users as monosign_demo_users
from tests.e2e.owa_client import live_cadata_cookies, shows_mailbox, sign_in_with_code

ROOT = Path(__file__).resolve().parent.parent.parent
BANNER_END = "Press Ctrl-C to stop."
STARTUP_SECONDS = 30.0


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class DemoProcess:
    process: asyncio.subprocess.Process
    banner: str
    ports: list[int]

    @property
    def gateway_url(self) -> str:
        found = re.search(r"^\s+Open\s+(http://127\.0\.0\.1:\d+)/owa/$", self.banner, re.MULTILINE)
        assert found, self.banner
        return found.group(1)

    @property
    def monosign_url(self) -> str:
        found = re.search(r"^\s+Second factor\s+(http://127\.0\.0\.1:\d+)/_sim/", self.banner, re.MULTILINE)
        assert found, self.banner
        return found.group(1)

    async def stop(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        self.process.send_signal(signum)
        assert self.process.stdout is not None
        rest = await asyncio.wait_for(self.process.stdout.read(), timeout=30)
        return await asyncio.wait_for(self.process.wait(), timeout=30), rest.decode()


@asynccontextmanager
async def demo_process(command: list[str]) -> AsyncIterator[DemoProcess]:
    gateway, owa, monosign, admin = ports = free_ports(4)
    process = await asyncio.create_subprocess_exec(
        *command, "--port", str(gateway), "--owa-port", str(owa), "--monosign-port", str(monosign),
        "--admin-port", str(admin), "--exit-after", "120", "--quiet",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        lines: list[str] = []
        assert process.stdout is not None
        async with asyncio.timeout(STARTUP_SECONDS):
            while BANNER_END not in lines[-1:]:
                line = await process.stdout.readline()
                assert line, "the demo exited before printing its banner:\n" + "".join(lines)
                lines.append(line.decode().rstrip("\n"))
        yield DemoProcess(process, "\n".join(lines), ports)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_demo_banner_whole_sign_in_and_ctrl_c() -> None:
    async with demo_process([sys.executable, "-m", "gateway", "demo"]) as demo:
        banner = demo.banner
        for user, password in (("alice", "AlicePass1!"), ("bob", "BobPass1!"), ("carol", "CarolPass1!"),
                               ("dave", "DavePass1!")):
            assert re.search(rf"^\s+{user}\s+{re.escape(password)}\s+\S", banner, re.MULTILINE), banner
        assert "not assigned" in banner  # carol's line says why she will be refused
        assert f"{demo.monosign_url}/_sim/" in banner
        assert all(port_open(port) for port in demo.ports)

        async with httpx.AsyncClient(base_url=demo.gateway_url, timeout=10) as browser:
            start = await browser.get("/owa/")
            assert start.status_code == 302
            assert "/owa/auth/logon.aspx" in start.headers["Location"]
            logon = await browser.get(start.headers["Location"])
            assert logon.status_code == 200
            assert 'name="password"' in logon.text

            # bob has one-time codes only: read the current one from the simulator's control API.
            passed = await sign_in_with_code(browser, "bob", monosign_url=demo.monosign_url)
            assert passed.status_code in (302, 303), passed.text
            assert passed.headers["Location"].endswith("/owa/")
            assert live_cadata_cookies(passed), "the held Exchange cookies are handed over after MFA"
            mailbox = await browser.get("/owa/")
            assert mailbox.status_code == 200
            assert "Bob Baker" in mailbox.text
            assert shows_mailbox(mailbox.text)

        status, rest = await demo.stop(signal.SIGINT)
        assert status == 0, rest
        assert "Demo stopped." in rest
        assert not any(port_open(port) for port in demo.ports)


async def test_demo_stops_on_sigterm() -> None:
    async with demo_process([sys.executable, "-m", "gateway", "demo"]) as demo:
        status, rest = await demo.stop(signal.SIGTERM)
        assert status == 0, rest
        assert not any(port_open(port) for port in demo.ports)


async def test_readme_first_command_runs_the_demo() -> None:
    readme = (ROOT / "README.md").read_text()
    first_command = re.search(r"```bash\n(.+?)\n```", readme)
    assert first_command is not None
    assert first_command.group(1).strip() == "./dev demo"
    async with demo_process([str(ROOT / "dev"), "demo"]) as demo:
        async with httpx.AsyncClient(base_url=demo.gateway_url, timeout=10) as browser:
            start = await browser.get("/owa/")
            assert start.status_code == 302
            assert "/owa/auth/logon.aspx" in start.headers["Location"]
        status, rest = await demo.stop(signal.SIGINT)
        assert status == 0, rest
        assert not any(port_open(port) for port in demo.ports)


async def test_a_port_you_chose_that_is_taken_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "demo", "--port", str(port), "--owa-port", "0",
            "--monosign-port", "0", "--admin-port", "0", "--exit-after", "5",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    assert f"port {port} (gateway) is already in use; choose another with --port" in err.decode()
    assert b"Open" not in out


@pytest.mark.parametrize("option", ["--port", "--exit-after"])
async def test_bad_option_values_are_refused(option: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", option, "-1",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert option in err.decode()


def test_a_taken_default_port_falls_back_to_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        chosen, note = choose_port("gateway", port, may_fall_back=True, option="--port")
        assert chosen != port
        assert chosen > 0
        assert note == f"port {port} (gateway) is in use, so the demo uses {chosen} instead"
        with pytest.raises(PortInUse, match="choose another with --port"):
            choose_port("gateway", port, may_fall_back=False, option="--port")
    assert choose_port("gateway", port, may_fall_back=False, option="--port") == (port, None)


@pytest.mark.parametrize(("user", "expected"), [
    ("alice", "push approval or one-time code"),
    ("bob", "one-time code"),
    ("carol", "not assigned to the application: sign-in refused"),
    ("dave", "push approval"),
    ("nobody", "unknown to Monosign: sign-in refused"),
])
def test_second_factor_text_per_demo_user(user: str, expected: str) -> None:
    by_name = {sim_user.user_name: sim_user for sim_user in monosign_demo_users()}
    assert second_factor_text(by_name.get(user)) == expected
