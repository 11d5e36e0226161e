"""A service that does not answer is refused with the knob its reader set: the CLI's --mlflow-uri
and --ray-address, the pipeline's mlflow_uri and ray_address parameters (its first step's check and
the search step's own). The search step said "point --mlflow-uri / MLFLOW_TRACKING_URI at one that
runs" and "unset RAY_ADDRESS (and --ray-address)" to a pipeline user, who has no such options."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error
from test_registry_support import free_port


def dead_mlflow() -> tuple[str, str]:
    """An MLflow server URL nothing answers at, and the start of the line that says so."""
    port = free_port()  # bound and closed again: nothing listens there
    return f"http://127.0.0.1:{port}", f"MLflow tracking server http://127.0.0.1:{port} does not answer"


def dead_ray() -> tuple[str, str]:
    port = free_port()
    return f"127.0.0.1:{port}", f"nothing answers at the Ray cluster address '127.0.0.1:{port}'"


def test_the_cli_messages_name_the_flags():
    from optuna_studies.ray_session import check_answers
    from optuna_studies.tracking_setup import check_reachable

    url, said = dead_mlflow()
    with pytest.raises(Ptv2Error) as e:
        check_reachable(url, timeout=2)
    assert said in str(e.value)
    assert "point --mlflow-uri / MLFLOW_TRACKING_URI at one that runs" in str(e.value)
    assert "mlflow_uri parameter" not in str(e.value)
    address, said = dead_ray()
    with pytest.raises(Ptv2Error) as e:
        check_answers(address)
    assert said in str(e.value)
    assert "point --ray-address / RAY_ADDRESS at one that runs" in str(e.value)
    assert "ray_address parameter" not in str(e.value)


def test_the_pipelines_first_step_names_the_parameters(tmp_path):
    from components.params import check_services

    url, said = dead_mlflow()
    with pytest.raises(Ptv2Error) as e:
        check_services({"mlflow_uri": url, "ray_address": ""})
    assert said in str(e.value)
    assert "point the mlflow_uri parameter / MLFLOW_TRACKING_URI at one that runs" in str(e.value)
    assert "--mlflow-uri" not in str(e.value)
    address, said = dead_ray()
    with pytest.raises(Ptv2Error) as e:
        check_services({"mlflow_uri": f"sqlite:///{tmp_path}/m.db", "ray_address": address})
    assert said in str(e.value)
    assert "point the ray_address parameter / RAY_ADDRESS at one that runs" in str(e.value)
    assert "--ray-address" not in str(e.value)


@pytest.mark.parametrize("dead", ["mlflow", "ray"])
def test_the_pipelines_search_step_names_the_parameter(tmp_path, monkeypatch, dead):
    from components.data import prepare_data
    from components.search_step import search_task

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PTV2_SHARED_DIR", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    prepared = tmp_path / "data"
    prepare_data(["trec"], prepared, seed=0, max_train=16, max_eval=8)
    if dead == "mlflow":
        (mlflow_uri, said), ray_address = dead_mlflow(), ""
        hint, other = "point the mlflow_uri parameter / MLFLOW_TRACKING_URI at one that runs", "ray_address parameter"
    else:
        mlflow_uri, (ray_address, said) = f"sqlite:///{tmp_path}/m.db", dead_ray()
        hint, other = "point the ray_address parameter / RAY_ADDRESS at one that runs", "--ray-address"
    with pytest.raises(Ptv2Error) as e:
        search_task(prepared, "trec", tmp_path / "adapter", tmp_path / "plot.html", lengths=[2], lr_range=(1e-3, 1e-2),
                    trials=1, epochs=1, concurrency=1, mlflow_uri=mlflow_uri, ray_address=ray_address,
                    storage=f"sqlite:///{tmp_path}/o.db")
    assert said in str(e.value) and hint in str(e.value), str(e.value)
    assert other not in str(e.value)
    assert not (tmp_path / "adapter").exists() and not (tmp_path / "o.db").exists()
