"""`serve` with GATEWAY_CONFIG_FILE: an Exchange site and a passthrough site on one listener, chosen by
Host; the passthrough site's rules decided on the canonical path; unknown hosts answered 421."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config.loader import ConfigError
from gateway.pages.i18n import load_translations
from gateway.policy.identity_headers import header_key
from gateway.profiles.passthrough import SIGN_IN_NOT_AVAILABLE
from gateway.server import Gateway
from tests.proxy.support import PUBLIC_HOST, gateway_settings, raw_exchange, run_upstream, status_codes
from tests.sites.support import APP_HOST, config_text, request, two_sites

TEXTS = load_translations()["en"]


def body_of(answer: bytes) -> str:
    return answer.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


async def test_each_host_reaches_its_own_site(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites:
        port = sites.gateway.port
        # The Exchange site: today's pipeline (the root redirects to OWA, OWA's public files are forwarded).
        assert status_codes(await raw_exchange(port, request("/", PUBLIC_HOST))) == [302]
        answer = await raw_exchange(port, request("/owa/auth/15.2/themes/resources/logon.css", PUBLIC_HOST))
        assert status_codes(answer) == [200]
        assert [seen.raw_path for seen in sites.exchange[1].seen] == ["/owa/auth/15.2/themes/resources/logon.css"]

        # The passthrough site, on any port of its host: the application answers.
        for host in (APP_HOST, f"{APP_HOST}:8443", APP_HOST.upper()):
            answer = await raw_exchange(port, request("/hello", host))
            assert status_codes(answer) == [200], host
            assert "an application behind Monosign Gateway" in body_of(answer)
        assert list(sites.app.state.paths) == ["/hello"] * 3
        assert len(sites.exchange[1].seen) == 1  # nothing for the application went to Exchange

        # /_gateway/ is the gateway's own on every site, never the application's.
        answer = await raw_exchange(port, request("/_gateway/healthz", APP_HOST))
        assert status_codes(answer) == [200]
        assert json.loads(body_of(answer))["status"] == "ok"
        assert list(sites.app.state.paths) == ["/hello"] * 3


@pytest.mark.parametrize("host", ["unknown.example.test", "intranet.example.test.evil", "example.test",
                                  "127.0.0.1", "[::1]:8080", "mail.example.test.evil:80", "xn--intranet.example.test"])
async def test_a_host_no_site_lists_is_misdirected(tmp_path: Path, host: str) -> None:
    async with two_sites(tmp_path) as sites:
        answer = await raw_exchange(sites.gateway.port, request("/hello", host))
        assert status_codes(answer) == [421]
        assert "unknown.example" not in body_of(answer)
        assert list(sites.app.state.paths) == []
        assert sites.exchange[1].seen == []


# Spellings of /admin (denied) that must never reach the application: each is refused at the edge
# (400) or decided as /admin (403).
DENIED_SPELLINGS = [
    "/admin", "/admin/", "/admin/users", "/ADMIN", "/Admin/Users", "/%61dmin", "/%61%64%6d%69%6e/",
    "/%41DMIN", "/admin;x=1", "/admin;/users", "/admin/;x", "/./admin", "/x/../admin", "//admin",
    "/admin%2fusers", "/admin%2Fusers", "/%2e/admin", "/admin/%2e%2e/admin", "/admin%00", "/admin\\..\\",
    "/adm%69n?x=1", "/admin#frag", "/%2561dmin", "/admin%20", "/admin.", "/ADMIN;JSESSIONID=1",
]


@pytest.mark.parametrize("target", DENIED_SPELLINGS)
async def test_a_denied_path_never_reaches_the_application_in_any_spelling(tmp_path: Path, target: str) -> None:
    async with two_sites(tmp_path) as sites:
        answer = await raw_exchange(sites.gateway.port, request(target, APP_HOST))
        assert status_codes(answer) in ([403], [400]), answer[:200]
        assert list(sites.app.state.paths) == []
        assert sites.exchange[1].seen == []


async def test_rules_deny_and_sign_in_answer_403_with_their_reason(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites:
        port = sites.gateway.port
        denied = await raw_exchange(port, request("/admin/", APP_HOST, "Accept: text/html"))
        assert status_codes(denied) == [403]
        assert TEXTS["error.403.title"] in body_of(denied)
        assert SIGN_IN_NOT_AVAILABLE not in body_of(denied)
        for target in ("/private", "/private/x", "/PRIVATE"):
            answer = await raw_exchange(port, request(target, APP_HOST))
            assert status_codes(answer) == [403], target
            assert SIGN_IN_NOT_AVAILABLE in body_of(answer)
        # A request the rules refuse is not invited to send its body.
        answer = await raw_exchange(port, request("/admin", APP_HOST, "Content-Length: 5", "Expect: 100-continue",
                                                  method="POST"))
        assert status_codes(answer) == [403]
        assert list(sites.app.state.paths) == []


# Identity headers in spellings upstream frameworks read as the real ones: none reaches the application.
IDENTITY_SPELLINGS = [
    "Remote-User", "remote-user", "REMOTE-USER", "Remote_User", "remote_user", "RemoteUser", "Remote.User",
    "Remote-Email", "Remote_Groups", "Remote-Name", "X-Monosign-Assertion", "x_monosign_assertion",
]


async def test_client_identity_headers_are_stripped_in_every_spelling(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites:
        sent = [f"{name}: forged" for name in IDENTITY_SPELLINGS]
        answer = await raw_exchange(sites.gateway.port, request("/_app/echo", APP_HOST, *sent, "X-Kept: yes"))
        assert status_codes(answer) == [200]
        headers = json.loads(body_of(answer))["headers"]
        forbidden = {header_key(name) for name in IDENTITY_SPELLINGS}
        assert [name for name, _ in headers if header_key(name) in forbidden] == []
        assert ["X-Kept", "yes"] in headers
        assert not any(value == "forged" for _, value in headers)


async def test_a_default_site_takes_unknown_hosts(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites:
        path = sites.config_file
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**data, "default_site": "intranet"}), encoding="utf-8")
        gateway = Gateway(gateway_settings(sites.exchange[0].url, gateway_config_file=path))
        await gateway.start()
        try:
            port = int(gateway.main_addresses[0].rsplit(":", 1)[1])
            answer = await raw_exchange(port, request("/hello", "elsewhere.example.test"))
            assert status_codes(answer) == [200]
            assert status_codes(await raw_exchange(port, request("/hello", "bad host"))) == [400]
        finally:
            await gateway.stop()
        assert list(sites.app.state.paths) == ["/hello"]


async def test_a_second_exchange_site_is_refused(tmp_path: Path) -> None:
    async with run_upstream() as exchange:
        path = tmp_path / "gateway.yaml"
        data = json.loads(config_text(exchange[0].url, "http://127.0.0.1:2"))
        data["sites"].append({"name": "mail2", "hosts": ["mail2.example.test"], "upstream": exchange[0].url,
                              "profile": "exchange"})
        path.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(ConfigError, match="only one exchange site"):
            Gateway(gateway_settings(exchange[0].url, gateway_config_file=path))


def test_serve_names_the_file_s_problems_before_starting(tmp_path: Path) -> None:
    from gateway.commands.serve import config_file_problems

    path = tmp_path / "gateway.yaml"
    path.write_text(config_text("http://127.0.0.1:1", "http://127.0.0.1:2"), encoding="utf-8")
    assert config_file_problems(gateway_settings("http://127.0.0.1:1", gateway_config_file=path)) == []
    # The exchange site's own upstream, not GATEWAY_UPSTREAM_URL's, is served: nothing to say.
    assert config_file_problems(gateway_settings("http://127.0.0.1:3", gateway_config_file=path)) == []
    data = json.loads(path.read_text(encoding="utf-8"))
    data["sites"][0]["rules"] = [{"route_classes": ["windows-auth"], "action": "two_factor"}]
    path.write_text(json.dumps(data), encoding="utf-8")
    problems = config_file_problems(gateway_settings("http://127.0.0.1:3", gateway_config_file=path))
    assert len(problems) == 1
    assert "sites[0].rules[0].action: two_factor cannot serve windows-auth" in problems[0]
    assert config_file_problems(gateway_settings("http://127.0.0.1:3")) == []


async def test_the_gateway_s_cookies_never_reach_a_passthrough_upstream(tmp_path: Path) -> None:
    async with two_sites(tmp_path) as sites:
        cookies = ("Cookie: app=1; msgw=s; MSGW-device=d; __Host-msgw=x; msgw-signin=y; msgwx=kept; "
                   "__Secure-msgw-group-corp=g; msgw-group-corp=h; __SECURE-MSGW-GROUP-x=i")
        answer = await raw_exchange(sites.gateway.port, request("/_app/echo", APP_HOST, cookies))
        assert status_codes(answer) == [200]
        headers = json.loads(body_of(answer))["headers"]
        assert [value for name, value in headers if name.lower() == "cookie"] == ["app=1; msgwx=kept"]
