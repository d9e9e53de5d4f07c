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


def locked(path: Path = ROOT / "docker" / "requirements.lock") -> dict[str, str]:
    """Package -> its whole entry (version, marker, hashes) in a pip requirements lock."""
    text = path.read_text()
    entries = re.split(r"\n(?=[A-Za-z])", text[text.index("\n", text.index("\n") + 1) + 1:])
    without_comments = ("\n".join(line for line in entry.splitlines() if not line.lstrip().startswith("#"))
                        for entry in entries)
    return {canonicalize_name(re.match(r"[A-Za-z0-9_.-]+", entry)[0]): entry  # type: ignore[index]
            for entry in without_comments if entry.strip()}


def test_lock_covers_every_runtime_dependency_with_hashes() -> None:
    lock = locked()
    for entry in lock.values():
        assert "--hash=sha256:" in entry, entry
    # Every locked version satisfies what pyproject.toml (and the packages themselves) ask for.
    # Every locked version satisfies what pyproject.toml (and the packages themselves) ask for.
    from importlib.metadata import distribution

    for line in distribution("monosign-gateway").requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            version = re.match(r"[A-Za-z0-9_.-]+==([^\s;\\]+)", lock[canonicalize_name(requirement.name)])[1]  # type: ignore[index]
            assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_the_image_installs_what_the_tests_ran_with() -> None:
    """The runtime lock is the runtime part of the development lock: same versions, same hashes."""
    development = locked(ROOT / "requirements" / "test.lock")
    for name, entry in locked().items():
        assert development.get(name) == entry, f"{name}: the image and the tests would install different files"


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
