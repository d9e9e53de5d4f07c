"""Settings: names, defaults, `*_FILE` secrets, and one clear line per problem."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from gateway.settings import HostPort, Settings, SettingsError, load_settings, parse_host_port
from tests.settings_env import with_required_settings

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return with_required_settings(monkeypatch)


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(env_file=None)
    assert settings.gateway_listen == HostPort("0.0.0.0", 8080)
    assert settings.gateway_admin_listen == HostPort("127.0.0.1", 9090)
    assert settings.gateway_trusted_proxies == []
    assert settings.gateway_fail_mode == "closed"
    assert settings.public_is_https
    assert settings.allowed_hosts == {"mail.example.com"}


def test_user_exceptions_split_on_comma_and_semicolon(env: pytest.MonkeyPatch) -> None:
    env.setenv("MONOSIGN_USER_EXCEPTIONS", "alice@corp.example; CORP\\bob ,carol")
    assert load_settings(env_file=None).monosign_user_exceptions == ["alice@corp.example", "CORP\\bob", "carol"]


def test_file_variant_reads_secret(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    env.delenv("MONOSIGN_API_SECRET")
    env.setenv("MONOSIGN_API_SECRET_FILE", str(secret))
    assert load_settings(env_file=None).monosign_api_secret.get_secret_value() == "from-a-file"


def test_file_and_value_both_set_is_an_error(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    env.setenv("MONOSIGN_API_SECRET_FILE", str(secret))
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert info.value.problems == ["MONOSIGN_API_SECRET and MONOSIGN_API_SECRET_FILE are both set; keep one"]


def test_dotenv_file_is_read(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.delenv("GATEWAY_UPSTREAM_URL")
    dotenv = tmp_path / ".env"
    dotenv.write_text("GATEWAY_UPSTREAM_URL=https://exchange.corp.example\n")
    assert load_settings(env_file=dotenv).gateway_upstream_url == "https://exchange.corp.example"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GATEWAY_LISTEN", "8080", "GATEWAY_LISTEN: expected HOST:PORT"),
        ("GATEWAY_LISTEN", "0.0.0.0:99999", "GATEWAY_LISTEN: the port must be between 0 and 65535"),
        ("GATEWAY_UPSTREAM_URL", "ftp://x", "GATEWAY_UPSTREAM_URL: expected an http:// or https:// URL"),
        ("GATEWAY_FAIL_MODE", "maybe", "GATEWAY_FAIL_MODE: 'maybe' is not one of: closed, open"),
        ("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8,not-a-net", "GATEWAY_TRUSTED_PROXIES: 'not-a-net' is not an IP"),
        ("GATEWAY_WORKERS", "4", "GATEWAY_WORKERS: more than one worker needs a shared store"),
        ("GATEWAY_TLS_CERT_FILE", "/nonexistent.pem", "GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE: set both"),
        ("GATEWAY_SESSION_STORE", "redis", "GATEWAY_REDIS_URL: required when GATEWAY_SESSION_STORE=redis"),
    ],
)
def test_bad_setting_names_itself(env: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert any(line.startswith(expected) for line in info.value.problems), info.value.problems


def test_missing_required_settings_one_line_each(env: pytest.MonkeyPatch) -> None:
    env.delenv("MONOSIGN_API_URL")
    env.delenv("GATEWAY_UPSTREAM_URL")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert sorted(info.value.problems) == [
        "GATEWAY_UPSTREAM_URL: required but not set",
        "MONOSIGN_API_URL: required but not set",
    ]


def test_secrets_never_in_error_output(env: pytest.MonkeyPatch) -> None:
    env.setenv("GATEWAY_REDIS_URL", "ftp://user:hunter2-very-secret@host")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    text = str(info.value)
    assert "hunter2" not in text
    assert "GATEWAY_REDIS_URL" in text


def test_plain_http_warnings_only_for_non_loopback(env: pytest.MonkeyPatch) -> None:
    env.setenv("GATEWAY_UPSTREAM_URL", "http://exchange.corp.example")
    warnings = load_settings(env_file=None).plain_http_warnings()
    assert warnings == ["GATEWAY_UPSTREAM_URL uses plain http:// to a host that is not loopback"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0.0:80", HostPort("0.0.0.0", 80)), ("[::1]:8443", HostPort("::1", 8443)),
     ("localhost:0", HostPort("localhost", 0))],
)
def test_parse_host_port(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected


def test_every_setting_is_documented() -> None:
    example = (ROOT / ".env.example").read_text()
    documented = (ROOT / "docs" / "configuration.md").read_text()
    example_names = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    for name in Settings.model_fields:
        assert name.upper() in example_names, f"{name.upper()} missing from .env.example"
        assert f"`{name.upper()}`" in documented, f"{name.upper()} missing from docs/configuration.md"
    assert example_names <= {name.upper() for name in Settings.model_fields}, "stale names in .env.example"


def test_file_variant_in_dotenv_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-dotenv-file\n")
    env.delenv("MONOSIGN_API_SECRET")
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"MONOSIGN_API_SECRET_FILE={secret}\nGATEWAY_SESSION_SECRET_FILE=\n")
    assert load_settings(env_file=dotenv).monosign_api_secret.get_secret_value() == "from-dotenv-file"


# --- GATEWAY_PUBLIC_URL is an origin -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://mail.example.com", "https://mail.example.com"),
        ("https://mail.example.com/", "https://mail.example.com"),  # a lone trailing slash is fine
        ("https://mail.example.com:8443", "https://mail.example.com:8443"),
        ("HTTPS://Mail.Example.com/", "https://Mail.Example.com"),  # the scheme in lower case
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        (" https://mail.example.com ", "https://mail.example.com"),
    ],
)
def test_public_url_origins_are_accepted(env: pytest.MonkeyPatch, value: str, expected: str) -> None:
    env.setenv("GATEWAY_PUBLIC_URL", value)
    assert load_settings(env_file=None).gateway_public_url == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("https://mail.example.com/owa", "'https://mail.example.com/owa'"),
        ("https://mail.example.com/owa/", "'https://mail.example.com/owa/'"),
        ("https://mail.example.com//", "'https://mail.example.com//'"),
        ("https://mail.example.com/?", "'https://mail.example.com/?'"),
        ("https://mail.example.com?", "'https://mail.example.com?'"),
        ("https://mail.example.com?next=/owa", "'https://mail.example.com?next=/owa'"),
        ("https://mail.example.com#", "'https://mail.example.com#'"),
        ("https://mail.example.com#owa", "'https://mail.example.com#owa'"),
        ("https://@mail.example.com", "'https://…@mail.example.com'"),
        ("https://admin:hunter2@mail.example.com", "'https://…@mail.example.com'"),  # never the password
        ("https://mail.example.com\\owa", "'https://mail.example.com\\\\owa'"),
        ("https://mail.example.com;owa", "'https://mail.example.com;owa'"),
        ("https://mail.example.com:99999", "'https://mail.example.com:99999'"),
        ("https://mail.example.com:", "'https://mail.example.com:'"),
        ("https://mail.exa\tmple.com", "'https://mail.exa\\tmple.com'"),  # urlsplit would drop the tab
        ("https://mail example.com", "'https://mail example.com'"),
        ("ftp://mail.example.com", "'ftp://mail.example.com'"),
        ("mail.example.com", "'mail.example.com'"),
        ("https:///owa", "'https:///owa'"),
    ],
)
def test_public_url_with_a_path_query_fragment_or_user_is_refused(env: pytest.MonkeyPatch, value: str,
                                                                   shown: str) -> None:
    env.setenv("GATEWAY_PUBLIC_URL", value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert info.value.problems == [f"GATEWAY_PUBLIC_URL: must be scheme://host[:port] with no path; got {shown}"]
    assert "hunter2" not in str(info.value)


# --- Enumeration settings: any case, one wording for every error ---------------------------------------------

ENUM_SETTINGS = {
    name.upper(): field.annotation for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, StrEnum)
}


def test_the_enumeration_table_covers_every_enumeration_setting() -> None:
    assert set(ENUM_SETTINGS) == {
        "GATEWAY_POLICY_ACTIVESYNC", "GATEWAY_POLICY_WINDOWS_AUTH", "GATEWAY_POLICY_POWERSHELL", "GATEWAY_POLICY_ECP",
        "GATEWAY_SESSION_STORE", "GATEWAY_FAIL_MODE", "GATEWAY_LANGUAGE", "GATEWAY_LOG_FORMAT",
        "GATEWAY_LOG_LEVEL",
    }


@pytest.mark.parametrize("name", sorted(ENUM_SETTINGS))
def test_enumeration_settings_accept_any_case(env: pytest.MonkeyPatch, name: str) -> None:
    choices = ENUM_SETTINGS[name]
    assert choices is not None
    env.setenv("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379/0")  # so that GATEWAY_SESSION_STORE=redis is usable
    env.setenv("GATEWAY_SESSION_SECRET", "x" * 40)
    for member in choices:
        for spelling in (member.value, member.value.upper(), member.value.title(), f" {member.value.upper()} "):
            env.setenv(name, spelling)
            assert getattr(load_settings(env_file=None), name.lower()) is member, spelling


@pytest.mark.parametrize("name", sorted(ENUM_SETTINGS))
@pytest.mark.parametrize("value", ["opne", "", "yes", "closed,open", "x" * 100])
def test_enumeration_errors_are_worded_alike(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    choices = ENUM_SETTINGS[name]
    assert choices is not None
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None, **{name.lower(): value})
    shown = repr(value if len(value) <= 60 else value[:59] + "…")
    assert info.value.problems == [f"{name}: {shown} is not one of: {', '.join(member.value for member in choices)}"]


def test_enumeration_error_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("GATEWAY_FAIL_MODE", "opne")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert info.value.problems == ["GATEWAY_FAIL_MODE: 'opne' is not one of: closed, open"]


@pytest.mark.parametrize("name", ["MONOSIGN_API_URL", "GATEWAY_UPSTREAM_URL", "GATEWAY_PUBLIC_URL"])
@pytest.mark.parametrize("value", ["https://admin:hunter2@host.example", "https://:hunter2@host.example/x",
                                   "ftp://admin:hunter2@host.example", "https://admin:hunter2@host.example?q=1"])
def test_a_password_in_a_refused_url_is_never_shown(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert any(line.startswith(f"{name}:") for line in info.value.problems), info.value.problems
    assert "hunter2" not in str(info.value)
    assert "admin" not in str(info.value)


@pytest.mark.parametrize("url", ["https://exchange.corp:0", "https://exchange.corp:65536", "https://exchange.corp:99999",
                                 "https://exchange.corp:x", "http://exchange.corp:-1"])
@pytest.mark.parametrize("name", ["GATEWAY_UPSTREAM_URL", "MONOSIGN_API_URL"])
def test_a_url_with_an_impossible_port_is_refused(env: pytest.MonkeyPatch, name: str, url: str) -> None:
    env.setenv(name, url)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert any(problem.startswith(name) and "port" in problem for problem in info.value.problems), info.value.problems
