"""docker/compose.yml and docker/kubernetes/: every setting they set is real and loads; hardening holds.

Neither Docker nor a cluster is available to the tests, so the files are checked the way the gateway
would see them: their environment is fed to the real settings loader (secret files replaced by
temporary files with the same role), their commands to the real command-line parser.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import build_parser
from gateway.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKER = ROOT / "docker"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
IMAGE_UID = 10001


def is_setting(variable: str) -> bool:
    """A setting, or NAME_FILE naming the file a setting is read from."""
    return variable in SETTING_NAMES or variable.removesuffix("_FILE") in SETTING_NAMES


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yml").read_text())
    return data


def kubernetes() -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted((DOCKER / "kubernetes").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            documents[f"{document['kind']}/{document['metadata']['name']}"] = document
    return documents


def dockerfile_user() -> str:
    match = re.search(r"^USER (\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match is not None
    return match[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    return monkeypatch


def load_with_secret_files(env: dict[str, str], secrets: dict[str, str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Load settings from `env`, each path under /run/secrets/ replaced by a file holding secrets[path]."""
    for name, value in env.items():
        if value.startswith("/run/secrets/"):
            local = tmp_path / value.removeprefix("/run/secrets/").replace("/", "_")
            local.write_text(secrets.get(value, "x" * 48))
            value = str(local)
        monkeypatch.setenv(name, value)
    return load_settings(env_file=None)


# --- compose ------------------------------------------------------------------------------------


def test_compose_sets_only_real_settings() -> None:
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}):
            assert is_setting(variable), f"{name}: {variable} is not a setting"


def test_compose_production_gateway_reads_secrets_from_files(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    data = compose()
    gateway = data["services"]["gateway"]
    environment: dict[str, str] = gateway["environment"]
    mounted = {f"/run/secrets/{name}" for name in gateway["secrets"]}
    for variable, value in environment.items():
        if variable.endswith("_FILE") and variable.removesuffix("_FILE").lower() in {
            "monosign_api_key", "monosign_api_secret", "gateway_session_secret", "gateway_redis_url",
        }:
            assert value in mounted, f"{variable} points at {value}, which is not mounted"
    assert {"MONOSIGN_API_SECRET", "MONOSIGN_API_KEY", "GATEWAY_SESSION_SECRET", "GATEWAY_REDIS_URL"}.isdisjoint(
        environment
    )
    for secret in gateway["secrets"]:
        assert secret in data["secrets"]
    # With the operator's gateway.env settings (the required ones), the environment loads.
    settings = load_with_secret_files(
        {**environment, "GATEWAY_PUBLIC_URL": "https://mail.example.com",
         "GATEWAY_UPSTREAM_URL": "https://exchange.corp.example", "MONOSIGN_API_URL": "https://monosign.example.com"},
        {"/run/secrets/gateway_redis_url": "redis://:pw@redis:6379/0"}, tmp_path, clean_env,
    )
    assert settings.gateway_session_store == "redis"
    assert settings.monosign_api_secret.get_secret_value() == "x" * 48


def test_compose_demo_loads_and_its_commands_parse(clean_env: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    for variable, value in services["gateway-demo"]["environment"].items():
        clean_env.setenv(variable, str(value))
    settings = load_settings(env_file=None)
    assert settings.gateway_upstream_url == "http://owa-sim:8443"
    parser = build_parser()
    owa = parser.parse_args(services["owa-sim"]["command"])
    monosign = parser.parse_args(services["monosign-sim"]["command"])
    assert owa.listen.endswith(":8443")
    assert monosign.listen.endswith(":9001")
    assert settings.monosign_api_url == f"http://monosign-sim:{monosign.listen.rsplit(':', 1)[1]}"


def test_compose_services_are_hardened() -> None:
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("monosign-gateway"):
            assert service["read_only"] is True, name
            assert service["cap_drop"] == ["ALL"], name
            assert "no-new-privileges:true" in service["security_opt"], name
            grace = float(str(service["stop_grace_period"]).removesuffix("s"))
            assert grace > Settings.model_fields["gateway_shutdown_grace"].default, name
    assert compose()["networks"]["back"]["internal"] is True
    assert "ports" not in compose()["services"]["redis"]


# --- Kubernetes ---------------------------------------------------------------------------------


def test_kubernetes_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((DOCKER / "kubernetes" / "kustomization.yaml").read_text())
    files = {path.name for path in (DOCKER / "kubernetes").glob("*.yaml")}
    assert set(kustomization["resources"]) == files - {"kustomization.yaml", "secret.example.yaml"}


def test_kubernetes_deployment(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    documents = kubernetes()
    deployment = documents["Deployment/monosign-gateway"]
    config = documents["ConfigMap/monosign-gateway"]["data"]
    secret = documents["Secret/monosign-gateway"]["stringData"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] >= 2

    # Non-root, as the image's own user, read-only root filesystem.
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == dockerfile_user()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # The pod outlives the drain: the delay (readiness 503, still serving) plus the grace period.
    shutdown = float(config["GATEWAY_SHUTDOWN_DELAY"]) + float(config["GATEWAY_SHUTDOWN_GRACE"])
    assert pod["terminationGracePeriodSeconds"] > shutdown
    assert "lifecycle" not in container, "GATEWAY_SHUTDOWN_DELAY is the preStop pause"

    # The environment the pod gets loads into valid settings (secrets as files from the Secret).
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    secret_files = {f"{mounts['secrets']}/{key}": value for key, value in secret.items()}
    env = {**config, **{item["name"]: item["value"] for item in container["env"]}}
    for variable, value in env.items():
        assert is_setting(variable), variable
        if variable.endswith("_FILE") and value.startswith(mounts["secrets"]):
            assert value in secret_files, f"{variable}: {value} is not a key of the Secret"
    assert not {"MONOSIGN_API_SECRET", "GATEWAY_SESSION_SECRET", "GATEWAY_REDIS_URL"} & set(env)
    settings = load_with_secret_files(env, secret_files, tmp_path, clean_env)
    assert settings.gateway_session_store == "redis"

    # Probes on the admin listener: liveness /healthz, readiness /readyz, on the port it listens on.
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["admin"] == settings.gateway_admin_listen.port
    assert ports["https"] == settings.gateway_listen.port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert settings.gateway_tls_cert_file is not None


def test_kubernetes_service_and_policies_match_the_deployment() -> None:
    documents = kubernetes()
    labels = documents["Deployment/monosign-gateway"]["spec"]["template"]["metadata"]["labels"]
    service = documents["Service/monosign-gateway"]["spec"]
    assert service["selector"] == labels
    assert [port["targetPort"] for port in service["ports"]] == ["https"]  # never the admin port
    assert documents["PodDisruptionBudget/monosign-gateway"]["spec"]["selector"]["matchLabels"] == labels
    assert documents["NetworkPolicy/monosign-gateway"]["spec"]["podSelector"]["matchLabels"] == labels
    namespace = documents["Namespace/monosign-gateway"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
