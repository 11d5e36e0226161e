"""`ptv2 submit` does not send its credential (a bearer token, a Kubeflow session cookie) in clear
text over the network: a plain ``http://`` host is refused, before any request, unless it is this
machine (a ``kubectl port-forward``) or, from inside a pod (``KUBERNETES_SERVICE_HOST`` set), a
cluster-internal Service name: ``http://ml-pipeline.kubeflow:8888`` (Kubeflow's documented in-cluster
endpoint), ``ml-pipeline``, or one named with ``.svc``. Off the cluster such a name is whatever a DNS
search domain makes of it (a host on the office LAN), so only loopback is taken there.
Before, the probe sent it to any http host; then any dot-less name passed even off the cluster, and
``ml-pipeline.kubeflow`` was refused even in a pod."""
from __future__ import annotations

import ipaddress
import socket

import pytest

from test_submit import PipelinesApi, one_error, submit

POD = "KUBERNETES_SERVICE_HOST"  # set by the kubelet in every pod's containers
TOKEN = {"PTV2_KFP_TOKEN": "S3cretTok"}
COOKIE = {"PTV2_KFP_COOKIE": "oauth2_proxy_kubeflow=S3cretTok"}


def transport(host, in_pod, mp):
    from pipelines.submit import Auth, check_transport

    if in_pod:
        mp.setenv(POD, "10.96.0.1")
    else:
        mp.delenv(POD, raising=False)
    check_transport(host, Auth({"existing_token": "t"}, {"Authorization": "Bearer t"}, "PTV2_KFP_TOKEN"))


def lan_address() -> str | None:
    """This machine's own non-loopback IPv4 address (the one its default route leaves by), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("203.0.113.1", 9))  # UDP: picks the route, sends nothing
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(addr).is_loopback or addr == "0.0.0.0" else addr


class LanApi(PipelinesApi):
    """The fake Pipelines API of test_submit, bound to ``address`` (a LAN address, or a name)."""
    address = "127.0.0.1"

    def server_bind(self):
        self.server_address = (self.address, 0)
        super().server_bind()

    def at(self, name):
        return f"http://{name}:{self.server_address[1]}/pipeline"


@pytest.fixture
def api_at():
    servers = []

    def start(address):
        servers.append(type("Api", (LanApi,), {"address": address})())
        return servers[-1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize("env", [TOKEN, COOKIE])
@pytest.mark.parametrize("host", ["http://kubeflow.example.com/pipeline", "http://203.0.113.7:8080/pipeline",
                                  "http://kubeflow.io:80"])
def test_a_credential_is_not_sent_to_a_plain_http_host_on_the_network(host, env):
    line = one_error(submit(host, env))
    assert line.startswith(f"error: --host {host} is plain http") and "https://" in line and "port-forward" in line, line
    assert "S3cretTok" not in line


@pytest.mark.parametrize("env", [TOKEN, COOKIE])
def test_a_refused_host_on_the_lan_gets_no_request_and_an_allowed_one_does(api_at, env, monkeypatch):
    addr = lan_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address to put a server on")
    api = api_at(addr)
    monkeypatch.delenv(POD, raising=False)
    line = one_error(submit(api.at(addr), env))
    assert line.startswith(f"error: --host {api.at(addr)} is plain http"), line
    assert api.seen == [], api.seen  # refused before the probe: nothing crossed the network
    res = submit(api.at(addr))  # no credential: nothing to protect, so the same address is asked
    assert res.returncode == 0 and api.seen and "/pipeline/apis/v2beta1/runs" in api.posted, res.stderr


def test_a_dotless_name_off_the_cluster_is_refused_and_gets_no_request(api_at, monkeypatch):
    # this machine's own name, which resolves here as a Service name would in a pod; off the cluster
    # a bare name is whatever the DNS search domain makes of it (a host on the LAN)
    name = socket.gethostname().split(".")[0]
    try:
        addr = socket.gethostbyname(name)
    except OSError:
        pytest.skip(f"this machine's name '{name}' does not resolve here")
    api = api_at(addr)
    monkeypatch.delenv(POD, raising=False)
    line = one_error(submit(api.at(name), TOKEN))
    assert line.startswith(f"error: --host {api.at(name)} is plain http") and "https://" in line \
        and "port-forward" in line and "localhost" in line, line
    assert api.seen == [], api.seen
    monkeypatch.setenv(POD, "10.96.0.1")  # in a pod the same name is a Service of the pod's namespace
    res = submit(api.at(name), TOKEN)
    assert res.returncode == 0 and api.seen[0][2] == "Bearer S3cretTok", res.stderr


def test_loopback_over_http_with_a_credential_still_reaches_the_api(monkeypatch):
    monkeypatch.delenv(POD, raising=False)
    api = PipelinesApi()
    try:
        res = submit(api.url, {"PTV2_KFP_TOKEN": "t"})
        assert res.returncode == 0 and "/pipeline/apis/v2beta1/runs" in api.posted, res.stderr
    finally:
        api.shutdown()
        api.server_close()


@pytest.mark.parametrize("in_pod", [False, True])
@pytest.mark.parametrize("host", ["http://localhost:8080/pipeline", "http://127.0.0.1:8080", "http://[::1]:8080",
                                  "http://kfp.localhost:8080"])
def test_this_machine_is_not_refused_for_http_on_or_off_the_cluster(host, in_pod, monkeypatch):
    transport(host, in_pod, monkeypatch)


@pytest.mark.parametrize("host", ["http://ml-pipeline.kubeflow:8888", "http://ml-pipeline.kubeflow.svc:8888",
                                  "http://ml-pipeline.kubeflow.svc.cluster.local:8888", "http://ml-pipeline:8888",
                                  "http://ML-Pipeline.Kubeflow.:8888/pipeline"])
def test_a_cluster_internal_service_is_not_refused_for_http_from_a_pod(host, monkeypatch):
    transport(host, True, monkeypatch)


@pytest.mark.parametrize("host", ["http://ml-pipeline.kubeflow:8888", "http://ml-pipeline.kubeflow.svc:8888",
                                  "http://ml-pipeline.kubeflow.svc.cluster.local:8888", "http://ml-pipeline:8888",
                                  "http://kubeflow:80"])
def test_a_service_name_off_the_cluster_is_refused_for_http(host, monkeypatch):
    from ptv2_core.errors import Ptv2Error

    with pytest.raises(Ptv2Error, match=r"plain http.*https://.*port-forward.*localhost"):
        transport(host, False, monkeypatch)


@pytest.mark.parametrize("host", ["http://kubeflow.example.com:80", "http://10.96.12.34:8888", "http://a.b.c:80"])
def test_more_than_name_namespace_is_refused_for_http_even_from_a_pod(host, monkeypatch):
    from ptv2_core.errors import Ptv2Error

    with pytest.raises(Ptv2Error, match="plain http"):
        transport(host, True, monkeypatch)
