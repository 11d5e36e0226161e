"""Resuming a study whose search finished (its work folder deleted, only its result kept) is
refused before Ray is joined or started: the refusal needs only the study storage and the folder.
Here nothing listens at the cluster address; the refusal came after the join, so the dead
address was reported instead."""
from __future__ import annotations

import pytest

from ptv2_core.errors import Ptv2Error


def _finished_study(url: str, name: str, trials: int) -> None:
    from optuna_studies.space import load_space
    from optuna_studies.study import open_storage, prepare_study

    space = load_space("trec").with_overrides(trials=trials, epochs=None).for_start(warm=False)
    study = prepare_study(open_storage(url), name, space, resume=False).study
    for _ in range(trials):
        study.tell(study.ask(), 0.5)


def test_a_finished_studys_resume_without_its_work_folder_is_refused_before_ray(tmp_path, monkeypatch):
    import optuna
    from search_ray_support import free_port

    from optuna_studies.search import run_search

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path}/optuna.db"
    _finished_study(url, "finished", 3)
    with pytest.raises(Ptv2Error, match="study 'finished' already finished 3 trials, and their work folder .* is "
                                        "gone .* start a new search"):
        run_search("trec", "minilm", tmp_path / "elsewhere", trials=5, storage=url, study_name="finished",
                   resume=True, ray_address=f"127.0.0.1:{free_port()}")  # nothing listens there
    assert len(optuna.load_study(study_name="finished", storage=url).trials) == 3  # nothing ran
    assert not (tmp_path / "elsewhere").exists()


def test_an_old_style_work_folder_with_records_is_left_to_the_search(tmp_path, monkeypatch):
    """A search interrupted before each study had its own work folder kept ``.<out>.search/``:
    whether it is this study's is decided once joined (it is renamed then), not refused before."""
    from search_ray_support import free_port

    from optuna_studies.search import run_search

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path}/optuna.db"
    _finished_study(url, "old", 2)
    legacy = tmp_path / ".out.search" / "trials"
    legacy.mkdir(parents=True)
    (legacy / "abc.json").write_text("{}")
    with pytest.raises(Ptv2Error) as e:
        run_search("trec", "minilm", tmp_path / "out", trials=5, storage=url, study_name="old", resume=True,
                   ray_address=f"127.0.0.1:{free_port()}")
    assert "is gone" not in str(e.value)  # the dead address (or the legacy folder's own check), after the pre-check
