"""Store URLs: a password is masked wherever it sits, in the authority (user:password@) or in the
query (libpq and psycopg2 take ?password=, PyMySQL ?passwd=)."""
from __future__ import annotations

import pytest

from optuna_studies.urls import has_password, keep_secret, mask_in_text, mask_url, recall_secret


@pytest.mark.parametrize("url, masked", [
    ("postgresql://ptv2@db:5432/optuna?password=s3cret", "postgresql://ptv2@db:5432/optuna?password=***"),
    ("postgresql+psycopg2://ptv2@db/optuna?sslmode=require&password=s3cret&application_name=ptv2",
     "postgresql+psycopg2://ptv2@db/optuna?application_name=ptv2&password=***&sslmode=require"),  # sqlalchemy sorts
    ("postgresql://ptv2@db/optuna?PassWord=s3cret", "postgresql://ptv2@db/optuna?PassWord=***"),
    ("postgresql://ptv2@db/optuna?sslpassword=s3cret", "postgresql://ptv2@db/optuna?sslpassword=***"),
    ("mysql+pymysql://ptv2@db/optuna?passwd=s3cret", "mysql+pymysql://ptv2@db/optuna?passwd=***"),
    ("postgresql://ptv2@db/optuna?password=s%26cr3t%2Ax", "postgresql://ptv2@db/optuna?password=***"),
    ("postgresql://u:s3cret@db/optuna?password=s3cret", "postgresql://u:***@db/optuna?password=***"),
    # not a URL sqlalchemy parses (a bad port): masked all the same
    ("postgresql://ptv2@db:port/optuna?password=s3cret", "postgresql://ptv2@db:port/optuna?password=***"),
])
def test_a_password_in_the_query_is_masked_and_counts_as_one(url, masked):
    assert mask_url(url) == masked and "s3cret" not in mask_url(url)
    assert has_password(url)
    kept, secret = keep_secret(url)
    assert kept == masked and secret and recall_secret(kept, secret, "PTV2_NO_SUCH_VARIABLE", "storage") == url
    assert "s3cret" not in mask_in_text(f"cannot open '{url}': connection refused")


@pytest.mark.parametrize("url", ["postgresql://ptv2@db:5432/optuna?sslmode=require", "sqlite:////tmp/x.db",
                                 "postgresql://ptv2@db/optuna?passfile=pgpass", "http://127.0.0.1:5000"])
def test_a_url_without_a_password_is_left_as_it_is(url):
    assert mask_url(url) == url and not has_password(url) and keep_secret(url) == (url, False)


@pytest.mark.parametrize("url, masked", [
    ("https://ghp_S3cretTok@github.com/org/repo", "https://***@github.com/org/repo"),
    ("http://S3cretTok@127.0.0.1:5000", "http://***@127.0.0.1:5000"),
    ("HTTPS://S3cretTok@kfp.example:8443/pipeline", "HTTPS://***@kfp.example:8443/pipeline"),
])
def test_a_token_alone_in_an_http_urls_userinfo_is_masked_and_counts_as_a_password(url, masked):
    """http(s) (MLflow servers, KFP hosts): a user name without a password is a token; database
    URLs keep theirs (a role name, e.g. postgresql://postgres@127.0.0.1, left as it is above)."""
    assert mask_url(url) == masked
    assert mask_in_text(f"cannot open '{url}': refused; again {url} failed") == \
        f"cannot open '{masked}': refused; again {masked} failed"
    assert has_password(url)
    kept, secret = keep_secret(url)
    assert kept == masked and secret and recall_secret(kept, secret, "PTV2_NO_SUCH_VARIABLE", "tracking URI") == url


@pytest.mark.parametrize("quote", ["'", '"'])
@pytest.mark.parametrize("template, masked", [
    ("postgresql://ptv2:pa{q}S3cret@db:5432/optuna", "postgresql://ptv2:***@db:5432/optuna"),
    ("postgresql://ptv2@db/optuna?password=pa{q}S3cret", "postgresql://ptv2@db/optuna?password=***"),
    ("postgresql://ptv2@db/optuna?password=pa{q}S3cret&sslmode=require",
     "postgresql://ptv2@db/optuna?password=***&sslmode=require"),
    ("http://ptv2:pa{q}S3cret@mlflow:5000", "http://ptv2:***@mlflow:5000"),
])
def test_a_password_holding_a_quote_is_masked_whole_in_text(template, masked, quote):
    url = template.format(q=quote)
    assert "S3cret" not in mask_url(url)
    for text, shown in [(f"cannot open '{url}': refused", f"cannot open '{masked}': refused"),
                        (f'cannot open "{url}".', f'cannot open "{masked}".'),
                        (f"at {url}", f"at {masked}")]:
        assert mask_in_text(text) == shown
