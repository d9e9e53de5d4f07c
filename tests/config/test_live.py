"""Reloading the configuration: a valid file is swapped in whole, an invalid one changes nothing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gateway.config import ConfigError
from gateway.config.live import LiveConfig, LoadedConfig, describe
from tests.logs import CapturedLogs, events

SITE = """\
sites:
  - name: intranet
    hosts: [intranet.example.com]
    upstream: http://10.0.0.5:8080
    profile: passthrough
    rules:
      - {{ paths: ["/admin"], action: {admin} }}
      - {{ action: bypass }}
"""


def write(path: Path, text: str) -> None:
    """As editors and ConfigMaps do: a new file renamed over the old one."""
    fresh = path.with_suffix(".tmp")
    fresh.write_text(text)
    os.replace(fresh, path)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    write(path, SITE.format(admin="deny"))
    return path


def admin_action(loaded: LoadedConfig) -> str:
    return loaded.config.sites[0].rules[0].action.value


def test_a_valid_change_is_swapped_in_whole_and_subscribers_see_it(config_file: Path) -> None:
    live = LiveConfig.load(config_file, clock=lambda: 1000.0)
    before = live.current
    seen: list[LoadedConfig] = []
    live.subscribe(seen.append)
    write(config_file, SITE.format(admin="two_factor"))
    outcome = live.reload(clock=lambda: 2000.0)
    assert outcome.changed
    assert outcome.error is None
    assert admin_action(live.current) == "two_factor"
    assert admin_action(before) == "deny"  # a request that started on the old one keeps it
    assert seen == [live.current]
    assert live.current.digest != before.digest
    assert describe(live.current)["loaded_at"] == "1970-01-01T00:33:20Z"


@pytest.mark.parametrize(
    "broken",
    [
        SITE.format(admin="allow"),  # not an action
        SITE.format(admin="deny").replace("10.0.0.5:8080", "10.0.0.5:99999"),
        SITE.format(admin="deny") + "  - nonsense\n",
        "sites: [\n",  # not YAML
        "",
    ],
    ids=["action", "port", "shape", "yaml", "empty"],
)
def test_an_invalid_file_keeps_the_old_configuration(config_file: Path, broken: str) -> None:
    live = LiveConfig.load(config_file)
    before = live.current
    seen: list[LoadedConfig] = []
    live.subscribe(seen.append)
    write(config_file, broken)
    outcome = live.reload()
    assert not outcome.changed
    assert outcome.error
    assert live.current is before
    assert seen == []


def test_a_missing_file_keeps_the_old_configuration(config_file: Path) -> None:
    live = LiveConfig.load(config_file)
    before = live.current
    config_file.unlink()
    assert live.reload().error
    assert live.current is before


def test_a_subscriber_that_refuses_rolls_the_swap_back(config_file: Path) -> None:
    live = LiveConfig.load(config_file)
    before = live.current
    applied: list[str] = []

    def certificates(loaded: LoadedConfig) -> None:
        if admin_action(loaded) == "two_factor":
            raise ConfigError([])
        applied.append(admin_action(loaded))

    live.subscribe(certificates)
    write(config_file, SITE.format(admin="two_factor"))
    outcome = live.reload()
    assert not outcome.changed
    assert live.current is before
    assert applied == ["deny"]  # re-applied: the subscriber is back on the configuration in force


def test_the_same_meaning_is_not_a_change(config_file: Path) -> None:
    live = LiveConfig.load(config_file)
    write(config_file, "# a comment\n" + SITE.format(admin="deny"))
    assert live.files_changed()
    assert not live.reload().changed
    assert not live.files_changed()


def test_the_first_load_of_an_invalid_file_is_an_error(config_file: Path) -> None:
    write(config_file, SITE.format(admin="allow"))
    with pytest.raises(ConfigError, match="action"):
        LiveConfig.load(config_file)


async def test_watching_picks_up_changes_and_twenty_swaps(config_file: Path) -> None:
    live = LiveConfig.load(config_file)
    stop = asyncio.Event()
    watcher = asyncio.create_task(live.watch(0.01, stop))
    try:
        for round_ in range(20):
            action = "two_factor" if round_ % 2 == 0 else "deny"
            write(config_file, SITE.format(admin=action) + f"# round {round_}\n")
            for _ in range(500):
                if admin_action(live.current) == action and not live.files_changed():
                    break
                await asyncio.sleep(0.01)
            assert admin_action(live.current) == action
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 5)


SETTINGS = "settings:\n  GATEWAY_BRAND_NAME: {brand}\n  GATEWAY_SESSION_SECRET: {secret}\n"


def test_changed_settings_wait_for_a_restart_and_the_sites_still_reload(
        config_file: Path, captured_logs: CapturedLogs) -> None:
    write(config_file, SITE.format(admin="deny") + SETTINGS.format(brand="Before", secret="a" * 40))
    live = LiveConfig.load(config_file)
    write(config_file, SITE.format(admin="two_factor") + SETTINGS.format(brand="After", secret="b" * 40))
    assert live.reload().changed  # the sites and rules: applied
    assert admin_action(live.current) == "two_factor"
    assert live.pending_settings == ("GATEWAY_BRAND_NAME", "GATEWAY_SESSION_SECRET")
    assert describe(live.current, pending_settings=live.pending_settings)["settings_pending_restart"] == [
        "GATEWAY_BRAND_NAME", "GATEWAY_SESSION_SECRET"]
    (warning,) = [line for line in events(captured_logs(), "gateway.config")
                  if line["event"] == "config_settings_not_reloaded"]
    assert warning["settings"] == ["GATEWAY_BRAND_NAME", "GATEWAY_SESSION_SECRET"]
    assert "b" * 40 not in "".join(captured_logs())

    # Only the settings change: nothing to swap in, and the same warning is not repeated.
    write(config_file, SITE.format(admin="two_factor") + SETTINGS.format(brand="After", secret="b" * 40) + "\n")
    assert not live.reload().changed
    assert len([line for line in events(captured_logs(), "gateway.config")
                if line["event"] == "config_settings_not_reloaded"]) == 1
    # Written back as they were at start: nothing waits any more.
    write(config_file, SITE.format(admin="two_factor") + SETTINGS.format(brand="Before", secret="a" * 40))
    live.reload()
    assert live.pending_settings == ()


def test_a_reload_with_a_setting_that_could_not_start_the_gateway_is_refused(config_file: Path) -> None:
    live = LiveConfig.load(config_file)
    before = live.current
    write(config_file, SITE.format(admin="two_factor") + "settings:\n  GATEWAY_WORKERS: 0\n")
    outcome = live.reload()
    assert not outcome.changed
    assert outcome.error is not None
    assert "settings.GATEWAY_WORKERS" in outcome.error
    assert live.current is before
    assert live.pending_settings == ()
