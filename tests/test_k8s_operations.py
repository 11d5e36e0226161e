"""k8s/: what bites an operator after the apply: volume ownership at pod start, probes that kill a
server still starting, and a two-replica service that a node drain takes down whole. Checked on
the rendered manifests as data; each rule is also shown catching an error planted into them.

Tools as in tests/test_k8s.py (kubectl from .venv-tools; skipped outside CI when missing).
"""
from __future__ import annotations

import copy
import re

import pytest

import k8s_render as kr

OVERLAYS = ("base", "dev", "prod")
CORE_WORKLOADS = {"Deployment", "StatefulSet"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: kr.render(path) for name, path in kr.TARGETS.items()}


# --- volume ownership ----------------------------------------------------------------------

def fs_group_findings(docs: list[dict]) -> list[str]:
    """A pod that sets fsGroup sets fsGroupChangePolicy OnRootMismatch: with the default
    (Always) the kubelet chowns and chmods every file of each volume at every pod start, where
    the CSI driver applies fsGroup: on the shared volume, every checkpoint of every trial, at
    each autoscaled Ray worker's start, under trials still writing."""
    found = []
    for doc in docs:
        for where, template, _ in kr.pod_templates(doc):
            sc = template.get("spec", {}).get("securityContext", {})
            if "fsGroup" in sc and sc.get("fsGroupChangePolicy") != "OnRootMismatch":
                found.append(f"{where}: fsGroup without fsGroupChangePolicy OnRootMismatch")
    return found


def test_pods_with_an_fs_group_change_ownership_only_on_mismatch(rendered):
    for name, docs in rendered.items():
        assert fs_group_findings(docs) == [], name
    # the rule reached the pods that mount the shared volume
    where = {w for d in rendered["base"] for w, t, _ in kr.pod_templates(d)
             if any(v.get("persistentVolumeClaim", {}).get("claimName") == "ptv2-shared"
                    for v in t["spec"].get("volumes", []))}
    assert where == {"RayCluster/ptv2-ray/head", "RayCluster/ptv2-ray/cpu", "RayCluster/ptv2-ray/gpu"}


def test_fs_group_rule_catches_a_planted_default(rendered):
    docs = copy.deepcopy(rendered["dev"])
    kr.find(docs, "RayCluster")["spec"]["workerGroupSpecs"][1]["template"]["spec"]["securityContext"].pop(
        "fsGroupChangePolicy")
    assert fs_group_findings(docs) == ["RayCluster/ptv2-ray/gpu: fsGroup without fsGroupChangePolicy OnRootMismatch"]


# --- probes --------------------------------------------------------------------------------

STARTUP_WINDOW_S = 300  # a first start (schema creation, initdb) or a recovery may take minutes


def _probe_window(probe: dict) -> int:
    """Seconds a probe lets a container fail before the kubelet acts (Kubernetes' defaults)."""
    return probe.get("initialDelaySeconds", 0) + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)


def probe_findings(docs: list[dict]) -> list[str]:
    """Every server container of a Deployment or StatefulSet that has a liveness probe also has a
    startup probe allowing STARTUP_WINDOW_S, so a slow first start or a recovery is not killed
    and begun again (the kubelet runs liveness only after startup has passed); and every named
    probe port is one the container declares."""
    found = []
    for doc in docs:
        if doc["kind"] not in CORE_WORKLOADS:
            continue
        for where, c, _ in kr.containers(doc):
            if "livenessProbe" in c:
                startup = c.get("startupProbe")
                if startup is None:
                    found.append(f"{where}: liveness probe without a startup probe")
                elif _probe_window(startup) < STARTUP_WINDOW_S:
                    found.append(f"{where}: startup probe allows {_probe_window(startup)} s < {STARTUP_WINDOW_S} s")
            names = {p.get("name") for p in c.get("ports", [])}
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                port = c.get(kind, {}).get("httpGet", c.get(kind, {}).get("tcpSocket", {})).get("port")
                if isinstance(port, str) and port not in names:
                    found.append(f"{where}: {kind} on port {port!r}, which the container does not declare")
    return found


def test_servers_get_time_to_start_before_liveness_counts(rendered):
    for name in OVERLAYS:
        assert probe_findings(rendered[name]) == [], name
    postgres = kr.find(rendered["base"], "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
    assert postgres["startupProbe"]["exec"] == postgres["livenessProbe"]["exec"]


@pytest.mark.parametrize("plant, expect", [
    (lambda c: c.pop("startupProbe"), "postgres/postgres: liveness probe without a startup probe"),
    (lambda c: c["startupProbe"].update(failureThreshold=3), "postgres/postgres: startup probe allows 30 s"),
])
def test_probe_rule_catches_planted_errors(rendered, plant, expect):
    docs = copy.deepcopy(rendered["prod"])
    plant(kr.find(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0])
    assert any(expect in f for f in probe_findings(docs)), probe_findings(docs)


def test_probe_rule_catches_a_probe_on_an_undeclared_port(rendered):
    docs = copy.deepcopy(rendered["dev"])
    mlflow = kr.find(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    mlflow["readinessProbe"]["httpGet"]["port"] = "metrics"
    assert probe_findings(docs) == ["Deployment/mlflow/mlflow: readinessProbe on port 'metrics', which the container does not declare"]


# --- replicas that survive a node drain ----------------------------------------------------

def disruption_findings(docs: list[dict]) -> list[str]:
    """A Deployment of several replicas has a PodDisruptionBudget over its pods that keeps one
    serving and still lets a drain evict the rest, and spreads its pods over nodes; a single
    replica has no budget that would block every drain of its node."""
    found = []
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for doc in docs:
        if doc["kind"] not in CORE_WORKLOADS:
            continue
        where, replicas = f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"].get("replicas", 1)
        labels = doc["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if kr.selector_matches(b["spec"]["selector"], labels)]
        if replicas > 1:
            if len(mine) != 1:
                found.append(f"{where}: {replicas} replicas and {len(mine)} PodDisruptionBudgets")
            else:
                spec = mine[0]["spec"]
                available = spec.get("minAvailable", replicas - spec.get("maxUnavailable", replicas))
                if not 1 <= available < replicas:
                    found.append(f"{where}: budget keeps {available} of {replicas} replicas")
            pod = doc["spec"]["template"]["spec"]
            spread = [c for c in pod.get("topologySpreadConstraints", [])
                      if c["topologyKey"] == "kubernetes.io/hostname" and kr.selector_matches(c["labelSelector"], labels)]
            if not spread:
                found.append(f"{where}: {replicas} replicas not spread over nodes")
        elif any(b["spec"].get("minAvailable", 0) >= 1 or b["spec"].get("maxUnavailable") == 0 for b in mine):
            found.append(f"{where}: one replica and a budget that blocks every drain")
    return found


def test_replicated_servers_survive_a_node_drain(rendered):
    for name in OVERLAYS:
        assert disruption_findings(rendered[name]) == [], name
    assert kr.find(rendered["prod"], "Deployment", "mlflow")["spec"]["replicas"] == 2
    kr.find(rendered["prod"], "PodDisruptionBudget", "mlflow")


@pytest.mark.parametrize("plant, expect", [
    (lambda docs: docs.remove(kr.find(docs, "PodDisruptionBudget", "mlflow")), "2 replicas and 0 PodDisruptionBudgets"),
    (lambda docs: kr.find(docs, "PodDisruptionBudget", "mlflow")["spec"].update(minAvailable=2), "keeps 2 of 2"),
    (lambda docs: kr.find(docs, "Deployment", "mlflow")["spec"]["template"]["spec"].pop("topologySpreadConstraints"),
     "not spread over nodes"),
])
def test_disruption_rule_catches_planted_errors(rendered, plant, expect):
    docs = copy.deepcopy(rendered["prod"])
    plant(docs)
    assert any(expect in f for f in disruption_findings(docs)), disruption_findings(docs)


def test_disruption_rule_catches_a_budget_on_a_single_replica(rendered):
    docs = copy.deepcopy(rendered["dev"])
    docs.append(copy.deepcopy(kr.find(rendered["prod"], "PodDisruptionBudget", "mlflow")))
    assert disruption_findings(docs) == ["Deployment/mlflow: one replica and a budget that blocks every drain"]


# --- upgrades reach the Ray pods -----------------------------------------------------------

def upgrade_findings(docs: list[dict]) -> list[str]:
    """Each RayCluster recreates its pods when its spec changes. KubeRay otherwise leaves the
    head and running workers as they are: after an image bump the autoscaler's new workers run
    the new image beside a head on the old one."""
    return [f"RayCluster/{d['metadata']['name']}: upgradeStrategy {d['spec'].get('upgradeStrategy')}, "
            "so a changed spec never reaches the running Ray pods"
            for d in docs if d["kind"] == "RayCluster"
            and d["spec"].get("upgradeStrategy", {}).get("type") != "Recreate"]


def test_an_applied_change_reaches_every_ray_pod(rendered):
    for name in OVERLAYS:
        assert upgrade_findings(rendered[name]) == [], name
        assert kr.validate_custom(kr.find(rendered[name], "RayCluster")) == [], name
    # the operator is told what an apply then does to a running search
    upgrade = kr.ROOT.joinpath("docs", "deploy.md").read_text().split("- **Upgrade**")[1].split("\n- **")[0]
    assert "upgradeStrategy" in upgrade and "--resume" in upgrade, upgrade


def test_upgrade_rule_catches_a_cluster_that_keeps_its_pods(rendered):
    docs = copy.deepcopy(rendered["prod"])
    kr.find(docs, "RayCluster")["spec"].pop("upgradeStrategy")
    assert upgrade_findings(docs) == [
        "RayCluster/ptv2-ray: upgradeStrategy None, so a changed spec never reaches the running Ray pods"]


def test_rotating_a_secret_names_a_restart_for_every_pod_reading_it(rendered):
    """Pods read Secrets at their start: the rotation step restarts each long-running reader with
    a command that works on it (`rollout restart` does not apply to KubeRay's pods)."""
    rotate = kr.ROOT.joinpath("docs", "deploy.md").read_text().split("- **Rotate a password**")[1].split("\n- **")[0]
    rotate = " ".join(rotate.split())
    cluster = kr.find(rendered["base"], "RayCluster")["metadata"]["name"]
    assert "rollout restart deployment/mlflow" in rotate
    assert f"delete pod -l ray.io/cluster={cluster}" in rotate, rotate


# --- scratch space -------------------------------------------------------------------------

def scratch_findings(docs: list[dict]) -> list[str]:
    """Every emptyDir has a sizeLimit. One on the node's disk without it may grow until the node
    is under disk pressure, which evicts other pods and stops scheduling there; with it, the
    kubelet evicts only the pod that overran. (A memory-backed one counts against the
    container's memory limit, which bounds it, but is sized too.)"""
    return [f"{where}: emptyDir {v['name']} has no sizeLimit"
            for doc in docs for where, template, _ in kr.pod_templates(doc)
            for v in template.get("spec", {}).get("volumes", [])
            if "emptyDir" in v and "sizeLimit" not in (v["emptyDir"] or {})]


def test_every_scratch_volume_is_bounded(rendered):
    for name, docs in rendered.items():
        assert scratch_findings(docs) == [], name
    head = kr.find(rendered["prod"], "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    assert {v["name"] for v in head["volumes"] if "emptyDir" in v} == {"tmp", "shm"}


def test_scratch_rule_catches_an_unbounded_volume(rendered):
    docs = copy.deepcopy(rendered["rayjob"])
    job = kr.find(docs, "RayJob")
    job["spec"]["submitterPodTemplate"]["spec"]["volumes"][0]["emptyDir"] = {}
    assert scratch_findings(docs) == ["RayJob/ptv2-search/submitter: emptyDir tmp has no sizeLimit"]


# --- Services reach their pods; Ray runs the image's version --------------------------------

def service_findings(docs: list[dict]) -> list[str]:
    """Each Service selects the pods of exactly one workload, and each of its ports targets a port
    those pods declare (a mismatch leaves the Service without endpoints: connections refused)."""
    found = []
    workloads = [(f"{d['kind']}/{d['metadata']['name']}", t) for d in docs if d["kind"] in CORE_WORKLOADS
                 for _, t, _ in kr.pod_templates(d)]
    for svc in (d for d in docs if d["kind"] == "Service"):
        name = f"Service/{svc['metadata']['name']}"
        hits = [(w, t) for w, t in workloads
                if kr.selector_matches({"matchLabels": svc["spec"].get("selector", {})}, t["metadata"].get("labels", {}))]
        if len(hits) != 1:
            found.append(f"{name}: selects {[w for w, _ in hits]}")
            continue
        ports = [p for c in hits[0][1]["spec"]["containers"] for p in c.get("ports", [])]
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if not any(target in (p.get("name"), p["containerPort"]) for p in ports):
                found.append(f"{name}: port {port['port']} targets {target!r}, which {hits[0][0]} does not declare")
    return found


def test_every_service_reaches_the_pods_it_names(rendered):
    for name in OVERLAYS:
        assert service_findings(rendered[name]) == [], name


@pytest.mark.parametrize("plant, expect", [
    (lambda docs: kr.find(docs, "Service", "postgres")["spec"]["selector"].update({"app.kubernetes.io/name": "postgresql"}),
     "Service/postgres: selects []"),
    (lambda docs: kr.find(docs, "Service", "mlflow")["spec"]["ports"][0].update(targetPort="web"),
     "Service/mlflow: port 5000 targets 'web'"),
])
def test_service_rule_catches_planted_mismatches(rendered, plant, expect):
    docs = copy.deepcopy(rendered["dev"])
    plant(docs)
    assert any(expect in f for f in service_findings(docs)), service_findings(docs)


def test_the_ray_cluster_declares_the_ray_version_the_image_installs(rendered):
    """KubeRay picks features (autoscaler, auth, probes) by rayVersion: it is the Ray the image
    installs (constraints.txt, the Dockerfile's ray[default] pin)."""
    pins = dict(line.split("==", 1) for line in (kr.ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for name in OVERLAYS:
        assert kr.find(rendered[name], "RayCluster")["spec"]["rayVersion"] == pins["ray"], name


# --- eviction order ------------------------------------------------------------------------

def _memory(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity)


def eviction_findings(docs: list[dict]) -> list[str]:
    """The pods whose loss stops everything (the database, the Ray head) request the memory they
    may use: under node memory pressure the kubelet evicts pods above their request first, and
    these then never are."""
    found = []
    for doc in docs:
        for where, c, _ in kr.containers(doc):
            if where in {"StatefulSet/postgres/postgres", "RayCluster/ptv2-ray/head/ray-head"}:
                res = c.get("resources", {})
                req, lim = res.get("requests", {}).get("memory"), res.get("limits", {}).get("memory")
                if req is None or lim is None or _memory(req) != _memory(lim):
                    found.append(f"{where}: memory request {req} below its limit {lim}")
    return found


def test_the_database_and_the_ray_head_are_evicted_last(rendered):
    for name in OVERLAYS:
        assert eviction_findings(rendered[name]) == [], name
        assert len([w for d in rendered[name] for w, _, _ in kr.containers(d)
                    if w in {"StatefulSet/postgres/postgres", "RayCluster/ptv2-ray/head/ray-head"}]) == 2


def test_eviction_rule_catches_a_burstable_database(rendered):
    docs = copy.deepcopy(rendered["prod"])
    kr.find(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "2Gi"
    assert eviction_findings(docs) == ["StatefulSet/postgres/postgres: memory request 2Gi below its limit 4Gi"]


# --- the documented removal ----------------------------------------------------------------

ALL = {"Pod", "Service", "Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job", "CronJob",
       "HorizontalPodAutoscaler"}  # what `kubectl get all` covers
KEPT = {"Namespace", "PersistentVolumeClaim"}  # the doc's removal keeps the data and the namespace


def test_the_documented_removal_covers_every_kind_it_applies(rendered):
    text = " ".join(kr.ROOT.joinpath("docs", "deploy.md").read_text().split("- **Remove**")[1].split("\n- **")[0].split())
    command = re.search(r"kubectl -n ptv2 delete (\S+) -l app\.kubernetes\.io/part-of=ptv2", text)
    assert command, text
    names = set(command.group(1).split(","))
    covered = (ALL if "all" in names else set()) | {k for d in rendered.values() for k in (x["kind"] for x in d)
                                                    if k.lower() in names}
    applied = {d["kind"] for docs in rendered.values() for d in docs}
    assert applied - KEPT - covered == set()
    # and every kind it applies carries the label the command selects on
    for docs in rendered.values():
        for d in docs:
            if d["kind"] not in KEPT:
                assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ptv2", d["metadata"]["name"]
