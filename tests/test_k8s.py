"""k8s/: each overlay renders, every manifest validates offline, the security rules and the
scan pass, and the endpoints the pipeline reads point at real objects. Each check is also shown
catching an error planted into the real rendered manifests.

Tools come from .venv-tools (requirements-tools.txt): kubectl (for `kubectl kustomize`),
kubernetes-validate and checkov. In CI a missing tool fails the tests; elsewhere they skip.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

import k8s_render as kr
from components import image

NS = "ptv2"
OVERLAYS = ("base", "dev", "prod")
CUSTOM_KINDS = {"RayCluster", "RayJob"}
PIPELINE_POD = {"pipelines.kubeflow.org/v2_component": "true"}
DEPLOY_MD = kr.ROOT / "docs" / "deploy.md"
# checkov checks that may be skipped, and where. Every skip needs its reason in the annotation
# and a comment beside it in k8s/ (test_checkov_skips_are_few_and_justified).
ALLOWED_SKIPS = {
    "CKV_K8S_43": None,  # image digest: pinned by release tag, digest set at deploy time
    "CKV_K8S_38": "ray-head",  # token mounted: the autoscaler sidecar needs it
    "CKV_K8S_35": "ray-head",  # secret in env: Optuna reads PTV2_OPTUNA_STORAGE
}


def _version() -> str:
    return tomllib.loads((kr.ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: kr.render(path) for name, path in kr.TARGETS.items()}


def _write(tmp: Path, name: str, docs: list[dict]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(kr.dump_docs(docs))
    return path


# --- rendering -----------------------------------------------------------------------------

def test_each_target_renders_into_namespace_ptv2(rendered):
    want = {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service", "StatefulSet",
            "Deployment", "RayCluster", "NetworkPolicy"}
    for name in OVERLAYS:
        kinds = {d["kind"] for d in rendered[name]}
        assert want <= kinds, f"{name} lacks {want - kinds}"
    assert {d["kind"] for d in rendered["rayjob"]} == {"RayJob", "NetworkPolicy"}
    for name, docs in rendered.items():
        for d in docs:
            if d["kind"] != "Namespace":
                assert d["metadata"].get("namespace") == NS, f"{name}: {d['kind']}/{d['metadata']['name']}"
            part_of = d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of")
            # the Kubeflow profile controller owns that label on the namespace
            assert part_of == (None if d["kind"] == "Namespace" else "ptv2"), f"{d['kind']}: {part_of}"


def test_overlays_differ_where_intended(rendered):
    dev, prod = rendered["dev"], rendered["prod"]
    dest = {n: kr.find(rendered[n], "ConfigMap", "mlflow-config")["data"]["MLFLOW_ARTIFACTS_DESTINATION"]
            for n in ("dev", "prod")}
    assert dest["dev"] == "/mlflow/artifacts" and dest["prod"].startswith("s3://")
    kr.find(dev, "PersistentVolumeClaim", "mlflow-artifacts")
    # prod keeps no artifacts on a volume; the only claim is the search's shared folder (both overlays)
    assert [d["metadata"]["name"] for d in prod if d["kind"] == "PersistentVolumeClaim"] == ["ptv2-shared"]
    kr.find(dev, "PersistentVolumeClaim", "ptv2-shared")
    mlflow = {n: kr.find(rendered[n], "Deployment", "mlflow") for n in ("dev", "prod")}
    assert mlflow["dev"]["spec"]["replicas"] == 1 and mlflow["dev"]["spec"]["strategy"]["type"] == "Recreate"
    assert mlflow["prod"]["spec"]["replicas"] == 2
    prod_volumes = {v["name"]: v for v in mlflow["prod"]["spec"]["template"]["spec"]["volumes"]}
    assert "artifacts" not in prod_volumes and prod_volumes["s3-credentials"]["secret"]["secretName"] == "ptv2-mlflow-s3"
    groups = {n: {g["groupName"]: g["maxReplicas"] for g in kr.find(rendered[n], "RayCluster")["spec"]["workerGroupSpecs"]}
              for n in ("dev", "prod")}
    assert groups == {"dev": {"cpu": 2, "gpu": 1}, "prod": {"cpu": 16, "gpu": 4}}
    for n in ("dev", "prod"):
        assert kr.find(rendered[n], "Namespace")["metadata"]["labels"]["ptv2.io/environment"] == n


def test_render_reports_a_broken_kustomization(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - ../nowhere.yaml\n")
    with pytest.raises(kr.RenderError, match="nowhere"):
        kr.render(tmp_path)


def test_a_delete_patch_is_alone_in_its_file():
    # kustomize v5.5 (kubectl 1.32, the oldest docs/deploy.md allows) panics on a
    # `$patch: delete` among several patches of one file; the tests' newer kubectl does not
    checked = 0
    for kustomization in kr.K8S.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(kustomization.read_text()).get("patches", []):
            if "path" not in entry:
                continue
            docs = [d for d in yaml.safe_load_all((kustomization.parent / entry["path"]).read_text()) if d]
            checked += 1
            if any(d.get("$patch") == "delete" for d in docs):
                assert len(docs) == 1, f"{kustomization.parent / entry['path']}: a $patch: delete among {len(docs)} patches"
    assert checked >= 3


# --- kubernetes-validate (core kinds) ------------------------------------------------------

def test_core_kinds_validate_strict(rendered, tmp_path):
    for name, docs in rendered.items():
        out = kr.kubernetes_validate(_write(tmp_path, name, docs))
        assert out.returncode == 0, f"{name}:\n{out.stdout}{out.stderr}"
        # kubernetes-validate passes a kind it has no schema for: only ours may be such kinds
        unchecked = set(re.findall(r"Couldn't find schema for kind (\w+)", out.stdout + out.stderr))
        assert unchecked == CUSTOM_KINDS & {d["kind"] for d in docs}, f"{name}: unvalidated {unchecked}"


def test_kubernetes_validate_catches_planted_errors(rendered, tmp_path):
    def planted(mutate) -> str:
        docs = copy.deepcopy(rendered["dev"])
        mutate(docs)
        out = kr.kubernetes_validate(_write(tmp_path, "planted", docs))
        assert out.returncode != 0
        return out.stdout + out.stderr

    def misspelled(docs):  # a bad field
        c = kr.find(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
        c["imagePullPolcy"] = c.pop("imagePullPolicy")

    def wrong_type(docs):
        kr.find(docs, "StatefulSet", "postgres")["spec"]["replicas"] = "one"

    def bad_enum_field(docs):
        kr.find(docs, "NetworkPolicy", "mlflow-ingress")["spec"]["ingress"][0]["from"][0]["podSelectr"] = {}

    assert "imagePullPolcy" in planted(misspelled)
    assert "replicas" in planted(wrong_type)
    assert "podSelectr" in planted(bad_enum_field)


# --- KubeRay custom resources --------------------------------------------------------------

def test_custom_resources_match_the_kuberay_crds(rendered):
    seen = 0
    for docs in rendered.values():
        for d in docs:
            if d["kind"] in CUSTOM_KINDS:
                assert kr.validate_custom(d) == []
                seen += 1
    assert seen == 4  # a RayCluster in base, dev and prod; the RayJob


@pytest.mark.parametrize("plant, expect", [
    (lambda rc: rc["spec"]["workerGroupSpecs"][0].__setitem__("maxReplicas", "four"), "maxReplicas"),
    (lambda rc: rc["spec"]["headGroupSpec"]["rayStartParams"].__setitem__("num-cpus", 0), "rayStartParams"),
    (lambda rc: rc["spec"]["headGroupSpec"].__setitem__("rayStartParam", {}), "rayStartParam"),
    (lambda rc: rc["spec"]["workerGroupSpecs"][1]["template"]["spec"]["containers"][0]["resources"]["limits"]
     .__setitem__("memory", "16 gigs"), "memory"),
    (lambda rc: rc["spec"]["authOptions"].__setitem__("mode", "password"), "mode"),
    (lambda rc: rc["spec"].pop("headGroupSpec"), "headGroupSpec"),
])
def test_crd_validation_catches_planted_raycluster_errors(rendered, plant, expect):
    rc = copy.deepcopy(kr.find(rendered["prod"], "RayCluster"))
    plant(rc)
    errors = kr.validate_custom(rc)
    assert errors and any(expect in e for e in errors), errors


def test_crd_validation_catches_planted_rayjob_errors(rendered):
    job = copy.deepcopy(kr.find(rendered["rayjob"], "RayJob"))
    job["spec"]["entrypoint"] = ["ptv2", "search"]  # a list where the CRD wants a string
    job["spec"]["submitterConfig"]["backoffLimit"] = "none"
    job["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    errors = "\n".join(kr.validate_custom(job))
    assert "spec.entrypoint: ['ptv2', 'search'] is not of type 'string'" in errors
    assert "backoffLimit" in errors and "imagePullPolcy" in errors


# words a shell passes on as they are: no operator, quote, expansion, glob or line break
_PLAIN_WORDS = re.compile(r"[\w./=:,+@%-]+( [\w./=:,+@%-]+)*")


def _entrypoint_problems(job: dict, head_mounts: dict[str, str]) -> list[str]:
    """Why a RayJob's entrypoint would not run as one `ptv2 search` on the head writing to the
    shared volume. KubeRay pastes it unquoted into `ray job submit ... -- <entrypoint>` run by
    bash in the submitter pod: after a `&&`, `;` or `|` the rest runs in the submitter."""
    entrypoint = job["spec"]["entrypoint"]
    if not _PLAIN_WORDS.fullmatch(entrypoint):
        return [f"not plain words (shell syntax would split it): {entrypoint!r}"]
    words = entrypoint.split(" ")
    if words[:2] != ["ptv2", "search"] or words.count("--out") != 1:
        return [f"not one `ptv2 search --out ...`: {entrypoint!r}"]
    out = Path(words[words.index("--out") + 1])
    # the search refuses an --out whose parent is missing; a volume's mount point always exists
    if str(out.parent) not in head_mounts.values():
        return [f"--out {out}: its parent is not a volume the head mounts ({sorted(head_mounts.values())})"]
    return []


def test_rayjob_entrypoint_is_one_search_writing_to_the_shared_volume(rendered):
    job = kr.find(rendered["rayjob"], "RayJob")
    head = kr.find(rendered["base"], "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in head["volumes"] if "persistentVolumeClaim" in v}
    shared = {name: path for name, path in mounts.items() if claims.get(name) == "ptv2-shared"}
    assert shared, mounts
    assert _entrypoint_problems(job, shared) == []
    for planted, expect in [
        ("mkdir -p /mnt/ptv2-shared/searches && ptv2 search --task trec --out /mnt/ptv2-shared/searches/trec",
         "shell syntax"),
        ("ptv2 search --task trec --out /mnt/ptv2-shared/trec; echo done", "shell syntax"),
        ("ptv2 search --task trec --out /mnt/ptv2-shared/trec | tee log", "shell syntax"),
        ("ptv2 search --task $TASK --out /mnt/ptv2-shared/trec", "shell syntax"),
        ("ptv2 search --task trec --out /mnt/ptv2-shared/searches/trec", "not a volume the head mounts"),
        ("ptv2 search --task trec --out /tmp/trec", "not a volume the head mounts"),
    ]:
        bad = copy.deepcopy(job)
        bad["spec"]["entrypoint"] = planted
        problems = _entrypoint_problems(bad, shared)
        assert problems and expect in problems[0], (planted, problems)


# --- security rules (every pod template, custom resources included) ------------------------

def test_every_container_is_non_root_read_only_and_limited(rendered):
    for name, docs in rendered.items():
        assert kr.security_findings(docs) == [], name
    # the rules reached the Ray containers, the autoscaler sidecar and the RayJob submitter
    where = [w for docs in rendered.values() for d in docs for w, _, _ in kr.containers(d)]
    assert {"RayCluster/ptv2-ray/head/autoscaler", "RayCluster/ptv2-ray/gpu/ray-worker",
            "RayJob/ptv2-search/submitter/ray-job-submitter", "Deployment/mlflow/mlflow"} <= set(where)


@pytest.mark.parametrize("plant, expect", [
    # a container running as root, in a custom resource that checkov cannot read
    (lambda docs: kr.find(docs, "RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]["securityContext"]
     .update(runAsUser=0, runAsNonRoot=False), "RayCluster/ptv2-ray/head/ray-head: may run as root"),
    (lambda docs: kr.find(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
     ["securityContext"].update(runAsNonRoot=False), "Deployment/mlflow/mlflow: may run as root"),
    (lambda docs: kr.find(docs, "RayCluster")["spec"]["autoscalerOptions"]["securityContext"]
     .update(allowPrivilegeEscalation=True), "autoscaler: allowPrivilegeEscalation"),
    (lambda docs: kr.find(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
     ["resources"].pop("limits"), "postgres/postgres: no cpu in resources.limits"),
    (lambda docs: kr.find(docs, "RayCluster")["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
     ["securityContext"].update(readOnlyRootFilesystem=False), "cpu/ray-worker: readOnlyRootFilesystem"),
])
def test_security_rules_catch_planted_errors(rendered, plant, expect):
    docs = copy.deepcopy(rendered["dev"])
    plant(docs)
    found = kr.security_findings(docs)
    assert any(expect in f for f in found), found


def test_namespace_enforces_baseline_and_warns_restricted(rendered):
    labels = kr.find(rendered["base"], "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] in {"baseline", "restricted"}
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_commented_pod_security_switch_only_stops_enforcing(rendered, overlay, tmp_path):
    """Each overlay carries, commented out, the component for Istio without its CNI (istio-init
    needs NET_ADMIN and NET_RAW, which baseline rejects): uncommented as written, it renders, the
    namespace enforces nothing while it still warns and audits at restricted, and nothing else
    changes."""
    import shutil

    shutil.copytree(kr.K8S, tmp_path / "k8s")
    kustomization = tmp_path / "k8s" / "overlays" / overlay / "kustomization.yaml"
    text = kustomization.read_text()
    switch = "# components:\n#   - ../../components/pod-security-warn\n"
    assert switch in text
    kustomization.write_text(text.replace(switch, switch.replace("# ", "").replace("#", "")))
    docs = kr.render(kustomization.parent)
    labels = kr.find(docs, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert [d for d in docs if d["kind"] != "Namespace"] == [d for d in rendered[overlay] if d["kind"] != "Namespace"]


def test_only_the_autoscaling_head_mounts_a_token(rendered):
    for docs in rendered.values():
        for d in docs:
            for where, template, _ in kr.pod_templates(d):
                spec = template["spec"]
                if where == "RayCluster/ptv2-ray/head":
                    assert d["spec"]["enableInTreeAutoscaling"] is True
                    continue
                assert spec.get("automountServiceAccountToken") is False, where
                assert spec.get("serviceAccountName") == "ptv2-service", where


def test_no_plaintext_secret_anywhere(rendered):
    for name, docs in rendered.items():
        assert kr.secret_findings(docs) == [], name
    # the sources too: comments and overlays' patches
    for path in kr.K8S.rglob("*.yaml"):
        assert not kr._URL_WITH_PASSWORD.search(path.read_text()), path


@pytest.mark.parametrize("plant, expect", [
    (lambda docs: kr.find(docs, "ConfigMap", "ptv2-endpoints")["data"].__setitem__(
        "PTV2_OPTUNA_STORAGE", "postgresql://optuna:s3cret@postgres.ptv2.svc:5432/optuna"), "URL with a password"),
    (lambda docs: docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ptv2-ray-auth"},
                               "stringData": {"auth_token": "abc"}}), "a Secret in the manifests"),
    (lambda docs: kr.find(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}), "AWS_SECRET_ACCESS_KEY has a literal value"),
])
def test_secret_check_catches_planted_secrets(rendered, plant, expect):
    docs = copy.deepcopy(rendered["prod"])
    plant(docs)
    assert any(expect in f for f in kr.secret_findings(docs))


def _exposed(docs: list[dict]) -> list[str]:
    bad = [f"Service/{d['metadata']['name']}: {d['spec'].get('type')}" for d in docs
           if d["kind"] == "Service" and d["spec"].get("type", "ClusterIP") != "ClusterIP"]
    bad += [f"RayCluster/{d['metadata']['name']}: head {d['spec']['headGroupSpec'].get('serviceType')}"
            for d in docs if d["kind"] == "RayCluster"
            and d["spec"]["headGroupSpec"].get("serviceType", "ClusterIP") != "ClusterIP"]
    bad += [f"{d['kind']}/{d['metadata']['name']}" for d in docs if d["kind"] == "Ingress"]
    return bad


def test_services_stay_inside_the_cluster(rendered):
    for docs in rendered.values():
        assert _exposed(docs) == []
    planted = copy.deepcopy(rendered["dev"])
    kr.find(planted, "Service", "mlflow")["spec"]["type"] = "LoadBalancer"
    kr.find(planted, "RayCluster")["spec"]["headGroupSpec"]["serviceType"] = "NodePort"
    assert len(_exposed(planted)) == 2


def test_rbac_is_least_privilege(rendered):
    for docs in rendered.values():
        assert kr.rbac_findings(docs, NS) == []
    role = kr.find(rendered["base"], "Role", "ptv2-pipeline")
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "create", "patch"}, "the pipeline's role never lists, watches or deletes"
    binding = kr.find(rendered["base"], "RoleBinding", "ptv2-pipeline")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ptv2-pipeline", "namespace": NS}]
    secrets = [rule for rule in role["rules"] if "secrets" in rule["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["mlpipeline-minio-artifact"],
                        "verbs": ["get"]}], "the KFP launcher reads its object-store Secret by name, nothing more"
    for planted_rule in ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
                         {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
                         {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["x"], "verbs": ["get", "list"]}):
        planted = copy.deepcopy(rendered["base"])
        kr.find(planted, "Role", "ptv2-pipeline")["rules"].append(planted_rule)
        assert kr.rbac_findings(planted, NS), planted_rule


# --- NetworkPolicies -----------------------------------------------------------------------

def _pod_labels(docs: list[dict]) -> dict[str, dict]:
    """Labels of every pod the manifests create, by short role name."""
    labels = {}
    for d in docs:
        for where, template, extra in kr.pod_templates(d):
            labels[where] = {**template.get("metadata", {}).get("labels", {}), **extra}
    return labels


def _network_findings(docs: list[dict]) -> list[str]:
    pods = _pod_labels(docs)
    mlflow, postgres = pods["Deployment/mlflow"], pods["StatefulSet/postgres"]
    head, worker = pods["RayCluster/ptv2-ray/head"], pods["RayCluster/ptv2-ray/cpu"]
    operator = {"app.kubernetes.io/name": "kuberay-operator"}
    stranger = {"app": "notebook"}
    # (what, target, port, source labels, source namespace, expected)
    cases = [
        ("pipeline -> mlflow", mlflow, 5000, PIPELINE_POD, NS, True),
        ("pipeline -> postgres", postgres, 5432, PIPELINE_POD, NS, True),
        ("pipeline -> ray client", head, 10001, PIPELINE_POD, NS, True),
        ("pipeline -> ray job api", head, 8265, PIPELINE_POD, NS, True),
        ("pipeline -> ray gcs", head, 6379, PIPELINE_POD, NS, False),
        ("mlflow -> postgres", postgres, 5432, mlflow, NS, True),
        ("ray worker -> mlflow", mlflow, 5000, worker, NS, True),
        ("ray head -> postgres", postgres, 5432, head, NS, True),
        ("ray worker -> postgres", postgres, 5432, worker, NS, False),
        ("ray worker -> ray head gcs", head, 6379, worker, NS, True),
        ("kuberay operator -> ray dashboard", head, 8265, operator, "kuberay-system", True),
        ("kuberay operator -> postgres", postgres, 5432, operator, "kuberay-system", False),
    ]
    for target_name, target in (("mlflow", mlflow), ("postgres", postgres), ("ray head", head), ("ray worker", worker)):
        port = {"mlflow": 5000, "postgres": 5432}.get(target_name, 10001)
        cases += [
            (f"stranger -> {target_name}", target, port, stranger, NS, False),
            (f"unlabelled pod -> {target_name}", target, port, {}, NS, False),
            (f"pipeline-labelled pod elsewhere -> {target_name}", target, port, PIPELINE_POD, "other", False),
        ]
    found = []
    for what, target, port, source, source_ns, expected in cases:
        got = kr.admits(docs, namespace=NS, target=target, port=port, source=source, source_namespace=source_ns)
        if got != expected:
            found.append(f"{what}:{port} {'admitted' if got else 'refused'}")
    # every pod of ptv2's own is isolated by some policy
    for where, labels in pods.items():
        if not any(d["kind"] == "NetworkPolicy" and kr.selector_matches(d["spec"]["podSelector"], labels)
                   for d in docs):
            found.append(f"{where}: no NetworkPolicy selects it")
    return found


def test_network_policies_admit_only_the_pipeline_and_ray(rendered):
    for name in OVERLAYS:
        assert _network_findings(rendered[name]) == [], name


@pytest.mark.parametrize("plant, expect", [
    # a rule without `from` admits every pod in the cluster
    (lambda docs: kr.find(docs, "NetworkPolicy", "mlflow-ingress")["spec"]["ingress"][0].pop("from"),
     "stranger -> mlflow:5000 admitted"),
    # a namespace-wide selector instead of the pipeline's label
    (lambda docs: kr.find(docs, "NetworkPolicy", "postgres-ingress")["spec"]["ingress"][0]["from"].append(
        {"podSelector": {}}), "stranger -> postgres:5432 admitted"),
    # the Ray policy removed: Ray is open to everyone
    (lambda docs: docs.remove(kr.find(docs, "NetworkPolicy", "ray-ingress")), "RayCluster/ptv2-ray/head: no NetworkPolicy"),
])
def test_network_check_catches_planted_openings(rendered, plant, expect):
    docs = copy.deepcopy(rendered["prod"])
    plant(docs)
    assert any(expect in f for f in _network_findings(docs)), _network_findings(docs)


# --- wiring: the endpoints the pipeline reads ----------------------------------------------

def test_endpoints_configmap_points_at_the_services(rendered):
    for name in OVERLAYS:
        docs = rendered[name]
        data = kr.find(docs, "ConfigMap", "ptv2-endpoints")["data"]
        assert {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"} <= set(data)

        mlflow = urlsplit(data["MLFLOW_TRACKING_URI"])
        service, namespace = mlflow.hostname.split(".")[:2]
        assert (mlflow.scheme, namespace) == ("http", NS)
        svc = kr.find(docs, "Service", service)
        assert mlflow.port in [p["port"] for p in svc["spec"]["ports"]]
        deployment = kr.find(docs, "Deployment", "mlflow")
        assert kr.selector_matches({"matchLabels": svc["spec"]["selector"]},
                                   deployment["spec"]["template"]["metadata"]["labels"])
        args = " ".join(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
        allowed = re.search(r'--allowed-hosts "([^"]+)"', args).group(1).split(",")
        assert f"{mlflow.hostname}:{mlflow.port}" in allowed  # the Host header clients send
        assert f"{service}:{mlflow.port}" in allowed and "localhost:*" in allowed

        ray = urlsplit(data["RAY_ADDRESS"])
        head_service, namespace = ray.hostname.split(".")[:2]
        cluster = kr.find(docs, "RayCluster")
        assert (ray.scheme, namespace) == ("ray", NS)
        assert head_service == f"{cluster['metadata']['name']}-head-svc"  # KubeRay's naming
        head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        assert {"name": "client", "containerPort": ray.port} in head["ports"]
        assert data["RAY_AUTH_MODE"] == cluster["spec"]["authOptions"]["mode"] == "token"


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _pod_env(docs: list[dict], container: dict) -> dict[str, str]:
    """The environment a container starts with, as far as the manifests fix it: its ConfigMaps'
    data (envFrom), then its own literal values (which win, as in Kubernetes)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, source  # no other kind of source to resolve here
        env.update(kr.find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def test_the_mlflow_server_starts_without_mlflow_s_job_runner(rendered):
    """MLflow 3 starts a job runner beside its server (huey consumers for its GenAI jobs, about
    0.8 GiB of the pod's 2 GiB with two workers, and twice the CPU to start) unless
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION is false. ptv2 submits no such job: off in every overlay."""
    for name in OVERLAYS:
        docs = rendered[name]
        (container,) = kr.find(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
        assert _pod_env(docs, container).get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION") == "false", name


def test_ray_nodes_get_tracking_uri_and_only_the_head_the_study_url(rendered):
    cluster = kr.find(rendered["base"], "RayCluster")
    head = _env(cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0])
    assert head["PTV2_OPTUNA_STORAGE"]["valueFrom"] == {"secretKeyRef": {"name": "ptv2-optuna-db", "key": "url"}}
    for group in cluster["spec"]["workerGroupSpecs"]:
        env = _env(group["template"]["spec"]["containers"][0])
        assert "PTV2_OPTUNA_STORAGE" not in env
        assert env["MLFLOW_TRACKING_URI"]["valueFrom"] == {
            "configMapKeyRef": {"name": "ptv2-endpoints", "key": "MLFLOW_TRACKING_URI"}}
    gpu = cluster["spec"]["workerGroupSpecs"][1]["template"]["spec"]["containers"][0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == 1


def _secrets_referenced(docs: list[dict]) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {}
    for d in docs:
        if d["kind"] == "RayCluster" and d["spec"].get("authOptions", {}).get("secretName"):
            refs.setdefault(d["spec"]["authOptions"]["secretName"], set()).add("auth_token")
        for _, template, _ in kr.pod_templates(d):
            for v in template["spec"].get("volumes", []):
                if "secret" in v:
                    keys = {i["key"] for i in v["secret"].get("items", [])}
                    refs.setdefault(v["secret"]["secretName"], set()).update(keys)
        for _, c, _ in kr.containers(d):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.setdefault(ref["name"], set()).add(ref["key"])
    return refs


def test_every_secret_is_documented_with_its_keys(rendered):
    docs_text = DEPLOY_MD.read_text()
    refs: dict[str, set[str]] = {}
    for docs in rendered.values():
        for name, keys in _secrets_referenced(docs).items():
            refs.setdefault(name, set()).update(keys)
    # keys read from files inside a mounted Secret, which the manifests name only in paths
    refs["ptv2-postgres"] |= {"postgres-password", "mlflow-password", "optuna-password"}
    refs["ptv2-mlflow-db"] |= {"url"}
    refs["ptv2-mlflow-s3"] |= {"credentials"}
    assert set(refs) == {"ptv2-postgres", "ptv2-mlflow-db", "ptv2-optuna-db", "ptv2-ray-auth", "ptv2-mlflow-s3"}
    for name, keys in refs.items():
        block = re.search(rf"kubectl[^\n]*create secret generic {name}\b(.*?)(?:\n\n|\n```)", docs_text, re.S)
        assert block, f"docs/deploy.md has no `kubectl create secret generic {name}`"
        for key in keys:
            assert f"--from-literal={key}=" in block.group(1), f"{name}: key {key} undocumented"


def test_deploy_doc_names_the_wiring():
    text = DEPLOY_MD.read_text()
    for name in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "PTV2_OPTUNA_STORAGE", "RAY_AUTH_TOKEN",
                 "mlflow_uri", "ray_address", "optuna_storage", "ptv2-endpoints", "ptv2-optuna-db",
                 "kubectl kustomize", "kubectl apply -k k8s/overlays/dev", "ptv2-pipeline"):
        assert name in text, name
    # the steps, in order
    steps = ["Install KubeRay", "Apply an overlay", "Build and push the component image",
             "Upload the pipeline", "Start a run", "Review the trials in MLflow", "Promote"]
    positions = [text.find(s) for s in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))


# --- image tag = package version -----------------------------------------------------------

def _ptv2_images(docs: list[dict]) -> set[str]:
    return {c["image"] for d in docs for _, c, _ in kr.containers(d) if c["image"].startswith(image.IMAGE_REPO)}


def test_kustomize_image_tag_is_the_package_version(rendered, monkeypatch):
    monkeypatch.delenv("PTV2_IMAGE", raising=False)
    component = yaml.safe_load((kr.K8S / "components" / "image" / "kustomization.yaml").read_text())
    assert {i["newTag"] for i in component["images"]} == {_version()}
    want = {image.component_image(), image.component_image(cuda=True)}
    for name, docs in rendered.items():
        got = _ptv2_images(docs)
        assert got and got <= want, f"{name}: {got}"
    assert _ptv2_images(rendered["base"]) == want


def test_image_tag_check_catches_a_stale_tag(tmp_path, monkeypatch):
    monkeypatch.delenv("PTV2_IMAGE", raising=False)
    # an overlay that pins an old tag renders images the check rejects
    (tmp_path / "kustomization.yaml").write_text(
        f"resources:\n  - {os.path.relpath(kr.K8S / 'base', tmp_path)}\nimages:\n  - name: ghcr.io/ptv2/ptv2\n    newTag: \"0.0.9\"\n")
    stale = _ptv2_images(kr.render(tmp_path))
    assert "ghcr.io/ptv2/ptv2:0.0.9" in stale
    assert not stale <= {image.component_image(), image.component_image(cuda=True)}


# --- checkov (security scan) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def checkov() -> list[dict]:
    """checkov's results for k8s: the rendered targets and the custom resources' pods under
    /k8s/real/, containers planted to run as root under /k8s/planted/ (kr.checkov_scan)."""
    return [dict(r, file=r["file"][len("/k8s"):]) for r in kr.checkov_scan() if r["file"].startswith("/k8s/")]


def test_checkov_reports_no_failed_check(checkov):
    failed = [r for r in checkov if r["file"].startswith("/real/") and r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in checkov if r["file"].startswith("/real/")) > 500


def test_checkov_scans_the_ray_pods(checkov):
    ray = {r["resource"] for r in checkov if r["file"] == "/real/prod-pods.yaml" and r["status"] == "passed"
           and r["check"] == "CKV_K8S_40"}  # runs as a high uid
    assert {"Pod.ptv2.raycluster-ptv2-ray-head", "Pod.ptv2.raycluster-ptv2-ray-cpu",
            "Pod.ptv2.raycluster-ptv2-ray-gpu"} <= ray
    assert any(r["resource"] == "Job.ptv2.rayjob-ptv2-search-submitter" and r["status"] == "passed"
               for r in checkov)


def test_checkov_skips_are_few_and_justified(checkov):
    skipped = [r for r in checkov if r["file"].startswith("/real/") and r["status"] == "skipped"]
    assert skipped
    for r in skipped:
        assert r["check"] in ALLOWED_SKIPS, r
        scope = ALLOWED_SKIPS[r["check"]]
        assert scope is None or r["resource"].endswith(scope), r
        assert r["reason"] and len(r["reason"]) > 20, r
    # each skip annotation in k8s/ has a comment right above it that names the check
    for path in kr.K8S.rglob("*.yaml"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.search(r"checkov\.io/skip\d+:\s*(CKV\w+)=", line)
            if m:
                comment = []
                for above in reversed(lines[:i]):
                    if not above.strip().startswith("#"):
                        break
                    comment.append(above)
                assert any(m.group(1) in c for c in comment), f"{path}:{i + 1}: skip without a comment"


def test_checkov_catches_the_planted_root_containers(checkov):
    failed = {(r["resource"], r["check"]) for r in checkov if r["file"].startswith("/planted/") and r["status"] == "failed"}
    # CKV_K8S_23: admission of root containers; CKV_K8S_40: high uid; CKV_K8S_16: privileged
    assert {("Deployment.ptv2.planted-root", "CKV_K8S_23"), ("Deployment.ptv2.planted-root", "CKV_K8S_40"),
            ("Pod.ptv2.raycluster-planted-root-cpu", "CKV_K8S_16"),
            ("Pod.ptv2.raycluster-planted-root-cpu", "CKV_K8S_40")} <= failed
    # and only the planted root containers fail, nothing else of the planted copies
    assert {resource for resource, _ in failed} <= {"Deployment.ptv2.planted-root",
                                                   "Pod.ptv2.raycluster-planted-root-cpu",
                                                   "Pod.ptv2.raycluster-planted-root-head",
                                                   "Pod.ptv2.raycluster-planted-root-gpu"}
