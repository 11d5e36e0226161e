"""Whether ``ptv2 submit`` may send its credential to a plain ``http://`` host (``check_transport``):
only where it does not cross the network in clear text.

Taken: this machine (``localhost``, a loopback address: a ``kubectl port-forward``) anywhere; and,
from inside a pod (``KUBERNETES_SERVICE_HOST`` set, as the kubelet sets it in every container), a
cluster Service's in-cluster name: ``ml-pipeline`` (the pod's namespace), ``ml-pipeline.kubeflow``
(``name.namespace``, Kubeflow's documented in-cluster endpoint), ``ml-pipeline.kubeflow.svc`` or
``….svc.cluster.local``. Off the cluster such a name is whatever a DNS search domain makes of it (a
host across the office LAN), so only loopback is taken there.
"""
from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from pipelines.submit_auth import Auth
from ptv2_core.errors import Ptv2Error

POD_ENV = "KUBERNETES_SERVICE_HOST"  # set in every container of a Kubernetes pod
PORT_FORWARD = ("kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80, then "
                "--host http://localhost:8080/pipeline")


def in_pod() -> bool:
    """Whether this process runs in a Kubernetes pod, where cluster DNS resolves Service names."""
    return bool(os.environ.get(POD_ENV))


def is_loopback(name: str) -> bool:
    """``name`` (a URL's host, lower case, no trailing dot) is this machine."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_service_name(name: str) -> bool:
    """``name`` reads as a cluster Service's in-cluster name: ``name``, ``name.namespace`` (exactly
    two labels) or one ending in ``.svc`` / ``.svc.cluster.local``; an IP address does not."""
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        pass
    return bool(name) and (name.count(".") <= 1 or name.endswith((".svc", ".svc.cluster.local")))


def check_transport(host: str, auth: Auth) -> None:
    """Ptv2Error when ``auth`` would cross the network in clear text: a plain ``http://`` host that
    is neither this machine nor, from a pod, a cluster Service's in-cluster name (module docstring)."""
    parts = urlsplit(host)
    name = (parts.hostname or "").rstrip(".").lower()
    if auth.source == "none" or parts.scheme != "http" or is_loopback(name):
        return
    pod = in_pod()
    if pod and is_service_name(name):
        return
    if pod:
        note, also = "", "; from a pod, the Service's in-cluster name is taken (http://ml-pipeline.kubeflow:8888)"
    else:
        note = (" (a name of this form is taken over http only from inside a pod, as a cluster Service)"
                if is_service_name(name) else "")
        also = ""
    raise Ptv2Error(f"--host {host} is plain http: the credential in {auth.source} would cross the network "
                    f"unencrypted{note}; use the https:// address, or a port-forward to this machine "
                    f"({PORT_FORWARD}){also}")
