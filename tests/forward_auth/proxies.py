"""Real nginx (`auth_request`) and Caddy (`forward_auth`) in front of an application, asking the
gateway about each request: with the very configurations docs/forward-auth.md shows, their example
addresses replaced by the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.common import free_port, write_nginx_config
from tests.tools import require_tool

STARTUP_SECONDS = 20.0
DOC = Path(__file__).resolve().parents[2] / "docs" / "forward-auth.md"
# The example values of the documented configurations.
DOC_HOST = "wiki.example.com"
DOC_GATEWAY = "gateway.internal:8080"
DOC_APP = "app.internal:8080"


def documented(name: str, *, marker: str = "tested") -> str:
    """The code block docs/forward-auth.md marks `<!-- tested: NAME -->`."""
    match = re.search(rf"<!-- {marker}: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", DOC.read_text(encoding="utf-8"),
                      re.S)
    assert match, f"docs/forward-auth.md has no block marked <!-- {marker}: {name} -->"
    return match[1]


def _replaced(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"the documented configuration no longer has {old!r}"
        text = text.replace(old, new)
    return text


def nginx_http_body(port: int, gateway_port: int, app_port: int) -> str:
    return _replaced(documented("nginx"), {
        "listen 80;": f"listen 127.0.0.1:{port};",
        DOC_GATEWAY: f"127.0.0.1:{gateway_port}",
        DOC_APP: f"127.0.0.1:{app_port}",
    })


def caddyfile(port: int, gateway_port: int, app_port: int) -> str:
    site = _replaced(documented("caddy"), {
        f"{DOC_HOST} {{": f"http://{DOC_HOST}:{port} {{\n\tbind 127.0.0.1",
        DOC_GATEWAY: f"127.0.0.1:{gateway_port}",
        DOC_APP: f"127.0.0.1:{app_port}",
    })
    return "{\n\tadmin off\n\tauto_https off\n}\n" + site


async def _wait_for_port(port: int, process: asyncio.subprocess.Process | None = None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    while loop.time() < deadline:
        if process is not None and process.returncode is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {STARTUP_SECONDS} s")


@asynccontextmanager
async def running_nginx(directory: Path, gateway_port: int, app_port: int) -> AsyncIterator[int]:
    nginx = require_tool("nginx")
    port = free_port()
    (directory / "tmp").mkdir(exist_ok=True)
    directory.chmod(0o755)
    config = write_nginx_config(directory, "forward-auth", nginx_http_body(port, gateway_port, app_port))
    started = await asyncio.create_subprocess_exec(nginx, "-c", str(config), "-e", str(directory / "startup.log"))
    assert await started.wait() == 0, (directory / "startup.log").read_text()
    pid_file = directory / "forward-auth.pid"
    try:
        await _wait_for_port(port)
        yield port
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGQUIT)
        for _ in range(100):
            if not pid_file.exists():
                break
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running_caddy(directory: Path, gateway_port: int, app_port: int) -> AsyncIterator[int]:
    caddy = require_tool("caddy")
    port = free_port()
    config = directory / "Caddyfile"
    config.write_text(caddyfile(port, gateway_port, app_port))
    environment = {**os.environ, "XDG_DATA_HOME": str(directory / "data"), "XDG_CONFIG_HOME": str(directory / "cfg"),
                   "HOME": str(directory)}
    with (directory / "caddy.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            caddy, "run", "--config", str(config), "--adapter", "caddyfile",
            stdout=asyncio.subprocess.DEVNULL, stderr=log, env=environment)
    try:
        try:
            await _wait_for_port(port, process)
        except RuntimeError as exc:
            raise RuntimeError(f"caddy: {exc}: {(directory / 'caddy.log').read_text()[-600:]}") from None
        yield port
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
