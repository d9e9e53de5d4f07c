"""The files around the image that need no container tools: healthcheck, lock, build context rules."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent.parent


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = load(ROOT / "docker" / "healthcheck.py")
runtime_pins = load(ROOT / "docker" / "runtime_pins.py")


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("127.0.0.1:9090", "http://127.0.0.1:9090/healthz"),
        ("0.0.0.0:9191", "http://127.0.0.1:9191/healthz"),
        ("[::]:9090", "http://[::1]:9090/healthz"),
        ("[::1]:9090", "http://[::1]:9090/healthz"),
        ("10.0.0.7:9090", "http://10.0.0.7:9090/healthz"),
        (" admin.internal:9000 ", "http://admin.internal:9000/healthz"),
    ],
)
def test_healthcheck_targets_the_admin_listener(listen: str, url: str) -> None:
    assert healthcheck.healthz_url(listen) == url


def test_healthcheck_reports_unreachable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        monkeypatch.setenv("GATEWAY_ADMIN_LISTEN", f"127.0.0.1:{port}")
        assert healthcheck.main() == 1
    assert "unhealthy" in capsys.readouterr().err


def locked() -> dict[str, str]:
    text = (ROOT / "docker" / "requirements.lock").read_text()
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", text, re.M)}


def test_lock_covers_every_runtime_dependency_with_hashes() -> None:
    lock = locked()
    needed = runtime_pins.runtime_closure()
    missing = sorted(set(needed) - set(lock))
    assert missing == [], f"docker/requirements.lock lacks {missing}: run docker/update-lock"
    text = (ROOT / "docker" / "requirements.lock").read_text()
    for block in re.split(r"\n(?=[A-Za-z])", text.split("\n", 2)[2]):
        assert "--hash=sha256:" in block, block
    # Every locked version satisfies what pyproject.toml (and the packages themselves) ask for.
    from importlib.metadata import distribution

    for line in distribution("monosign-gateway").requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            version = lock[canonicalize_name(requirement.name)]
            assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_lock_holds_no_test_tools() -> None:
    lock = locked()
    assert not {"pytest", "hypothesis", "playwright", "mypy", "ruff", "respx", "exchangelib"} & set(lock)


def test_build_context_is_an_allow_list_that_keeps_secrets_out() -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"**/.env", "**/*.env", "**/*.key", "**/*.pem"} <= set(rules)
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert f"!{source}" in rules or f"!{source}/" in rules, f"{source} is copied but not allowed in"
