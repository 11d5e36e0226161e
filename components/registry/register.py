"""Register an adapter folder as a new version of an MLflow registered model.

Order of writes, so that a failure anywhere leaves the registry as it was:

1. read and check the adapter (task, metrics, base model and tokenizer fingerprints), save the pyfunc model
   to a temporary folder and load it back to predict the input example — nothing written yet;
2. a registration run gets the model files (adapter artifacts only; the base by reference);
3. the registered model is created if new, then one ``create_model_version`` call creates the
   version together with all of its tags;
4. the ``challenger`` alias moves to the newest version (see ``converge_alias``).

A failure after 2 marks the run FAILED (a run given by ``run_id`` is someone else's: the model
files logged into it are deleted instead); after 3, the version (and a registered model this call
created, if left empty) is deleted again and the alias re-converged. If the store itself is
gone, cleanup cannot reach it either: the error message then says what is left to undo.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

from components.held_signals import HeldSignals
from components.registry import store
from components.registry.alias_lock import alias_lock
from components.registry.metadata import (METRIC_TAGS, AdapterInfo, describe_adapter, registration_run_tags,
                                         version_description)
from components.registry.names import NAME_PREFIX, check_name, default_name, name_filter
from optuna_studies.quiet import quiet_logger
from optuna_studies.schema_race import sqlite_file
from ptv2_core.errors import Ptv2Error, Ptv2Interrupted
from ptv2_core.tasks.spec import stored_task_name

CHALLENGER = "challenger"
CHAMPION = "champion"
REGISTRATION_TAG = "ptv2.registration_id"
MODEL_MARKER_TAG = "ptv2.registered_by"  # on each registered model ptv2 creates: ptv2's, on a shared store
ADAPTER_TAG = "ptv2.adapter_sha256"  # SHA-256 of the adapter's weights: the same adapter registered again
MODEL_CODE = Path(__file__).with_name("model_code.py")
# Pinned runtime requirements written into the model (serve with --env-manager local where ptv2 is installed).
# Never "ptv2": it is not on PyPI, and an env manager (virtualenv, the default) would pip-install whatever
# is published under that name there and run it; without it such an environment fails to import, closed.
# The ptv2 version is the version's registered_code_version tag.
REQUIREMENTS = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas", "mlflow")


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version and the aliases it holds after registration."""

    name: str
    version: int
    aliases: tuple[str, ...]
    duplicates: tuple[int, ...] = ()  # earlier versions with the same adapter weights (``ADAPTER_TAG``)


def _requirements() -> list[str]:
    out = []
    for dist in REQUIREMENTS:
        try:
            out.append(f"{dist}=={importlib_metadata.version(dist)}")
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def build_model_dir(info: AdapterInfo, workdir: Path) -> Path:
    """Save the pyfunc model of ``info`` under ``workdir`` and prove it loads and predicts.

    Only the adapter's own two files are artifacts. Loading runs the same ``load_context`` as
    serving does, so a base model whose fingerprint differs (or whose tokenizer's does, where the
    adapter records it) fails here, before any write.
    """
    import mlflow.pyfunc
    import pandas as pd

    from components.registry.pyfunc_model import ARTIFACT_KEY, file_digests, signature
    from ptv2_core.adapter import CONFIG, WEIGHTS

    files = workdir / ARTIFACT_KEY
    files.mkdir()
    for name in (WEIGHTS, CONFIG):
        if not (info.adapter_dir / name).is_file():
            raise Ptv2Error(f"adapter '{info.adapter_dir}' has no {name}")
        shutil.copy2(info.adapter_dir / name, files / name)
    example = pd.DataFrame({"text": info.examples})
    path = workdir / "model"
    base = info.config["base_model"]
    with quiet_logger("mlflow.pyfunc"):  # "Validating input example against model signature"
        mlflow.pyfunc.save_model(
            str(path), python_model=str(MODEL_CODE), artifacts={ARTIFACT_KEY: str(files)},
            signature=signature(info.spec.type), input_example=example,
            model_config={"adapter_digests": file_digests(files)}, pip_requirements=_requirements(),
            metadata={"ptv2": {"task": info.spec.name, "task_type": info.spec.type, "labels": list(info.spec.labels),
                               "metric": info.spec.metric, "prompt_len": info.config["prompt"].get("prompt_len"),
                               "base_model": base["name"],
                               **({"base_revision": base["revision"]} if base.get("revision") else {}),
                               "base_fingerprint": base["fingerprint"], "data_hash": info.data_hash,
                               **({"base_tokenizer_fingerprint": base["tokenizer_fingerprint"]}
                                  if base.get("tokenizer_fingerprint") else {})}},
        )
    out = mlflow.pyfunc.load_model(str(path)).predict(example)
    if len(out) != len(example):
        raise Ptv2Error(f"the saved model predicted {len(out)} rows for {len(example)} example texts")
    return path


def read_aliases(c, uri: str, name: str) -> dict:
    """The registered model's aliases, ``{alias: version}`` (empty when it has none)."""
    return store.retry(lambda: c.get_registered_model(name).aliases, "reading aliases", uri) or {}


def versions(c, name: str) -> list:
    """All versions of a registered model (empty when the model does not exist)."""
    return list(c.search_model_versions(name_filter(name)))


def converge_alias(c, uri: str, name: str, alias: str = CHALLENGER, rounds: int = 5) -> int | None:
    """Point ``alias`` at the highest version number and check it still is the highest.

    Every registering process runs this after creating its version, so with concurrent
    registrations the last writer has seen every version created before its write: the alias
    ends on the newest one whichever process finishes last. Returns that version (None: no versions).
    On a local store the whole read-decide-write runs under a file lock, so the alias only ever
    moves forward; against a server, a process deciding on a stale list can move it back for a
    moment before its own check moves it forward again.
    """
    with alias_lock(uri, name):
        for _ in range(rounds):
            current = read_aliases(c, uri, name).get(alias)
            latest = max((int(v.version) for v in store.retry(lambda: versions(c, name), "listing versions", uri)),
                         default=None)
            if latest is None:
                return None
            if current is None or int(current) != latest:
                store.retry(lambda: c.set_registered_model_alias(name, alias, str(latest)), f"moving alias '{alias}'", uri)
            after = max(int(v.version) for v in store.retry(lambda: versions(c, name), "listing versions", uri))
            if after == latest:
                return latest
    raise Ptv2Error(f"alias '{alias}' of '{name}' did not settle: versions kept appearing")


def _check_registered_model(c, uri: str, name: str, task: str) -> bool:
    """Read-only: does ``name`` exist, and does it hold this task's adapters?"""
    from mlflow.exceptions import MlflowException

    try:
        model = store.retry(lambda: c.get_registered_model(name), f"reading registered model '{name}'", uri)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    held = (model.tags or {}).get("task")
    # a model registered before task names had to be folder names may be tagged with one a task can no
    # longer have (a hub data set's user/data); its adapters are this task's (user-data) as
    # TaskSpec.from_dict reads them
    if held is not None and held != task and stored_task_name(held) != task:
        raise Ptv2Error(f"registered model '{name}' holds adapters for task '{held}', not '{task}'")
    return True


def _create_registered_model(c, uri: str, name: str, task: str, task_type: str) -> bool:
    """Create ``name`` (tags ``task`` and ``task_type``: the model list shows them; MODEL_MARKER_TAG:
    ``ptv2 versions`` lists it); False when another
    process created it first."""
    from mlflow.exceptions import MlflowException

    what = "token tagging: tags per word" if task_type == "token" else "sequence classification: a label per text"
    try:
        c.create_registered_model(name, tags={"task": task, "task_type": task_type, MODEL_MARKER_TAG: "ptv2"},
                                  description=f"ptv2 P-Tuning v2 adapters for task '{task}', {task_type} task "
                                              f"({what}; MLflow pyfunc). Each version's labels: its ptv2.labels tag.")
        return True
    except MlflowException as e:
        if e.error_code == "RESOURCE_ALREADY_EXISTS":
            return False
        raise


def _remove_logged_model(uri: str, artifact_uri: str, artifact_path: str) -> list[str]:
    """Delete the model files this call logged into another run (``--run-id``: that run is kept,
    so without this its failed registration's ``model-<id>`` folder would stay in it)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        get_artifact_repository(f"{artifact_uri}/{artifact_path}", tracking_uri=uri).delete_artifacts()
    except Exception as e:
        return [f"could not delete the logged model files ({store.describe(e)}): delete '{artifact_path}' "
                f"from the run's artifacts"]
    return []


def _cleanup(c, uri: str, name: str, reg_id: str, run_id: str | None, own_run: bool, created: bool,
             new_model: bool, files: tuple[str, str] | None = None, gone: str | None = None) -> list[str]:
    """Undo a failed registration as far as the store lets us; returns what could not be undone.

    ``created``: ``create_model_version`` was called (it may have succeeded before the error).
    ``new_model``: this call created the registered model (deleted again if left empty).
    ``files``: (run artifact URI, path) of model files logged into a run given by ``run_id``,
    deleted once no version can point at them. A store that does not answer one call is not asked again.
    ``gone`` (why): the store did not answer before the cleanup either. With no version possibly made,
    nothing is asked of it then (a FAILED mark, logged files: left, and said); a version that may
    exist is still looked for, MLflow's retries and all, as the one thing worth waiting for.
    """
    left: list[str] = []
    if gone is not None and not (created or new_model):
        kept = [f"could not delete the logged model files ({gone}): delete '{files[1]}' from the run's artifacts"
                ] if files else []
        return kept + ([f"run {run_id} is not marked FAILED"] if own_run and run_id else [])
    if created or new_model:
        try:
            remaining = []
            for v in versions(c, name):
                if (v.tags or {}).get(REGISTRATION_TAG) == reg_id:
                    c.delete_model_version(name, v.version)
                else:
                    remaining.append(v)
            if new_model and not remaining:
                c.delete_registered_model(name)
            elif remaining:
                converge_alias(c, uri, name, rounds=2)
        except Exception as e:  # do not mask the first error
            left.append(f"could not check for the new version ({store.describe(e)}): delete any version of "
                        f"'{name}' tagged {REGISTRATION_TAG}={reg_id}")
            # the new version may point at the logged files: they stay, and the message says so
            kept = [f"delete '{files[1]}' from run {run_id}'s artifacts"] if files else []
            return left + kept + ([f"run {run_id} is not marked FAILED"] if own_run and run_id else [])
    if files:
        left += _remove_logged_model(uri, *files)
    if own_run and run_id:
        try:
            c.set_terminated(run_id, "FAILED")
        except Exception:
            left.append(f"run {run_id} is not marked FAILED")
    return left


def register_adapter(
    adapter_dir: str | Path,
    task: str,
    *,
    name: str | None = None,
    name_prefix: str = NAME_PREFIX,
    tags: dict | None = None,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    on_step: Callable[[str], None] | None = None,
    echo: Callable[[str], None] | None = None,
) -> RegisteredVersion:
    """Register the adapter in ``adapter_dir`` (adapter files + metrics.json) for ``task`` as a new
    version of ``name`` (default ``<name_prefix><task's name>``, e.g. ``ptv2-trec``: the name in
    the task's spec, so a task YAML path gives its ``name:``) and give it the alias ``challenger``.

    ``tags`` are added to the version's tags (``study`` among them). ``run_id`` logs the model
    into an existing run (e.g. the search trial's) instead of a new run in experiment
    ``ptv2-registry``. ``on_step`` is called with ``"validated"``, ``"logged"``, ``"created"``
    and ``"aliased"`` as the steps complete; ``echo`` with a progress line as each long stage
    starts (a first registration takes half a minute), none before the input is checked (bad
    input is one error line); the same-weights warning goes to stderr when there is no ``echo``.
    Raises ``Ptv2Error``; on failure the
    registry is left as it was.
    """
    step = on_step or (lambda _s: None)
    say = echo or (lambda _line: None)
    info = describe_adapter(adapter_dir, task, tags)
    name = check_name(name or default_name(info.spec.name, name_prefix or NAME_PREFIX))
    uri = store.tracking_uri(tracking_uri)
    # bounded_http also turns MLflow's progress bars off: save_model "downloads" the adapter's files
    with store.bounded_http(), tempfile.TemporaryDirectory(prefix="ptv2-register-") as tmp:
        try:
            if run_id is not None:  # a mistyped run: said before the model is built (~15 s), in the store it is not in
                get_run(store.reading_client(uri), uri, run_id)
            if _readable_before_build(uri):  # a name holding another task's adapters: input, refused before the build
                _check_registered_model(store.reading_client(uri), uri, name, info.spec.name)
            say(f"building the model from the adapter on base model '{info.config['base_model']['name']}' and checking "
                "it loads back and predicts …")
            model_dir = build_model_dir(info, Path(tmp))
            step("validated")
            say(f"opening the MLflow store at {store.mask_url(uri)} …")
            c = store.client(uri)
            say(f"registering a new version of '{name}' …")
            from components.registry.pyfunc_model import ARTIFACT_KEY, file_digests
            from ptv2_core.adapter import WEIGHTS

            digest = file_digests(Path(tmp) / ARTIFACT_KEY)[WEIGHTS]  # the copy the model was saved from
        except KeyboardInterrupt:  # nothing is in the store before _publish (at most its empty tables)
            raise Ptv2Interrupted("interrupted; no version was created") from None
        v = _publish(c, uri, info, name, model_dir, run_id, step, digest)
    if v.duplicates:  # a retried script, most likely; still registered: new tags may be the point
        held = (f"versions {', '.join(map(str, v.duplicates))} hold" if len(v.duplicates) > 1
                else f"version {v.duplicates[0]} holds")
        line = f"warning: {name} {held} the same adapter weights; registered them again as version {v.version}"
        # said without an echo too: the pipeline's register step passes none, and its log is stderr
        (echo or (lambda text: print(text, file=sys.stderr, flush=True)))(line)
    return v


def _readable_before_build(uri: str) -> bool:
    """Can the registry be read before the model is built without writing to it? A tracking server's
    can; a sqlite store's when its file exists (a new one holds no model). Opening a database URL
    directly makes its tables: that waits until the model has proved it loads."""
    if uri.startswith(("http://", "https://")):
        return True
    path = sqlite_file(uri)
    return path is not None and path.is_file()


def get_run(c, uri: str, run_id: str):
    """The run ``run_id``; Ptv2Error "no MLflow run" when the store has none by that id (MLflow's
    answer is no outage of the store)."""
    from mlflow.exceptions import MlflowException

    try:
        return store.retry(lambda: c.get_run(run_id), f"reading run {run_id}", uri)
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise Ptv2Error(f"no MLflow run '{run_id}' in {store.mask_url(uri)}") from None
        raise store.unreachable(uri, e) from None


def _publish(c, uri: str, info: AdapterInfo, name: str, model_dir: Path, run_id: str | None,
             step: Callable[[str], None], digest: str) -> RegisteredVersion:
    from mlflow.entities import Metric, Param

    reg_id = uuid.uuid4().hex
    own_run = run_id is None
    artifact_path = "model" if own_run else f"model-{reg_id[:12]}"  # never overwrite a logged model
    held = HeldSignals()  # a Ctrl-C or SIGTERM from here waits for the cleanup below, which marks the run FAILED
    try:
        exists = _check_registered_model(c, uri, name, info.spec.name)
        if own_run:
            exp_id = store.registry_experiment(c, uri)
            run_id = store.retry(lambda: c.create_run(exp_id, run_name=f"register-{name}",
                                                      tags={"ptv2.registered_model": name}
                                                      | registration_run_tags(info)).info.run_id,
                                 "creating the registration run", uri, attempts=1)
        run = get_run(c, uri, run_id)
    except Ptv2Error:
        held.release()
        raise
    except Exception as e:
        held.release()
        raise store.unreachable(uri, e) from None
    created = new_model = logged = False
    try:
        held.release()  # a signal that came meanwhile is raised here, inside the cleanup's reach
        if own_run:
            params = [Param(k, info.tags[k]) for k in ("task", "prompt_len", "lr", "base_model", "study")]
            metrics = [Metric(k, float(v), 0, 0) for k, v in info.tags.items()  # ptv2's, never a user's tag
                       if k in METRIC_TAGS and _is_number(v)]
            store.retry(lambda: c.log_batch(run_id, metrics=metrics, params=params), "logging run data", uri)
        logged = True  # from here on files may be in the run, even if the upload fails midway
        store.retry(lambda: c.log_artifacts(run_id, str(model_dir), artifact_path), "uploading the model", uri)
        step("logged")
        if own_run:
            store.retry(lambda: c.set_terminated(run_id, "FINISHED"), "closing the registration run", uri)
        if not exists:
            new_model = store.retry(lambda: _create_registered_model(c, uri, name, info.spec.name, info.spec.type),
                                    f"creating registered model '{name}'", uri, attempts=1)
        same = [] if not exists else [  # read before this version exists: the earlier ones alone
            int(v.version) for v in store.retry(lambda: versions(c, name), "listing versions", uri)
            if (v.tags or {}).get(ADAPTER_TAG) == digest]
        created = True  # from here on a version may exist, even if the call below fails
        # MLflow's INFO "Waiting up to 300 seconds for model version to finish creation" off: stderr holds the stages
        with quiet_logger("mlflow.store.model_registry.abstract_store"):
            mv = c.create_model_version(name, f"{run.info.artifact_uri}/{artifact_path}", run_id=run_id,
                                        tags=info.tags | {REGISTRATION_TAG: reg_id, ADAPTER_TAG: digest},
                                        description=version_description(info))
        version = int(mv.version)
        step("created")
        converge_alias(c, uri, name)
        aliases = tuple(sorted(store.retry(lambda: c.get_model_version(name, str(version)).aliases,
                                           "reading the new version", uri)))
        step("aliased")
    except BaseException as e:
        files = (run.info.artifact_uri, artifact_path) if logged and not own_run else None
        gone = None if created or new_model else _gone(uri, e)
        left = _cleanup(c, uri, name, reg_id, run_id, own_run, created, new_model, files, gone)
        state = "no version was created" if not created else "registry left as it was" if not left else "cleanup incomplete"
        if isinstance(e, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (the CLI's handler): what is left, as docs/registry.md says
            raise Ptv2Interrupted(f"interrupted; {state}" + ("; " + "; ".join(left) if left else "")) from None
        if not isinstance(e, Exception):
            raise
        msg = str(e) if isinstance(e, Ptv2Error) else f"{store.describe(e)} (MLflow store at {store.mask_url(uri)})"
        raise Ptv2Error(f"registering '{name}' failed, {state}: {msg}" + ("; " + "; ".join(left) if left else "")) from None
    return RegisteredVersion(name, version, aliases, tuple(sorted(same)))


def _gone(uri: str, e: BaseException) -> str | None:
    """Why the cleanup need not ask the tracking server at ``uri`` anything: the call that failed
    had already spent MLflow's HTTP retries on it (about 7 s for a refused connection), and its
    ``/health`` does not answer either (one request, 2 s at most). Each cleanup call would spend
    those retries again, only to fail. None: ask it (a database store, an error that was an answer,
    a server back meanwhile)."""
    from optuna_studies.tracking_http import HEALTH_TIMEOUT_S, answers

    if not uri.startswith(("http://", "https://")) or not isinstance(e, Exception):
        return None
    if not (store.is_unreachable(e) or "server unreachable" in str(e)):  # MLflow's error, or store.retry's Ptv2Error for it
        return None
    return None if answers(uri, HEALTH_TIMEOUT_S) else "the server does not answer its /health either"


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True
