"""Build the project's container image here, where no registry answers and `podman run` cannot work.

1. A base image from Debian's own packages: `debootstrap` a minimal bookworm with python3 (3.11),
   python3-venv and ca-certificates, imported with `podman import`. The tarball is cached under
   ~/.cache/monosign-gateway-test, keyed by the recipe, so CI builds it once per machine.
2. The project's Dockerfile built on it with `podman build --isolation chroot` (the RUN steps reach
   PyPI when the host's certificate store is mounted), from a copy of the working tree into which
   canary secrets are planted: the test proves .dockerignore keeps them out of every layer.
3. The image's filesystem exported (`podman create` + `podman export`), so the test can start the
   gateway from it under `chroot --userspec` as the image's own user.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.tools import in_ci, require_tool

ROOT = Path(__file__).resolve().parent.parent.parent
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Bump when the way the base is made changes, so stale caches are not reused.
RECIPE_VERSION = "1"
CANARY = "canary-" + "9f3e1c5a7b"  # split so this file itself never matches a layer scan
BUILD_TIMEOUT = 900


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    inspect: dict[str, Any]
    history: list[dict[str, Any]]
    layers: list[Path]  # each layer's tar, from `podman save`
    rootfs: Path  # the exported filesystem
    build_log: str


def require_container_tools() -> dict[str, str]:
    """podman, debootstrap and chroot, run as root: skip locally when missing, fail in CI."""
    tools = {name: require_tool(name) for name in ("podman", "debootstrap")}
    tools["chroot"] = require_tool("/usr/sbin/chroot")
    if os.geteuid() != 0:
        message = "the container test needs root (debootstrap, chroot --userspec, podman storage)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return tools


def run(args: list[str], *, timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args[:3])} ... failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "monosign-gateway-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_key() -> str:
    recipe = f"{RECIPE_VERSION} {SUITE} {MIRROR} minbase {','.join(PACKAGES)}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def ensure_base_image(work: Path) -> str:
    """The local base image's tag; debootstrapped only when neither podman nor the cache has it."""
    key = base_key()
    tag = f"localhost/monosign-gateway-test-base:{key}"
    tarball = cache_dir() / f"debian-{SUITE}-python3-{key}.tar"
    lock_path = cache_dir() / f"{key}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building the same base
        if subprocess.run(["podman", "image", "exists", tag], check=False).returncode == 0:
            return tag
        if not tarball.is_file():
            target = work / "debootstrap"
            run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(target), MIRROR],
                timeout=BUILD_TIMEOUT)
            partial = tarball.with_suffix(f".{uuid.uuid4().hex}.partial")
            run(["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."])
            partial.rename(tarball)
            shutil.rmtree(target, ignore_errors=True)
        run(["podman", "import", str(tarball), tag])
    return tag


def build_context(work: Path) -> Path:
    """A copy of the working tree as a user has it, plus secrets that must never reach the image."""
    context = work / "context"
    shutil.copytree(
        ROOT, context,
        ignore=shutil.ignore_patterns(".git", ".venv", "*_cache", "__pycache__", "test-artifacts", "*.egg-info"),
    )
    (context / ".env").write_text(f"MONOSIGN_API_SECRET={CANARY}-dotenv\n")
    (context / "gateway" / ".env").write_text(f"MONOSIGN_API_SECRET={CANARY}-nested\n")
    (context / "secrets").mkdir(exist_ok=True)
    (context / "secrets" / "monosign_api_secret").write_text(f"{CANARY}-secretfile\n")
    (context / "tls.key").write_text(f"-----BEGIN PRIVATE KEY-----\n{CANARY}-key\n")
    return context


def build_image(work: Path, base: str) -> tuple[str, str]:
    tag = f"localhost/monosign-gateway-test:{uuid.uuid4().hex[:12]}"
    context = build_context(work)
    # --layers=false: no intermediate images are left behind in podman's storage after the test.
    # --format docker: the OCI format has no HEALTHCHECK.
    result = run(
        ["podman", "build", "--isolation", "chroot", "--format", "docker", "--layers=false", "--pull=never",
         "--build-arg", f"BASE_IMAGE={base}", "--volume", "/etc/ssl/certs:/etc/ssl/certs:ro",
         "-t", tag, "-f", str(context / "Dockerfile"), str(context)],
        timeout=BUILD_TIMEOUT,
    )
    shutil.rmtree(context, ignore_errors=True)
    return tag, result.stdout + result.stderr


def saved_layers(tag: str, work: Path) -> list[Path]:
    archive = work / "image.tar"
    run(["podman", "save", "--format", "docker-archive", "-o", str(archive), tag])
    unpacked = work / "image"
    unpacked.mkdir()
    run(["tar", "-C", str(unpacked), "-xf", str(archive)])
    archive.unlink()
    manifest = json.loads((unpacked / "manifest.json").read_text())
    return [unpacked / layer for layer in manifest[0]["Layers"]]


def exported_rootfs(tag: str, work: Path) -> Path:
    name = f"monosign-gateway-test-{uuid.uuid4().hex[:12]}"
    run(["podman", "create", "--name", name, tag])
    try:
        archive = work / "rootfs.tar"
        run(["podman", "export", "-o", str(archive), name])
    finally:
        subprocess.run(["podman", "rm", "--force", name], capture_output=True, check=False)
    rootfs = work / "rootfs"
    rootfs.mkdir()
    # tar as root keeps owners, modes and /dev nodes, as the container would see them.
    run(["tar", "--numeric-owner", "-C", str(rootfs), "-xf", str(archive)])
    archive.unlink()
    return rootfs


@contextlib.contextmanager
def built_image(work: Path) -> Iterator[BuiltImage]:
    """Build everything once; remove the image (not the cached base) afterwards."""
    require_container_tools()
    base = ensure_base_image(work)
    tag, log = build_image(work, base)
    try:
        inspect = json.loads(run(["podman", "image", "inspect", tag]).stdout)[0]
        history = json.loads(run(["podman", "history", "--no-trunc", "--format", "json", tag]).stdout)
        yield BuiltImage(tag, inspect, history, saved_layers(tag, work), exported_rootfs(tag, work), log)
    finally:
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)
