"""A registered model's requirements never name ``ptv2``: the project is not on PyPI, and
``mlflow models serve`` (or ``build-docker``, ``spark_udf``) with its default
``--env-manager virtualenv`` pip-installs the model's requirements.txt from the package index, so
``ptv2==<version>`` there installs whatever anyone publishes under that name, and runs it
(dependency confusion). Without it such an environment fails to import ptv2's model class, closed;
``--env-manager local`` in an environment where ptv2 is installed serves it (docs/registry.md)."""
from __future__ import annotations

import re

from components.registry.register import _requirements


def test_the_model_requirements_hold_no_ptv2_for_pip_to_fetch_from_an_index():
    reqs = _requirements()
    names = [re.split(r"[=<>!~@\[; ]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in reqs]
    assert "ptv2" not in names, reqs
    assert {"torch", "transformers", "safetensors", "mlflow"} <= set(names), reqs  # the rest stays pinned
