"""The configuration in force, and its reload (on SIGHUP, or when the file changes).

A reload validates the new file completely (`load_config`) before anything changes. A valid file is
swapped in as one new `LoadedConfig` object: a request reads `LiveConfig.current` once, when it
starts, and keeps that object, so requests in flight finish on the configuration they started with
and no connection is dropped. The file's `settings:` are not reloaded (they were read at start with
the environment's and .env's): a reload that changes them still applies the sites and rules, and
logs `config_settings_not_reloaded` naming the settings that wait for a restart. An invalid file
(its settings included) changes nothing: the reason is logged (and returned), and the old
configuration stays in force. Listeners that depend on the configuration (TLS
certificates chosen by SNI, for one) subscribe to swaps.

The file is watched by polling its identity (inode, size, modification time) at most every
`interval` seconds: no extra thread, no inotify dependency, and it works on the atomic rename that
Kubernetes' ConfigMap updates and editors use. The certificate and key files a configuration names
(the portal's assertion keys too) are watched the same way, so a renewed certificate or a replaced
key is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.loader import ConfigError, load_config
from gateway.config.model import GatewayConfig
from gateway.observability.logging import get_logger
from gateway.settings import FileSettings

__all__ = ["LiveConfig", "LoadedConfig", "ReloadOutcome", "describe", "file_identity"]

log = get_logger("gateway.config")

FileIdentity = tuple[int, int, int, int] | None  # (device, inode, size, mtime in ns); None: missing


def file_identity(path: Path) -> FileIdentity:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: GatewayConfig
    digest: str
    loaded_at: float  # wall-clock seconds
    source: Path

    def watched_files(self) -> tuple[Path, ...]:
        """The file itself and every certificate and key it names (assertion keys too)."""
        files = [self.source]
        for site in self.config.sites:
            if site.tls is not None:
                files += [site.tls.cert_file, site.tls.key_file]
            if site.assertion is not None:
                files += site.assertion.files
        return tuple(files)


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    changed: bool
    error: str | None = None  # why the new file was refused (the old one stays)


Subscriber = Callable[[LoadedConfig], None]


@dataclass(slots=True)
class LiveConfig:
    """The configuration in force. `current` is replaced as a whole, never changed in place."""

    current: LoadedConfig
    _subscribers: list[Subscriber] = field(default_factory=list)
    _identities: dict[Path, FileIdentity] = field(default_factory=dict)
    # The settings the file held at start (the ones in force: settings are not reloaded), and the
    # names of those the file has changed since, which wait for a restart.
    _started_settings: FileSettings = field(default_factory=FileSettings)
    pending_settings: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path, *, clock: Callable[[], float] = time.time) -> LiveConfig:
        """The first load: an invalid file is an error here (the gateway does not start)."""
        loaded = _loaded(path, clock())
        live = cls(loaded, _started_settings=loaded.config.settings)
        live._remember_identities()
        return live

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with each configuration swapped in (it must not raise; it may refuse
        by raising `ConfigError`, which keeps the old configuration)."""
        self._subscribers.append(subscriber)

    def reload(self, *, clock: Callable[[], float] = time.time, reason: str = "requested") -> ReloadOutcome:
        source = self.current.source
        try:
            candidate = _loaded(source, clock())
        except ConfigError as exc:
            self._remember_identities()  # one complaint per change, not one per poll
            log.error("config_reload_refused", message="the new configuration is not valid; the old one stays",
                      reason=reason, problems=[str(problem) for problem in exc.problems])
            return ReloadOutcome(changed=False, error=str(exc))
        if candidate.digest == self.current.digest and not self._certificates_changed(candidate):
            self._remember_identities()
            self._note_settings(candidate, reason)
            return ReloadOutcome(changed=False)
        previous = self.current
        self.current = candidate
        try:
            for subscriber in self._subscribers:
                subscriber(candidate)
        except ConfigError as exc:
            self.current = previous
            for subscriber in self._subscribers:
                subscriber(previous)
            self._remember_identities()
            log.error("config_reload_refused", message="the new configuration could not be applied; the old one stays",
                      reason=reason, problems=[str(problem) for problem in exc.problems])
            return ReloadOutcome(changed=False, error=str(exc))
        self._remember_identities()
        self._note_settings(candidate, reason)
        log.info("config_reloaded", message="a new configuration is in force for new requests", reason=reason,
                 digest=candidate.digest, previous_digest=previous.digest, sites=len(candidate.config.sites))
        return ReloadOutcome(changed=True)

    def _note_settings(self, candidate: LoadedConfig, reason: str) -> None:
        """Settings are not reloaded: say so, once per change, naming the settings (never their values)."""
        pending = candidate.config.settings.changed_since(self._started_settings)
        if pending and pending != self.pending_settings:
            log.warning("config_settings_not_reloaded", reason=reason, settings=list(pending),
                        message="the file's settings changed; the settings in force stay until the gateway "
                                "restarts (a reload applies sites and rules only)")
        self.pending_settings = pending

    def files_changed(self) -> bool:
        return any(file_identity(path) != identity for path, identity in self._identities.items())

    async def watch(self, interval: float, stop: asyncio.Event) -> None:
        """Reload whenever a watched file changes, until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if not stop.is_set() and self.files_changed():
                self.reload(reason="file changed")

    def _certificates_changed(self, candidate: LoadedConfig) -> bool:
        tls_files = set(candidate.watched_files()[1:])
        return any(file_identity(path) != self._identities.get(path) for path in tls_files)

    def _remember_identities(self) -> None:
        self._identities = {path: file_identity(path) for path in self.current.watched_files()}


def _loaded(path: Path, now: float) -> LoadedConfig:
    config = load_config(path)
    return LoadedConfig(config=config, digest=config.digest, loaded_at=now, source=path)


def describe(loaded: LoadedConfig, *, pending_settings: tuple[str, ...] = ()) -> dict[str, object]:
    """What the admin listener shows about the configuration in force (and the settings that wait
    for a restart, by name)."""
    return {
        "source": str(loaded.source),
        "digest": loaded.digest,
        "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(loaded.loaded_at)),
        "sites": [site.name for site in loaded.config.sites],
        "settings_pending_restart": list(pending_settings),
    }

