"""A Ray cluster address where nothing answers is refused with the knob its reader set: the CLI's
--ray-address, the pipeline's ray_address parameter (its steps: the first one's check, the search
step's own). The message said "unset RAY_ADDRESS (and --ray-address)" to a pipeline user too."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error
from test_registry_support import free_port


def test_the_cli_message_names_the_flag():
    from optuna_studies.ray_session import check_answers

    port = free_port()  # bound and closed again: nothing listens there
    with pytest.raises(Ptv2Error) as e:
        check_answers(f"127.0.0.1:{port}")
    assert f"nothing answers at the Ray cluster address '127.0.0.1:{port}'" in str(e.value)
    assert "point --ray-address / RAY_ADDRESS at one that runs" in str(e.value)
    assert "ray_address parameter" not in str(e.value)


def test_the_pipelines_first_step_names_the_parameter(tmp_path):
    from components.params import check_services

    port = free_port()
    with pytest.raises(Ptv2Error) as e:
        check_services({"mlflow_uri": f"sqlite:///{tmp_path}/m.db", "ray_address": f"127.0.0.1:{port}"})
    assert f"nothing answers at the Ray cluster address '127.0.0.1:{port}'" in str(e.value)
    assert "point the ray_address parameter / RAY_ADDRESS at one that runs" in str(e.value)
    assert "--ray-address" not in str(e.value)


def test_the_pipelines_search_step_names_the_parameter(tmp_path, monkeypatch):
    from components.data import prepare_data
    from components.search_step import search_task

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PTV2_SHARED_DIR", raising=False)
    prepared = tmp_path / "data"
    prepare_data(["trec"], prepared, seed=0, max_train=16, max_eval=8)
    port = free_port()
    with pytest.raises(Ptv2Error) as e:
        search_task(prepared, "trec", tmp_path / "adapter", tmp_path / "plot.html", lengths=[2], lr_range=(1e-3, 1e-2),
                    trials=1, epochs=1, concurrency=1, mlflow_uri=f"sqlite:///{tmp_path}/m.db",
                    ray_address=f"127.0.0.1:{port}", storage=f"sqlite:///{tmp_path}/o.db")
    assert f"nothing answers at the Ray cluster address '127.0.0.1:{port}'" in str(e.value)
    assert "point the ray_address parameter / RAY_ADDRESS at one that runs" in str(e.value)
    assert "--ray-address" not in str(e.value)
    assert not (tmp_path / "adapter").exists() and not (tmp_path / "o.db").exists()
