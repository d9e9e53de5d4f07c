"""The container image, built for real from the project's Dockerfile, then started from its filesystem.

Containers cannot be started on the CI machines (`podman run` does not work there), but images can be
built: see tests/container/image.py for how. The gateway is then run from the exported filesystem
under `chroot --userspec` as the image's user, with the image's own entrypoint, command, working
directory and PATH, against an upstream on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import stat
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.container.image import CANARY, BuiltImage, built_image

pytestmark = [pytest.mark.container, pytest.mark.slow]

IMAGE_USER = "10001:10001"
LOGON_PAGE = b"<html><body>Exchange logon page (test upstream)</body></html>"
SECRET_VALUE = "s3cret-from-a-mounted-file"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    with built_image(tmp_path_factory.mktemp("image")) as built:
        yield built


# --- Metadata -----------------------------------------------------------------------------------


def test_metadata_runs_as_non_root_with_healthcheck_ports_and_exec_entrypoint(image: BuiltImage) -> None:
    config = image.inspect["Config"]
    assert config["User"] == IMAGE_USER
    uid, gid = (int(part) for part in config["User"].split(":"))
    assert uid != 0
    assert gid != 0
    assert config["Entrypoint"] == ["monosign-gateway"]
    assert config["Cmd"] == ["serve"]
    assert config.get("StopSignal") == "SIGTERM"
    assert set(config["ExposedPorts"]) == {"8080/tcp", "9090/tcp"}
    healthcheck = image.inspect["Healthcheck"]
    assert healthcheck["Test"][0] == "CMD"  # exec form: no shell needed in the image
    assert healthcheck["Test"][-1].endswith("healthcheck.py")
    assert healthcheck["Interval"] > 0
    assert healthcheck["Retries"] >= 1
    # Configuration comes from the environment at run time; the image sets none of it.
    names = [entry.split("=", 1)[0] for entry in config["Env"]]
    assert not [name for name in names if name.startswith(("MONOSIGN_", "GATEWAY_"))]


def test_no_secret_or_env_file_in_any_layer_or_history(image: BuiltImage) -> None:
    for entry in image.history:
        created_by = entry.get("CreatedBy") or entry.get("created_by") or ""
        assert CANARY not in created_by
        assert "MONOSIGN_" not in created_by
    found: list[str] = []
    for layer in image.layers:
        with tarfile.open(layer) as tar:
            for member in tar:
                name = member.name.rstrip("/")
                base = name.rsplit("/", 1)[-1]
                if base == ".env" or base.endswith(".key") or "/secrets/" in f"/{name}/":
                    found.append(f"{layer.name}: {name}")
                if member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    tail = b""
                    while chunk := handle.read(1 << 20):
                        if CANARY.encode() in tail + chunk:
                            found.append(f"{layer.name}: {name} holds a planted secret")
                            break
                        tail = chunk[-64:]
    assert found == []


def test_filesystem_is_clean_and_not_writable_by_the_gateway_user(image: BuiltImage) -> None:
    root = image.rootfs
    venv = root / "opt" / "monosign-gateway"
    assert (venv / "bin" / "monosign-gateway").is_file()
    assert (venv / "healthcheck.py").is_file()
    # The build tools stay in the build stage.
    assert not (venv / "bin" / "pip").exists()
    assert not (root / "opt" / "build").exists()
    assert not (root / "src").exists()
    # The working directory is empty: no .env is read unless an operator mounts one.
    assert list((root / "srv" / "monosign-gateway").iterdir()) == []
    uid = int(IMAGE_USER.split(":")[0])
    writable: list[str] = []
    for top in ("opt", "srv", "etc", "usr"):
        for directory, dirs, files in os.walk(root / top):
            for name in (*dirs, *files):
                info = os.lstat(os.path.join(directory, name))
                if stat.S_ISLNK(info.st_mode):
                    continue
                if info.st_uid == uid or info.st_mode & stat.S_IWOTH:
                    writable.append(os.path.relpath(os.path.join(directory, name), root))
    assert writable == []


# --- Running it ---------------------------------------------------------------------------------


class Upstream(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.paths: list[str] = []


class UpstreamHandler(http.server.BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path.lower().startswith("/owa/auth/logon.aspx"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(LOGON_PAGE)))
            self.end_headers()
            self.wfile.write(LOGON_PAGE)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def get(url: str) -> tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def image_command(image: BuiltImage, *command: str) -> list[str]:
    """Run `command` in the image's filesystem as its user, from its working directory."""
    config = image.inspect["Config"]
    return ["/usr/sbin/chroot", f"--userspec={config['User']}", str(image.rootfs),
            "/usr/bin/env", f"--chdir={config['WorkingDir']}", *command]


def image_env(image: BuiltImage, **settings: str) -> dict[str, str]:
    env = dict(entry.split("=", 1) for entry in image.inspect["Config"]["Env"])
    return {**env, **settings}


def test_gateway_runs_from_the_image_as_its_user(image: BuiltImage) -> None:
    upstream = Upstream()
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    secrets = image.rootfs / "run" / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    secret_file = secrets / "monosign_api_secret"
    secret_file.write_text(SECRET_VALUE)
    os.chown(secret_file, 10001, 10001)
    secret_file.chmod(0o400)

    port, admin_port = free_port(), free_port()
    env = image_env(
        image,
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_ADMIN_LISTEN=f"127.0.0.1:{admin_port}",
        GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        GATEWAY_UPSTREAM_URL=f"http://127.0.0.1:{upstream.server_address[1]}",
        MONOSIGN_API_URL=f"http://127.0.0.1:{free_port()}",
        MONOSIGN_API_KEY="container-test-app-id",
        MONOSIGN_API_SECRET_FILE="/run/secrets/monosign_api_secret",
    )
    config = image.inspect["Config"]
    process = subprocess.Popen(image_command(image, *config["Entrypoint"], *config["Cmd"]), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    healthcheck = image_command(image, *image.inspect["Healthcheck"]["Test"][1:])
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the gateway exited with {process.returncode}:\n{out.decode()}\n{err.decode()}")
            try:
                status, _ = get(f"http://127.0.0.1:{admin_port}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the gateway did not answer /healthz within 30 s"
            time.sleep(0.2)

        # It runs as the image's user, not root.
        status_lines = Path(f"/proc/{process.pid}/status").read_text().splitlines()
        uids = next(line for line in status_lines if line.startswith("Uid:")).split()[1:]
        assert set(uids) == {"10001"}

        # The image's HEALTHCHECK command succeeds against the running gateway.
        assert subprocess.run(healthcheck, env=env, capture_output=True, timeout=30).returncode == 0

        # owa-public is forwarded without a session ...
        assert get(f"http://127.0.0.1:{port}/owa/auth/logon.aspx") == (200, LOGON_PAGE)
        assert "/owa/auth/logon.aspx" in upstream.paths
        # ... the OWA application is not: nothing reaches Exchange before MFA.
        status, _ = get(f"http://127.0.0.1:{port}/owa/")
        assert status != 200
        assert "/owa/" not in upstream.paths

        # SIGTERM (what `docker stop` sends to the exec-form entrypoint) ends it cleanly.
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=45)
        assert process.returncode == 0, err.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        upstream.shutdown()
        upstream.server_close()

    # Logs are JSON lines on stdout, and never carry the secret read from the file.
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert any(event.get("event") == "gateway_started" for event in events)
    assert any(event.get("path") == "/owa/auth/logon.aspx" for event in events)
    assert SECRET_VALUE not in out.decode() + err.decode()
    # Stopped: the healthcheck reports it.
    assert subprocess.run(healthcheck, env=env, capture_output=True, timeout=30).returncode == 1
