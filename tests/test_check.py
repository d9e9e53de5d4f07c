"""`monosign-gateway check` as operators run it: a subprocess against real servers on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from gateway.commands.check import SENTINEL_USER, CheckResult, Mark, monosign_key_result, summary
from gateway.monosign import InvalidApplicationKey, MonosignUnreachable, UserNotFound
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import FaultMode, MonosignSimState
from gateway.sim.monosign_users import demo_users

KEY, SECRET = "check-app-id", "check-app-secret-5be1"


@dataclass
class Upstream:
    url: str
    status: int = 200


@dataclass
class Result:
    code: int
    out: str


@pytest.fixture
async def sim() -> AsyncIterator[MonosignSimulator]:
    async with MonosignSimulator(MonosignSimState(demo_users(), api_key=KEY, api_secret=SECRET)) as simulator:
        yield simulator


async def serve_upstream(status: int, ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, str]:
    async def logon(request: web.Request) -> web.Response:
        if status in (301, 302):
            raise web.HTTPFound("/owa/auth/logon.aspx?replaceCurrent=1")
        return web.Response(status=status, text="<html>Outlook</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/owa/auth/logon.aspx", logon)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    runner, url = await serve_upstream(200)
    yield url
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env(sim_url: str, upstream_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MONOSIGN_", "GATEWAY_"))}
    env.update({
        "MONOSIGN_API_URL": sim_url, "MONOSIGN_API_KEY": KEY, "MONOSIGN_API_SECRET": SECRET,
        "MONOSIGN_TIMEOUT": "2", "MONOSIGN_CONNECT_TIMEOUT": "1",
        "GATEWAY_PUBLIC_URL": "https://mail.example.com", "GATEWAY_UPSTREAM_URL": upstream_url,
        "GATEWAY_UPSTREAM_CONNECT_TIMEOUT": "2", "PYTHONIOENCODING": "utf-8",
    })
    return env


async def run_check(env: dict[str, str], cwd: Path, *args: str) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "check", *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode("utf-8"))


async def test_good_setup_passes(sim: MonosignSimulator, upstream: str, tmp_path: Path) -> None:
    result = await run_check(base_env(sim.url, upstream), tmp_path, "--user", "CORP\\alice")
    assert result.code == 0, result.out
    lines = result.out.splitlines()
    assert "✓ settings: valid (read from the environment)" in lines
    assert f"✓ Monosign API at {sim.url} answers and accepts the key pair" in lines
    assert any(line.startswith("✓ Monosign user 'CORP\\\\alice': found as alice <alice@corp.example>")
               and line.endswith("methods: Push, Totp") for line in lines), result.out
    assert any(line.startswith("✓ upstream TCP: 127.0.0.1:") for line in lines)
    assert "✓ upstream GET /owa/auth/logon.aspx: 200" in lines
    assert any(line.startswith("! upstream is plain http://") for line in lines)  # a warning, not a failure
    assert "Extended Protection" in result.out
    assert lines[-1] == "All checks passed."
    # The key pair check used a sentinel name, then the user; nothing else.
    assert [call["user"] for call in sim.state.calls] == [SENTINEL_USER, "CORP\\alice"]
    assert SECRET not in result.out


async def test_env_file_option(sim: MonosignSimulator, upstream: str, tmp_path: Path) -> None:
    env = base_env(sim.url, upstream)
    settings_file = tmp_path / "gateway.env"
    settings_file.write_text(f"MONOSIGN_API_SECRET={SECRET}\nGATEWAY_UPSTREAM_URL={upstream}\n")
    del env["MONOSIGN_API_SECRET"]
    del env["GATEWAY_UPSTREAM_URL"]
    result = await run_check(env, tmp_path, "--env-file", str(settings_file))
    assert result.code == 0, result.out
    assert f"✓ settings: valid (read from {settings_file} and the environment)" in result.out
    missing = await run_check(env, tmp_path, "--env-file", str(tmp_path / "nope.env"))
    assert missing.code == 1
    assert "no such file" in missing.out


async def test_bad_settings_one_line_each(tmp_path: Path) -> None:
    env = base_env("http://127.0.0.1:1", "http://127.0.0.1:1")
    del env["MONOSIGN_API_URL"]
    env["GATEWAY_LISTEN"] = "8080"
    result = await run_check(env, tmp_path)
    assert result.code == 1
    assert "✗ settings: MONOSIGN_API_URL: required but not set" in result.out
    assert "✗ settings: GATEWAY_LISTEN: expected HOST:PORT" in result.out
    assert "nothing else was checked" in result.out


async def test_the_count_is_the_number_of_problems_listed(tmp_path: Path) -> None:
    env = base_env("http://127.0.0.1:1", "http://127.0.0.1:1")
    required = ("MONOSIGN_API_URL", "MONOSIGN_API_KEY", "MONOSIGN_API_SECRET", "GATEWAY_PUBLIC_URL",
                "GATEWAY_UPSTREAM_URL")
    for name in required:
        del env[name]
    result = await run_check(env, tmp_path)
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if line.startswith("✗")]
    assert sorted(failed) == sorted(f"✗ settings: {name}: required but not set" for name in required)
    assert result.out.splitlines()[-1] == "5 checks failed."
    assert "nothing else was checked" in result.out

    env["MONOSIGN_API_URL"], env["MONOSIGN_API_KEY"], env["MONOSIGN_API_SECRET"] = "http://127.0.0.1:1", KEY, SECRET
    env["GATEWAY_UPSTREAM_URL"] = "http://127.0.0.1:1"
    env["GATEWAY_PUBLIC_URL"] = "https://mail.example.com/owa"
    result = await run_check(env, tmp_path)
    assert result.code == 1
    assert result.out.splitlines()[-1] == "1 check failed."


async def test_public_url_with_a_path_is_refused_with_the_reason(tmp_path: Path) -> None:
    env = base_env("http://127.0.0.1:1", "http://127.0.0.1:1")
    env["GATEWAY_PUBLIC_URL"] = "https://mail.example.com/owa"
    result = await run_check(env, tmp_path)
    assert result.code == 1
    assert ("✗ settings: GATEWAY_PUBLIC_URL: must be scheme://host[:port] with no path; "
            "got 'https://mail.example.com/owa'") in result.out.splitlines()


@pytest.mark.parametrize(
    ("marks", "line"),
    [
        ([], "All checks passed."),
        ([Mark.OK, Mark.WARN], "All checks passed."),
        ([Mark.FAIL], "1 check failed."),
        ([Mark.OK, Mark.FAIL, Mark.WARN, Mark.FAIL], "2 checks failed."),
        ([Mark.FAIL] * 5, "5 checks failed."),
    ],
)
def test_summary_counts_the_failed_lines(marks: list[Mark], line: str) -> None:
    assert summary([CheckResult(mark, "x") for mark in marks]) == line


async def test_wrong_key_pair(sim: MonosignSimulator, upstream: str, tmp_path: Path) -> None:
    env = base_env(sim.url, upstream)
    env["MONOSIGN_API_SECRET"] = "wrong-secret-3141"
    result = await run_check(env, tmp_path, "--user", "alice")
    assert result.code == 1
    assert f"✗ Monosign API at {sim.url} rejects the key pair" in result.out
    assert "code 12 Invalid Application Key" in result.out
    assert "MONOSIGN_API_KEY / MONOSIGN_API_SECRET" in result.out
    assert "Monosign user" not in result.out  # no user check on a rejected key pair
    assert "wrong-secret-3141" not in result.out


async def test_monosign_unreachable(upstream: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await run_check(base_env(url, upstream), tmp_path)
    assert result.code == 1
    assert f"✗ Monosign API at {url} cannot be reached from this host" in result.out
    assert "cause: connection refused" in result.out
    assert "firewall" in result.out
    assert "✓ upstream GET /owa/auth/logon.aspx: 200" in result.out  # the other checks still run


async def test_monosign_behind_a_failing_proxy(sim: MonosignSimulator, upstream: str, tmp_path: Path) -> None:
    await sim.set_faults(FaultMode.HTML_502)
    result = await run_check(base_env(sim.url, upstream), tmp_path)
    assert result.code == 1
    assert "HTTP 502 without a Monosign envelope" in result.out
    assert "a proxy or load balancer answered instead of Monosign" in result.out


@pytest.mark.parametrize(
    ("user", "expected", "fix"),
    [
        ("carol", "✗ Monosign user 'carol' is not assigned to the application", "assign the user or their group"),
        ("nobody", "✗ Monosign has no user 'nobody'", "MONOSIGN_USER_SOURCE"),
    ],
)
async def test_user_problems(sim: MonosignSimulator, upstream: str, tmp_path: Path, user: str, expected: str,
                             fix: str) -> None:
    result = await run_check(base_env(sim.url, upstream), tmp_path, "--user", user)
    assert result.code == 1
    assert expected in result.out
    assert fix in result.out


async def test_user_in_exceptions_is_a_warning(sim: MonosignSimulator, upstream: str, tmp_path: Path) -> None:
    env = base_env(sim.url, upstream)
    env["MONOSIGN_USER_EXCEPTIONS"] = "bob@corp.example"
    result = await run_check(env, tmp_path, "--user", "bob")
    assert result.code == 0, result.out
    assert "! 'bob' is in MONOSIGN_USER_EXCEPTIONS: no second factor" in result.out


async def test_upstream_refused(sim: MonosignSimulator, tmp_path: Path) -> None:
    port = free_port()
    result = await run_check(base_env(sim.url, f"http://127.0.0.1:{port}"), tmp_path)
    assert result.code == 1
    assert f"✗ upstream TCP: 127.0.0.1:{port} refuses connections" in result.out
    assert "that Exchange (IIS) listens there" in result.out


@pytest.mark.parametrize(("status", "code", "line"), [
    (404, 1, "✗ upstream GET /owa/auth/logon.aspx: HTTP 404"),
    (302, 0, "✓ upstream GET /owa/auth/logon.aspx: 302 to /owa/auth/logon.aspx?replaceCurrent=1"),
])
async def test_upstream_logon_page(sim: MonosignSimulator, tmp_path: Path, status: int, code: int, line: str) -> None:
    runner, url = await serve_upstream(status)
    try:
        result = await run_check(base_env(sim.url, url), tmp_path)
    finally:
        await runner.cleanup()
    assert result.code == code, result.out
    assert line in result.out


async def test_upstream_tls(sim: MonosignSimulator, tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    runner, url = await serve_upstream(200, context)
    try:
        untrusted = await run_check(base_env(sim.url, url), tmp_path)
        env = base_env(sim.url, url)
        env["GATEWAY_UPSTREAM_CA_FILE"] = str(ca_file)
        trusted = await run_check(env, tmp_path)
    finally:
        await runner.cleanup()
    assert untrusted.code == 1
    assert "✗ upstream TLS: the certificate of 127.0.0.1 is not accepted" in untrusted.out
    assert "GATEWAY_UPSTREAM_CA_FILE" in untrusted.out
    assert trusted.code == 0, trusted.out
    assert "✓ upstream TLS: the certificate of 127.0.0.1 is valid (expires " in trusted.out
    assert "plain http" not in trusted.out


@pytest.mark.parametrize(
    ("error", "mark", "words"),
    [
        (None, Mark.OK, "accepts the key pair"),
        (UserNotFound("Code 21"), Mark.OK, "accepts the key pair"),
        (InvalidApplicationKey("Code 12"), Mark.FAIL, "rejects the key pair"),
        (MonosignUnreachable("timed out", reason="timeout"), Mark.FAIL, "cannot be reached"),
    ],
)
def test_key_result_table(error: Exception | None, mark: Mark, words: str) -> None:
    result = monosign_key_result("https://m.example", error)  # type: ignore[arg-type]
    assert result.mark is mark
    assert words in result.title


def test_every_reason_has_its_own_fix() -> None:
    from gateway.monosign.errors import UNREACHABLE_HINTS

    hints = [MonosignUnreachable("x", reason=reason).operator_hint for reason in UNREACHABLE_HINTS]
    assert len(set(hints)) == len(UNREACHABLE_HINTS)
    assert MonosignUnreachable("x", reason="connect").operator_hint == MonosignUnreachable.operator_hint
