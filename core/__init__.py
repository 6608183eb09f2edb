"""The NumPy neural-network engine of redes: no I/O, no Prefect, no MLflow.

NumPy and the standard library only (a test enforces it). The public API::

    from core import TrainConfig, Network, train
    config = TrainConfig(sizes=(784, 100, 10), eta=0.5, lmbda=5.0)
    network = Network.from_config(config)
    result = train(network, X_train, y_train, X_val, y_val, config)
"""

from core.config import TrainConfig
from core.early_stopping import EarlyStopping
from core.errors import ConfigError, DataError, Diverged, ModelFileError, RedesCoreError
from core.network import Network
from core.perceptron import Perceptron
from core.training import SGD, EpochMetrics, TrainResult, train

__all__ = [
    "SGD",
    "ConfigError",
    "DataError",
    "Diverged",
    "EarlyStopping",
    "EpochMetrics",
    "ModelFileError",
    "Network",
    "Perceptron",
    "RedesCoreError",
    "TrainConfig",
    "TrainResult",
    "train",
]
