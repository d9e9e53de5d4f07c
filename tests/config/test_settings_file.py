"""Settings in the configuration file (`settings:`): precedence over every pair of places, `NAME_FILE`
inside the file, and problems located at their line, like every other key of the file."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.commands.arguments import SETTINGS_PRECEDENCE
from gateway.config import parse_config
from gateway.settings import FileSettings, SettingsError, load_settings
from tests.settings_env import REQUIRED, without_settings

ROOT = Path(__file__).resolve().parents[2]
PLACES = ("environment", "dotenv", "file")
SITES = [{"name": "app", "hosts": ["app.example.test"], "upstream": "http://127.0.0.1:9", "profile": "passthrough",
          "rules": [{"action": "bypass"}]}]


class Places:
    """One setting written in any of the three places, as NAME or as NAME_FILE."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.env = without_settings(monkeypatch)
        self.dotenv: dict[str, str] = {}
        self.file: dict[str, object] = {}
        self.config = tmp_path / "conf" / "gateway.yaml"
        self.config.parent.mkdir()
        self.env.setenv("GATEWAY_CONFIG_FILE", str(self.config))

    def set(self, place: str, name: str, value: str, *, as_file: bool = False) -> None:
        if as_file:
            holder = self.tmp_path / f"{place}-{name.lower()}"
            holder.write_text(value + "\n", encoding="utf-8")
            name, value = f"{name}_FILE", str(holder)
        if place == "environment":
            self.env.setenv(name, value)
        elif place == "dotenv":
            self.dotenv[name] = value
        else:
            self.file[name] = value

    def write(self) -> Path:
        """Write the .env file and the configuration file; the .env file's path."""
        dotenv = self.tmp_path / ".env"
        dotenv.write_text("".join(f"{key}={value}\n" for key, value in self.dotenv.items()), encoding="utf-8")
        self.config.write_text(json.dumps({"sites": SITES, "settings": self.file}, indent=2), encoding="utf-8")
        return dotenv

    def load(self) -> object:
        return load_settings(env_file=self.write())


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Places:
    return Places(tmp_path, monkeypatch)


def with_required(places: Places, place: str = "environment", *, but: str = "") -> None:
    for name, value in REQUIRED.items():
        if name != but:
            places.set(place, name, value)


# Every subset of the three places: the first place in PLACES that sets the setting wins, else the default.
@pytest.mark.parametrize("written", [subset for size in range(4) for subset in itertools.combinations(PLACES, size)])
def test_the_first_place_that_sets_a_setting_wins(places: Places, written: tuple[str, ...]) -> None:
    with_required(places)
    for place in written:
        places.set(place, "GATEWAY_BRAND_NAME", f"Brand from {place}")
    settings = places.load()
    expected = f"Brand from {written[0]}" if written else "Outlook on the web"
    assert settings.gateway_brand_name == expected  # type: ignore[attr-defined]


# Each pair of places, each spelled NAME or NAME_FILE: the higher place wins whatever the spelling.
@pytest.mark.parametrize(("higher", "lower"), list(itertools.combinations(PLACES, 2)))
@pytest.mark.parametrize(("higher_file", "lower_file"), list(itertools.product((False, True), repeat=2)))
def test_name_file_counts_in_its_own_place(places: Places, higher: str, lower: str, higher_file: bool,
                                           lower_file: bool) -> None:
    with_required(places, but="MONOSIGN_API_SECRET")
    places.set(higher, "MONOSIGN_API_SECRET", f"secret-from-{higher}", as_file=higher_file)
    places.set(lower, "MONOSIGN_API_SECRET", f"secret-from-{lower}", as_file=lower_file)
    assert places.load().monosign_api_secret.get_secret_value() == f"secret-from-{higher}"  # type: ignore[attr-defined]


def test_every_required_setting_may_come_from_the_file_with_yaml_types(places: Places, tmp_path: Path) -> None:
    with_required(places, "file")
    places.file.update({"GATEWAY_WORKERS": 2, "GATEWAY_SESSION_STORE": "redis",
                        "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0", "GATEWAY_SESSION_SECRET": "k" * 40,
                        "MONOSIGN_TLS_VERIFY": False, "MONOSIGN_USER_EXCEPTIONS": ["alice", "CORP\\bob"],
                        "GATEWAY_MFA_LOCKOUT_SECONDS": 60.5})
    settings = places.load()
    assert settings.gateway_public_url == REQUIRED["GATEWAY_PUBLIC_URL"]  # type: ignore[attr-defined]
    assert settings.gateway_workers == 2  # type: ignore[attr-defined]
    assert settings.monosign_tls_verify is False  # type: ignore[attr-defined]
    assert settings.monosign_user_exceptions == ["alice", "CORP\\bob"]  # type: ignore[attr-defined]
    assert settings.gateway_mfa_lockout_seconds == 60.5  # type: ignore[attr-defined]


def test_name_file_inside_the_file_is_read_relative_to_the_file(places: Places) -> None:
    with_required(places, but="MONOSIGN_API_SECRET")
    (places.config.parent / "secrets").mkdir()
    (places.config.parent / "secrets" / "api").write_text("from-the-secret-file\n", encoding="utf-8")
    places.file["MONOSIGN_API_SECRET_FILE"] = "secrets/api"
    assert places.load().monosign_api_secret.get_secret_value() == "from-the-secret-file"  # type: ignore[attr-defined]


@pytest.mark.parametrize("empty", [None, ""])
def test_a_key_with_no_value_is_not_set(places: Places, empty: object) -> None:
    with_required(places)
    places.file.update({"GATEWAY_TLS_CERT_FILE": empty, "GATEWAY_BRAND_NAME": empty})
    settings = places.load()
    assert settings.gateway_tls_cert_file is None  # type: ignore[attr-defined]
    assert settings.gateway_brand_name == "Outlook on the web"  # type: ignore[attr-defined]


def test_relative_paths_in_the_file_are_the_file_s_directory(places: Places) -> None:
    with_required(places)
    (places.config.parent / "templates").mkdir()
    places.file["GATEWAY_TEMPLATES_DIR"] = "templates"
    assert places.load().gateway_templates_dir == places.config.parent / "templates"  # type: ignore[attr-defined]


def line_of(places: Places, key: str) -> int:
    """The line of `key` in the file Places.load writes."""
    text = json.dumps({"sites": SITES, "settings": places.file}, indent=2)
    return 1 + next(index for index, line in enumerate(text.splitlines()) if line.startswith(f'    "{key}":'))


def problems_of(places: Places) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        places.load()
    return [problem.replace(str(places.config), "gateway.yaml") for problem in raised.value.problems]


def test_a_bad_value_in_the_file_names_the_file_the_line_and_the_key(places: Places) -> None:
    with_required(places, but="GATEWAY_PUBLIC_URL")
    places.file["GATEWAY_PUBLIC_URL"] = "https://mail.example.com/owa"
    places.file["GATEWAY_WORKERS"] = 0
    line = line_of(places, "GATEWAY_PUBLIC_URL")
    assert problems_of(places) == [
        f"gateway.yaml:{line}: settings.GATEWAY_PUBLIC_URL: must be scheme://host[:port] with no path; "
        "got 'https://mail.example.com/owa'",
        f"gateway.yaml:{line + 1}: settings.GATEWAY_WORKERS: Input should be greater than or equal to 1 (got '0')",
    ]


def test_a_bad_value_in_the_file_is_refused_even_when_a_higher_place_sets_the_setting(places: Places) -> None:
    with_required(places)
    places.file["GATEWAY_FAIL_MODE"] = "opne"
    assert problems_of(places) == [
        f"gateway.yaml:{line_of(places, 'GATEWAY_FAIL_MODE')}: settings.GATEWAY_FAIL_MODE: "
        "'opne' is not one of: closed, open"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("GATEWAY_PUBLC_URL", "https://x.example", "unknown setting; did you mean 'GATEWAY_PUBLIC_URL'?"),
    ("gateway_brand_name", "x", "settings are written by their environment names, in capitals: 'GATEWAY_BRAND_NAME'"),
    ("Gateway_Brand_Name", "x", "settings are written by their environment names, in capitals: 'GATEWAY_BRAND_NAME'"),
    ("NOT_A_SETTING_AT_ALL", "x", "unknown setting (docs/configuration.md lists them)"),
    ("GATEWAY_CONFIG_FILE", "other.yaml",
     "the file cannot name itself: set GATEWAY_CONFIG_FILE in the environment or the .env file"),
    ("GATEWAY_CONFIG_FILE_FILE", "other.yaml",
     "the file cannot name itself: set GATEWAY_CONFIG_FILE in the environment or the .env file"),
    ("GATEWAY_BRAND_NAME", True,
     "expected text, got a boolean (YAML reads yes/no/on/off/true/false unquoted as booleans: quote it)"),
    ("MONOSIGN_API_SECRET_FILE", "missing", "cannot read '{dir}/missing' (No such file or directory)"),
    ("GATEWAY_SESSION_SECRET_FILE", 12, "expected the path of a file that holds the value"),
    ("GATEWAY_LISTEN", "8080", "expected HOST:PORT, e.g. 0.0.0.0:8080 (got '8080')"),
])
def test_a_setting_the_file_cannot_hold_is_refused_at_its_line(places: Places, key: str, value: object,
                                                               message: str) -> None:
    with_required(places)
    places.file[key] = value
    assert problems_of(places) == [f"gateway.yaml:{line_of(places, key)}: settings.{key}: "
                                   + message.format(dir=places.config.parent)]


def test_name_and_name_file_both_in_the_file_is_an_error(places: Places) -> None:
    with_required(places)
    (places.config.parent / "secret").write_text("x" * 40, encoding="utf-8")
    places.file.update({"GATEWAY_SESSION_SECRET": "y" * 40, "GATEWAY_SESSION_SECRET_FILE": "secret"})
    line = line_of(places, "GATEWAY_SESSION_SECRET_FILE")
    assert problems_of(places) == [f"gateway.yaml:{line}: settings.GATEWAY_SESSION_SECRET_FILE: GATEWAY_SESSION_SECRET "
                                   "and GATEWAY_SESSION_SECRET_FILE are both set; keep one"]


@pytest.mark.parametrize(("key", "value"), [
    ("MONOSIGN_API_KEY", 31337),  # a type error of a secret, found at its line
    ("GATEWAY_REDIS_URL", "http://user:31337@redis.example"),  # found once the settings are all known
])
def test_a_secret_value_is_never_in_a_problem(places: Places, key: str, value: object) -> None:
    with_required(places)
    places.file[key] = value
    problems = problems_of(places)
    assert len(problems) == 1
    assert key in problems[0]
    assert "31337" not in problems[0]


def test_the_settings_are_no_part_of_the_digest_and_never_shown() -> None:
    text = {"sites": SITES, "settings": {"GATEWAY_SESSION_SECRET": "s" * 40}}
    with_settings = parse_config(json.dumps(text))
    without = parse_config(json.dumps({"sites": SITES}))
    assert with_settings.digest == without.digest
    assert with_settings.settings.clear_secrets == ("GATEWAY_SESSION_SECRET",)
    assert "s" * 40 not in repr(with_settings)
    assert with_settings.settings.changed_since(without.settings) == ("GATEWAY_SESSION_SECRET",)
    assert without.settings == FileSettings()


def test_the_precedence_is_stated_once_and_the_same_in_help_and_the_doc() -> None:
    document = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert f"```text\n{SETTINGS_PRECEDENCE}\n```" in document
    for command in ("serve", "check"):
        shown = subprocess.run([sys.executable, "-m", "gateway", command, "--help"], capture_output=True, text=True,
                               check=True, cwd=ROOT, timeout=60).stdout
        assert shown.endswith(SETTINGS_PRECEDENCE + "\n"), command


def test_serve_stops_with_the_located_problem(places: Places, tmp_path: Path) -> None:
    with_required(places)
    places.file["GATEWAY_LISTEN"] = "nowhere"
    dotenv = places.write()
    shown = subprocess.run([sys.executable, "-m", "gateway", "serve", "--env-file", str(dotenv)], capture_output=True,
                           text=True, cwd=tmp_path, timeout=60, env=dict(os.environ))
    assert shown.returncode == 2
    assert shown.stderr.splitlines() == [
        f"{places.config}:{line_of(places, 'GATEWAY_LISTEN')}: settings.GATEWAY_LISTEN: "
        "expected HOST:PORT, e.g. 0.0.0.0:8080 (got 'nowhere')"]
