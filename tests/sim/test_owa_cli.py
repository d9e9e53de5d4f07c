"""`monosign-gateway sim owa` as a real subprocess: plain HTTP, and --self-signed with a CA a client trusts."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

STARTUP_TIMEOUT = 30.0


@asynccontextmanager
async def sim_owa(*args: str) -> AsyncIterator[tuple[str, list[str]]]:
    """Start `python -m gateway sim owa --listen 127.0.0.1:0 ARGS`; yield (base URL, first output lines)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "sim", "owa", "--listen", "127.0.0.1:0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout = process.stdout
        assert stdout is not None
        lines: list[str] = []
        base_url = ""

        async def read_banner() -> None:
            nonlocal base_url
            while True:
                line = (await stdout.readline()).decode()
                assert line, "the simulator exited before it was ready"
                lines.append(line.rstrip("\n"))
                if line.startswith("  CORP\\dave"):
                    return
                match = re.match(r"OWA simulator listening on (https?://127\.0\.0\.1:\d+)/owa/", line)
                if match:
                    base_url = match.group(1)

        await asyncio.wait_for(read_banner(), STARTUP_TIMEOUT)
        yield base_url, lines
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_plain_http_simulator_answers_like_exchange() -> None:
    async with sim_owa("--public-timeout", "5") as (base_url, lines), aiohttp.ClientSession() as http:
        assert base_url.startswith("http://127.0.0.1:")
        assert any("CORP\\alice / alice@corp.example: Alice Archer" in line for line in lines)
        assert all("Pass1!" not in line for line in lines)   # passwords are documented, never printed
        async with http.get(f"{base_url}/owa/", allow_redirects=False, headers={"Host": "mail.corp.example"}) as r:
            assert r.status == 302
            assert r.headers["Location"].startswith("https://mail.corp.example/owa/auth/logon.aspx?url=")
        async with http.get(f"{base_url}/owa/healthcheck.htm") as r:
            assert await r.text() == "200 OK\r\nSIMCAS01.sim.local"


async def test_self_signed_prints_a_ca_that_an_https_client_trusts() -> None:
    async with sim_owa("--self-signed", "--host", "webmail.corp.example") as (base_url, lines):
        assert base_url.startswith("https://127.0.0.1:")
        ca_lines = [line for line in lines if line.startswith("CA certificate: ")]
        assert len(ca_lines) == 1
        ca_path = Path(ca_lines[0].removeprefix("CA certificate: "))
        assert ca_path.is_file()
        context = ssl.create_default_context(cafile=str(ca_path))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            async with http.get(f"{base_url}/owa/healthcheck.htm") as r:
                assert r.status == 200
            # The certificate also carries the mail host name; the simulator records the SNI asked for.
            async with http.get(f"{base_url}/owa/auth/logon.aspx", server_hostname="webmail.corp.example",
                                headers={"Host": "webmail.corp.example"}) as r:
                assert r.status == 200
            async with http.get(f"{base_url}/_sim/requests") as r:
                records = (await r.json())["requests"]
            assert [(rec["tls"], rec["sni"]) for rec in records] == [(True, None), (True, "webmail.corp.example")]
            async with http.post(f"{base_url}/owa/auth.owa", allow_redirects=False, data={
                "destination": f"{base_url}/owa/", "flags": "4", "username": "CORP\\carol", "password": "CarolPass1!",
            }) as r:
                assert r.status == 302
                assert all("; secure; HttpOnly" in c for c in r.headers.getall("Set-Cookie"))
        untrusting = ssl.create_default_context()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=untrusting)) as http:
            try:
                async with http.get(f"{base_url}/owa/healthcheck.htm"):
                    raise AssertionError("a client without the CA must not trust the simulator")
            except aiohttp.ClientConnectorCertificateError:
                pass
    assert not ca_path.exists(), "the throwaway CA is removed when the simulator stops"


async def test_bad_arguments_exit_with_a_clear_message() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "sim", "owa", "--listen", "127.0.0.1:0", "--self-signed",
        "--tls-cert", "x.pem", "--tls-key", "y.pem",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)
    assert process.returncode == 2
    assert b"choose --self-signed or --tls-cert/--tls-key" in stderr
