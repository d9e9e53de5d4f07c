"""`import-webconfig`: the IIS module's web.config read safely, converted faithfully, quoted exactly."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.migration.envfile import EnvFormat, docker_env_value, quote_env_value, render_env
from gateway.migration.iis_settings import EnvSetting, is_monosign_module, migrate, other_mfa_vendor
from gateway.migration.webconfig import (
    CLASSIC_MODULES,
    INTEGRATED_MODULES,
    MAX_WEBCONFIG_BYTES,
    ModuleEntry,
    WebConfigError,
    parse_webconfig,
)
from gateway.settings import load_settings
from tests.settings_env import without_settings

DATA = Path(__file__).resolve().parent / "data" / "webconfig"
ROOT = Path(__file__).resolve().parent.parent

OWA_SETTINGS = {
    "MONOSIGN_API_URL": "https://monosign-api.corp.example/",
    "MONOSIGN_API_KEY": "3f2b8c1e-7a4d-4e8b-9c2a-1d5e6f7a8b9c",
    "MONOSIGN_API_SECRET": "9b8a7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
    "MONOSIGN_DEBUG_MODE": "False",
    "MONOSIGN_LOG_PATH": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Logging\\MonoSign\\",
    "MONOSIGN_USER_EXCEPTIONS": "CORP\\svc-scanner;healthmailbox01@corp.example",
    "MONOSIGN_USER_SOURCE": "corp.example",
}


def monosign_settings(name: str) -> dict[str, str]:
    config = parse_webconfig((DATA / name).read_bytes())
    return {key: value for key, value in config.app_settings.items() if key.startswith("MONOSIGN_")}


# --- Parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "user_source"),
    [
        ("owa-monosign.config", "corp.example"),
        ("owa-bom.config", "şirket.example"),  # UTF-8 with a byte-order mark
        ("owa-utf16.config", "Zürich-AD"),  # UTF-16 little-endian, CRLF, as Notepad saves it
    ],
)
def test_reads_every_encoding_exchange_files_come_in(name: str, user_source: str) -> None:
    assert monosign_settings(name) == {**OWA_SETTINGS, "MONOSIGN_USER_SOURCE": user_source}
    config = parse_webconfig((DATA / name).read_bytes())
    assert [m.name for m in config.modules] == ["MonoSignMSExchange", "ProxyModule", "ExchangeCookieModule"]
    assert config.notes == ()


def test_clear_remove_and_location_are_applied_in_document_order() -> None:
    config = parse_webconfig((DATA / "owa-clear-remove-location.config").read_bytes())
    assert monosign_settings("owa-clear-remove-location.config") == {
        # <clear/> dropped the stale URL and DEBUG_MODE; keys compare case-insensitively.
        "MONOSIGN_API_URL": "https://monosign.corp.example/",
        "MONOSIGN_API_KEY": "key with spaces # and a hash",
        "MONOSIGN_API_SECRET": "it's $ecret\\\\with`tick",
        "MONOSIGN_USER_EXCEPTIONS": 'CORP\\alice, "Bob Smith"@corp.example; O\'Brien@corp.example',
        # <remove key="Monosign_User_Source"/> removed MONOSIGN_USER_SOURCE; <location path="."> applies.
        "MONOSIGN_LOG_PATH": "/var/log/monosign",
    }
    assert [m.name for m in config.modules] == ["MonoSignMSExchange"]
    # <location path="auth"> is for that path only: reported, not applied.
    assert config.notes == (
        "<location path='auth'> sets MONOSIGN_DEBUG_MODE for that path only; not imported",
    )


def test_namespaced_configuration_and_comments() -> None:
    config = parse_webconfig((DATA / "owa-comments-other-mfa.config").read_bytes())
    # The commented-out DEBUG_MODE line is a comment, not a setting.
    assert "MONOSIGN_DEBUG_MODE" not in config.app_settings
    assert config.app_settings["MONOSIGN_API_URL"] == "https://monosign.corp.example/api/"
    assert config.app_settings["RUBLON:SYSTEMTOKEN"] == "ABCDEF123456"
    assert [m.name for m in config.modules] == ["RublonOWAModule", "MFA", "MonoSignMSExchange", "PasswordResetModule"]
    # A comment that merely mentions an appSettings line is not a switched-off module.
    assert config.commented_out == ()


def test_commented_out_module_line_is_noticed() -> None:
    config = parse_webconfig((DATA / "owa-module-disabled.config").read_bytes())
    assert [m.name for m in config.modules] == ["ProxyModule"]
    assert len(config.commented_out) == 1
    assert "MonoSign.IISModule.MSExchange" in config.commented_out[0]


def test_module_lists_honour_remove_clear_and_both_pipelines() -> None:
    data = b"""<configuration>
      <system.web><httpModules>
        <add name="MonoSignClassic" type="MonoSign.IISModule.MSExchange, MonoSign.IISModule"/>
      </httpModules></system.web>
      <system.webServer><modules>
        <add name="A" type="A.Module"/><add name="B" type="B.Module"/>
        <remove name="a"/>
        <add name="C" type="C.Module"/>
      </modules></system.webServer>
      <system.webServer><modules><clear/><add name="D" type="D.Module"/></modules></system.webServer>
    </configuration>"""
    assert parse_webconfig(data).modules == (
        ModuleEntry("MonoSignClassic", "MonoSign.IISModule.MSExchange, MonoSign.IISModule", CLASSIC_MODULES),
        ModuleEntry("D", "D.Module", INTEGRATED_MODULES),
    )


def test_external_appsettings_file_is_reported() -> None:
    data = b'<configuration><appSettings file="monosign.config"><add key="X" value="1"/></appSettings></configuration>'
    config = parse_webconfig(data)
    assert config.app_settings == {"X": "1"}
    assert len(config.notes) == 1
    assert "monosign.config" in config.notes[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((DATA / "entity-expansion.config").read_bytes(), "declares a DTD or entities"),
        (b'<!DOCTYPE configuration SYSTEM "http://attacker.example/x.dtd"><configuration/>', "declares a DTD"),
        (b"<configuration><appSettings></configuration>", "not well-formed XML (line 1"),
        (b"MONOSIGN_API_URL=https://x", "not well-formed XML"),
        (b"<html><body/></html>", "the root element is <html>"),
        (b"  \n", "the file is empty"),
        (b"<configuration>" + b" " * MAX_WEBCONFIG_BYTES + b"</configuration>", "larger than"),
    ],
)
def test_refuses_what_is_not_a_safe_web_config(data: bytes, message: str) -> None:
    with pytest.raises(WebConfigError, match=None) as caught:
        parse_webconfig(data)
    assert message in str(caught.value)
    assert "root:" not in str(caught.value)  # nothing from /etc/passwd, ever


# --- Module recognition ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "type_", "monosign", "vendor"),
    [
        ("MonoSignMSExchange", "MonoSign.IISModule.MSExchange, MonoSign.IISModule", True, None),
        ("MonoSignAuthenticationModule", "MonoSign.IISModule.MonoSignAuthenticationModule", True, None),
        ("MFA", "MultiFactor.IIS.Adapter.Owa.Module, MultiFactor.IIS.Adapter", False, "MultiFactor"),
        ("RublonOWAModule", "Rublon.OWA.ECPModule, RublonOWAModule, Version=1.1.2.0", False, "Rublon"),
        ("DuoOWA", "Duo.OWA.Module, DuoOWA", False, "Duo for OWA"),
        ("ESA", "ESET.SecureAuthentication.OwaModule", False, "ESET Secure Authentication"),
        # Words that merely contain a vendor's name are not that vendor.
        ("PasswordResetModule", "Contoso.Owa.PasswordResetModule, Contoso.Owa", False, None),
        ("ProxyModule", "Microsoft.Exchange.HttpProxy.ProxyModule, Microsoft.Exchange.FrontEndHttpProxy", False, None),
    ],
)
def test_module_recognition(name: str, type_: str, monosign: bool, vendor: str | None) -> None:
    entry = ModuleEntry(name, type_, INTEGRATED_MODULES)
    assert is_monosign_module(entry) is monosign
    found = other_mfa_vendor(entry)
    assert (found is None) if vendor is None else (found is not None and found.startswith(vendor))


# --- Conversion and warnings -------------------------------------------------------------------


def migrate_files(*names: str) -> tuple[dict[str, EnvSetting], tuple[str, ...]]:
    result = migrate([(name, parse_webconfig((DATA / name).read_bytes())) for name in names])
    return {setting.name: setting for setting in result.settings}, result.warnings


def test_clean_owa_file_converts_with_one_explained_change() -> None:
    settings_, warnings = migrate_files("owa-monosign.config")
    assert {name: s.value for name, s in settings_.items()} == {
        **OWA_SETTINGS,
        "MONOSIGN_DEBUG_MODE": "false",  # .NET's False, written the gateway's way
        "MONOSIGN_API_URL": "https://monosign-api.corp.example/",
    }
    assert {name for name, s in settings_.items() if s.secret} == {"MONOSIGN_API_KEY", "MONOSIGN_API_SECRET"}
    assert [name for name, s in settings_.items() if s.disabled] == ["MONOSIGN_LOG_PATH"]
    assert len(warnings) == 1
    assert "MONOSIGN_LOG_PATH" in warnings[0]
    assert "Windows path" in warnings[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("owa-comments-other-mfa.config", [
            "another MFA module is registered: 'RublonOWAModule' (Rublon)",
            "another MFA module is registered: 'MFA' (MultiFactor",
        ]),
        ("owa-module-disabled.config", [
            "Monosign's module line is commented out",
            "MONOSIGN_TOKEN_CHECK_URL is not a setting the gateway knows; ignored",
            "MONOSIGN_API_URL: 'monosign.corp.example' is not an http:// or https:// URL",
            "MONOSIGN_API_SECRET: required, but not set",
            "MONOSIGN_DEBUG_MODE: 'maybe' is not true or false",
        ]),
        ("owa-clear-remove-location.config", [
            "<location path='auth'> sets MONOSIGN_DEBUG_MODE for that path only",
        ]),
    ],
)
def test_warnings_name_every_problem(name: str, expected: list[str]) -> None:
    _, warnings = migrate_files(name)
    assert len(warnings) == len(expected), warnings
    for fragment in expected:
        assert any(fragment in warning for warning in warnings), (fragment, warnings)


def test_module_missing_entirely() -> None:
    config = parse_webconfig(b'<configuration><appSettings><add key="MONOSIGN_API_URL" value="https://m.example"/>'
                             b"</appSettings></configuration>")
    warnings = migrate([("owa/web.config", config)]).warnings
    assert any("Monosign's module is not registered in system.webServer/modules" in w for w in warnings)
    assert any("MONOSIGN_API_KEY: required" in w for w in warnings)


def test_owa_and_ecp_merge_and_conflicts_never_show_secrets() -> None:
    settings_, warnings = migrate_files("owa-monosign.config", "ecp-monosign.config")
    assert settings_["MONOSIGN_API_SECRET"].value == OWA_SETTINGS["MONOSIGN_API_SECRET"]  # the first file wins
    assert settings_["MONOSIGN_USER_SOURCE"].value == "corp.example"
    secret_conflict = [w for w in warnings if "MONOSIGN_API_SECRET differs" in w]
    source_conflict = [w for w in warnings if "MONOSIGN_USER_SOURCE differs" in w]
    assert len(secret_conflict) == 1
    assert "00000000-1111" not in secret_conflict[0]
    assert OWA_SETTINGS["MONOSIGN_API_SECRET"] not in " ".join(warnings)
    assert len(source_conflict) == 1
    assert "'corp.example' vs 'ecp-admins'" in source_conflict[0]


# --- .env quoting: python-dotenv and a real shell read back the same value -----------------------

TRICKY_VALUES = [
    "plain", "", "with spaces", "hash # inside", "CORP\\alice", "\\\\server\\share", "ends with \\",
    "it's", 'say "hi"', "O'Brien \\ back", "$HOME", "cost: $5", "`date`", "a=b;c=d", "ünïcödé 日本",
    "\\'", "\\\"", "'", '"', "*", "~", "!bang", "semi;colon", "&&", "tab-less",
]
UNQUOTABLE = ["line\nbreak", "carriage\rreturn", "${HOME}", "it's $5", "back\\\\slash $x", "nul\x00"]


def shell_reads(lines: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Source the lines in bash (as `set -a; . ./.env` does) and return what the variables hold."""
    env_file = tmp_path / "values.env"
    env_file.write_text("".join(f"{name}={quoted}\n" for name, quoted in lines.items()), encoding="utf-8")
    script = 'set -a; . "$1"; set +a; for n in ' + " ".join(lines) + '; do printf "%s\\0" "${!n}"; done'
    out = subprocess.run(["bash", "-c", script, "bash", str(env_file)], capture_output=True, check=True,
                         env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"}).stdout
    return dict(zip(lines, out.decode("utf-8").split("\0")[:-1], strict=True))


def dotenv_reads(lines: dict[str, str]) -> dict[str, str | None]:
    text = "".join(f"{name}={quoted}\n" for name, quoted in lines.items())
    return dict(dotenv_values(stream=io.StringIO(text)))


def test_quoting_reads_back_identically_in_dotenv_and_bash(tmp_path: Path) -> None:
    quoted = {}
    for index, value in enumerate(TRICKY_VALUES):
        result = quote_env_value(value)
        assert result is not None, value
        quoted[f"V{index}"] = result
    expected = {f"V{index}": value for index, value in enumerate(TRICKY_VALUES)}
    assert dotenv_reads(quoted) == expected
    assert shell_reads(quoted, tmp_path) == expected


@pytest.mark.parametrize(
    ("value", "written"),
    [
        # Bare: also right for `docker run --env-file`, which takes everything after `=` literally.
        ("https://monosign-api.corp.example/", "https://monosign-api.corp.example/"),
        ("3f2b8c1e-7a4d-4e8b-9c2a-1d5e6f7a8b9c", "3f2b8c1e-7a4d-4e8b-9c2a-1d5e6f7a8b9c"),
        ("alice@corp.example,bob@corp.example", "alice@corp.example,bob@corp.example"),
        ("/run/secrets/monosign_api_key", "/run/secrets/monosign_api_key"),
        # Quoted: a shell or python-dotenv would change them bare.
        ("", "''"),
        ("~/secrets", "'~/secrets'"),
        ("CORP\\alice", "'CORP\\alice'"),
        ("a b", "'a b'"),
        ("x#y", "'x#y'"),
        ("Zürich", "'Zürich'"),
        ("it's", '"it\'s"'),
    ],
)
def test_bare_when_every_reader_agrees(value: str, written: str) -> None:
    assert quote_env_value(value) == written


@pytest.mark.parametrize("value", UNQUOTABLE)
def test_values_no_quoting_can_carry_are_refused(value: str) -> None:
    assert quote_env_value(value) is None


@settings(max_examples=300)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_quoting_property_dotenv(value: str) -> None:
    quoted = quote_env_value(value)
    if quoted is not None:
        assert dotenv_reads({"V": quoted}) == {"V": value}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(alphabet="ab '\"\\$`#;=!*~ü", max_size=12), min_size=1, max_size=10))
def test_quoting_property_bash(values: list[str]) -> None:
    import tempfile

    quoted = {f"V{i}": q for i, value in enumerate(values) if (q := quote_env_value(value)) is not None}
    if quoted:
        with tempfile.TemporaryDirectory() as directory:
            assert shell_reads(quoted, Path(directory)) == {k: values[int(k[1:])] for k in quoted}


def test_render_uses_file_references_and_never_writes_refused_secrets() -> None:
    settings_ = [
        EnvSetting("MONOSIGN_API_URL", "https://m.example/"),
        EnvSetting("MONOSIGN_API_KEY", "k-e-y", secret=True),
        EnvSetting("MONOSIGN_API_SECRET", "it's $ecret", secret=True),
        EnvSetting("MONOSIGN_LOG_PATH", "C:\\Logs", disabled=True, note="a Windows path"),
    ]
    text, warnings = render_env(settings_, sources=["owa/web.config"],
                                secret_files={"MONOSIGN_API_KEY": "/run/secrets/monosign_api_key"})
    assert "MONOSIGN_API_KEY_FILE=/run/secrets/monosign_api_key\n" in text
    assert "`docker run --env-file` keeps them" in text  # C:\\Logs needed quotes
    assert "k-e-y" not in text
    assert "$ecret" not in text
    assert "# MONOSIGN_API_SECRET=  (set by hand, see the warning)" in text
    assert "# a Windows path\n# MONOSIGN_LOG_PATH='C:\\Logs'\n" in text
    assert "# GATEWAY_PUBLIC_URL=https://mail.example.com" in text
    assert len(warnings) == 1
    assert warnings[0].startswith("MONOSIGN_API_SECRET:")
    assert "$ecret" not in warnings[0]


# --- --format docker: for `docker run --env-file` ---------------------------------------------------


def docker_env_file_reads(text: str) -> dict[str, str]:
    """What `docker run --env-file` makes of a file (Docker's opts/envfile.go): split at line breaks
    (a trailing CR dropped), leading whitespace trimmed, `#` lines and blank lines skipped, then
    NAME=value with the value taken literally."""
    values: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, line
        assert name, line
        assert not any(char.isspace() for char in name), line
        values[name] = value
    return values


DOCKER_VALUES = [
    "https://monosign.corp.example/", "CORP\\svc-scanner;healthmailbox01@corp.example", "C:\\Logs\\MonoSign\\",
    "it's $ecret", 'say "hi"', "key with spaces # and a hash", "${HOME}", "`id`", "'quoted'", '"double"',
    " leading and trailing ", "Zürich-AD", "a=b=c", "#not-a-comment", "\\", "",
]


def test_docker_format_writes_every_value_as_it_is() -> None:
    settings_ = [EnvSetting(f"MONOSIGN_V{index}", value) for index, value in enumerate(DOCKER_VALUES)]
    text, warnings = render_env(settings_, sources=["web.config"], env_format=EnvFormat.DOCKER)
    assert warnings == []
    read = docker_env_file_reads(text)
    assert {name: read[name] for name in read if name.startswith("MONOSIGN_")} == {
        f"MONOSIGN_V{index}": value for index, value in enumerate(DOCKER_VALUES)}
    assert "import-webconfig --format docker" in text


@pytest.mark.parametrize("value", ["line\nbreak", "carriage\rreturn", "trailing\r", "nul\x00", "tab\there",
                                   "bell\x07", "del\x7f", "\n", "two\n\nlines", "escape\x1b[31m"])
def test_docker_format_refuses_what_no_line_carries(value: str) -> None:
    assert docker_env_value(value) is None
    settings_ = [EnvSetting("MONOSIGN_API_URL", "https://m.example/"),
                 EnvSetting("MONOSIGN_API_SECRET", value, secret=True)]
    text, warnings = render_env(settings_, sources=["web.config"], env_format=EnvFormat.DOCKER)
    assert warnings == ["MONOSIGN_API_SECRET: the value has a line break or another control character, which no "
                        "`docker run --env-file` line can carry; set it by hand or use --secrets-dir"]
    assert "# MONOSIGN_API_SECRET=  (set by hand, see the warning)" in text
    assert docker_env_file_reads(text) == {"MONOSIGN_API_URL": "https://m.example/"}


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
@settings(max_examples=200, deadline=None)
def test_docker_format_property(value: str) -> None:
    written = docker_env_value(value)
    if written is None:
        assert any(ord(char) < 32 or ord(char) == 127 for char in value)
        return
    text, _ = render_env([EnvSetting("MONOSIGN_USER_SOURCE", value)], sources=["x"], env_format=EnvFormat.DOCKER)
    assert docker_env_file_reads(text)["MONOSIGN_USER_SOURCE"] == value


def test_dotenv_format_points_docker_users_at_the_docker_format() -> None:
    text, _ = render_env([EnvSetting("MONOSIGN_LOG_PATH", "C:\\Logs")], sources=["x"])
    assert "# `docker run --env-file` keeps them: for it, run again with --format docker.\n" in text


# --- The command, as operators run it ---------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONOSIGN_", "GATEWAY_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "gateway", "import-webconfig", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return without_settings(monkeypatch)


def test_cli_output_loads_into_the_gateways_settings(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    result = run_cli(str(DATA / "owa-clear-remove-location.config"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "key with spaces # and a hash" in result.stdout
    assert "$ecret" not in result.stdout + result.stderr  # refused (no quoting carries it), never echoed
    assert "MONOSIGN_API_SECRET: the value has characters" in result.stderr
    env_file = tmp_path / ".env"
    env_file.write_text(result.stdout + "MONOSIGN_API_SECRET=set-by-hand\n"
                        "GATEWAY_PUBLIC_URL=https://mail.example.com\nGATEWAY_UPSTREAM_URL=https://ex.example\n")
    loaded = load_settings(env_file=env_file)
    assert loaded.monosign_api_url == "https://monosign.corp.example"
    assert loaded.monosign_api_key.get_secret_value() == "key with spaces # and a hash"
    assert loaded.monosign_user_exceptions == ["CORP\\alice", '"Bob Smith"@corp.example', "O'Brien@corp.example"]
    assert str(loaded.monosign_log_path) == "/var/log/monosign"


def test_cli_secrets_dir_writes_private_files_and_file_references(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    result = run_cli(str(DATA / "owa-utf16.config"), str(DATA / "ecp-monosign.config"),
                     "--secrets-dir", str(secrets), "--secrets-mount", "/run/secrets", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MONOSIGN_API_KEY_FILE=/run/secrets/monosign_api_key\n" in result.stdout
    assert "MONOSIGN_API_SECRET_FILE=/run/secrets/monosign_api_secret\n" in result.stdout
    assert OWA_SETTINGS["MONOSIGN_API_SECRET"] not in result.stdout + result.stderr
    assert "MONOSIGN_USER_SOURCE='Zürich-AD'" in result.stdout
    assert "MONOSIGN_API_SECRET differs" in result.stderr
    for name, value in [("monosign_api_key", OWA_SETTINGS["MONOSIGN_API_KEY"]),
                        ("monosign_api_secret", OWA_SETTINGS["MONOSIGN_API_SECRET"])]:
        path = secrets / name
        assert path.read_text() == value
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700

    # A second run never replaces a secret file.
    again = run_cli(str(DATA / "owa-monosign.config"), "--secrets-dir", str(secrets), cwd=tmp_path)
    assert again.returncode == 1
    assert "never replaced" in again.stderr
    assert again.stdout == ""


def test_cli_secret_files_work_when_the_env_is_sourced(tmp_path: Path) -> None:
    """The documented path: `set -a; . ./.env; set +a`, then the gateway reads NAME_FILE."""
    secrets = tmp_path / "secrets"
    result = run_cli(str(DATA / "owa-monosign.config"), "--secrets-dir", str(secrets), "--output", ".env",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    script = (
        "set -a; . ./.env; set +a; export GATEWAY_PUBLIC_URL=https://mail.example.com "
        "GATEWAY_UPSTREAM_URL=https://ex.example; exec \"$0\" -c '"
        "from gateway.settings import load_settings; s = load_settings(env_file=None); "
        "print(s.monosign_api_secret.get_secret_value(), s.monosign_user_exceptions, s.monosign_debug_mode)'"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONOSIGN_", "GATEWAY_"))}
    env["PYTHONPATH"] = str(ROOT)
    loaded = subprocess.run(["bash", "-c", script, sys.executable], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split(" ", 1) == [
        OWA_SETTINGS["MONOSIGN_API_SECRET"], "['CORP\\\\svc-scanner', 'healthmailbox01@corp.example'] False\n",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.config"], "missing.config: cannot read it"),
        ([str(DATA / "entity-expansion.config")], "refusing to read it"),
        ([str(DATA / "owa-monosign.config"), "--secrets-mount", "/run/secrets"], "--secrets-mount needs --secrets-dir"),
    ],
)
def test_cli_failures_exit_1_with_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_file_without_monosign_settings(tmp_path: Path) -> None:
    config = tmp_path / "web.config"
    config.write_text('<configuration><appSettings><add key="X" value="1"/></appSettings></configuration>')
    result = run_cli(str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "no MONOSIGN_* settings found" in result.stderr


def test_cli_docker_format(tmp_path: Path) -> None:
    result = run_cli(str(DATA / "owa-monosign.config"), "--format", "docker", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    read = docker_env_file_reads(result.stdout)
    for name in ("MONOSIGN_API_URL", "MONOSIGN_API_KEY", "MONOSIGN_API_SECRET", "MONOSIGN_USER_EXCEPTIONS",
                 "MONOSIGN_USER_SOURCE"):
        assert read[name] == OWA_SETTINGS[name], name
    settings_lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    assert settings_lines
    assert not any("'" in line or '"' in line for line in settings_lines)
    assert "import-webconfig --format docker" in result.stdout
    default = run_cli(str(DATA / "owa-monosign.config"), cwd=tmp_path)
    assert "MONOSIGN_USER_EXCEPTIONS='CORP\\svc-scanner;healthmailbox01@corp.example'" in default.stdout
    bad = run_cli(str(DATA / "owa-monosign.config"), "--format", "yaml", cwd=tmp_path)
    assert bad.returncode == 2
    assert "invalid choice: 'yaml'" in bad.stderr
