"""Checking a search request before anything is written: task, model, space, budget, storage,
pre-trained prompt, output folder. The result is a ``SearchPlan``; bad input is a Ptv2Error."""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ptv2_core.errors import Ptv2Error
from ptv2_core.multitask.init import InitWords, check_init, check_init_base
from ptv2_core.settings import check_seed
from ptv2_core.tasks import task_ref_kind
from optuna_studies import settings
from optuna_studies.capacity import check_gpus_per_trial
from optuna_studies.cluster import check_shared_dir, require_inside
from optuna_studies.output import BEST, check_out
from optuna_studies.space import SearchSpace, load_space
from optuna_studies.study import check_storage_url, default_study_name
from optuna_studies.tracking_setup import check_reachable
from optuna_studies.work import check_owner, work_dir


@dataclass(frozen=True)
class SearchPlan:
    """A checked search: what every trial shares (``constants``) and where things go."""

    task: str          # as trials receive it (a task file as an absolute path)
    task_name: str
    model: str         # as trials receive it (a model folder as an absolute path)
    space: SearchSpace
    storage: str
    study_name: str
    out_dir: Path
    work: Path
    init: str | None
    cpus_per_trial: float
    gpus_per_trial: float
    concurrency: int
    constants: dict[str, Any]
    shared: Path | None = None  # a folder every Ray node mounts (a cluster of several machines)
    # what people see where the trials read copies (the pipeline's search step, see run_search):
    # the parent run's model, init and space_file params, the plots' titles, best.json's model
    originals: dict[str, str] = field(default_factory=dict)

    @property
    def shown_model(self) -> str:
        """The model as given, not the copy in a shared folder its trials read."""
        return self.originals.get("model") or self.model


def plan_search(task: str, model: str, out_dir: str | Path, *, trials: int | None, space: str | Path | None,
                storage: str | None, init: str | Path | None, max_train: int | None, max_eval: int | None,
                epochs: int | None, concurrency: int, cpus_per_trial: float, gpus_per_trial: float,
                overwrite: bool, study_name: str | None, seed: int, shared_dir: str | Path | None = None,
                mlflow_uri: str | None = None, resume: bool = False,
                mlflow_uri_given_by: str = "--mlflow-uri", say: Callable[[str], None] | None = None) -> SearchPlan:
    """Validate a search request (reads files, probes a tracking server, writes nothing).
    ``mlflow_uri_given_by`` names the knob a store that cannot be reached is reported against;
    ``say`` receives the progress line of a task file's data check (its rows loaded: seconds), and
    the line that says to which commit a hub model is pinned for the search (``pin_search_model``).

    With a shared folder (``shared_dir``, else ``PTV2_SHARED_DIR``: see ``optuna_studies.cluster``)
    the work folder lives in it, and the task file, its data files, the pre-trained prompt and a
    model folder must lie in it too."""
    task_ref, task_name = check_task(task)
    model_ref = check_model(model)
    for name, value in (("trials", trials), ("epochs", epochs), ("max-train", max_train), ("max-eval", max_eval),
                        ("concurrency", concurrency)):
        check_count(f"--{name}", value, 1)
    check_seed(seed, "--seed")
    if not (0 < cpus_per_trial < math.inf and 0 <= gpus_per_trial < math.inf):  # NaN too: Ray waited forever
        raise Ptv2Error(f"--cpus-per-trial must be a number > 0 and --gpus-per-trial a number >= 0, got {cpus_per_trial}, {gpus_per_trial}")
    check_gpus_per_trial(gpus_per_trial)
    out = Path(out_dir).resolve()
    name = study_name or default_study_name(task_name, model, out)
    check_finished(out, name, resume=resume, overwrite=overwrite)
    check_out(out, overwrite)
    # a hub task's data set is fetched (its type picks the space) after the --out checks, which need no data
    task_type = hub_task_type(task_ref, say) if space is None else None
    spc = load_space(task, space, task_name, task_type).with_overrides(trials=trials, epochs=epochs)
    init_dir = check_init_dir(init, spc) if init is not None else None
    spc = spc.for_start(warm=init_dir is not None)
    if storage is not None:
        check_storage_url(storage)
    shared = settings.shared_dir(None if shared_dir is None else str(shared_dir))
    shared = check_shared_dir(shared) if shared else None
    if shared is not None:
        check_shared_inputs(shared, task_ref, model_ref, init_dir)
    constants = dict(spc.fixed) | {
        "task": task_ref, "model": model_ref, "epochs": spc.epochs, "max_train": max_train, "max_eval": max_eval,
        "seed": seed, "device": "cpu" if gpus_per_trial == 0 else "cuda", "metric": spc.metric, "mode": spc.mode,
        "init": init_dir,
    }
    check_trial_settings(constants, spc, task_ref)  # a setting every trial would fail on: refused before any runs
    check_task_data(constants, spc, task_ref, say)  # a task file's data every trial would fail to load: likewise
    check_reachable(mlflow_uri, given_by=mlflow_uri_given_by)  # a dead tracking server: refused before a study exists
    url = check_storage_url(settings.optuna_storage(storage))  # the default creates PTV2_HOME: last
    work = shared_work_dir(shared, name, out) if shared is not None else work_dir(out, name)
    check_owner(work, name, url)  # a study of the same name in another storage: its work is not ours
    model_ref = constants["model"] = pin_search_model(model_ref, url, name, resume, say)
    return SearchPlan(task_ref, task_name, model_ref, spc, url, name, out, work, init_dir, cpus_per_trial,
                      gpus_per_trial, concurrency, constants, shared)


def check_finished(out: Path, study_name: str, *, resume: bool, overwrite: bool) -> None:
    """An ``--out`` holding a finished search's result (best.json): a resume cannot continue it (only
    its best adapter was kept, so more trials could not be ranked against the earlier ones), and an
    ``--overwrite`` of the same study would find the study's trials. Said here, at once, before Ray
    starts (the refusals came one after another, each after ten seconds, each suggesting what the
    next refused)."""
    import json

    if not (out / BEST).is_file():
        return
    new = "start a new search with another --out or --study-name NAME"
    if resume:
        raise Ptv2Error(f"--out '{out}' holds a finished search ({BEST} and its best adapter); a finished search "
                        f"cannot be resumed (only its best adapter was kept): {new}")
    try:
        finished = (json.loads((out / BEST).read_text()).get("study") or {}).get("name")
    except (OSError, ValueError, AttributeError):
        finished = None
    if overwrite and finished == study_name:
        raise Ptv2Error(f"--out '{out}' holds the finished search of study '{study_name}', which keeps its trials: "
                        f"--overwrite would replace the files but not the study; {new}")


def shared_work_dir(shared: Path, study_name: str, out: Path) -> Path:
    """The work folder of a search in the shared folder: one per (study, output folder), so the
    same command finds it again on --resume."""
    digest = hashlib.sha1(str(out).encode()).hexdigest()[:8]
    return shared / "ptv2-searches" / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', study_name)}-{digest}"


def check_shared_inputs(shared: Path, task_ref: str, model_ref: str, init_dir: str | None) -> None:
    """Every file input a trial reads by path must be in the shared folder."""
    if task_ref_kind(task_ref) == "file":
        from ptv2_core.tasks import load_task_yaml

        require_inside(shared, "task file", task_ref)
        for split, path in load_task_yaml(task_ref)[1].splits().items():
            require_inside(shared, f"{split} file of the task", str(path))
    if Path(model_ref).is_dir():
        require_inside(shared, "model folder", model_ref)
    require_inside(shared, "pre-trained prompt", init_dir)


def hub_task_type(task_ref: str, say: Callable[[str], None] | None = None) -> str | None:
    """A ``hub:`` task's type (``sequence``/``token``), fetched once here (the data set's cache then
    serves the trials on this machine), so a hub NER data set gets the token tasks' default space as
    a token task file does; a data set that cannot be fetched (offline, unknown name) is refused
    before the study exists, where every trial failed on it. None for any other task."""
    if task_ref_kind(task_ref) != "hub":
        return None
    from ptv2_core.tasks import load_task

    if say is not None:
        say(f"fetching {task_ref} (its type picks the default search space)")
    return load_task(task_ref, max_train=1, max_eval=1)[0].type


def check_task(task: str) -> tuple[str, str]:
    """``(reference for trials, display name)``; unknown tasks and bad task files are errors."""
    if task_ref_kind(task) != "file":
        return task, task
    from ptv2_core.tasks import load_task_yaml

    spec, _ = load_task_yaml(task)
    return str(Path(task).resolve()), spec.name


def check_count(flag: str, value, least: int) -> None:
    """Ptv2Error unless ``value`` is None or an integer >= ``least`` (a bool is not one)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
        raise Ptv2Error(f"{flag} must be an integer >= {least}, got {value!r}")


def check_model(model: str) -> str:
    """A bundled alias, a model folder (made absolute: trials run in their own folders) or a
    hub name; its config must load and be a supported family."""
    from ptv2_core.backbone import geometry, load_config

    path = Path(model)
    if not path.is_dir() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise Ptv2Error(f"model folder not found: {model}")
    ref = str(path.resolve()) if path.is_dir() else model
    geometry(load_config(ref))
    return ref


def pin_search_model(model_ref: str, storage: str, study_name: str, resume: bool,
                     say: Callable[[str], None] | None = None) -> str:
    """The model every trial loads: a hub name without a revision, or with a tag or branch, pinned
    once to the commit it names now (``ptv2_core.backbone.pin_hub_model``), so that the trials, ranked
    against each other, train on one commit however the hub's main moves mid-search (each trial
    resolved the name itself before). ``say`` gets one line when it pins. A ``resume`` of a study
    whose trials ran on this name pinned (``org/x@<sha>`` recorded, ``org/x`` given) continues on
    that commit, not on the one main names now; a study recorded before searches were pinned (its
    settings name ``org/x`` itself) continues unpinned, as its trials ran. An alias, a folder and a
    name pinned to a commit come back as they are."""
    from ptv2_core.backbone import pin_hub_model, split_model_ref
    from ptv2_core.model_ref import is_commit_sha

    if resume and split_model_ref(model_ref)[1] is None:
        from optuna_studies.study_read import recorded_settings

        recorded = (recorded_settings(storage, study_name) or {}).get("model")
        if recorded == model_ref or (isinstance(recorded, str) and recorded.startswith(f"{model_ref}@")
                                     and is_commit_sha(recorded[len(model_ref) + 1:])):
            if recorded != model_ref and say is not None:  # <name>@<commit sha>: the commit its trials ran on
                say(f"model {model_ref}: resuming on commit {recorded[-40:][:7]}, the one the study's trials ran on")
            return recorded
    pinned, sha = pin_hub_model(model_ref)
    if pinned != model_ref and say is not None:
        say(f"model {split_model_ref(model_ref)[0]}: pinned to commit {sha[:7]} for this search")
    return pinned


def check_trial_settings(constants: dict, space: SearchSpace, task_ref: str) -> None:
    """Every trial's settings as the core checks them (the space's ``fixed`` ones included, with
    its shortest prompt and lowest rate), the model each trial builds (the pooling, 'pooler' on a
    model with a pooler layer only; the text's ``max_length`` and the longest prompt against the
    model's positions), and the objective among the report's metrics: a ``fixed: {batch_size: 0}``,
    ``fixed: {pooling: maen}``, ``fixed: {pooling: pooler}`` on GPT-2, ``fixed:
    {max_length: 1024}`` on a 512-position model or ``metric: dev_f1`` failed every trial, only
    after all had run."""
    from optuna_studies.objective import train_config
    from ptv2_core.backbone import load_config
    from ptv2_core.build import check_model_pooling, check_prompt_len
    from ptv2_core.metrics import report_keys
    from ptv2_core.tasks import task_type

    keys = report_keys(task_type(task_ref))
    if space.metric not in keys:
        raise Ptv2Error(f"search space {space.source}: metric '{space.metric}' is not in a trial's report; "
                        f"it has {', '.join(keys)}")
    try:
        cfg = train_config(constants | {"prompt_len": min(space.prompt_lens), "lr": space.lr_low})
        cfg.check_training()
        # as ptv2_core.build.build_model checks them, when a trial builds its model
        config = load_config(cfg.model)
        check_model_pooling(cfg.model, cfg.pooling, config)  # a 'pooler' on a model without a pooler layer
    except TypeError as e:  # a fixed key TrainConfig does not take (the space's own check lists the allowed ones)
        raise Ptv2Error(f"search space {space.source}: {e}") from None
    except Ptv2Error as e:
        raise Ptv2Error(f"search space {space.source}: {e}") from None
    max_length = cfg.max_length
    if max_length is None:  # the task's own (its file's, or a packaged or hub task's default): named as the task's
        max_length = task_max_length(task_ref)
        try:
            check_prompt_len(1, config, max_length)  # the text alone against the model's positions
        except Ptv2Error as e:
            raise Ptv2Error(f"{_task_length_source(task_ref, max_length)}: {e}") from None
    try:
        check_prompt_len(max(space.prompt_lens), config, max_length)
        if constants.get("init"):  # a pre-trained prompt: what each trial's init_from_pretrained checks
            check_init_fits(constants["init"], cfg, config, task_ref)
    except Ptv2Error as e:
        raise Ptv2Error(f"search space {space.source}: {e}") from None


def _task_length_source(task_ref: str, max_length: int) -> str:
    """Where a task's own max length is set, for an error about it."""
    kind = task_ref_kind(task_ref)
    if kind == "file":
        return f"task file {task_ref} (its max_length: {max_length})"
    if kind == "packaged":
        return f"packaged task '{task_ref}' (its max_length {max_length})"
    return f"hub task '{task_ref}' (its max_length, the default, {max_length})"


SAY_DATA_BYTES = 8 * 2**20  # a task file's data from which its check is said first (about 3 s to load)


def _data_bytes(task_ref: str) -> int:
    """The size of a task file's data files (0 where one cannot be read: the load names it)."""
    from ptv2_core.tasks import load_task_yaml

    total = 0
    for path in load_task_yaml(task_ref)[1].splits().values():
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


def check_task_data(constants: dict, space: SearchSpace, task_ref: str,
                    say: Callable[[str], None] | None = None) -> None:
    """A task file's rows, loaded as each trial loads them (its data seed, ``max_train``,
    ``max_eval``): a data file that is missing or unreadable, or a dev label no train row has,
    failed every trial, after the study, its MLflow run and the work folder were made. A packaged
    task's data ships with ptv2 and a hub data set is not fetched here: neither is loaded. ``say``
    gets one line first where the files are large (``SAY_DATA_BYTES``: 22 s for a 65 MB CSV of 400k
    rows); a small task's bad data stays one error line."""
    if task_ref_kind(task_ref) != "file":
        return
    if say is not None and _data_bytes(task_ref) >= SAY_DATA_BYTES:
        say(f"checking the data of task file {task_ref} (loading its rows as each trial will)")
    from optuna_studies.objective import train_config
    from ptv2_core.tasks import load_task

    cfg = train_config(constants | {"prompt_len": min(space.prompt_lens), "lr": space.lr_low})
    load_task(task_ref, seed=cfg.split_seed, max_train=cfg.max_train, max_eval=cfg.max_eval, label_notes=True)


def task_max_length(task_ref: str) -> int:
    """The task's own truncation (its spec's ``max_length``), known without its rows for a task
    file and a hub data set (the default, whatever its rows: nothing is fetched); a packaged
    task's by reading it (under a second)."""
    kind = task_ref_kind(task_ref)
    if kind == "packaged":
        from ptv2_core.tasks.packaged import READERS

        return READERS[task_ref]()[0].max_length
    if kind == "file":
        from ptv2_core.tasks import load_task_yaml

        return load_task_yaml(task_ref)[0].max_length
    from ptv2_core.tasks.hub import hub_max_length

    return hub_max_length(task_ref[len("hub:"):])


def task_metric(task_ref: str) -> str:
    """The task's metric ("accuracy", "span_f1"...), which its search's pictures name the score by:
    a packaged task's or a task file's spec (read, under a second); "" for a hub data set, whose
    spec is guessed from its columns once fetched (its pictures say "dev score"), and for a task
    file gone since the search was planned (a label is no reason to fail a finished search)."""
    kind = task_ref_kind(task_ref)
    try:
        if kind == "packaged":
            from ptv2_core.tasks.packaged import READERS

            return READERS[task_ref]()[0].metric
        if kind == "file":
            from ptv2_core.tasks import load_task_yaml

            return load_task_yaml(task_ref)[0].metric
    except (Ptv2Error, OSError):
        pass
    return ""


# a search's advice: its settings come from --seed and the space, and run in its trials
SEARCH_WORDS = InitWords(
    who="the trials", seed_fix="use --seed {seed} (or fixed: {{data_seed: {seed}}} in the space)",
    reparam_fix="set fixed: {{reparam: {reparam}}} in the space (and reparam_hidden to match), or pre-train "
                "with the trials' setting",
    base_fix="search with the model it was pre-trained on, or pre-train one on this model")


def check_init_fits(init_dir: str, cfg, config, task_ref: str) -> None:
    """What ``init_from_pretrained`` refuses as each trial starts, known from the prompt's config
    and the model's (no weights load): another base model's shape (family, layers, heads; the same
    shape with other weights is still refused by each trial, on the weights' fingerprint), a data
    seed other than the pre-training's for a task that took part in it, another reparameterization
    (the core's ``check_init_base`` and ``check_init``, in the search's words). Each failed every
    trial, after the study, its MLflow run and the work folder were made."""
    from ptv2_core.multitask.pretrained import read_pretrained_config

    pre_config = read_pretrained_config(init_dir)
    check_init_base(pre_config, init_dir, cfg.model, config, SEARCH_WORDS)
    check_init(pre_config, init_dir, None, task=task_ref, seed=cfg.split_seed, reparam=cfg.reparam,
               reparam_hidden=cfg.reparam_hidden, words=SEARCH_WORDS)


def check_init_dir(init: str | Path, space: SearchSpace) -> str:
    """A finished pre-trained prompt folder long enough for every length of the space."""
    from ptv2_core.multitask.pretrained import read_pretrained_config, read_pretrained_state

    config = read_pretrained_config(init)
    read_pretrained_state(init)  # a damaged file fails here, not in every trial
    longest = int(config.get("prompt", {}).get("prompt_len", 0) or 0)
    if longest and max(space.prompt_lens) > longest:
        raise Ptv2Error(f"the pre-trained prompt in '{init}' has {longest} positions, but the search space tries "
                        f"prompt lengths up to {max(space.prompt_lens)}; use a space with lengths <= {longest}")
    return str(Path(init).resolve())
