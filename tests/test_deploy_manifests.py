"""The kustomize output is consistent, checked without a cluster: the worker's ScaledObject
targets the worker Deployment, beat cannot overlap, the alerts' runbook links resolve in
DEPLOYMENT.md; the NetworkPolicies let each component reach only its peers; the API pod holds
keys but no Claude key, and every component logs in to Redis as its own user."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass, field
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
                                           "SidecarUpstream429s", "SidecarNoWorkers",
                                           "SidecarNoLiveWorkers"}


# --- NetworkPolicies, evaluated as a CNI would --------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """A pod (in Sidecar's namespace when `namespace` is None) or an address outside."""

    labels: dict[str, str] = field(default_factory=dict)
    namespace: dict[str, str] | None = None
    ip: str = "10.1.2.3"


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present, values = expr["key"] in labels, expr.get("values", [])
        value = labels.get(expr["key"])
        if not {"In": present and value in values, "NotIn": value not in values,
                "Exists": present, "DoesNotExist": not present}[expr["operator"]]:
            return False
    return True


def peer_matches(peer: dict[str, Any], end: Endpoint) -> bool:
    if "ipBlock" in peer:
        if end.namespace is None and end.labels:
            return False  # a pod of the cluster, not an address outside it
        block, ip = peer["ipBlock"], ipaddress.ip_address(end.ip)
        networks = [ipaddress.ip_network(block["cidr"])]
        excepted = [ipaddress.ip_network(n) for n in block.get("except", [])]
        return any(ip in n for n in networks if n.version == ip.version) and not any(
            ip in n for n in excepted if n.version == ip.version)
    if "namespaceSelector" in peer:
        if end.namespace is None or not selects(peer["namespaceSelector"], end.namespace):
            return False
    elif end.namespace is not None:
        return False
    return selects(peer.get("podSelector", {}), end.labels)


def rule_allows(rule: dict[str, Any], peers_key: str, other: Endpoint, port: int) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") == port and p.get("protocol", "TCP") == "TCP"
                         for p in ports):
        return False
    peers = rule.get(peers_key)
    return not peers or any(peer_matches(peer, other) for peer in peers)


def direction_allows(policies: list[dict[str, Any]], pod: Endpoint, other: Endpoint,
                     port: int, direction: str) -> bool:
    """Isolated pods (selected by a policy of that type) take only what a rule allows."""
    if pod.namespace is not None or not pod.labels:
        return True  # outside Sidecar's namespace: its own policies are not ours to read
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    applying = [p for p in policies if direction in p["spec"].get("policyTypes", [])
                and selects(p["spec"]["podSelector"], pod.labels)]
    return not applying or any(rule_allows(rule, peers_key, other, port)
                               for p in applying for rule in p["spec"].get(key) or [])


def connects(objs: list[dict[str, Any]], source: Endpoint, target: Endpoint, port: int) -> bool:
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    return (direction_allows(policies, source, target, port, "Egress")
            and direction_allows(policies, target, source, port, "Ingress"))


def pod(component: str) -> Endpoint:
    return Endpoint({"app.kubernetes.io/name": "sidecar", "app.kubernetes.io/component": component})


INGRESS = Endpoint({"app.kubernetes.io/name": "ingress-nginx"},
                   {"kubernetes.io/metadata.name": "ingress-nginx"})
PROMETHEUS = Endpoint({"app.kubernetes.io/name": "prometheus"},
                      {"kubernetes.io/metadata.name": "monitoring"})
DNS = Endpoint({"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"})
OTHER_POD = Endpoint({"app": "something-else"})
INTERNET = Endpoint(namespace={}, ip="160.79.104.10")
PRIVATE = Endpoint(namespace={}, ip="10.0.0.5")
SIDECAR = ("api", "worker", "beat", "flower")


@pytest.mark.parametrize("directory", ["deploy/base", "deploy/overlays/prod",
                                       "deploy/overlays/dev"])
def test_network_policies_let_each_component_reach_only_its_peers(directory: str) -> None:
    objs = render(directory)
    redis_port = 6379
    for component in SIDECAR:
        assert connects(objs, pod(component), pod("redis"), redis_port), component
        assert connects(objs, pod(component), DNS, 53), component
        assert not connects(objs, pod(component), OTHER_POD, 80), component
        assert not connects(objs, INTERNET, pod(component), 8000), component
    assert connects(objs, INGRESS, pod("api"), 8000)
    assert connects(objs, PROMETHEUS, pod("api"), 8000)
    assert connects(objs, PROMETHEUS, pod("worker"), 9100)
    assert connects(objs, pod("worker"), INTERNET, 443), "workers must reach Claude"
    # Denied: everything else, starting with any pod no policy names (default deny).
    assert not connects(objs, OTHER_POD, INTERNET, 443)
    assert not connects(objs, INGRESS, OTHER_POD, 80)
    for source in (OTHER_POD, INGRESS, PROMETHEUS, pod("simulator")):
        assert not connects(objs, source, pod("redis"), redis_port), source
    for component in ("api", "beat", "flower", "redis"):
        assert not connects(objs, pod(component), INTERNET, 443), component
    assert not connects(objs, pod("worker"), INTERNET, 80)
    assert not connects(objs, pod("worker"), PRIVATE, 443)
    assert not connects(objs, pod("api"), pod("worker"), 9100)
    assert not connects(objs, INGRESS, pod("flower"), 5555)
    assert not connects(objs, pod("redis"), DNS, 53)
    if directory.endswith("/dev"):
        assert connects(objs, pod("worker"), pod("simulator"), 8900)
        assert not connects(objs, pod("api"), pod("simulator"), 8900)


def env_of(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(deployment).get("env", [])}


@pytest.mark.parametrize("directory", ["deploy/base", "deploy/overlays/prod",
                                       "deploy/overlays/dev"])
def test_api_holds_keys_but_no_claude_key_and_each_component_its_redis_user(
        directory: str) -> None:
    objs = render(directory)
    config = next(o["data"] for o in objs if o["kind"] == "ConfigMap"
                  and o["metadata"]["name"].startswith("sidecar-config"))
    assert "REDIS_URL" not in config
    # Only the local dev overlay may run the API open.
    assert config["SIDECAR_AUTH"] == ("off" if directory.endswith("/dev") else "on")
    api = env_of(find(objs, "Deployment", "sidecar-api"))
    assert "ANTHROPIC_API_KEY" not in api
    keys = api["SIDECAR_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert keys["key"] == "SIDECAR_API_KEYS" and not keys.get("optional")
    assert api["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    for name in ("beat", "flower"):
        assert "ANTHROPIC_API_KEY" not in env_of(find(objs, "Deployment", f"sidecar-{name}"))
    assert "ANTHROPIC_API_KEY" in env_of(find(objs, "Deployment", "sidecar-worker"))
    for name in SIDECAR:
        env = env_of(find(objs, "Deployment", f"sidecar-{name}"))
        names = list(env)
        ref = env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == f"REDIS_PASSWORD_{name.upper()}"
        assert env["REDIS_URL"]["value"] == f"redis://{name}:$(REDIS_PASSWORD)@redis:6379/0"
        # Kubernetes expands $(VAR) only from variables defined before it.
        assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
    redis_pod = find(objs, "StatefulSet", "redis")["spec"]["template"]["spec"]
    (init,) = redis_pod["initContainers"]
    acl = init["command"][-1]
    assert init["command"][1].endswith("/redis-users.sh")
    args = redis_pod["containers"][0]["args"]
    assert args[args.index("--aclfile") + 1] == acl
    passwords = {e["valueFrom"]["secretKeyRef"]["key"] for e in init["env"]}
    assert {f"REDIS_PASSWORD_{n.upper()}" for n in SIDECAR} <= passwords
    probe = " ".join(redis_pod["containers"][0]["livenessProbe"]["exec"]["command"])
    assert "PONG" in probe, "redis-cli exits 0 on NOAUTH: the probe must look for PONG"
