"""The ptv2 pipeline graph: check parameters → prepare → pre-train → per task (ParallelFor): search → final adapter
(the search's best, or retrained) → register → promote (under a condition).

Every parameter is typed and shows in the Kubeflow UI. Endpoint parameters left empty mean
"the component's environment, else the embedded default" (see optuna_studies.settings).
No ``from __future__ import annotations``: KFP reads the real annotation objects.
"""

from kfp import dsl, kubernetes

from components.kfp_components import (
    check_params_op,
    final_train_op,
    prepare_data_op,
    pretrain_prompt_op,
    promote_op,
    register_op,
    search_op,
)
from pipelines.step_gpu import DEFAULT_ACCELERATOR, on_gpu
from pipelines.step_gpu import step_gpus as step_gpus_for

PIPELINE_NAME = "ptv2-prompt-search"

# Cluster wiring (k8s/, docs/deploy.md "Wiring"): every step's pod gets the endpoints from the
# `ptv2-endpoints` ConfigMap; the search step alone, the one that opens the Optuna study and
# connects to Ray, gets the Optuna URL (with its password) and the Ray token from Secrets (never
# parameters: parameters are stored and shown in plain text). kfp.local ignores these settings.
ENDPOINTS_CONFIG_MAP = "ptv2-endpoints"
ENDPOINT_KEYS = ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "RAY_AUTH_MODE", "PTV2_HOME", "PTV2_SHARED_DIR")
# The search step works in the volume every Ray node mounts (k8s/base/shared.yaml), at the
# same path as on the nodes (PTV2_SHARED_DIR in the ConfigMap): optuna_studies/cluster.py.
SHARED_PVC, SHARED_MOUNT = "ptv2-shared", "/mnt/ptv2-shared"
SECRETS = {"ptv2-optuna-db": {"url": "PTV2_OPTUNA_STORAGE"}, "ptv2-ray-auth": {"auth_token": "RAY_AUTH_TOKEN"}}
# CPU and memory per step's pod, (request, limit): Guaranteed memory for the steps that train or
# score in the pod (pre-training, the final adapter, promotion), so they are not the first evicted;
# a namespace with a ResourceQuota refuses pods without them. The search's trials run on the Ray
# workers (k8s/base/raycluster.yaml); its step drives them and scores the best adapter. Edit and
# recompile (`ptv2 compile`) for larger models.
STEP_RESOURCES = {
    "check": {"cpu": ("1", "1"), "memory": ("1Gi", "1Gi")},
    "prepare": {"cpu": ("1", "2"), "memory": ("2Gi", "4Gi")},
    "pretrain": {"cpu": ("4", "8"), "memory": ("8Gi", "8Gi")},
    "search": {"cpu": ("1", "2"), "memory": ("4Gi", "4Gi")},
    "final": {"cpu": ("2", "8"), "memory": ("8Gi", "8Gi")},
    "register": {"cpu": ("1", "2"), "memory": ("4Gi", "4Gi")},
    "promote": {"cpu": ("2", "4"), "memory": ("4Gi", "4Gi")},
}


def wire_endpoints(task: dsl.PipelineTask, display_name: str, step: str, *, cache: bool = False,
                   secrets: bool = False) -> dsl.PipelineTask:
    """Name the step, size its pod (``STEP_RESOURCES[step]``) and give it the cluster endpoints.
    The ConfigMap is required (the kustomize base always has it); ``secrets`` adds the Secrets,
    optional, so a cluster without Ray auth or with the Optuna URL passed another way still runs.

    ``cache``: whether Kubeflow may skip the step when an earlier run gave it the same inputs
    (its default is yes, for every step). Only steps whose outputs follow from their inputs alone
    may be cached: preparing data reads task files and datasets outside the pipeline (a file
    changed behind the same path must be read again), the search writes trials to its study and
    MLflow, registering and promoting act on the registry as it is now. A cached prepare step
    would hand a rerun the old data and, through unchanged inputs, the old search's adapter, which
    the register step would then register again as a new version.

    The two steps marked cacheable (pre-training, the final adapter) never hit the cache in
    practice: KFP v2's cache key names each input artifact by its identity (its ML Metadata
    artifact), not its content, and their inputs come from steps that are never cached (a new
    data artifact from prepare each run; the final step also takes the search's new outputs). So
    every run pre-trains and trains its final adapters again, and nothing stale is reused; the
    marking only takes effect if those inputs are ever reused artifacts."""
    task.set_display_name(display_name)
    task.set_caching_options(enable_caching=cache)
    sizes = STEP_RESOURCES[step]
    task.set_cpu_request(sizes["cpu"][0]).set_cpu_limit(sizes["cpu"][1])
    task.set_memory_request(sizes["memory"][0]).set_memory_limit(sizes["memory"][1])
    kubernetes.use_config_map_as_env(task, ENDPOINTS_CONFIG_MAP, {k: k for k in ENDPOINT_KEYS})
    for secret, keys in (SECRETS.items() if secrets else ()):
        kubernetes.use_secret_as_env(task, secret, keys, optional=True)
    on_gpu(task, step)  # a GPU and the CUDA image when compiled with --step-gpus (pipelines/step_gpu.py)
    return task


DESCRIPTION = ("P-Tuning v2: pre-train a shared prompt, search prompt length and learning rate per task, register "
               "the best adapter, promote it when it beats the champion.")


def ptv2_steps(
    tasks: list = ["trec", "rt", "wnut16"],
    model: str = "minilm",
    prompt_lengths: list = [4, 8, 16, 32],
    lr_min: float = 3e-3,
    lr_max: float = 5e-2,
    trials_per_task: int = 6,
    epochs: int = 3,
    final_epochs: int = 0,
    search_concurrency: int = 2,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    pretrain_epochs: int = 1,
    use_pretrained_prompt: bool = True,
    max_train: int = 0,
    max_eval: int = 0,
    seed: int = 0,
    registered_model_prefix: str = "ptv2-",
    auto_promote: bool = True,
    promotion_margin: float = 0.5,
    mlflow_uri: str = "",
    ray_address: str = "",
    optuna_storage: str = "",
):
    """The whole ptv2 path for every task. KFP shows each argument's text below beside its field
    in the run form (the compiled spec's parameter descriptions).

    Args:
        tasks: Tasks to prepare, pre-train on and search, one parallel branch each: packaged names
            (trec, rt, wnut16, bbc), task YAML files in the image, or hub:<dataset>.
        model: Base model: minilm (bundled), a model folder in the image, or a Hugging Face hub name
            (org/name, or org/name@revision pinned to a commit sha, tag or branch); the run's first
            step pins a name without a commit sha to the one the hub names as the run starts, and
            every later step loads that commit.
        prompt_lengths: Prompt-length choices of the search; the pre-trained prompt has the longest.
        lr_min: Lower end of the search's learning-rate range (log scale).
        lr_max: Upper end of the search's learning-rate range (log scale); also pre-training's rate.
        trials_per_task: Optuna trials per task.
        epochs: Epochs per trial (the ASHA scheduler's resource).
        final_epochs: 0 registers the search's best trial's adapter as it is (trained on the same
            splits, best dev epoch kept, scored on dev and test); N trains the best configuration
            again for N epochs (say, longer than a trial) and registers that.
        search_concurrency: Trials running at once per task.
        cpus_per_trial: CPUs each trial reserves on the Ray cluster.
        gpus_per_trial: GPUs each trial reserves on the Ray cluster (a fraction shares one); a
            KubeRay cluster adds a GPU worker when a trial asks for one.
        pretrain_epochs: Epochs of multi-task prompt pre-training (none with use_pretrained_prompt false).
        use_pretrained_prompt: Start every trial (and a final training) from the pre-trained prompt.
            False: each trial starts from a fresh prompt, and the pre-training step trains nothing
            (it only writes a "no prompt" marker), so pretrain_epochs has no effect.
        max_train: At most this many training rows per task; 0 means all.
        max_eval: At most this many dev and this many test rows per task; 0 means all.
        seed: Seed of the data splits and of training.
        registered_model_prefix: The registered model's name is this prefix plus the task's name.
        auto_promote: Run the promote step: move champion to the new version when it wins.
        promotion_margin: Score points the new version must win by: the lower end of the paired
            bootstrap's 95 % interval of the difference must clear it.
        mlflow_uri: MLflow tracking URI; empty takes MLFLOW_TRACKING_URI from the cluster's
            ConfigMap. Never a URL with a password: parameters are stored in plain text.
        ray_address: Ray cluster to run trials on; empty takes RAY_ADDRESS from the ConfigMap.
        optuna_storage: Optuna study storage URL; empty takes PTV2_OPTUNA_STORAGE from the cluster's
            Secret. Never a URL with a password: parameters are stored in plain text.
    """
    # every parameter as typed into the run form, checked before any step does work: a wrong one
    # fails the run here in one line, not the step that first uses it minutes or hours later
    check = check_params_op(
        tasks=tasks, model=model, prompt_lengths=prompt_lengths, lr_min=lr_min, lr_max=lr_max,
        trials_per_task=trials_per_task, epochs=epochs, final_epochs=final_epochs,
        search_concurrency=search_concurrency, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
        pretrain_epochs=pretrain_epochs, use_pretrained_prompt=use_pretrained_prompt, max_train=max_train,
        max_eval=max_eval, seed=seed, registered_model_prefix=registered_model_prefix, auto_promote=auto_promote,
        promotion_margin=promotion_margin, mlflow_uri=mlflow_uri, ray_address=ray_address,
        optuna_storage=optuna_storage)
    wire_endpoints(check, "check parameters", "check")  # task files and the model may change behind a name
    # the model every step loads: a hub name pinned by the first step to the commit its main names
    # as the run starts, so that pre-training, every trial and the final adapter read one commit.
    # Pre-training takes it from the first step; the search and final steps, in the ParallelFor, from
    # the prompt artifact's metadata (kfp.local hands a task output into a loop as the loop item)
    pinned_model = check.output
    data = prepare_data_op(tasks=tasks, seed=seed, max_train=max_train, max_eval=max_eval).after(check)
    wire_endpoints(data, "prepare data", "prepare")
    # use_pretrained_prompt false: the step writes a "no prompt" marker instead of training (the
    # search and final steps then never read its artifact); a flag, not a dsl.If, as those steps
    # take the artifact either way (an If would need a dsl.OneOf with a stand-in step in its Else)
    prompt = pretrain_prompt_op(data=data.outputs["data"], tasks=tasks, model=pinned_model, lengths=prompt_lengths,
                                epochs=pretrain_epochs, lr=lr_max, seed=seed, mlflow_uri=mlflow_uri,
                                use_pretrained=use_pretrained_prompt)
    # cacheable by its own inputs (the flag among them), but its data artifact is new each run
    # (prepare is never cached), so Kubeflow runs it every time (wire_endpoints says why)
    wire_endpoints(prompt, "pre-train shared prompt", "pretrain", cache=True)
    with dsl.ParallelFor(items=tasks, parallelism=0) as task:
        search = search_op(data=data.outputs["data"], prompt=prompt.outputs["prompt"], task=task, model=model,
                           lengths=prompt_lengths, lr_min=lr_min, lr_max=lr_max, trials=trials_per_task,
                           epochs=epochs, concurrency=search_concurrency, cpus_per_trial=cpus_per_trial,
                           gpus_per_trial=gpus_per_trial, use_pretrained=use_pretrained_prompt,
                           seed=seed, mlflow_uri=mlflow_uri, ray_address=ray_address, optuna_storage=optuna_storage)
        wire_endpoints(search, "search length × lr", "search", secrets=True)
        kubernetes.mount_pvc(search, pvc_name=SHARED_PVC, mount_path=SHARED_MOUNT)
        final = final_train_op(data=data.outputs["data"], prompt=prompt.outputs["prompt"],
                               search_adapter=search.outputs["adapter"], task=task, model=model,
                               best_config=search.outputs["best_config"], final_epochs=final_epochs,
                               use_pretrained=use_pretrained_prompt, seed=seed, study=search.outputs["study"])
        wire_endpoints(final, "final adapter + test", "final", cache=True)  # likewise runs every time: new inputs
        register = register_op(adapter=final.outputs["adapter"], task=task, name_prefix=registered_model_prefix,
                               mlflow_uri=mlflow_uri, study=search.outputs["study"],
                               pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
        wire_endpoints(register, "register (challenger)", "register")
        with dsl.If(auto_promote == True, name="auto-promote"):  # noqa: E712 (a KFP condition, not Python)
            promote = promote_op(task=task, registered_name=register.outputs["name"],
                                 version=register.outputs["version"], margin=promotion_margin,
                                 mlflow_uri=mlflow_uri, max_eval=max_eval)
            wire_endpoints(promote, "promote if better than champion", "promote")


def build_pipeline(step_gpus: int = 0, accelerator: str = DEFAULT_ACCELERATOR):
    """The pipeline, its graph built now (kfp builds it when ``dsl.pipeline`` is applied, so the
    GPU choice must be made before): ``step_gpus`` 1 puts pre-training, the final adapter and
    promotion on a GPU of resource ``accelerator`` (pipelines/step_gpu.py)."""
    with step_gpus_for(step_gpus, accelerator):
        return dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)(ptv2_steps)


ptv2_pipeline = build_pipeline()  # the default pipeline: no step but the search's trials on a GPU
