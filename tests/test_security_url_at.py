"""A password holding '@' that is not written %40: sqlalchemy (and so Optuna's storage and MLflow's
database store) ends the password at its first '@' and takes the rest for the host. Neither the
masked URL nor an error line may then show the rest of the password, and a database URL like
that is refused before anything connects (the driver's own message quotes the "host")."""
from __future__ import annotations

import pytest

from conftest import run_cli
from optuna_studies.study import check_storage_url
from optuna_studies.tracking_setup import check_tracking_uri
from optuna_studies.urls import mask_in_text, mask_url
from ptv2_core.errors import Ptv2Error

SECRET = "S3cretTail"


@pytest.mark.parametrize("url, masked", [
    (f"postgresql://ptv2:pa@{SECRET}@db:5432/optuna", "postgresql://ptv2:***@db:5432/optuna"),
    (f"postgresql://ptv2:pa@x@{SECRET}@db/optuna?sslmode=require", "postgresql://ptv2:***@db/optuna?sslmode=require"),
    (f"http://ptv2:pa@{SECRET}@mlflow:5000", "http://ptv2:***@mlflow:5000"),
])
def test_a_password_holding_at_is_masked_whole(url, masked):
    assert mask_url(url) == masked
    text = mask_in_text(f"cannot open '{url}': refused; again {url} failed")
    assert SECRET not in text and text.count("***@") == 2, text


def test_an_at_after_the_host_is_not_taken_for_the_password():
    assert mask_url("postgresql://ptv2:pw@db/optuna?application_name=a@b") == \
        "postgresql://ptv2:***@db/optuna?application_name=a%40b"  # sqlalchemy's rendering, the host kept
    assert mask_in_text("at postgresql://ptv2:pw@db/optuna?application_name=a@b now") == \
        "at postgresql://ptv2:***@db/optuna?application_name=a@b now"


@pytest.mark.parametrize("check", [check_storage_url, check_tracking_uri])
def test_a_database_url_with_an_unencoded_at_is_refused_without_the_password(check):
    with pytest.raises(Ptv2Error) as e:
        check(f"postgresql://ptv2:pa@{SECRET}@127.0.0.1:5432/optuna")
    assert SECRET not in str(e.value) and "%40" in str(e.value), str(e.value)


def test_search_names_neither_the_password_nor_its_tail(tmp_path, monkeypatch):
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    res = run_cli("search", "--task", "trec", "--out", str(tmp_path / "out"), "--trials", "1",
                  "--storage", f"postgresql://postgres:pa@{SECRET}@127.0.0.1:5432/optuna")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert SECRET not in res.stderr + res.stdout and "%40" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["postgresql://127.0.0.1:5432/optuna?application_name=a@b@c",
                                 "postgresql://127.0.0.1:5432/optuna?application_name=a@b",
                                 "postgresql://ptv2@127.0.0.1:5432/optuna?application_name=a@b",
                                 "postgresql://[::1]/optuna?application_name=a@b"])
@pytest.mark.parametrize("check", [check_storage_url, check_tracking_uri])
def test_an_at_in_the_query_that_sqlalchemy_would_take_for_the_host_is_named_as_such(check, url):
    """No password here: with a port (or an IPv6 host) before it, sqlalchemy reads the part up to
    the query's '@' as ``user:password`` and the rest as the host; the refusal says where the '@' is."""
    with pytest.raises(Ptv2Error) as e:
        check(url)
    message = str(e.value)
    assert "in its query" in message and "%40" in message and "in its user name or password" not in message, message


@pytest.mark.parametrize("url, host", [("postgresql://ptv2:pw@127.0.0.1:5432/optuna?application_name=a@b", "127.0.0.1"),
                                       ("postgresql://127.0.0.1/optuna?application_name=a@b", "127.0.0.1"),
                                       ("postgresql://ptv2:pw@[::1]:5432/optuna", "::1"),
                                       ("postgresql://[::1]:5432/optuna", "::1"),
                                       ("postgresql://ptv2:pa/ss@127.0.0.1/optuna", "127.0.0.1"),
                                       ("postgresql://ptv2:2024/pw@127.0.0.1:5432/optuna", "127.0.0.1"),
                                       ("sqlite:///{tmp}/a@b/optuna.db", None)])
@pytest.mark.parametrize("check", [check_storage_url, check_tracking_uri])
def test_urls_that_sqlalchemy_reads_as_written_pass(check, url, host, tmp_path):
    from sqlalchemy.engine import make_url

    (tmp_path / "a@b").mkdir()
    url = url.format(tmp=tmp_path)
    assert make_url(check(url)).host == host
