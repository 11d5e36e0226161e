"""A user token (NER) task's default search space: span F1 sits near 0 for every configuration after
one epoch from a fresh prompt (measured on wnut16, docs/search_cost.md), so an ASHA rung at epoch 1
prunes by noise; user token tasks get the packaged NER settings, user sequence tasks the default."""
from __future__ import annotations

from optuna_studies.space import load_space, space_path


def _task(tmp_path, kind: str) -> str:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(f"name: mine\ntype: {kind}\ndata: {{train: train.jsonl}}\n")  # no data read to pick a space
    return str(path)


def test_a_user_token_task_gets_a_space_whose_first_rung_waits_for_span_f1(tmp_path):
    token = load_space(_task(tmp_path, "token"))
    wnut = load_space("wnut16")
    assert token.source.endswith("default_token.yaml")
    assert (token.grace_period, token.warm_grace_period, token.epochs) == (
        wnut.grace_period, wnut.warm_grace_period, wnut.epochs)
    assert token.grace_period >= 2 and token.for_start(warm=True).grace_period == 1
    assert max(token.prompt_lens) >= 128  # NER prefers long prompts (P-Tuning v2: around 100)


def test_a_user_sequence_task_and_an_unreadable_or_hub_task_keep_the_default_space(tmp_path):
    assert load_space(_task(tmp_path, "sequence")).source.endswith("/default.yaml")
    assert load_space("hub:someone/data").source.endswith("/default.yaml")  # its type is known only once fetched
    assert load_space("missing.yaml").source.endswith("/default.yaml")


def test_the_pipeline_picks_the_space_from_a_prepared_task_file_given_beside_its_name(tmp_path):
    assert space_path("mine", _task(tmp_path, "token")).name == "default_token.yaml"
    assert space_path("mine").name == "default.yaml"
    assert space_path("wnut16", _task(tmp_path, "sequence")).name == "wnut16.yaml"


def test_the_pipelines_search_step_writes_a_user_token_tasks_space_with_its_pruning(tmp_path):
    import yaml

    from components.search_step import space_file

    path = space_file("mine", tmp_path, lengths=[4, 8], lr_range=(3e-3, 5e-2), trials=3, epochs=4,
                      task_file=_task(tmp_path, "token"))
    doc = yaml.safe_load(path.read_text())
    assert doc["pruning"]["grace_period"] == 2 and doc["epochs"] == 4 and doc["prompt_len"] == [4, 8]


def test_resuming_a_token_study_started_on_the_old_default_space_says_how(tmp_path):
    """A user token task's study started on default.yaml (5 epochs) and resumed after the change to
    default_token.yaml (8) was refused for its epochs with no word of the space that changed them."""
    import optuna
    import pytest

    from optuna_studies.study import open_storage, prepare_study
    from ptv2_core.errors import Ptv2Error

    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    old, new = load_space(_task(tmp_path, "sequence")), load_space(_task(tmp_path, "token"))
    study = prepare_study(storage, "s", old, False, {"epochs": old.epochs}).study
    study.tell(study.ask({"prompt_len": optuna.distributions.CategoricalDistribution(list(old.prompt_lens))}), 0.3)
    with pytest.raises(Ptv2Error) as e:
        prepare_study(storage, "s", new, True, {"epochs": new.epochs})
    assert str(e.value).endswith(
        f"; a user token task's search ran on default.yaml until 2026-12-07: to resume a study started before, "
        f"give --space {old.source}"), str(e.value)
    assert f"epochs {old.epochs} → {new.epochs}" in str(e.value)
    # a study that ran other epochs than default.yaml's (--epochs 7): no word of default.yaml
    study = prepare_study(storage, "s7", old, False, {"epochs": 7}).study
    study.tell(study.ask({"prompt_len": optuna.distributions.CategoricalDistribution(list(old.prompt_lens))}), 0.3)
    with pytest.raises(Ptv2Error) as e:
        prepare_study(storage, "s7", new, True, {"epochs": new.epochs})
    assert "epochs 7 → 8" in str(e.value) and "default.yaml" not in str(e.value)


def test_a_hub_tasks_space_follows_the_type_its_caller_knows(tmp_path):
    """A hub reference alone says nothing of its type (default.yaml): ptv2 search's plan fetches the
    data set and passes its type (the test below); the pipeline's search step reads its prepared task
    file (type: token)."""
    assert space_path("hub:someone/ner").name == "default.yaml"
    assert space_path("hub:someone/ner", _task(tmp_path, "token")).name == "default_token.yaml"
    assert space_path("hub:someone/ner", task_type="token").name == "default_token.yaml"


def _hub_ner_folder(tmp_path):
    """A data set `hub:<folder>` fetches with the real loading code (datasets.load_dataset on a
    local folder): words and their BIO tags, as a hub NER data set has them."""
    import json

    folder = tmp_path / "hub-ner"
    folder.mkdir()
    rows = [{"tokens": ["Ann", "met", "Bob", str(i)], "ner_tags": ["B-per", "O", "B-per", "O"]} for i in range(24)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_search_fetches_a_hub_task_to_give_a_hub_ner_data_set_the_token_space(tmp_path, monkeypatch, minilm_path):
    """`ptv2 search --task hub:<NER data set>` got default.yaml (its type was known only once a trial
    fetched it): the grace period of 1 that prunes span F1 by noise. The plan fetches it first now;
    a --space given is taken as it is, without a fetch."""
    from optuna_studies.plan import plan_search

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    said = []
    kw = dict(trials=2, storage=f"sqlite:///{tmp_path}/o.db", init=None, max_train=8, max_eval=8, epochs=None,
              concurrency=1, cpus_per_trial=1, gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    task = f"hub:{_hub_ner_folder(tmp_path)}"
    plan = plan_search(task, minilm_path, tmp_path / "out", space=None, say=said.append, **kw)
    assert plan.space.source.endswith("/default_token.yaml"), plan.space.source
    assert plan.space.grace_period == load_space("wnut16").grace_period
    assert said and said[0].startswith(f"fetching {task}")
    given = plan_search(task, minilm_path, tmp_path / "out2", space=space_path("mine"), say=(said := []).append, **kw)
    assert given.space.source.endswith("/default.yaml") and not any("fetching" in s for s in said)


def test_a_hub_data_set_that_cannot_be_fetched_is_refused_before_the_study_exists(tmp_path, monkeypatch, minilm_path):
    """Every trial failed on it (after the study, its MLflow run and the work folder were made)."""
    import pytest

    from optuna_studies.plan import plan_search
    from ptv2_core.errors import Ptv2Error

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    with pytest.raises(Ptv2Error, match="could not load hub dataset 'ptv2-no-such-user/no-such-data'"):
        plan_search("hub:ptv2-no-such-user/no-such-data", minilm_path, tmp_path / "out", trials=2, space=None,
                    storage=None, init=None, max_train=8, max_eval=8, epochs=None, concurrency=1, cpus_per_trial=1,
                    gpus_per_trial=0, overwrite=False, study_name=None, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_hub_search_refuses_a_full_out_before_fetching_its_data_set(tmp_path, monkeypatch, minilm_path):
    """The checks that need no data (--out, --resume of a finished search, --storage) come before
    the fetch: a full --out downloaded the whole data set first, then was refused."""
    import pytest

    from optuna_studies.plan import plan_search
    from ptv2_core.errors import Ptv2Error

    monkeypatch.setenv("PTV2_HOME", str(tmp_path / "home"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kept.txt").write_text("mine")
    said = []
    with pytest.raises(Ptv2Error, match="not empty"):
        plan_search(f"hub:{_hub_ner_folder(tmp_path)}", minilm_path, tmp_path / "out", trials=2, space=None,
                    storage=None, init=None, max_train=8, max_eval=8, epochs=None, concurrency=1, cpus_per_trial=1,
                    gpus_per_trial=0, overwrite=False, study_name=None, seed=0, say=said.append)
    assert said == []
