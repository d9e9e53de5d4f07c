"""`monosign-gateway explain`: its output for a file, for the environment, and for bad input; and
`check`'s verdict on GATEWAY_CONFIG_FILE."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.commands.check import Mark, config_file_results
from gateway.settings import SettingsError, load_settings
from tests.settings_env import with_required_settings, without_settings

CONFIG = """\
sites:
  - name: mail
    hosts: [mail.example.com]
    upstream: https://exchange01.corp.example
    profile: exchange
  - name: wiki
    hosts: [wiki.example.com]
    upstream: http://10.0.0.5:8080
    profile: passthrough
    rules:
      - { paths: ["/health"], methods: [GET, HEAD], action: bypass }
      - { paths: ["/admin"], groups: [wiki-admins], action: two_factor }
      - { paths: ["/admin"], action: deny }
      - { networks: ["10.0.0.0/8"], action: one_factor }
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    without_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return path


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["explain", *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_a_rule_decides_and_the_earlier_ones_say_why_not(config_file: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_CONFIG_FILE", str(config_file))
    status, out = explain(capsys, "--host", "wiki.example.com", "--method", "POST", "--path", "/admin/x",
                          "--ip", "10.1.2.3", "--user", "alice", "--groups", "a,b")
    assert status == 0
    digest = out.splitlines()[0].rpartition(" ")[2]
    assert len(digest) == 12
    assert out == textwrap.dedent(f"""\
        configuration: {config_file}; digest {digest}
        request: POST /admin/x from 10.1.2.3, user alice, groups a, b
        site: wiki (wiki.example.com: one of its hosts); profile passthrough, upstream http://10.0.0.5:8080
        path: /admin/x (canonical, lower-case; the query is not matched)
        rules[0] {{paths: [/health], methods: [GET, HEAD], action: bypass}}
            no match: path /admin/x is not under /health; method POST is not in GET, HEAD
        rules[1] {{paths: [/admin], groups: [wiki-admins], action: two_factor}}
            no match: user alice is not group wiki-admins
        rules[2] {{paths: [/admin], action: deny}}
            matches: path /admin/x is under /admin
        decision: deny by rules[2]: refused; nothing is forwarded
        """)


@pytest.mark.parametrize(("args", "last_line"), [
    (["--path", "/ADMIN/%78", "--user", "bob", "--groups", "Wiki-Admins"],
     "decision: two_factor by rules[1]: forwarded once the user has passed the second factor"),
    (["--path", "/admin"],
     "decision: sign in first: rules[1] names users or groups, so it is decided once the user is known "
     "(run again with --user and --groups)"),
    (["--path", "/health?verbose=1", "--method", "head"],
     "decision: bypass by rules[0]: forwarded without a gateway sign-in"),
    (["--path", "/docs", "--ip", "10.9.9.9"],
     "decision: one_factor by rules[3]: forwarded once the user is signed in (first factor)"),
    (["--path", "/docs", "--ip", "192.0.2.1"],
     "decision: deny: no rule matched (4 tried), and no match means deny"),
    (["--path", "/docs"], "decision: deny: no rule matched (4 tried), and no match means deny"),
    (["--path", "/admin/..%2f"], "path: refused with 400 before any rule (encoded slash)"),
    (["--path", "/_gateway/mfa"], "decision: the gateway's own pages (/_gateway/): no rule applies"),
])
def test_decisions(config_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], last_line: str) -> None:
    status, out = explain(capsys, "--config", str(config_file), "--host", "WIKI.example.com:8443", *args)
    assert status == 0
    assert out.splitlines()[-1] == last_line


def test_unknown_and_invalid_hosts(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = explain(capsys, "--config", str(config_file), "--host", "elsewhere.example.com", "--path", "/")
    assert out.splitlines()[-1] == ("host: elsewhere.example.com: no site lists it and there is no default_site: "
                                    "refused with 421")
    _, out = explain(capsys, "--config", str(config_file), "--host", "bad host", "--path", "/")
    assert out.splitlines()[-1] == "host: 'bad host' is not a host name: refused with 400 before any site"
    config_file.write_text(CONFIG + "default_site: mail\n")
    _, out = explain(capsys, "--config", str(config_file), "--host", "elsewhere.example.com", "--path", "/owa/",
                     "--method", "GET")
    assert "site: mail (elsewhere.example.com: no site lists it: the default_site)" in out
    assert "route class: owa-app" in out
    assert out.splitlines()[-1] == ("decision: two_factor by rules[1]: forwarded once the user has passed the "
                                    "second factor")


def test_the_environments_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    with_required_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_POLICY_POWERSHELL", "allow")
    monkeypatch.setenv("GATEWAY_POLICY_POWERSHELL_USERS", "CORP\\admin")
    status, out = explain(capsys, "--host", "mail.example.com", "--path", "/PowerShell", "--method", "POST",
                          "--ip", "10.0.0.1")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("configuration: the environment's one exchange site (no GATEWAY_CONFIG_FILE)")
    assert lines[2].startswith("site: exchange (mail.example.com: one of its hosts); profile exchange")
    assert "route class: powershell" in lines
    assert lines[-1].startswith("decision: sign in first: rules[4]")
    _, out = explain(capsys, "--host", "mail.example.com", "--path", "/PowerShell", "--user", "corp\\admin")
    assert out.splitlines()[-1].startswith("decision: pinned by rules[4]")


def test_a_bad_file_is_reported_with_lines(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file.write_text(CONFIG.replace('["10.0.0.0/8"]', '["10.0.0.0/8", "intranet"]')
                           .replace("action: deny", "action: block"))
    status, out = explain(capsys, "--config", str(config_file), "--host", "wiki.example.com", "--path", "/")
    assert status == 1
    assert out.splitlines() == [
        f"{config_file}:13: sites[1].rules[2].action: input should be 'deny', 'bypass', 'one_factor', 'two_factor' "
        "or 'pinned'",
        f"{config_file}:14: sites[1].rules[3].networks[1]: not a CIDR (e.g. 10.0.0.0/8 or 2001:db8::/32) or IP address",
    ]


def test_bad_options(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert explain(capsys, "--config", str(config_file), "--host", "w", "--path", "/", "--groups", "a") == (
        2, "--groups needs --user\n")
    status, out = explain(capsys, "--config", str(config_file), "--host", "w", "--path", "/", "--user", "a\\b\\c")
    assert (status, out) == (2, "--user: malformed username\n")


def test_check_validates_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_required_settings(monkeypatch)
    monkeypatch.setenv("GATEWAY_CONFIG_FILE", str(config_file))
    # serve needs the file's Exchange site to be the environment's (docs/sites.md, "What serve does today").
    unlike = config_file_results(load_settings(env_file=None))
    assert [result.mark for result in unlike] == [Mark.FAIL, Mark.FAIL]
    assert "sites[0].upstream" in unlike[0].title
    monkeypatch.setenv("GATEWAY_UPSTREAM_URL", "https://exchange01.corp.example")
    (result,) = config_file_results(load_settings(env_file=None))
    assert result.mark is Mark.OK
    assert result.title.startswith(f"config file: {config_file} is valid: 2 site(s), 11 rule(s), digest ")
    config_file.write_text(CONFIG.replace("profile: passthrough", "profile: forms"))
    results = config_file_results(load_settings(env_file=None))
    assert [result.mark for result in results] == [Mark.FAIL, Mark.FAIL]
    assert results[0].title == (f"config file: {config_file}:9: sites[1].profile: the 'forms' profile is reserved "
                                "for a later version; use exchange, passthrough or portal")
    monkeypatch.delenv("GATEWAY_CONFIG_FILE")
    assert config_file_results(load_settings(env_file=None)) == []


def test_the_setting_names_a_readable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_required_settings(monkeypatch)
    monkeypatch.setenv("GATEWAY_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError) as raised:
        load_settings(env_file=None)
    assert raised.value.problems == [f"GATEWAY_CONFIG_FILE: no readable file at {str(tmp_path / 'missing.yaml')!r}"]


def test_without_a_file_the_settings_must_be_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with_required_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_UPSTREAM_URL")
    status, out = explain(capsys, "--host", "mail.example.com", "--path", "/owa/")
    assert (status, out) == (1, "settings: GATEWAY_UPSTREAM_URL: required but not set\n")
    # GATEWAY_CONFIG_FILE in the .env file is honoured too.
    (tmp_path / "gateway.yaml").write_text(CONFIG)
    (tmp_path / ".env").write_text(
        f"GATEWAY_UPSTREAM_URL=http://127.0.0.1:1\nGATEWAY_CONFIG_FILE={tmp_path / 'gateway.yaml'}\n")
    status, out = explain(capsys, "--host", "wiki.example.com", "--path", "/health")
    assert status == 0
    assert out.splitlines()[0].startswith(f"configuration: {tmp_path / 'gateway.yaml'}; digest ")
