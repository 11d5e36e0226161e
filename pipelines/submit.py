"""``ptv2 submit``: start a pipeline run on a Kubeflow Pipelines endpoint.

Credentials come from the environment, never from the command line (where ``ps`` and shell
history show them) nor from code: ``PTV2_KFP_TOKEN`` (a bearer token, e.g. ``kubectl create
token``), ``PTV2_KFP_COOKIE`` (the session cookie a browser holds after logging in to Kubeflow,
``name=value``), or kfp's own ``KF_PIPELINES_SA_TOKEN_PATH`` (a projected service-account token
file, inside a cluster). Before anything is created, one request to the API's health endpoint,
redirects not followed, tells a login page, a refused credential or a wrong URL apart: kfp's
client follows a login redirect, takes the login page for answers and reports a run with no id
as started.

Credentials and the secret checks: ``pipelines.submit_auth``; the CA certificates and proxy
the probe and kfp's client share: ``pipelines.submit_tls``; which plain ``http://`` hosts may get
a credential (this machine; from a pod, a cluster Service): ``pipelines.submit_transport``.
"""
from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass

from pipelines.submit_auth import (AUTH_HINT, COOKIE_ENV, ENDPOINT_PARAMS, TOKEN_ENV, Auth, auth_from_env,
                                   check_no_secrets, url_secret)
from pipelines.submit_tls import CA_ENV, ca_bundle, ca_file, env_proxy
from pipelines.step_gpu import DEFAULT_ACCELERATOR
from pipelines.submit_transport import check_transport
from ptv2_core.errors import Ptv2Error

HEALTHZ = "/apis/v2beta1/healthz"


def probe(host: str, auth: Auth, timeout: float = 10.0) -> dict:
    """One GET of the API's health endpoint, redirects not followed: its answer (``multi_user``),
    or a refusal that says why."""
    import requests

    url = host.rstrip("/") + HEALTHZ
    try:
        r = requests.get(url, headers=auth.headers, timeout=timeout, allow_redirects=False)
    except requests.exceptions.SSLError as e:
        why = re.search(r"certificate verify failed: [^'\")(]+", str(e))
        why = why.group(0).strip() if why else str(e).rsplit(":", 1)[-1].strip(" '\")")[:200]
        raise Ptv2Error(f"cannot reach {host}: its TLS certificate is not trusted here ({why}): if it comes from your "
                        f"own CA, set {CA_ENV[0]} to that CA's certificate (a PEM file)") from None
    except requests.RequestException as e:
        cause = re.search(r"\[Errno -?\d+\] [^'\")]+", str(e))  # the OS's reason, not urllib3's retry story
        raise Ptv2Error(f"cannot reach {host}: {cause.group(0) if cause else str(e).splitlines()[0][:200]}") from None
    if auth.source == "none":
        how, hint = "with no credential", AUTH_HINT
    else:
        how, hint = f"with the credential in {auth.source}", "it is wrong or has expired: renew it (docs/deploy.md)"
    if r.is_redirect or 300 <= r.status_code < 400:
        where = r.headers.get("Location", "?")
        raise Ptv2Error(f"{host} redirected the API request to '{where[:120]}' (a login page?) {how}: {hint}")
    if r.status_code in (401, 403):
        raise Ptv2Error(f"{host} refused the API request {how} ({r.status_code} {r.reason}): {hint}")
    if r.status_code == 404:
        raise Ptv2Error(f"no Kubeflow Pipelines API at {host} (404 on {HEALTHZ}): the endpoint usually ends "
                        "in /pipeline, e.g. https://kubeflow.example.com/pipeline")
    if r.status_code != 200:
        raise Ptv2Error(f"{host} answered {r.status_code} {r.reason} on {HEALTHZ}")
    try:
        health = r.json()
    except ValueError:
        health = None
    if not isinstance(health, dict):
        raise Ptv2Error(f"{host} is not a Kubeflow Pipelines API: {HEALTHZ} did not answer a JSON object "
                        f"({r.headers.get('Content-Type', 'no content type')})")
    return health


@dataclass
class Endpoint:
    """A Pipelines API that answered its health probe, and how to talk to it."""
    host: str
    auth: Auth
    ca: str | None


def config_endpoints(config) -> dict:
    """The endpoint parameters a ``--config`` file sets, read without the pipeline (kfp) or the
    task code, so that one with a password in it is refused before the probe; a file that cannot
    be read gives ``{}`` here (``resolve_params`` says why, in one line, after)."""
    if config is None:
        return {}
    import yaml

    try:
        with open(config, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return {k: doc[k] for k in ENDPOINT_PARAMS if k in doc} if isinstance(doc, dict) else {}


def reach(host: str, namespace: str | None = None, params: dict | None = None) -> Endpoint:
    """``host`` checked, the credential read and one probe of the API: nothing heavier than
    requests is imported (kfp and the pipeline take seconds), so a wrong or dead endpoint is said
    at once. ``params``: the endpoint parameters known so far, refused with a password in them
    before any request."""
    if not host.startswith(("http://", "https://")):
        shown = "(not repeated here: it holds '@', perhaps after a password)" if "@" in host else f"got '{host}'"
        raise Ptv2Error(f"--host must be an http(s) URL, {shown}")
    found = url_secret(host)
    if found == "a URL that does not parse":
        raise Ptv2Error("--host is not a valid URL (a bad port or address; not repeated here, in case it holds a password)")
    if found:  # it would show in `ps`, shell history and this command's own messages
        raise Ptv2Error(f"--host carries {found}: credentials never go on the command line; give the bare address "
                        f"and set {TOKEN_ENV} or {COOKIE_ENV} (docs/deploy.md)")
    check_no_secrets(params or {})
    auth = auth_from_env()
    check_transport(host, auth)
    ca = ca_bundle()
    if probe(host, auth).get("multi_user") and not namespace:
        raise Ptv2Error(f"{host} is a multi-user Kubeflow: name your profile's namespace with --namespace "
                        "(runs and experiments live in one)")
    return Endpoint(host, auth, ca)


def submit(host: str, params: dict, *, experiment: str = "ptv2", run_name: str | None = None,
           namespace: str | None = None, service_account: str | None = None,
           endpoint: Endpoint | None = None, step_gpus: int = 0, accelerator: str = DEFAULT_ACCELERATOR) -> dict:
    """Start a run; returns its id and the address of its page in the Kubeflow UI. ``endpoint``:
    ``reach(host, ...)``'s answer when the command probed the host before resolving ``params``.
    ``step_gpus``/``accelerator``: the pipeline's GPU steps, as ``ptv2 compile`` takes them
    (pipelines/step_gpu.py)."""
    if endpoint is None:
        endpoint = reach(host, namespace, params)
    check_no_secrets(params)  # all of them: the probe may have run before the parameters were resolved
    auth, ca = endpoint.auth, endpoint.ca
    import kfp

    from pipelines.pipeline import build_pipeline, ptv2_pipeline

    pipeline = build_pipeline(step_gpus, accelerator) if step_gpus else ptv2_pipeline

    # kfp warns about server versions and prints the experiment's and run's links on stdout
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), ca_file(ca) as ca_pem:
        warnings.simplefilter("ignore")
        try:
            client = kfp.Client(host=host, namespace=namespace, ssl_ca_cert=ca_pem, proxy=env_proxy(host),
                                **auth.client_kwargs)
            run = client.create_run_from_pipeline_func(
                pipeline, arguments=params, experiment_name=experiment, run_name=run_name,
                namespace=namespace, service_account=service_account or None)
        except Exception as e:  # refused by the API (bad parameter, namespace, quota): the user's endpoint
            if _connection_lost(e):  # no answer at all: nothing was refused, and the run may or may not exist
                raise Ptv2Error(f"lost the connection to {host} while starting the run: {_lost_reason(e)} (look "
                                f"for the run in the Kubeflow UI, experiment '{experiment}', before submitting "
                                "again)") from None
            raise Ptv2Error(f"{host} refused the run: {_api_error(e)}") from None
    if not getattr(run, "run_id", None):
        raise Ptv2Error(f"{host} answered without a run id: no run was started there ({AUTH_HINT})")
    return {"run_id": run.run_id, "host": host, "url": f"{host.rstrip('/')}/#/runs/details/{run.run_id}"}


def _connection_lost(e: Exception) -> bool:
    """Whether kfp's client got no HTTP answer (urllib3's errors, the OS's), rather than a refusal."""
    import urllib3

    return not getattr(e, "status", None) and isinstance(e, (urllib3.exceptions.HTTPError, OSError))


def _lost_reason(e: Exception) -> str:
    """The innermost reason of a lost connection, in one line: the OS's (``[Errno 111] Connection
    refused``) or the HTTP client's (``Remote end closed connection without response``)."""
    reason = getattr(e, "reason", None) or e
    inner = reason.args[-1] if isinstance(reason, BaseException) and reason.args else None
    text = str(inner if isinstance(inner, BaseException) else reason)
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    return errno.group(0).strip() if errno else " ".join(text.split())[:200]


def _api_error(e: Exception) -> str:
    """An API refusal in one line: status, reason and the server's own message when it sent one."""
    import json

    status = getattr(e, "status", None)
    if not status:
        return str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    try:
        message = json.loads(getattr(e, "body", None) or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return f"{status} {getattr(e, 'reason', '') or ''}".strip() + (f": {' '.join(str(message).split())[:300]}" if message else "")
