"""`ptv2 submit` against what stands in front of a Kubeflow Pipelines API: a login gateway that
redirects, one that refuses a credential, a host that is no Pipelines API. No Kubeflow cluster
runs here, so the server below is an HTTP endpoint that records each request and answers as such
a gateway does; a run that starts is not claimed. Credentials travel from the environment into
the request's headers and never into the output."""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from conftest import run_cli
from test_registry_support import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Gateway(http.server.ThreadingHTTPServer):
    def __init__(self, answer):
        self.answer, self.seen = answer, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(handler):
                self.seen.append((handler.command, handler.path, handler.headers.get("Authorization"),
                                  handler.headers.get("Cookie")))
                status, headers, body = self.answer(handler)
                handler.send_response(status)
                for k, v in headers.items():
                    handler.send_header(k, v)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            do_GET = do_POST = _any

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        # shutdown() waits for the loop's next poll: the default 0.5 s, paid by every test's teardown
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/pipeline"


def login_redirect(handler):  # oauth2-proxy / Dex in front of Kubeflow, for a request without a session
    if handler.path.startswith("/dex"):
        return 200, {"Content-Type": "text/html"}, b"<html>log in</html>"
    return 302, {"Location": "/dex/auth?client_id=kubeflow-oidc-authservice"}, b""


def token_gate(handler):  # Istio's JWT check: only one token passes (and then the API would answer)
    if handler.headers.get("Authorization") == "Bearer the-good-one":
        return 200, {"Content-Type": "application/json"}, b'{"multi_user": true}'
    return 401, {"Content-Type": "text/plain"}, b"Jwt verification fails"


def html_site(handler):
    return 200, {"Content-Type": "text/html"}, b"<html>a web site</html>"


def not_found(handler):
    return 404, {"Content-Type": "text/plain"}, b"404 page not found"


CREDENTIAL_ENV = ("PTV2_KFP_TOKEN", "PTV2_KFP_COOKIE", "KF_PIPELINES_SA_TOKEN_PATH")


def submit(host, env=(), *args):
    """`ptv2 submit` in this process (a fresh interpreter cost about 3.5 s of imports per call): the
    credential variables unset but for ``env``, from the repository's folder, both put back after.
    pipelines/submit.py reads the environment on each call and keeps nothing between calls."""
    with pytest.MonkeyPatch.context() as mp:
        for k in CREDENTIAL_ENV:
            mp.delenv(k, raising=False)
        for k, v in dict(env).items():
            mp.setenv(k, v)
        mp.chdir(ROOT)
        return run_cli("submit", "--host", host, "--tasks", "trec", *args)


def submit_process(host, env=(), *args):
    """`ptv2 submit` as a process of its own, as a user runs it."""
    base = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_ENV}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "submit", "--host", host, "--tasks", "trec", *args],
                          capture_output=True, text=True, cwd=ROOT, env=base | dict(env), timeout=120)


def one_error(res):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert res.stdout == "", res.stdout  # no run id, no links
    return lines[0]


@pytest.fixture
def gateway():
    servers = []

    def start(answer):
        servers.append(Gateway(answer))
        return servers[-1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_a_login_redirect_is_not_taken_for_a_started_run(gateway):
    """kfp's client followed the redirect, read the login page as answers and ptv2 printed
    {"run_id": null} with exit status 0: the user believed a run had started."""
    gw = gateway(login_redirect)
    # a process of its own, the one test here that is: what reaches the real stderr and stdout, and the
    # exit status, of the whole interpreter (a library's warning or log line, printed at exit or by
    # Python's logging fallback, is caught by pytest's handlers in this process, not by run_cli)
    line = one_error(submit_process(gw.url))
    assert line.startswith(f"error: {gw.url} redirected the API request to '/dex/auth?client_id=") and \
        "with no credential: set PTV2_KFP_TOKEN" in line and "PTV2_KFP_COOKIE" in line, line
    assert [(m, p) for m, p, *_ in gw.seen] == [("GET", "/pipeline/apis/v2beta1/healthz")]  # nothing created


def test_credentials_come_from_the_environment_and_stay_out_of_the_output(gateway):
    gw = gateway(token_gate)
    line = one_error(submit(gw.url, {"PTV2_KFP_TOKEN": "an-expired-one"}))
    assert "with the credential in PTV2_KFP_TOKEN (401 Unauthorized): it is wrong or has expired" in line, line
    assert "an-expired-one" not in line
    line = one_error(submit(gw.url, {"PTV2_KFP_COOKIE": "oauth2_proxy_kubeflow=c00k1e"}))
    assert "with the credential in PTV2_KFP_COOKIE (401" in line and "c00k1e" not in line, line
    line = one_error(submit(gw.url))
    assert "with no credential (401 Unauthorized): set PTV2_KFP_TOKEN" in line, line
    assert [(a, c) for _, _, a, c in gw.seen] == [("Bearer an-expired-one", None),
                                                  (None, "oauth2_proxy_kubeflow=c00k1e"), (None, None)]


def test_a_multi_user_kubeflow_needs_the_namespace_named(gateway):
    """The credential passes and the API says it is multi-user: without --namespace, kfp would look
    for the namespace file of a pod and create the experiment nowhere."""
    gw = gateway(token_gate)
    line = one_error(submit(gw.url, {"PTV2_KFP_TOKEN": "the-good-one"}))
    assert line == f"error: {gw.url} is a multi-user Kubeflow: name your profile's namespace with --namespace " \
        "(runs and experiments live in one)", line
    assert [(m, p, a) for m, p, a, _ in gw.seen] == [("GET", "/pipeline/apis/v2beta1/healthz", "Bearer the-good-one")]


def test_a_service_account_token_file_is_read_as_kfp_reads_it(gateway, tmp_path):
    gw = gateway(token_gate)
    (tmp_path / "token").write_text("from-the-file\n")
    line = one_error(submit(gw.url, {"KF_PIPELINES_SA_TOKEN_PATH": str(tmp_path / "token")}))
    assert "with the credential in KF_PIPELINES_SA_TOKEN_PATH (401" in line, line
    assert gw.seen[0][2] == "Bearer from-the-file"


@pytest.mark.parametrize("answer, needle", [
    (html_site, "is not a Kubeflow Pipelines API: /apis/v2beta1/healthz did not answer a JSON object (text/html)"),
    (not_found, "(404 on /apis/v2beta1/healthz): the endpoint usually ends in /pipeline"),
])
def test_a_host_that_is_no_pipelines_api_is_named_so(gateway, answer, needle):
    gw = gateway(answer)
    line = one_error(submit(gw.url))
    assert needle in line, line
    assert len(gw.seen) == 1


@pytest.mark.parametrize("env, config, needle", [
    ({"PTV2_KFP_COOKIE": "no-equals-sign"}, None, "PTV2_KFP_COOKIE must be name=value"),
    ({"PTV2_KFP_COOKIE": "a=b", "PTV2_KFP_TOKEN": "t"}, None, "both PTV2_KFP_TOKEN and PTV2_KFP_COOKIE are set"),
    ({"KF_PIPELINES_SA_TOKEN_PATH": "/nonexistent/token"}, None,
     "KF_PIPELINES_SA_TOKEN_PATH names '/nonexistent/token', which cannot be read"),
    ({}, "optuna_storage: postgresql://ptv2:hunter2@db:5432/optuna\n", "optuna_storage carries a password"),
    ({}, "mlflow_uri: https://admin:hunter2@mlflow.example.com\n", "mlflow_uri carries a password"),
    # these reached the cluster, where Kubeflow stores and shows them in plain text
    ({}, "optuna_storage: postgresql://optuna@pg/optuna?password=hunter2\n",
     "optuna_storage carries a credential in its query (password=)"),
    ({}, "mlflow_uri: http://mlflow:5000/?token=hunter2\n", "mlflow_uri carries a credential in its query (token=)"),
    ({}, "optuna_storage: postgresql://optuna:hunter2@[pg/optuna\n", "optuna_storage carries a URL that does not parse"),
    # a traceback (UnicodeEncodeError in requests), or the token echoed in the error line
    ({"PTV2_KFP_TOKEN": "t\u00f6k\u20acn-hunter2"}, None, "PTV2_KFP_TOKEN holds characters an HTTP header cannot carry"),
    ({"PTV2_KFP_TOKEN": "abc\nhunter2"}, None, "PTV2_KFP_TOKEN holds characters an HTTP header cannot carry"),
    ({"PTV2_KFP_COOKIE": "a=\u20ac-hunter2"}, None, "PTV2_KFP_COOKIE holds characters an HTTP header cannot carry"),
    ({"PTV2_KFP_TOKEN": "   "}, None, "PTV2_KFP_TOKEN is empty"),
    # libpq's names of an auth method and of a password file are no secrets
    ({}, "optuna_storage: postgresql://optuna@pg/optuna?require_auth=scram-sha-256&password=hunter2\n",
     "optuna_storage carries a credential in its query (password=)"),
])
def test_credential_mistakes_are_refused_before_any_request(gateway, tmp_path, env, config, needle):
    gw = gateway(token_gate)
    args = []
    if config:
        (tmp_path / "c.yaml").write_text(config)
        args = ["--config", str(tmp_path / "c.yaml")]
    line = one_error(submit(gw.url, env, *args))
    assert needle in line and "hunter2" not in line, line
    assert gw.seen == []


def test_a_host_that_does_not_answer_is_one_line():
    port = free_port()  # bound and closed again: nothing listens there
    line = one_error(submit(f"http://127.0.0.1:{port}"))
    assert line == f"error: cannot reach http://127.0.0.1:{port}: [Errno 111] Connection refused", line


def test_a_host_with_credentials_or_a_token_file_that_is_no_text_is_refused(gateway, tmp_path):
    """A password in --host was sent as Basic auth and printed in the error line; a token file that
    is not UTF-8 ended in a traceback."""
    gw = gateway(token_gate)
    with_password = gw.url.replace("http://", "http://admin:hunter2@")
    line = one_error(submit(with_password))
    assert "--host carries a password: credentials never go on the command line" in line and "hunter2" not in line
    line = one_error(submit("http://admin:hunter2@127.0.0.1:99999/pipeline"))
    assert "--host is not a valid URL" in line and "hunter2" not in line, line
    (tmp_path / "token").write_bytes(b"\xff\xfe\x00binary")
    line = one_error(submit(gw.url, {"KF_PIPELINES_SA_TOKEN_PATH": str(tmp_path / "token")}))
    assert "which is not a token (not UTF-8 text)" in line, line
    assert gw.seen == []


class PipelinesApi(Gateway):
    """A single-user Pipelines API as kfp's client meets it: health, no experiment yet, one created,
    one run created; the body of each POST kept, to read what kfp.Client sent."""

    def __init__(self):
        self.posted = {}

        def answer(handler):
            path = handler.path.split("?")[0]
            if handler.command == "POST":
                self.posted[path] = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
            body = {"/pipeline/apis/v2beta1/healthz": {"multi_user": False},
                    "/pipeline/apis/v2beta1/experiments": {"experiment_id": "e-1", "display_name": "ptv2"}
                    if handler.command == "POST" else {},
                    "/pipeline/apis/v2beta1/runs": {"run_id": "r-1"}}.get(path)
            if body is None:
                return 404, {"Content-Type": "text/plain"}, b"404 page not found"
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

        super().__init__(answer)


@pytest.mark.parametrize("args, account", [
    ([], "ptv2-pipeline"),
    (["--service-account", "ml-runner"], "ml-runner"),
    # docs/deploy.md and the option's help: empty means the namespace's default, i.e. none named
    (["--service-account", ""], None),
    (["--service-account="], None),
])
def test_the_run_is_created_with_the_service_account_asked_for(args, account):
    """`--service-account ""` was refused as an empty option (a script's unset variable), though
    the help and docs/deploy.md say empty means the namespace's default account."""
    api = PipelinesApi()
    try:
        res = submit(api.url, {"PTV2_KFP_TOKEN": "t"}, *args)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["run_id"] == "r-1"
        run = api.posted["/pipeline/apis/v2beta1/runs"]
        assert run.get("service_account") == account, run.get("service_account")
        assert run["experiment_id"] == "e-1" and run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "ptv2-prompt-search"
    finally:
        api.shutdown()
        api.server_close()


@pytest.mark.parametrize("args, use", [([], True), (["--no-pretrained-prompt"], False), (["--pretrained-prompt"], True)])
def test_the_pretrained_prompt_flag_reaches_the_run_parameters(args, use):
    """--pretrained-prompt/--no-pretrained-prompt as typer parses it, in the run kfp's client
    sends (the flag's other tests call the override function directly)."""
    api = PipelinesApi()
    try:
        res = submit(api.url, {"PTV2_KFP_TOKEN": "t"}, *args)
        assert res.returncode == 0, res.stderr
        params = api.posted["/pipeline/apis/v2beta1/runs"]["runtime_config"]["parameters"]
        assert params["use_pretrained_prompt"] is use, params
        assert params["tasks"] == ["trec"]  # the other parameters as given
    finally:
        api.shutdown()
        api.server_close()


def test_pretrain_epochs_0_is_taken_when_pre_training_is_skipped_and_refused_when_it_runs(tmp_path):
    """`--no-pretrained-prompt` skips pre-training, yet `pretrain_epochs: 0` (a config saying "no
    pre-training") was refused as if it ran. It is taken then; with pre-training, and a negative
    number either way, it is one `error:` line, exit 2, and nothing is submitted."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pretrain_epochs: 0\n")
    api = PipelinesApi()
    try:
        res = submit(api.url, {"PTV2_KFP_TOKEN": "t"}, "--config", str(cfg), "--no-pretrained-prompt")
        assert res.returncode == 0, res.stderr
        params = api.posted["/pipeline/apis/v2beta1/runs"]["runtime_config"]["parameters"]
        assert (params["pretrain_epochs"], params["use_pretrained_prompt"]) == (0, False), params
        api.posted.clear()
        assert one_error(submit(api.url, {"PTV2_KFP_TOKEN": "t"}, "--config", str(cfg))) == (
            "error: pretrain_epochs must be a positive integer, got 0")
        cfg.write_text("pretrain_epochs: -1\n")
        assert one_error(submit(api.url, {"PTV2_KFP_TOKEN": "t"}, "--config", str(cfg), "--no-pretrained-prompt")) == (
            "error: pretrain_epochs must be 0 or a positive integer (pre-training is skipped: use_pretrained_prompt "
            "is false), got -1")
        assert "/pipeline/apis/v2beta1/runs" not in api.posted
    finally:
        api.shutdown()
        api.server_close()


def self_signed(folder) -> str:
    """A certificate for 127.0.0.1 signed by its own key, as an install with its own CA has: its PEM
    file (certificate, then key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubeflow.internal")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    pem = folder / "kubeflow.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(pem)


class TlsPipelinesApi(PipelinesApi):
    """The same API behind TLS with a certificate no public CA signed."""

    def __init__(self, pem: str):
        import ssl

        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(pem)
        super().__init__()

    def get_request(self):
        conn, addr = super().get_request()
        return self.tls.wrap_socket(conn, server_side=True), addr

    @property
    def url(self):
        return super().url.replace("http://", "https://")


def test_a_certificate_not_trusted_here_is_named_with_the_way_to_trust_it(tmp_path, monkeypatch):
    """The line was requests' retry story cut at 200 characters, ending in '[SSL:
    CERTIFICATE_VERIFY_FAILED] certi': neither why nor what to do. With the CA's file in
    REQUESTS_CA_BUNDLE the health probe passed, then kfp's client (which reads no such variable)
    failed on the same certificate."""
    api = TlsPipelinesApi(self_signed(tmp_path))
    try:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        line = one_error(submit(api.url, {"PTV2_KFP_TOKEN": "t"}))
        assert line == (f"error: cannot reach {api.url}: its TLS certificate is not trusted here (certificate "
                        "verify failed: self-signed certificate): if it comes from your own CA, set REQUESTS_CA_BUNDLE "
                        "to that CA's certificate (a PEM file)"), line
        assert "/pipeline/apis/v2beta1/runs" not in api.posted
        res = submit(api.url, {"PTV2_KFP_TOKEN": "t", "REQUESTS_CA_BUNDLE": str(tmp_path / "kubeflow.pem")})
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["run_id"] == "r-1" and "/pipeline/apis/v2beta1/runs" in api.posted
        line = one_error(submit(api.url, {"PTV2_KFP_TOKEN": "t", "REQUESTS_CA_BUNDLE": str(tmp_path / "none.pem")}))
        assert line == (f"error: REQUESTS_CA_BUNDLE names '{tmp_path / 'none.pem'}', which is neither a file nor "
                        "a folder"), line
    finally:
        api.shutdown()
        api.server_close()


def test_a_folder_of_hashed_ca_certificates_is_trusted_too(tmp_path):
    """REQUESTS_CA_BUNDLE may name a folder of CA certificates under their subject hashes
    (``openssl rehash``/c_rehash names), as requests takes it: it was refused up front ("which is
    not a file"). kfp's client takes one file only: it is handed the folder's certificates as one."""
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = Path(self_signed(tmp_path)).read_bytes()
    cas = tmp_path / "cas"
    cas.mkdir()
    (cas / "kubeflow.crt").write_bytes(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.PEM))
    subprocess.run(["openssl", "rehash", str(cas)], check=True)  # c_rehash's names: <subject hash>.0
    assert any(p.name.endswith(".0") for p in cas.iterdir()), list(cas.iterdir())
    api = TlsPipelinesApi(str(tmp_path / "kubeflow.pem"))
    try:
        res = submit(api.url, {"PTV2_KFP_TOKEN": "t", "REQUESTS_CA_BUNDLE": str(cas)})
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["run_id"] == "r-1" and "/pipeline/apis/v2beta1/runs" in api.posted
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "kubeflow.crt").write_bytes(pem)  # not under a hashed name: OpenSSL would never find it
        line = one_error(submit(api.url, {"PTV2_KFP_TOKEN": "t", "REQUESTS_CA_BUNDLE": str(empty)}))
        assert line == (f"error: REQUESTS_CA_BUNDLE names the folder '{empty}', which holds no CA certificate under a "
                        "hashed name (HHHHHHHH.0): run `openssl rehash` on it, or name one PEM file"), line
    finally:
        api.shutdown()
        api.server_close()

class ProxiedPipelinesApi(PipelinesApi):
    """The same API, reachable only through an HTTP proxy (this server, answering the absolute URLs
    a proxy is asked for), as from a workstation behind a corporate proxy."""

    def __init__(self):
        super().__init__()
        self.via_proxy = []
        inner = self.answer

        def answer(handler):
            from urllib.parse import urlsplit

            self.via_proxy.append(handler.path.startswith("http://kubeflow.invalid/"))
            handler.path = urlsplit(handler.path)._replace(scheme="", netloc="").geturl()
            return inner(handler)

        self.answer = answer


def test_a_proxy_set_in_the_environment_carries_the_run_too():
    """The health probe (requests) went through HTTP_PROXY, then kfp's client, which reads no proxy
    variable, went straight to the host and failed: '... refused the run: ... Name or service not known'."""
    api = ProxiedPipelinesApi()
    try:
        proxy = f"http://127.0.0.1:{api.server_address[1]}"
        # no credential: ptv2 sends none to a plain http host on the network (test_security_submit_http)
        env = {"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
        res = submit("http://kubeflow.invalid/pipeline", env)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["run_id"] == "r-1" and "/pipeline/apis/v2beta1/runs" in api.posted
        assert api.via_proxy and all(api.via_proxy), api.via_proxy
    finally:
        api.shutdown()
        api.server_close()


def test_a_connection_lost_after_the_probe_is_not_called_a_refusal(gateway):
    """The health probe passed, then the connection dropped as kfp's client created the run (the
    API restarting, a proxy cutting it): the line said the host 'refused the run' and gave urllib3's
    retry story cut at 300 characters."""
    def drops_after_health(handler):
        if handler.path.startswith("/pipeline/apis/v2beta1/healthz"):
            return 200, {"Content-Type": "application/json"}, b'{"multi_user": false}'
        handler.close_connection = True
        handler.connection.shutdown(2)  # no answer at all
        raise ConnectionAbortedError
    gw = gateway(drops_after_health)
    gw.handle_error = lambda request, address: None  # the dropped request's exception, on purpose
    line = one_error(submit(gw.url, {"PTV2_KFP_TOKEN": "t"}))
    assert "refused" not in line and "Max retries" not in line, line
    assert line == (f"error: lost the connection to {gw.url} while starting the run: Remote end closed connection "
                    "without response (look for the run in the Kubeflow UI, experiment 'ptv2', before submitting "
                    "again)"), line
