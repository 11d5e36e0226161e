"""A label (or tag, or word) as text: a boolean is ``true``/``false``, as JSON writes it.

str() made a Parquet or hub bool column (Python's bool, or numpy's) the labels 'True', 'False',
where a JSON file's ``true``/``false`` are 'true', 'false' (``json_file.JsonBool``): one task YAML's
``labels: ["true", "false"]`` now fits every kind of data file.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def label_text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)
