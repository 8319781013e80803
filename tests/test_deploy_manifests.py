"""The kustomize output is consistent, checked without a cluster: the worker's ScaledObject
targets the worker Deployment, beat cannot overlap, the alerts' runbook links resolve in
DEPLOYMENT.md."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy_fixtures import ROOT, anchors, service, yaml

pytestmark = pytest.mark.integration


def render(directory: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (pip install -e '.[deploy-check]')")
    out = subprocess.run([kubectl, "kustomize", str(ROOT / directory)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [obj for obj in yaml.safe_load_all(out.stdout) if obj]


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize("directory", ["deploy/base", "deploy/overlays/prod"])
def test_kustomize_scales_the_worker_deployment_on_queued_and_running_jobs(
        directory: str) -> None:
    objs = render(directory)
    scaled = find(objs, "ScaledObject", "sidecar-worker")
    target = scaled["spec"]["scaleTargetRef"]
    worker = find(objs, target.get("kind", "Deployment"), target["name"])
    assert worker["metadata"]["name"] == "sidecar-worker"
    assert "replicas" not in worker["spec"], "KEDA owns the worker count"
    assert scaled["spec"]["minReplicaCount"] >= 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    for metric in ("sidecar_queue_depth", "sidecar_calls_in_flight",
                   "sidecar_jobs_waiting_capacity"):
        assert metric in trigger["metadata"]["query"]
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 660


@pytest.mark.parametrize("directory", ["deploy/base", "deploy/overlays/prod"])
def test_kustomize_runs_the_compose_commands_once_each(directory: str) -> None:
    objs = render(directory)
    beat = find(objs, "Deployment", "sidecar-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert container(beat)["command"] == service("beat")["command"]
    flower = find(objs, "Deployment", "sidecar-flower")
    assert container(flower)["command"] == service("flower")["command"]
    # The api and worker Deployments run the images' CMD (no command of their own).
    for name in ("sidecar-api", "sidecar-worker"):
        assert "command" not in container(find(objs, "Deployment", name))
    api = container(find(objs, "Deployment", "sidecar-api"))
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    worker_probe = container(find(objs, "Deployment", "sidecar-worker"))["livenessProbe"]
    assert "inspect ping" in " ".join(worker_probe["exec"]["command"])


def test_alert_runbooks_resolve_in_deployment_md() -> None:
    objs = render("deploy/base")
    rules = find(objs, "PrometheusRule", "sidecar")["spec"]["groups"][0]["rules"]
    documented = anchors((ROOT / "DEPLOYMENT.md").read_text())
    for rule in rules:
        anchor = rule["annotations"]["runbook_url"].partition("#")[2]
        assert anchor in documented, f"{rule['alert']}: no #{anchor} in DEPLOYMENT.md"
    assert {r["alert"] for r in rules} >= {"SidecarHighErrorRate", "SidecarQueueBacklog",
                                           "SidecarUpstream429s", "SidecarNoWorkers"}
