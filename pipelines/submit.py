"""``ptv2 submit``: start a pipeline run on a Kubeflow Pipelines endpoint.

Credentials come from the environment, never from the command line (where ``ps`` and shell
history show them) nor from code: ``PTV2_KFP_TOKEN`` (a bearer token, e.g. ``kubectl create
token``), ``PTV2_KFP_COOKIE`` (the session cookie a browser holds after logging in to Kubeflow,
``name=value``), or kfp's own ``KF_PIPELINES_SA_TOKEN_PATH`` (a projected service-account token
file, inside a cluster). Before anything is created, one request to the API's health endpoint,
redirects not followed, tells a login page, a refused credential or a wrong URL apart: kfp's
client follows a login redirect, takes the login page for answers and reports a run with no id
as started.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ptv2_core.errors import Ptv2Error

HEALTHZ = "/apis/v2beta1/healthz"
TOKEN_ENV, COOKIE_ENV, SA_TOKEN_ENV = "PTV2_KFP_TOKEN", "PTV2_KFP_COOKIE", "KF_PIPELINES_SA_TOKEN_PATH"
AUTH_HINT = (f"set {TOKEN_ENV} (a bearer token) or {COOKIE_ENV} (the session cookie of a logged-in "
             "browser, name=value), see docs/deploy.md")
# the CA certificates to trust, as requests reads them (the health probe): kfp's client reads
# neither, so ``submit`` hands it the same file
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
ENDPOINT_PARAMS = ("mlflow_uri", "ray_address", "optuna_storage")
# where a step reads each endpoint when its parameter is empty (optuna_studies/settings.py)
ENDPOINT_ENV = {"mlflow_uri": "MLFLOW_TRACKING_URI", "ray_address": "RAY_ADDRESS",
                "optuna_storage": "PTV2_OPTUNA_STORAGE"}


@dataclass
class Auth:
    """How to authenticate to the endpoint: kfp.Client's keyword arguments, and the same
    credential as HTTP headers for the health probe."""
    client_kwargs: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    source: str = "none"


def auth_from_env(env: dict | None = None) -> Auth:
    env = os.environ if env is None else env
    token, cookie, sa_path = env.get(TOKEN_ENV), env.get(COOKIE_ENV), env.get(SA_TOKEN_ENV)
    if token and cookie:
        raise Ptv2Error(f"both {TOKEN_ENV} and {COOKIE_ENV} are set: keep the one your Kubeflow accepts")
    if token:
        token = check_header_value(token, TOKEN_ENV)
        return Auth({"existing_token": token}, {"Authorization": f"Bearer {token}"}, TOKEN_ENV)
    if cookie:
        cookie = check_header_value(cookie, COOKIE_ENV)
        if "=" not in cookie:
            raise Ptv2Error(f"{COOKIE_ENV} must be name=value (e.g. oauth2_proxy_kubeflow=...), got a value without '='")
        return Auth({"cookies": cookie}, {"Cookie": cookie}, COOKIE_ENV)
    if sa_path:
        try:
            with open(sa_path, encoding="utf-8") as f:
                sa_token = f.read().strip()
        except OSError as e:
            raise Ptv2Error(f"{SA_TOKEN_ENV} names '{sa_path}', which cannot be read: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise Ptv2Error(f"{SA_TOKEN_ENV} names '{sa_path}', which is not a token (not UTF-8 text)") from None
        sa_token = check_header_value(sa_token, f"the token file {sa_path} ({SA_TOKEN_ENV})")
        from kfp.client import ServiceAccountTokenVolumeCredentials

        return Auth({"credentials": ServiceAccountTokenVolumeCredentials(sa_path)},
                    {"Authorization": f"Bearer {sa_token}"}, SA_TOKEN_ENV)
    return Auth()


# query parameters that carry a credential (libpq's password=, sslpassword=; token=, access_token=, ...)
_SECRET_QUERY = re.compile(r"(pass(word)?|passwd|pwd|secret|token|api[_-]?key|auth|credential|signature|sig)",
                           re.IGNORECASE)
_NOT_SECRET = {"require_auth", "passfile", "sslpassword_file", "auth_mechanism"}  # names of methods and files


def url_secret(value: str) -> str | None:
    """What in ``value`` (a URL) looks like a credential: a password, a credential-like query
    parameter; a URL that does not parse counts (its password cannot be ruled out). None: nothing."""
    from urllib.parse import parse_qsl

    try:
        parts = urlsplit(value)
        password = parts.password
        parts.port  # noqa: B018 (raises ValueError for a malformed authority)
    except ValueError:
        return "a URL that does not parse"
    if password is not None:
        return "a password"
    names = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)] + \
            [k for k, _ in parse_qsl(parts.fragment, keep_blank_values=True)]
    hits = [k for k in names if _SECRET_QUERY.search(k) and k.lower() not in _NOT_SECRET]
    return f"a credential in its query ({', '.join(sorted(set(hits)))}=)" if hits else None


def check_no_secrets(params: dict, local: bool = False) -> None:
    """A run's parameters are stored and shown in plain text by Kubeflow: an endpoint URL with a
    password in it (user:password@, ?password=, ?token=, ...) is refused, as is one that does not
    parse (the pods read the real URLs from the cluster's ConfigMap and Secret). ``local``
    (``ptv2 run``): kfp.local starts each step with its parameters on the command line, so the same
    URLs are refused there; the steps read them from the environment instead."""
    for key in ENDPOINT_PARAMS:
        value = params.get(key) or ""
        found = url_secret(str(value)) if value else None
        if found and local:
            raise Ptv2Error(f"{key} carries {found}, and kfp.local passes each step its parameters on its command "
                            f"line, which `ps` shows: leave {key} empty and set {ENDPOINT_ENV[key]} in the environment "
                            "instead (every step reads it there)")
        if found:
            raise Ptv2Error(f"{key} carries {found}, and Kubeflow stores and shows run parameters in plain "
                            f"text: leave {key} empty (the pods read it from the cluster's Secret, see docs/deploy.md)")


def check_header_value(value: str, source: str) -> str:
    """A credential an HTTP header can carry: printable ASCII, no line breaks (said without
    printing it; requests failed with a traceback on non-Latin-1, and echoed one with a newline)."""
    value = value.strip()
    if not value:
        raise Ptv2Error(f"{source} is empty")
    if any(not 32 <= ord(ch) < 127 for ch in value):
        raise Ptv2Error(f"{source} holds characters an HTTP header cannot carry (non-ASCII, a line break or "
                        "another control character): copy the credential again")
    return value


HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")  # OpenSSL's look-up name of a CA certificate in a folder


def ca_bundle() -> str | None:
    """The CA file or folder named by ``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``), None when
    unset. A folder, which requests takes too, must hold certificates under OpenSSL's hashed names
    (``openssl rehash``, c_rehash): OpenSSL finds no other file there."""
    for name in CA_ENV:
        path = os.environ.get(name)
        if path:
            if os.path.isdir(path):
                if not hashed_certificates(path):
                    raise Ptv2Error(f"{name} names the folder '{path}', which holds no CA certificate under a hashed "
                                    "name (HHHHHHHH.0): run `openssl rehash` on it, or name one PEM file")
                return path
            if not os.path.isfile(path):
                raise Ptv2Error(f"{name} names '{path}', which is neither a file nor a folder")
            return path
    return None


def hashed_certificates(folder: str) -> list[str]:
    """The CA certificates in ``folder`` OpenSSL would look up: files named HHHHHHHH.N."""
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if HASHED_NAME.fullmatch(n) and os.path.isfile(os.path.join(folder, n)))


@contextlib.contextmanager
def ca_file(ca: str | None):
    """``ca`` as kfp's client takes it: one file. Its urllib3 pool gets ``ssl_ca_cert`` as
    ``ca_certs``, a file (no folder, unlike requests); a folder's certificates are handed over
    joined in a temporary PEM file that lasts as long as the block."""
    if ca is None or not os.path.isdir(ca):
        yield ca
        return
    import tempfile

    with tempfile.NamedTemporaryFile("wb", prefix="ptv2-ca-", suffix=".pem") as out:
        for path in hashed_certificates(ca):
            try:
                with open(path, "rb") as f:
                    out.write(f.read().rstrip(b"\n") + b"\n")
            except OSError as e:
                raise Ptv2Error(f"CA certificate '{path}' cannot be read: {e.strerror or e}") from None
        out.flush()
        yield out.name


def env_proxy(host: str) -> str | None:
    """The proxy the environment names for ``host`` (``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``
    honoured), as requests picks it for the health probe: kfp's client reads no such variable."""
    import requests

    return requests.utils.select_proxy(host, requests.utils.get_environ_proxies(host))


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


def check_transport(host: str, auth: Auth) -> None:
    """Ptv2Error when ``auth`` would cross the network in clear text: a plain ``http://`` host that
    is neither this machine (a ``kubectl port-forward``) nor a cluster-internal Service name
    (``ml-pipeline.kubeflow:8888``, Kubeflow's own in-cluster endpoint, from a pod)."""
    import ipaddress

    parts = urlsplit(host)
    name = (parts.hostname or "").rstrip(".").lower()
    if auth.source == "none" or parts.scheme != "http" or name == "localhost" or name.endswith(".localhost"):
        return
    try:
        if ipaddress.ip_address(name).is_loopback:
            return
    except ValueError:  # a name
        if "." not in name or name.endswith((".svc", ".svc.cluster.local")):
            return  # a Service of the pod's namespace, or one named with .svc (``name.namespace`` reads as a domain)
    raise Ptv2Error(f"--host {host} is plain http: the credential in {auth.source} would cross the network "
                    "unencrypted; use the https:// address, or a port-forward to this machine (kubectl port-forward "
                    "svc/ml-pipeline-ui 8080:80, then --host http://localhost:8080/pipeline); from a pod, name the "
                    "Service with .svc (http://ml-pipeline.kubeflow.svc:8888)")


def submit(host: str, params: dict, *, experiment: str = "ptv2", run_name: str | None = None,
           namespace: str | None = None, service_account: str | None = None,
           endpoint: Endpoint | None = None) -> dict:
    """Start a run; returns its id and the address of its page in the Kubeflow UI. ``endpoint``:
    ``reach(host, ...)``'s answer when the command probed the host before resolving ``params``."""
    if endpoint is None:
        endpoint = reach(host, namespace, params)
    check_no_secrets(params)  # all of them: the probe may have run before the parameters were resolved
    auth, ca = endpoint.auth, endpoint.ca
    import kfp

    from pipelines.pipeline import ptv2_pipeline

    # kfp warns about server versions and prints the experiment's and run's links on stdout
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), ca_file(ca) as ca_pem:
        warnings.simplefilter("ignore")
        try:
            client = kfp.Client(host=host, namespace=namespace, ssl_ca_cert=ca_pem, proxy=env_proxy(host),
                                **auth.client_kwargs)
            run = client.create_run_from_pipeline_func(
                ptv2_pipeline, arguments=params, experiment_name=experiment, run_name=run_name,
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
