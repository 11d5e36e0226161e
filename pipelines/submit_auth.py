"""``ptv2 submit``'s credentials, read from the environment (``auth_from_env``), and the checks
that keep credentials out of a run's parameters and the command line (``check_no_secrets``,
``url_secret``)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ptv2_core.errors import Ptv2Error

TOKEN_ENV, COOKIE_ENV, SA_TOKEN_ENV = "PTV2_KFP_TOKEN", "PTV2_KFP_COOKIE", "KF_PIPELINES_SA_TOKEN_PATH"
AUTH_HINT = (f"set {TOKEN_ENV} (a bearer token) or {COOKIE_ENV} (the session cookie of a logged-in "
             "browser, name=value), see docs/deploy.md")
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
