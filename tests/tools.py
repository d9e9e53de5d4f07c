"""Real tools the tests drive (redis-server, Chromium): skip locally when missing, fail in CI.

With CI=true a missing tool is a failure, never a silent skip: CI installs them (.ci/run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str, package: str | None = None) -> str:
    """Return the tool's path, or skip (locally) / fail (CI) with a message that says how to get it
    (`package`: the Debian package, when it is not named after the tool)."""
    found = name if Path(name).is_absolute() and os.access(name, os.X_OK) else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (apt-get install -y {package or Path(name).name})"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_chromium() -> str:
    return require_tool(CHROMIUM)


def require_redis_server() -> str:
    return require_tool("redis-server")
