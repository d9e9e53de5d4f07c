"""Turn the IIS module's web.config settings into the gateway's settings, with warnings.

Pure decision logic: `migrate()` takes parsed web.config files and returns the settings to write and
everything an operator should look at. The IIS module's `MONOSIGN_*` names keep their meaning in the
gateway, so most values carry over unchanged; the exceptions (a Windows log path, a boolean written
the .NET way) are explained rather than silently changed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.migration.webconfig import INTEGRATED_MODULES, ModuleEntry, WebConfig

REQUIRED = ("MONOSIGN_API_URL", "MONOSIGN_API_KEY", "MONOSIGN_API_SECRET")
OPTIONAL = ("MONOSIGN_DEBUG_MODE", "MONOSIGN_LOG_PATH", "MONOSIGN_USER_EXCEPTIONS", "MONOSIGN_USER_SOURCE")
KNOWN = REQUIRED + OPTIONAL
# Values that belong in secret files, never in a .env that is copied around.
SECRETS = frozenset({"MONOSIGN_API_KEY", "MONOSIGN_API_SECRET"})

# The gateway's own required settings: web.config has nothing to derive them from.
STILL_TO_SET: tuple[tuple[str, str, str], ...] = (
    ("GATEWAY_PUBLIC_URL", "https://mail.example.com", "the URL users type (the name DNS points at the gateway)"),
    ("GATEWAY_UPSTREAM_URL", "https://exchange01.corp.example", "where Exchange listens, over TLS"),
)

# Other vendors' OWA second-factor modules, recognised by a word at the start of the module's name
# or type (`Rublon.OWA.OWAModule`, `MultiFactor.IIS.Adapter.Owa.Module`, ...).
OTHER_MFA_MODULES: tuple[tuple[str, str], ...] = (
    ("multifactor", "MultiFactor (also shipped as Mirket's OWA agent)"),
    ("mirket", "Mirket"),
    ("rublon", "Rublon"),
    ("duo", "Duo for OWA"),
    ("eset", "ESET Secure Authentication"),
    ("securenvoy", "SecurEnvoy"),
    ("protectimus", "Protectimus"),
    ("deepnet", "DualShield"),
    ("dualshield", "DualShield"),
    ("digipass", "OneSpan Digipass"),
    ("onespan", "OneSpan Digipass"),
)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


@dataclass(frozen=True, slots=True)
class EnvSetting:
    name: str
    value: str
    secret: bool = False
    # Printed commented out, with `note` above it: the operator has to decide.
    disabled: bool = False
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Migration:
    settings: tuple[EnvSetting, ...]
    warnings: tuple[str, ...]


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", text.lower()) if word]


def is_monosign_module(entry: ModuleEntry) -> bool:
    return any(word.startswith("monosign") for word in _words(f"{entry.name} {entry.type}"))


def other_mfa_vendor(entry: ModuleEntry) -> str | None:
    words = _words(f"{entry.name} {entry.type}")
    for prefix, vendor in OTHER_MFA_MODULES:
        if any(word.startswith(prefix) for word in words):
            return vendor
    return None


def _check_modules(label: str, config: WebConfig) -> list[str]:
    warnings: list[str] = []
    if not any(is_monosign_module(entry) for entry in config.modules):
        commented = [text for text in config.commented_out if "monosign" in text.lower()]
        if commented:
            warnings.append(
                f"{label}: Monosign's module line is commented out in the modules list: "
                "MFA was switched off on this server; the gateway will ask for it again"
            )
        else:
            warnings.append(
                f"{label}: Monosign's module is not registered in {INTEGRATED_MODULES}; "
                "check that this is the web.config of the owa (or ecp) application where MFA was active"
            )
    for entry in config.modules:
        vendor = other_mfa_vendor(entry)
        if vendor is not None:
            warnings.append(
                f"{label}: another MFA module is registered: {entry.name!r} ({vendor}); with it still on Exchange "
                "users would be asked for two second factors: remove it once the gateway is live"
            )
    return warnings


def _convert(name: str, value: str) -> tuple[EnvSetting | None, list[str]]:
    """One web.config value as a gateway setting, or why it cannot be taken as it is."""
    value = value.strip()
    if not value:
        return None, []
    if name == "MONOSIGN_API_URL" and not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        return (
            EnvSetting(name, value, disabled=True, note="not an http(s) URL in web.config; fix it"),
            [f"{name}: {value!r} is not an http:// or https:// URL; written commented out"],
        )
    if name == "MONOSIGN_DEBUG_MODE":
        lowered = value.lower()
        if lowered in _TRUE | _FALSE:
            return EnvSetting(name, "true" if lowered in _TRUE else "false"), []
        return (
            EnvSetting(name, value, disabled=True, note="expected true or false"),
            [f"{name}: {value!r} is not true or false; written commented out"],
        )
    if name == "MONOSIGN_LOG_PATH" and _WINDOWS_PATH.match(value):
        return (
            EnvSetting(
                name, value, disabled=True,
                note="a Windows path from IIS; the gateway logs to stdout, set a directory here to also write files",
            ),
            [f"{name}: {value!r} is a Windows path; logs go to stdout, the setting is written commented out"],
        )
    return EnvSetting(name, value, secret=name in SECRETS), []


def migrate(configs: Sequence[tuple[str, WebConfig]]) -> Migration:
    """Merge one or more web.config files (owa, ecp) into the gateway's settings.

    The first file that sets a key wins; a different value in a later file is a warning. Secret
    values never appear in a warning.
    """
    chosen: dict[str, tuple[str, str]] = {}  # name -> (label, value)
    warnings: list[str] = []
    for label, config in configs:
        warnings.extend(f"{label}: {note}" for note in config.notes)
        warnings.extend(_check_modules(label, config))
        for key, value in config.app_settings.items():
            if not key.startswith("MONOSIGN_"):
                continue
            if key not in KNOWN:
                warnings.append(f"{label}: {key} is not a setting the gateway knows; ignored")
                continue
            if key in chosen and chosen[key][1].strip() != value.strip():
                shown = "" if key in SECRETS else f" ({chosen[key][1]!r} vs {value!r})"
                warnings.append(
                    f"{label}: {key} differs from the value in {chosen[key][0]}{shown}; using {chosen[key][0]}'s"
                )
                continue
            chosen.setdefault(key, (label, value))

    settings: list[EnvSetting] = []
    for name in KNOWN:
        label, value = chosen.get(name, ("", ""))
        setting, problems = _convert(name, value)
        warnings.extend(f"{label}: {problem}" for problem in problems)
        if setting is not None:
            settings.append(setting)
        elif name in REQUIRED:
            warnings.append(f"{name}: required, but not set in {', '.join(label for label, _ in configs)}")
    return Migration(tuple(settings), tuple(warnings))
