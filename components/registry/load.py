"""Loading a registered version (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``).

The same ``Ptv2PyfuncModel.load_context`` as ``mlflow.pyfunc.load_model`` and ``mlflow models
serve`` run, but from the installed ptv2 code: MLflow's loader executes the copy of
``model_code.py`` stored with the version, so anyone who can write to the artifact store could
run code in ``predict``, ``eval`` and ``promote``. Here only data is read from the store (the
MLmodel file, the adapter's safetensors and JSON, checked against the SHA-256 digests recorded
at registration). The store is passed explicitly (no global MLflow state) and errors become
``Ptv2Error``.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components.registry import store
from ptv2_core.errors import Ptv2Error

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w.-]+)|/(?P<version>\d+))$")


@dataclass
class LoadedVersion:
    """A registered version loaded for prediction."""

    name: str
    version: int
    tags: dict[str, str]
    aliases: tuple[str, ...]
    model: object  # a loaded Ptv2PyfuncModel: predict(None, frame) as pyfunc's PythonModel

    @property
    def adapter(self):
        """The ``ptv2_core.adapter.LoadedAdapter`` inside the pyfunc model."""
        return self.model.loaded


def parse_model_uri(model_uri: str) -> tuple[str, str | None, int | None]:
    """``(name, alias, version)`` of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""
    m = _URI.match(model_uri.strip())
    if not m:
        folder = not model_uri.startswith("models:") and Path(model_uri).is_dir()  # `--model runs/trec`
        raise Ptv2Error(f"model URI '{model_uri}' is not models:/NAME@ALIAS or models:/NAME/VERSION"
                        + (f"; '{model_uri}' is a folder: give an adapter folder with --adapter" if folder else ""))
    return m["name"], m["alias"], int(m["version"]) if m["version"] else None


def get_version(c, uri: str, name: str, alias: str | None = None, version: int | None = None):
    """The ``ModelVersion`` an alias or number names, with clear errors for what is missing."""
    from mlflow.exceptions import MlflowException

    try:
        model = store.retry(lambda: c.get_registered_model(name), f"reading registered model '{name}'", uri)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise Ptv2Error(f"no registered model '{name}' in {store.mask_url(uri)}") from None
        raise store.unreachable(uri, e) from None
    if alias is not None:
        if alias not in (model.aliases or {}):
            held = ", ".join(sorted(model.aliases or {})) or "none"
            raise Ptv2Error(f"registered model '{name}' has no alias '{alias}' (aliases: {held})")
        version = int(model.aliases[alias])
    try:
        return store.retry(lambda: c.get_model_version(name, str(version)), f"reading {name} version {version}", uri)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise Ptv2Error(f"registered model '{name}' has no version {version}") from None
        raise store.unreachable(uri, e) from None


def load_version(c, uri: str, mv) -> LoadedVersion:
    """Download a version's model files and load them (adapter checked against its digests and
    its base model's fingerprint)."""
    import mlflow.artifacts

    source = store.retry(lambda: c.get_model_version_download_uri(mv.name, mv.version),
                         f"locating {mv.name} version {mv.version}", uri)
    with tempfile.TemporaryDirectory(prefix="ptv2-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=uri)
        except Exception as e:
            raise Ptv2Error(f"cannot download {mv.name} version {mv.version} from {store.mask_in_text(source)}: "
                            f"{store.describe(e)}") from None
        try:
            model = _load_from_data(Path(local))
        except Ptv2Error as e:
            raise Ptv2Error(f"{mv.name} version {mv.version}: {e}") from None
        except Exception as e:  # a broken MLmodel, ...
            raise Ptv2Error(f"{mv.name} version {mv.version} does not load: {store.describe(e)}") from None
    return LoadedVersion(mv.name, int(mv.version), dict(mv.tags or {}), tuple(mv.aliases or ()), model)


def _load_from_data(local: Path):
    """The pyfunc model of a downloaded version, built from the installed code: the MLmodel file
    gives the adapter folder and the digests; the stored ``model_code.py`` is never run."""
    from mlflow.models import Model
    from mlflow.pyfunc import PythonModelContext

    from components.registry.pyfunc_model import ARTIFACT_KEY, Ptv2PyfuncModel

    conf = Model.load(str(local)).flavors.get("python_function") or {}
    rel = ((conf.get("artifacts") or {}).get(ARTIFACT_KEY) or {}).get("path")
    adapter_dir = (local / rel).resolve() if isinstance(rel, str) else None
    if adapter_dir is None or not adapter_dir.is_relative_to(local.resolve()) or not adapter_dir.is_dir():
        raise Ptv2Error(f"its MLmodel names no '{ARTIFACT_KEY}' artifact folder inside the model: not registered by ptv2")
    model = Ptv2PyfuncModel()
    model.load_context(PythonModelContext(artifacts={ARTIFACT_KEY: str(adapter_dir)}, model_config=conf.get("config")))
    return model


def load_registered(model_uri: str, tracking_uri: str | None = None) -> LoadedVersion:
    """Load ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` from the configured store."""
    name, alias, version = parse_model_uri(model_uri)
    uri = store.tracking_uri(tracking_uri)
    with store.bounded_http():
        c = store.reading_client(uri)
        return load_version(c, uri, get_version(c, uri, name, alias, version))
