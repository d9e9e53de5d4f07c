"""`monosign-gateway check` with a configuration file: what `serve` needs of it, and every site's upstream."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import trustme

from gateway.commands.check import Mark, check_site_upstreams, config_file_results
from gateway.sim.app.server import running_app_sim
from gateway.sim.monosign import MonosignSimulator
from gateway.sim.monosign_state import MonosignSimState
from gateway.sim.monosign_users import demo_users
from tests.proxy.support import gateway_settings
from tests.sites.support import config_text
from tests.test_check import KEY, SECRET, base_env, run_check, serve_upstream


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_check_reaches_every_passthrough_site_s_upstream(tmp_path: Path) -> None:
    async with running_app_sim() as app:
        data = json.loads(config_text("http://127.0.0.1:1", app.base_url))
        dead = f"http://127.0.0.1:{closed_port()}"
        data["sites"].append({"name": "gone", "hosts": ["gone.example.test"], "upstream": dead,
                              "profile": "passthrough", "rules": [{"action": "bypass"}]})
        path = tmp_path / "gateway.yaml"
        path.write_text(json.dumps(data), encoding="utf-8")
        settings = gateway_settings("http://127.0.0.1:1", gateway_config_file=path)
        results = await check_site_upstreams(settings)
        assert [(result.mark, result.title.split(":")[0]) for result in results] == [
            (Mark.OK, "site intranet"), (Mark.FAIL, "site gone")]
        assert app.state.requests == 1
        assert [result.mark for result in config_file_results(settings)] == [Mark.OK]


def two_exchange_sites(path: Path) -> None:
    data = json.loads(config_text("http://127.0.0.1:1", "http://127.0.0.1:2"))
    data["sites"].append({"name": "mail2", "hosts": ["mail2.example.test"], "upstream": "http://127.0.0.1:4",
                          "profile": "exchange"})
    path.write_text(json.dumps(data), encoding="utf-8")


async def test_check_says_when_serve_cannot_use_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    two_exchange_sites(path)
    results = config_file_results(gateway_settings("http://127.0.0.1:3", gateway_config_file=path))
    assert [result.mark for result in results] == [Mark.FAIL, Mark.FAIL]
    assert "sites[2].profile: only one exchange site is served for now" in results[0].title
    assert await check_site_upstreams(gateway_settings("http://127.0.0.1:3")) == []


async def test_the_check_command_reaches_every_site_and_names_the_one_that_is_down(tmp_path: Path) -> None:
    """The whole command, as operators run it: a real server behind every site (one over TLS, trusted
    through GATEWAY_UPSTREAM_CA_FILE written in the file's settings), and one site whose upstream is down."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    async with (MonosignSimulator(MonosignSimState(demo_users(), api_key=KEY, api_secret=SECRET)) as monosign,
                running_app_sim() as intranet):
        exchange, exchange_url = await serve_upstream(200, context)
        secure, secure_url = await serve_upstream(404, context)  # any HTTP answer is reachable
        try:
            dead = f"http://127.0.0.1:{closed_port()}"
            config = {
                "sites": [
                    {"name": "mail", "hosts": ["mail.example.com"], "upstream": exchange_url, "profile": "exchange"},
                    *({"name": name, "hosts": [f"{name}.example.test"], "upstream": url, "profile": "passthrough",
                       "rules": [{"action": "bypass"}]}
                      for name, url in (("intranet", intranet.base_url), ("secure", secure_url), ("gone", dead))),
                ],
                "settings": {"MONOSIGN_API_SECRET": SECRET, "GATEWAY_UPSTREAM_CA_FILE": "ca.pem"},
            }
            (tmp_path / "gateway.yaml").write_text(json.dumps(config), encoding="utf-8")
            env = base_env(monosign.url, exchange_url)
            del env["MONOSIGN_API_SECRET"]
            env["GATEWAY_CONFIG_FILE"] = str(tmp_path / "gateway.yaml")
            result = await run_check(env, tmp_path)
        finally:
            await exchange.cleanup()
            await secure.cleanup()
    lines = result.out.splitlines()
    assert result.code == 1, result.out
    assert [line for line in lines if line.startswith("✗")] == [
        f"✗ site gone: upstream not reachable (connect) at {dead}"]
    assert lines[-1] == "1 check failed."
    assert f"✓ site intranet: upstream {intranet.base_url} answers" in lines
    assert f"✓ site secure: upstream {secure_url} answers" in lines
    assert "✓ upstream TLS: the certificate of 127.0.0.1 is valid" in result.out
    assert "! config file: the secret MONOSIGN_API_SECRET is written in the file itself" in lines
    assert intranet.state.requests == 1
    assert SECRET not in result.out


async def test_check_reaches_the_exchange_site_s_own_upstream(tmp_path: Path) -> None:
    async with running_app_sim() as app:
        path = tmp_path / "gateway.yaml"
        path.write_text(config_text(app.base_url, app.base_url), encoding="utf-8")
        results = await check_site_upstreams(gateway_settings("http://127.0.0.1:1", gateway_config_file=path))
        assert [(result.mark, result.title.split(":")[0]) for result in results] == [
            (Mark.OK, "site mail"), (Mark.OK, "site intranet")]
        # The one GATEWAY_UPSTREAM_URL names is reached by check's own upstream line, not twice.
        results = await check_site_upstreams(gateway_settings(app.base_url, gateway_config_file=path))
        assert [result.title.split(":")[0] for result in results] == ["site intranet"]
