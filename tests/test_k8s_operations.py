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
