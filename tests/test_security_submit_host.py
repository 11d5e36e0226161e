"""`ptv2 submit --host` given without its scheme is refused without repeating a credential in it
(``admin:password@kfp.example.com`` reads as scheme ``admin``, so the password check never saw it)."""
from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize("host", ["admin:S3cretTail@kfp.example.com", "admin:S3cretTail@kfp.example.com/pipeline",
                                  "ftp://admin:S3cretTail@kfp.example.com"])
def test_a_host_that_is_not_http_is_refused_without_its_credential(host):
    res = run_cli("submit", "--host", host)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --host must be an http(s) URL"), \
        res.stderr
    assert "S3cretTail" not in res.stderr + res.stdout, lines[0]


def test_a_host_without_a_credential_is_still_named():
    res = run_cli("submit", "--host", "kfp.example.com")
    assert res.returncode == 2 and "'kfp.example.com'" in res.stderr, res.stderr
