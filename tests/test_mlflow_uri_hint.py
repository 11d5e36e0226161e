"""An MLflow tracking server that does not answer is refused with the knob its reader set: the
CLI's --mlflow-uri, the pipeline's mlflow_uri parameter (its first step's check and the search
step's own). The search step said "point --mlflow-uri / MLFLOW_TRACKING_URI at one that runs" to a
pipeline user, who has no such option."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error
from test_registry_support import free_port


def test_the_cli_message_names_the_flag():
    from optuna_studies.tracking_setup import check_reachable

    port = free_port()  # bound and closed again: nothing listens there
    with pytest.raises(Ptv2Error) as e:
        check_reachable(f"http://127.0.0.1:{port}", timeout=2)
    assert f"MLflow tracking server http://127.0.0.1:{port} does not answer" in str(e.value)
    assert "point --mlflow-uri / MLFLOW_TRACKING_URI at one that runs" in str(e.value)
    assert "mlflow_uri parameter" not in str(e.value)


def test_the_pipelines_first_step_names_the_parameter():
    from components.params import check_services

    port = free_port()
    with pytest.raises(Ptv2Error) as e:
        check_services({"mlflow_uri": f"http://127.0.0.1:{port}", "ray_address": ""})
    assert f"MLflow tracking server http://127.0.0.1:{port} does not answer" in str(e.value)
    assert "point the mlflow_uri parameter / MLFLOW_TRACKING_URI at one that runs" in str(e.value)
    assert "--mlflow-uri" not in str(e.value)


def test_the_pipelines_search_step_names_the_parameter(tmp_path, monkeypatch):
    from components.data import prepare_data
    from components.search_step import search_task

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PTV2_SHARED_DIR", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    prepared = tmp_path / "data"
    prepare_data(["trec"], prepared, seed=0, max_train=16, max_eval=8)
    port = free_port()
    with pytest.raises(Ptv2Error) as e:
        search_task(prepared, "trec", tmp_path / "adapter", tmp_path / "plot.html", lengths=[2], lr_range=(1e-3, 1e-2),
                    trials=1, epochs=1, concurrency=1, mlflow_uri=f"http://127.0.0.1:{port}",
                    ray_address="", storage=f"sqlite:///{tmp_path}/o.db")
    assert f"MLflow tracking server http://127.0.0.1:{port} does not answer" in str(e.value)
    assert "point the mlflow_uri parameter / MLFLOW_TRACKING_URI at one that runs" in str(e.value)
    assert "--mlflow-uri" not in str(e.value)
    assert not (tmp_path / "adapter").exists() and not (tmp_path / "o.db").exists()
