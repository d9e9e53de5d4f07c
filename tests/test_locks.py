"""Everything installed comes from the committed locks, and the locks follow pyproject.toml.

`./dev lock --check` is the test: it asks uv (the locked version, offline) whether uv.lock still
satisfies pyproject.toml, and whether the exported pip requirement files are what uv.lock gives.
A dependency changed in pyproject.toml without re-locking must fail here, naming the fix.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"
LOCK_FILES = ("uv.lock", "requirements/test.lock", "docker/requirements.lock", "docker/build-requirements.lock")


def check_locks(root: Path) -> subprocess.CompletedProcess[str]:
    assert UV.is_file(), "uv is one of the locked test tools: run ./dev setup"
    return subprocess.run(["bash", str(root / "dev"), "lock", "--check"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "UV": str(UV)}, timeout=120, check=False)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files the lock check reads, copied, so a test can change them."""
    for name in ("dev", "pyproject.toml", "README.md", *LOCK_FILES):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_locks_match_pyproject() -> None:
    result = check_locks(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"defusedxml>=0.7.1",', '"defusedxml>=0.7.1",\n    "six>=1.16",'),  # a dependency added
        ('"pyotp>=2.9",', ""),  # one removed
        ('"pyotp>=2.9",', '"pyotp>=99",'),  # a range the locked version no longer satisfies
        ('"pyyaml>=6.0",', '"pyyaml>=6.0",\n    "six>=1.16",'),  # a test tool added
    ],
    ids=["added", "removed", "range", "test-extra"],
)
def test_a_dependency_changed_without_relocking_fails_naming_the_fix(checkout: Path, old: str, new: str) -> None:
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text
    pyproject.write_text(text.replace(old, new, 1))
    result = check_locks(checkout)
    assert result.returncode != 0
    assert "does not match pyproject.toml" in result.stderr
    assert "run ./dev lock" in result.stderr


@pytest.mark.parametrize("exported", ["requirements/test.lock", "docker/requirements.lock"])
def test_an_exported_lock_edited_by_hand_fails(checkout: Path, exported: str) -> None:
    path = checkout / exported
    path.write_text(re.sub(r"^(aiohttp==)[^ ]+", r"\g<1>3.14.0", path.read_text(), count=1, flags=re.M))
    result = check_locks(checkout)
    assert result.returncode != 0
    assert exported in result.stderr
    assert "run ./dev lock" in result.stderr


def test_every_locked_package_is_pinned_with_hashes() -> None:
    for name in LOCK_FILES[1:]:
        text = (ROOT / name).read_text()
        requirements = re.findall(r"^([A-Za-z0-9_.-]+)(==)?[^\n]*", text, re.M)
        assert requirements, name
        assert all(pinned for _, pinned in requirements), name
        for entry in re.split(r"\n(?=[A-Za-z])", text):
            if re.match(r"[A-Za-z]", entry):
                assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_setup_installs_only_from_the_locks_with_hashes() -> None:
    dev = (ROOT / "dev").read_text()
    installs = [line for line in dev.splitlines() if "pip install" in line]
    assert installs
    for line in installs:
        continuation = dev[dev.index(line):].split("\n\n")[0]
        assert "--require-hashes" in continuation or "--no-deps --no-build-isolation -e ." in continuation, line
    assert "--upgrade" not in " ".join(installs)


def test_aiohttp_is_held_below_its_next_minor() -> None:
    import tomllib

    import aiohttp
    from packaging.requirements import Requirement
    from packaging.version import Version

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (aiohttp_requirement,) = [Requirement(d) for d in dependencies if Requirement(d).name == "aiohttp"]
    installed = Version(aiohttp.__version__)
    next_minor = Version(f"{installed.major}.{installed.minor + 1}")
    assert aiohttp_requirement.specifier.contains(installed)
    assert not aiohttp_requirement.specifier.contains(next_minor), "gateway/_compat.py relies on aiohttp internals"


def test_dev_names_an_unknown_command() -> None:
    result = subprocess.run(["bash", str(ROOT / "dev"), "frobnicate"], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    assert "./dev: unknown command 'frobnicate'" in result.stderr
    assert "./dev test" in result.stderr  # the usage follows
