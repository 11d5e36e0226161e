"""The MLflow pyfunc model of a ptv2 adapter: text in; label and score (or tags per word) out.

Only the adapter files travel as artifacts (kilobytes); the base model is a reference (name
and weight fingerprint in ``adapter_config.json``) that ``ptv2_core.adapter.load_adapter``
resolves on load and checks against the fingerprint. Nothing is pickled: the model is logged
from code (``model_code.py``), and ``model_config`` carries the SHA-256 of each adapter file
so a corrupt artifact fails loudly on load instead of predicting garbage.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Schema

ARTIFACT_KEY = "adapter"
TEXT_COLUMN = "text"
SEQUENCE_COLUMNS = ("label", "score")
TOKEN_COLUMNS = ("tokens", "tags", "scores")


def file_digests(adapter_dir: str | Path) -> dict[str, str]:
    """``{file name: "sha256:<hex>"}`` for the adapter's weight and config files."""
    from ptv2_core.adapter import CONFIG, WEIGHTS

    out = {}
    for name in (WEIGHTS, CONFIG):
        path = Path(adapter_dir) / name
        out[name] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    return out


def signature(task_type: str) -> ModelSignature:
    """Input: one string column ``text``. Output: ``label``/``score`` (sequence tasks) or
    ``tokens``/``tags``/``scores`` arrays, one entry per whitespace-separated word (token tasks)."""
    inputs = Schema([ColSpec(DataType.string, TEXT_COLUMN)])
    if task_type == "sequence":
        outputs = Schema([ColSpec(DataType.string, "label"), ColSpec(DataType.double, "score")])
    else:
        outputs = Schema([ColSpec(Array(DataType.string), "tokens"), ColSpec(Array(DataType.string), "tags"),
                          ColSpec(Array(DataType.double), "scores")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _texts(model_input) -> list[str]:
    """Texts from what pyfunc hands over: a frame with a ``text`` column (or one column), a
    Series, a list of strings or one string.

    ``predict({"text": [a, b]})`` arrives as a frame of ONE row holding the list (MLflow makes a
    dict whose values are lists of strings a one-row frame): that list is the texts."""
    if isinstance(model_input, pd.DataFrame):
        if TEXT_COLUMN in model_input.columns:
            col = model_input[TEXT_COLUMN]
        elif len(model_input.columns) == 1:
            col = model_input.iloc[:, 0]
        else:
            raise ValueError(f"expected a '{TEXT_COLUMN}' column, got columns {list(model_input.columns)}")
        values = col.tolist()
        if len(values) == 1 and _is_list(values[0]):
            values = list(values[0])
        return [_text(x) for x in values]
    if isinstance(model_input, pd.Series):
        return [_text(x) for x in model_input.tolist()]
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, (list, tuple)):
        return [_text(x[TEXT_COLUMN] if isinstance(x, dict) else x) for x in model_input]
    if isinstance(model_input, dict) and TEXT_COLUMN in model_input:
        v = model_input[TEXT_COLUMN]
        return [v] if isinstance(v, str) else [_text(x) for x in v]
    raise ValueError(f"cannot read texts from a {type(model_input).__name__}")


def _is_list(x) -> bool:
    return isinstance(x, (list, tuple, np.ndarray, pd.Series))


def _text(x) -> str:
    """A missing value (None, NaN, pd.NA from a frame) is an empty text, not the word "None" or "<NA>".
    A list or dict is refused: labelling its repr ("['a', 'b']") would be a wrong answer that looks right.
    A number or boolean is its text, as MLflow's REST parser makes it for ``{"inputs": [1]}``."""
    if isinstance(x, str):
        return x
    if isinstance(x, dict):  # a JSON object in a dataframe_records cell: its repr is no text either
        keys = f"{len(x)} key" + ("" if len(x) == 1 else "s")
        raise ValueError(f"a text must be a string, not a dict ({keys}): give one text per row of the "
                         f"'{TEXT_COLUMN}' column")
    if _is_list(x):
        items = f"{len(x)} item" + ("" if len(x) == 1 else "s")
        raise ValueError(f"a text must be a string, not a {type(x).__name__} ({items}): give one text per row of "
                         f"the '{TEXT_COLUMN}' column")
    try:
        missing = bool(pd.isna(x))
    except (TypeError, ValueError):  # a list or array: not a missing value
        missing = False
    return "" if missing else str(x)


class Ptv2PyfuncModel(mlflow.pyfunc.PythonModel):
    """Wraps ``ptv2_core.predict.predict`` over an adapter loaded from the model's artifacts."""

    loaded = None  # ptv2_core.adapter.LoadedAdapter after load_context

    def load_context(self, context) -> None:
        from ptv2_core.adapter import load_adapter
        from ptv2_core.device import pick_device
        from ptv2_core.errors import Ptv2Error

        from ptv2_core.adapter import CONFIG, WEIGHTS

        # where to load, from the server's environment: a bad value is named as the variable, first
        device = pick_device(os.environ.get("PTV2_DEVICE", "auto"), setting="PTV2_DEVICE")
        adapter_dir = context.artifacts[ARTIFACT_KEY]
        expected = (context.model_config or {}).get("adapter_digests") or {}
        if not {WEIGHTS, CONFIG} <= set(expected):  # without them any file would load
            raise Ptv2Error(f"the model records no SHA-256 of {WEIGHTS} and {CONFIG} (its MLmodel 'config'): "
                            "not registered by ptv2, or changed since")
        actual = file_digests(adapter_dir)
        bad = sorted(name for name, digest in expected.items() if actual.get(name) != digest)
        if bad:
            raise Ptv2Error(f"corrupt model artifact: {', '.join(bad)} in '{adapter_dir}' do not match the "
                            "SHA-256 recorded at registration")
        self.loaded = load_adapter(adapter_dir, device=device)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from ptv2_core.predict import predict

        try:
            texts = _texts(model_input)
        except ValueError as e:  # the client's input: MLflow's server answers 400 with this message alone
            raise MlflowException.invalid_parameter_value(str(e)) from None  # (any other error: a traceback)
        rows = predict(self.loaded, texts)
        if self.loaded.spec.type == "sequence":  # nothing to classify: no label made up (as `ptv2 predict`)
            rows = [{"label": None, "score": None} if not t.strip() else r for t, r in zip(texts, rows)]
        columns = SEQUENCE_COLUMNS if self.loaded.spec.type == "sequence" else TOKEN_COLUMNS
        return _frame(rows, list(columns))


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """The predictions as a frame; a missing label and score stay None (object columns): pandas
    makes them NaN in a str or float column, and MLflow's server writes NaN, which is not JSON."""
    if any(v is None for r in rows for v in r.values()):
        return pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in columns})
    return pd.DataFrame(rows, columns=columns)

