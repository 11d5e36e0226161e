"""The test helper tests/k8s_render.py on small hand-made inputs: the CRD conversion, the
NetworkPolicy evaluator and the finding functions do what the k8s tests rely on."""
from __future__ import annotations

import copy

import jsonschema
import pytest

import k8s_render as kr


def _validator(openapi: dict) -> jsonschema.Draft7Validator:
    schema = kr.openapi_to_jsonschema(openapi)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


# --- openapi_to_jsonschema -----------------------------------------------------------------

STRUCTURAL = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "format": "int32"},
        "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True},
        "quantity": {"type": "string", "nullable": True},
        "params": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "nested": {"type": "object", "properties": {"a": {"type": "string"}},
                   "x-kubernetes-validations": [{"rule": "self.a != ''", "message": "a"}]},
    },
}


def test_conversion_accepts_a_valid_object():
    v = _validator(STRUCTURAL)
    good = {"replicas": 2, "port": "http", "quantity": None, "params": {"num-cpus": "0"},
            "free": {"anything": [1, {"goes": True}]}, "tags": ["a", "b"], "nested": {"a": "x"}}
    assert list(v.iter_errors(good)) == []
    assert list(v.iter_errors({"port": 8265})) == []


@pytest.mark.parametrize("bad, where", [
    ({"replicas": "2"}, "replicas"),              # wrong type
    ({"port": 1.5}, "port"),                      # int-or-string is not a float
    ({"params": {"num-cpus": 0}}, "params"),      # map of strings
    ({"tags": ["a", "a"]}, "tags"),               # list-type set: no duplicates
    ({"replica": 2}, ""),                         # unknown field at the top
    ({"nested": {"a": "x", "b": "y"}}, "nested"),  # unknown field below
])
def test_conversion_rejects(bad, where):
    errors = list(_validator(STRUCTURAL).iter_errors(bad))
    assert errors, f"{bad} passed"
    assert ".".join(map(str, errors[0].absolute_path)).startswith(where)


def test_conversion_drops_kubernetes_extensions_only():
    out = kr.openapi_to_jsonschema(STRUCTURAL)
    text = repr(out)
    assert "x-kubernetes" not in text and "nullable" not in text
    assert out["properties"]["replicas"] == {"type": "integer", "format": "int32"}
    assert out["properties"]["quantity"]["type"] == ["string", "null"]
    assert "additionalProperties" not in out["properties"]["free"]


def test_crd_schema_is_strict_for_the_real_raycluster():
    schema = kr.crd_schema("RayCluster")
    head = schema["properties"]["spec"]["properties"]["headGroupSpec"]
    assert head["additionalProperties"] is False
    assert head["properties"]["rayStartParams"]["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["kind"] == {"const": "RayCluster"}
    # a bare minimal cluster is valid, the same with a misspelled field is not
    minimal = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "r"},
               "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                   {"name": "ray-head", "image": "img:1"}]}}}}}
    assert kr.validate_custom(minimal) == []
    typo = copy.deepcopy(minimal)
    typo["spec"]["headGroupSpec"]["rayStartParam"] = {}
    assert any("rayStartParam" in e for e in kr.validate_custom(typo))
    wrong_api = dict(minimal, apiVersion="ray.io/v2")
    assert kr.validate_custom(wrong_api)


# --- NetworkPolicy evaluation --------------------------------------------------------------

POLICY = {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "ns"},
          "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}},
                                         {"namespaceSelector": {"matchLabels": {"team": "ops"}},
                                          "podSelector": {"matchExpressions": [
                                              {"key": "tier", "operator": "In", "values": ["admin"]}]}}],
                                "ports": [{"protocol": "TCP", "port": 5432}]}]}}


def _admits(**kw):
    args = dict(namespace="ns", target={"app": "db"}, port=5432, source={"role": "client"},
                source_namespace="ns")
    args.update(kw)
    return kr.admits([POLICY], **args)


def test_policy_admits_listed_peer_on_listed_port():
    assert _admits()


@pytest.mark.parametrize("change", [
    dict(port=5433),                                  # another port
    dict(source={"role": "other"}),                   # another pod
    dict(source_namespace="elsewhere"),               # same labels, another namespace
    dict(source={"tier": "admin"}, source_namespace="elsewhere"),  # namespace not labelled ops
])
def test_policy_denies(change):
    assert not _admits(**change)


def test_policy_namespace_and_pod_selector_together():
    assert _admits(source={"tier": "admin"}, source_namespace="ops-ns", source_namespace_labels={"team": "ops"})
    assert not _admits(source={"tier": "user"}, source_namespace="ops-ns", source_namespace_labels={"team": "ops"})


def test_unselected_pod_is_open_and_empty_from_admits_all():
    assert _admits(target={"app": "web"}, source={"anyone": "x"}, port=80)
    open_policy = copy.deepcopy(POLICY)
    open_policy["spec"]["ingress"] = [{"ports": [{"port": 5432}]}]
    assert kr.admits([open_policy], namespace="ns", target={"app": "db"}, port=5432, source={},
                     source_namespace="anywhere")


# --- findings ------------------------------------------------------------------------------

def _deployment(**container_overrides) -> dict:
    container = {
        "name": "c", "image": "repo/img:1.0",
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    }
    container.update(container_overrides)
    return {"kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"securityContext": {"runAsUser": 10001, "seccompProfile": {
                "type": "RuntimeDefault"}}, "containers": [container]}}}}


def test_security_findings_clean_and_each_fault():
    assert kr.security_findings([_deployment()]) == []
    cases = {
        "may run as root": _deployment(securityContext={**_deployment()["spec"]["template"]["spec"][
            "containers"][0]["securityContext"], "runAsUser": 0}),
        "no memory in resources.limits": _deployment(resources={"requests": {"cpu": "1", "memory": "1Gi"},
                                                                "limits": {"cpu": "1"}}),
        "has no pinned tag": _deployment(image="repo/img:latest"),
        "readOnlyRootFilesystem": _deployment(securityContext={"allowPrivilegeEscalation": False,
                                                               "runAsNonRoot": True,
                                                               "capabilities": {"drop": ["ALL"]}}),
    }
    for fragment, doc in cases.items():
        found = kr.security_findings([doc])
        assert any(fragment in f for f in found), (fragment, found)


def test_secret_findings():
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"URL": "postgresql://u:hunter2@db/x"}}
    assert any("URL with a password" in f for f in kr.secret_findings([cm]))
    ok = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"URL": "http://mlflow:5000"}}
    assert kr.secret_findings([ok]) == []
    literal = _deployment(env=[{"name": "DB_PASSWORD", "value": "x"}])
    assert any("DB_PASSWORD" in f for f in kr.secret_findings([literal]))
    from_secret = _deployment(env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    assert kr.secret_findings([from_secret]) == []
    as_file = _deployment(env=[{"name": "DB_PASSWORD_FILE", "value": "/var/run/secrets/db/password"}])
    assert kr.secret_findings([as_file]) == []
    assert kr.secret_findings([{"kind": "Secret", "metadata": {"name": "s"}}])


def test_rbac_findings():
    role = {"kind": "Role", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}
    assert kr.rbac_findings([role], "ns") == []
    wild = copy.deepcopy(role)
    wild["rules"][0]["verbs"] = ["*"]
    assert kr.rbac_findings([wild], "ns")
    secrets = copy.deepcopy(role)
    secrets["rules"][0]["resources"] = ["secrets"]
    assert kr.rbac_findings([secrets], "ns")
    assert kr.rbac_findings([{"kind": "ClusterRoleBinding", "metadata": {"name": "x"}}], "ns")


def test_as_pods_carries_operator_labels_and_annotations():
    cluster = {"kind": "RayCluster", "metadata": {"name": "rc", "namespace": "ns", "annotations": {"a": "1"}},
               "spec": {"headGroupSpec": {"template": {"metadata": {"labels": {"x": "y"}}, "spec": {
                   "containers": [{"name": "h", "image": "i:1"}]}}},
                        "workerGroupSpecs": [{"groupName": "cpu", "template": {"spec": {"containers": [
                            {"name": "w", "image": "i:1"}]}}}]}}
    pods = kr.as_pods([cluster])
    assert [p["metadata"]["labels"]["ray.io/node-type"] for p in pods] == ["head", "worker"]
    assert all(p["metadata"]["labels"]["ray.io/cluster"] == "rc" for p in pods)
    assert pods[0]["metadata"]["labels"]["x"] == "y" and pods[0]["metadata"]["annotations"] == {"a": "1"}
    assert pods[1]["spec"]["containers"][0]["name"] == "w"
