"""The Kubernetes base and the compose file say what docs/deploy.md promises: probes on /healthz
and /readyz, non-root read-only containers with limits, every credential a mounted file, a
migration Job, a PodDisruptionBudget and NetworkPolicy per workload. Schema validation of every
object is `make ship-manifests` (kubernetes-validate, check-jsonschema)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|SKEY|SIGNING_KEY|DATABASE__URL", re.I)


def _render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("kubectl is missing (.ci/run installs it)", pytrace=False)
        pytest.skip("kubectl is missing (set CI=true to make this a failure)")
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True,
                         text=True, timeout=60).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in _render(DEPLOY / "kubernetes")}


def _pods(base: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: o["spec"]["template"]["spec"] for (kind, name), o in base.items()
            if kind in ("Deployment", "Job")}  # fmt: skip


def test_the_base_has_every_workload_and_what_guards_it(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert set(_pods(base)) == {
        "securitybot-serve",
        "securitybot-aer-worker",
        "securitybot-migrate",
    }
    assert base[("Deployment", "securitybot-serve")]["spec"]["replicas"] == 2
    assert base[("Job", "securitybot-migrate")]["spec"]["template"]["spec"]["containers"][0][
        "args"
    ] == ["migrate"]
    assert {n for k, n in base if k == "PodDisruptionBudget"} == {
        "securitybot-serve", "securitybot-aer-worker"}  # fmt: skip
    service = base[("Service", "securitybot")]
    serve_labels = base[("Deployment", "securitybot-serve")]["spec"]["template"]["metadata"]
    assert service["spec"]["selector"].items() <= serve_labels["labels"].items()
    covered = [o["spec"]["podSelector"] for (k, _), o in base.items() if k == "NetworkPolicy"]
    for (kind, name), o in base.items():
        if kind in ("Deployment", "Job"):
            labels = o["spec"]["template"]["metadata"]["labels"]
            assert any(_selects(sel, labels) for sel in covered), f"{name}: no NetworkPolicy"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


def test_serve_is_alive_on_healthz_ready_on_readyz_and_drains_within_its_grace(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    pod = _pods(base)["securitybot-serve"]
    [serve] = pod["containers"]
    assert serve["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/readyz"
    settings = base[("ConfigMap", "securitybot-settings")]["data"]
    grace = float(settings["SECURITYBOT_SERVER__SHUTDOWN_GRACE"].rstrip("s"))
    pre_stop = int(serve["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pre_stop + grace < pod["terminationGracePeriodSeconds"]


def test_every_container_is_non_root_read_only_and_limited(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for name, pod in _pods(base).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert (sc["readOnlyRootFilesystem"], sc["allowPrivilegeEscalation"]) == (True, False)
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
            assert {"cpu", "memory"} <= c["resources"]["limits"].keys()


def test_every_credential_is_a_file_from_a_mounted_secret(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    settings = base[("ConfigMap", "securitybot-settings")]["data"]
    assert not [k for k in settings if SECRETISH.search(k)], "credentials in the ConfigMap"
    for name, pod in _pods(base).items():
        secret_dirs = {
            m["mountPath"]
            for c in pod["containers"]
            for m in c["volumeMounts"]
            if any(v["name"] == m["name"] and "secret" in v for v in pod["volumes"])
        }
        for c in pod["containers"]:
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert "SECURITYBOT_DATABASE__URL_FILE" in env, name
            for key, value in env.items():
                if SECRETISH.search(key):
                    assert key.endswith("_FILE"), f"{name}: {key} is not read from a file"
                    assert str(Path(value).parent) in secret_dirs, f"{name}: {key}={value}"
            assert str(Path(env["SECURITYBOT_CONFIG"]).parent) in secret_dirs, name


def test_the_example_overlay_makes_the_secrets_the_base_expects() -> None:
    objects = _render(DEPLOY / "kubernetes" / "example")
    secrets = {o["metadata"]["name"].rsplit("-", 1)[0]: o for o in objects if o["kind"] == "Secret"}
    assert set(secrets) == {"securitybot-credentials", "securitybot-config"}
    serve = next(o for o in objects if o["metadata"]["name"] == "securitybot-serve")
    [c] = serve["spec"]["template"]["spec"]["containers"]
    wanted = {Path(e["value"]).name for e in c["env"] if e["name"].endswith("_FILE")}
    assert wanted <= set(secrets["securitybot-credentials"]["data"])
    monitor = next(o for o in objects if o["kind"] == "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


def test_compose_runs_every_part_with_secrets_as_files() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "nats", "migrate", "serve", "aer-worker"}
    assert "--jetstream" in services["nats"]["command"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["serve"]["deploy"]["replicas"] == 2
    assert services["aer-worker"]["deploy"]["replicas"] == 2
    for name in ("serve", "aer-worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRETISH.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} is not read from a file"
                assert value.removeprefix("/run/secrets/") in service["secrets"], (name, key)
    for secret in compose["secrets"].values():
        assert (DEPLOY / secret["file"]).is_file(), secret


def test_workers_serve_metrics_that_prometheus_may_scrape(
    base: dict[tuple[str, str], dict[str, Any]],
) -> None:
    [worker] = _pods(base)["securitybot-aer-worker"]["containers"]
    assert worker["args"][-2:] == ["--metrics-port", "9100"]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in worker["ports"]
    backend = base[("NetworkPolicy", "securitybot-backend")]["spec"]
    assert backend["ingress"] == [{"ports": [{"port": 9100, "protocol": "TCP"}]}]
    monitors = {(o["kind"], o["metadata"]["name"]): o
                for o in _render(DEPLOY / "kubernetes" / "servicemonitor")}  # fmt: skip
    pod_monitor = monitors[("PodMonitor", "securitybot-aer-worker")]["spec"]
    assert pod_monitor["podMetricsEndpoints"][0]["port"] == "metrics"
