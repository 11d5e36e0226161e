"""`ptv2 submit` does not send its credential (a bearer token, a Kubeflow session cookie) in clear
text over the network: a plain ``http://`` host is refused, before any request, unless it is this
machine (a ``kubectl port-forward``) or a cluster-internal Service name (a pod submitting to
``http://ml-pipeline.kubeflow.svc:8888``, Kubeflow's own in-cluster endpoint; ``ml-pipeline.kubeflow``
alone reads as a domain on the internet). Before, the probe sent it to any http host."""
from __future__ import annotations

import pytest

from test_submit import PipelinesApi, one_error, submit


@pytest.mark.parametrize("env", [{"PTV2_KFP_TOKEN": "S3cretTok"}, {"PTV2_KFP_COOKIE": "oauth2_proxy_kubeflow=S3cretTok"}])
@pytest.mark.parametrize("host", ["http://kubeflow.example.com/pipeline", "http://203.0.113.7:8080/pipeline",
                                  "http://kubeflow.io:80"])
def test_a_credential_is_not_sent_to_a_plain_http_host_on_the_network(host, env):
    line = one_error(submit(host, env))
    assert line.startswith(f"error: --host {host} is plain http") and "https://" in line and "port-forward" in line, line
    assert "S3cretTok" not in line


def test_loopback_over_http_with_a_credential_still_reaches_the_api():
    api = PipelinesApi()
    try:
        res = submit(api.url, {"PTV2_KFP_TOKEN": "t"})
        assert res.returncode == 0 and "/pipeline/apis/v2beta1/runs" in api.posted, res.stderr
    finally:
        api.shutdown()
        api.server_close()


@pytest.mark.parametrize("host", ["http://ml-pipeline.kubeflow.svc:8888", "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
                                  "http://ml-pipeline:8888", "http://localhost:8080/pipeline", "http://[::1]:8080"])
def test_a_cluster_internal_service_is_not_refused_for_http(host):
    from pipelines.submit import Auth, check_transport

    check_transport(host, Auth({"existing_token": "t"}, {"Authorization": "Bearer t"}, "PTV2_KFP_TOKEN"))
