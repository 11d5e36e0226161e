"""An MLflow server URL with ``user:password@`` is probed at its host, not at a host named
"user:password@host" (urllib keeps the userinfo in the host it resolves: "Name or service not
known", and a running server refused as one that does not answer)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from optuna_studies.tracking_setup import check_reachable
from ptv2_core.errors import Ptv2Error


class Health(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Health.seen.append((self.path, self.headers.get("Host")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_a_server_url_with_a_password_is_probed_at_its_host(server):
    Health.seen.clear()
    check_reachable(f"http://ptv2:S3cretTail@127.0.0.1:{server}")
    assert Health.seen == [("/health", f"127.0.0.1:{server}")]


def test_a_server_that_does_not_answer_is_still_refused_without_the_password():
    with pytest.raises(Ptv2Error) as e:
        check_reachable("http://ptv2:S3cretTail@127.0.0.1:1")
    assert "S3cretTail" not in str(e.value) and "does not answer" in str(e.value) \
        and "Name or service" not in str(e.value), str(e.value)
