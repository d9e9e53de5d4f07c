"""Settings read from a known environment: none of the developer's own GATEWAY_*/MONOSIGN_* leak in."""

from __future__ import annotations

import pytest

from gateway.settings import Settings

# The five settings without a default, each valid.
REQUIRED = {
    "MONOSIGN_API_URL": "http://127.0.0.1:9001",
    "MONOSIGN_API_KEY": "app-id",
    "MONOSIGN_API_SECRET": "s3cr3t-value-never-shown",
    "GATEWAY_PUBLIC_URL": "https://mail.example.com",
    "GATEWAY_UPSTREAM_URL": "http://127.0.0.1:9002",
}


def without_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove every setting, and its `NAME_FILE` variant, from the environment (for this test)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(f"{name.upper()}_FILE", raising=False)
    return monkeypatch


def with_required_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only the required settings (REQUIRED) in the environment."""
    without_settings(monkeypatch)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    return monkeypatch
