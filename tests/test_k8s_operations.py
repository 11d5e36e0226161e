"""k8s/: what bites an operator after the apply: volume ownership at pod start, probes that kill a
server still starting, and a two-replica service that a node drain takes down whole. Checked on
the rendered manifests as data; each rule is also shown catching an error planted into them.

Tools as in tests/test_k8s.py (kubectl from .venv-tools; skipped outside CI when missing).
"""
from __future__ import annotations

import copy

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
