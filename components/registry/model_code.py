"""Models-from-code entry point that MLflow copies into each registered model and runs on load.

It only names the class: no object is pickled, so loading depends on the installed ptv2
code, never on a cloudpickle of it.
"""
from mlflow.models import set_model

from components.registry.pyfunc_model import Ptv2PyfuncModel

set_model(Ptv2PyfuncModel())
