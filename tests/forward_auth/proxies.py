"""Real nginx (`auth_request`) and Caddy (`forward_auth`) in front of an application, asking an
authorisation endpoint about each request: the configurations docs/forward-auth.md will show."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.common import free_port, write_nginx_config
from tests.tools import require_tool

STARTUP_SECONDS = 20.0


def nginx_http_body(port: int, auth_port: int, app_port: int) -> str:
    return f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_gateway_auth;
            auth_request_set $gateway_user $upstream_http_remote_user;
            proxy_set_header Remote-User $gateway_user;
            proxy_pass http://127.0.0.1:{app_port};
        }}
        location = /_gateway_auth {{
            internal;
            proxy_pass http://127.0.0.1:{auth_port}/_gateway/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
    }}
"""


def caddyfile(host: str, port: int, auth_port: int, app_port: int) -> str:
    # `request_header -Remote-User` first, in a `route` so that it runs first (Caddy's own directive
    # order puts forward_auth before request_header): copy_headers sets the header only when the
    # answer has it, so without this a client's own Remote-User reaches the application on a bypass rule.
    return f"""{{
    admin off
    auto_https off
}}
http://{host}:{port} {{
    bind 127.0.0.1
    route {{
        request_header -Remote-User
        forward_auth 127.0.0.1:{auth_port} {{
            uri /_gateway/auth
            copy_headers Remote-User
        }}
        reverse_proxy 127.0.0.1:{app_port}
    }}
}}
"""


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
async def running_nginx(directory: Path, auth_port: int, app_port: int) -> AsyncIterator[int]:
    nginx = require_tool("nginx")
    port = free_port()
    (directory / "tmp").mkdir(exist_ok=True)
    directory.chmod(0o755)
    config = write_nginx_config(directory, "forward-auth", nginx_http_body(port, auth_port, app_port))
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
async def running_caddy(directory: Path, host: str, auth_port: int, app_port: int) -> AsyncIterator[int]:
    caddy = require_tool("caddy")
    port = free_port()
    config = directory / "Caddyfile"
    config.write_text(caddyfile(host, port, auth_port, app_port))
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
