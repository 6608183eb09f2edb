"""The MLflow model of a redes network, logged as "model from code": no pickled Python objects.

MLflow runs this file to build the model; the weights come from the `.npz` artifact
and `core` travels with the model as code, so loading it needs only NumPy and MLflow.
"""

import warnings

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class NetworkModel(PythonModel):
    """Predicts digit labels for rows of 784 pixels (0..1 floats or 0..255 integers)."""

    def load_context(self, context):
        from core.network import Network

        self.network = Network.load(context.artifacts["network"])

    def predict(self, context, model_input, params=None):
        X = np.asarray(model_input)
        return self.network.predict(X)


with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Add type hints")
    mlflow.models.set_model(NetworkModel())
