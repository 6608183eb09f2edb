"""The MLflow model of a redes network, logged as "model from code": no pickled Python objects.

MLflow runs this file to build the model; the weights come from the `.npz` artifact
and `core` travels with the model as code, so loading it needs only NumPy and MLflow.
"""

import logging
import warnings

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


# MLflow warns "Add type hints to the `predict` method" (a UserWarning) while it defines this class, under
# its own warnings.simplefilter("once"), which overrides any filter set out here. So the warnings of the
# definition are caught where they are shown and that one is dropped unless MLflow's logger shows INFO
# (`redes --verbose`, or MLflow's default outside redes); any other is shown. No type hint is given:
# with one MLflow would convert and check every input, and the network takes arrays as they come.
with warnings.catch_warnings(record=True) as _caught:

    class NetworkModel(PythonModel):
        """Predicts digit labels for rows of 784 pixels (0..1 floats or 0..255 integers)."""

        def load_context(self, context):
            from core.network import Network

            self.network = Network.load(context.artifacts["network"])

        def predict(self, context, model_input, params=None):
            X = np.asarray(model_input)
            return self.network.predict(X)


for _warning in _caught:
    if "Add type hints" not in str(_warning.message) or logging.getLogger("mlflow").isEnabledFor(logging.INFO):
        warnings.showwarning(_warning.message, _warning.category, _warning.filename, _warning.lineno)

mlflow.models.set_model(NetworkModel())
