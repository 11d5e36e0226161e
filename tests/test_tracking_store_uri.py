"""``check_store_uri``: the one check of an MLflow store's URI that every command makes before it
opens the store (``check_reachable``, the registry's ``tracking_uri``, ``open_local_store``): the
scheme MLflow can open, and a sqlite file's folder, named by where the URI came from."""
from __future__ import annotations

import pytest

from optuna_studies.tracking_setup import check_store_uri
from ptv2_core.errors import Ptv2Error


def test_it_checks_the_scheme_then_the_sqlite_folder_naming_where_the_uri_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(Ptv2Error, match="^MLflow tracking URI 'foo://h/x' has an unknown scheme 'foo'"):
        check_store_uri("foo://h/x", "--mlflow-uri")
    with pytest.raises(Ptv2Error, match=r"^MLflow tracking URI 'file:///x' is a folder \(MLflow's file store"):
        check_store_uri("file:///x")
    typo = tmp_path / "typo"
    for given_by, where in ((None, "MLFLOW_TRACKING_URI"), ("--mlflow-uri", "--mlflow-uri / MLFLOW_TRACKING_URI")):
        with pytest.raises(Ptv2Error) as e:
            check_store_uri(f"sqlite:///{typo / 'x.db'}", given_by)
        assert str(e.value) == (f"MLflow store sqlite:///{typo / 'x.db'}: its folder '{typo}' does not exist "
                                f"(create it, or point {where} at another store)")
    with pytest.raises(Ptv2Error, match=r"^MLflow store sqlite:// names no file \(sqlite in memory\)"):
        check_store_uri("sqlite://")
    # what it lets through, as MLflow is to open it; the default store's folder is made later, not refused
    assert check_store_uri(f"sqlite:///{tmp_path / 'mlflow.db'}") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert check_store_uri(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}", "mlflow_uri").endswith("/home/mlflow.db")
    assert check_store_uri("postgresql://u@db:5432/mlflow").startswith("postgresql+")
    assert check_store_uri("http://127.0.0.1:1", "--mlflow-uri") == "http://127.0.0.1:1"  # not probed here
    assert not (tmp_path / "home").exists() and not typo.exists()
