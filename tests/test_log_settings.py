"""GATEWAY_LOG_LEVEL and GATEWAY_ACCESS_LOG, and MONOSIGN_DEBUG_MODE's meaning beside them."""

from __future__ import annotations

import pytest

from gateway.settings import LogLevel, SettingsError, load_settings
from tests.settings_env import with_required_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return with_required_settings(monkeypatch)


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(env_file=None)
    assert settings.log_level is LogLevel.INFO
    assert settings.gateway_access_log is True


@pytest.mark.parametrize(("level", "debug_mode", "expected"), [
    ("debug", "false", LogLevel.DEBUG),
    ("info", "false", LogLevel.INFO),
    ("WARNING", "false", LogLevel.WARNING),
    ("error", "false", LogLevel.ERROR),
    ("error", "true", LogLevel.DEBUG),  # the IIS module's switch still means debug
    ("info", "true", LogLevel.DEBUG),
])
def test_the_level(env: pytest.MonkeyPatch, level: str, debug_mode: str, expected: LogLevel) -> None:
    env.setenv("GATEWAY_LOG_LEVEL", level)
    env.setenv("MONOSIGN_DEBUG_MODE", debug_mode)
    assert load_settings(env_file=None).log_level is expected


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("off", False), ("true", True), ("false", False),
                                                 ("1", True), ("0", False), ("yes", True), ("no", False),
                                                 ("ON", True), ("Off", False)])
def test_the_access_log_switch(env: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    env.setenv("GATEWAY_ACCESS_LOG", value)
    assert load_settings(env_file=None).gateway_access_log is expected


@pytest.mark.parametrize(("name", "value"), [("GATEWAY_LOG_LEVEL", "verbose"), ("GATEWAY_LOG_LEVEL", "critical"),
                                             ("GATEWAY_ACCESS_LOG", "sometimes")])
def test_bad_values_name_the_setting(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert any(line.startswith(f"{name}:") for line in info.value.problems), info.value.problems
