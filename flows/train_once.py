"""One tracked training run (the seed's "manual" search): data, train, evaluate on the test set."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, task

from flows.prepare_data import prepare_data
from flows.progress import report_epoch
from mnist.sizes import N_CLASSES, TRAIN_SIZE, VAL_SIZE
from runtime.environment import apply_offline_defaults
from runtime.settings import Settings

TRAIN_EXPERIMENT = "redes-train"


@task(name="train-network")
def train_network(
    split_path: str, config: dict[str, Any], experiment: str, settings: Settings, diagnostics: bool = True,
    run_name: str | None = None,
) -> dict[str, Any]:
    """Train one network on the split, tracked in MLflow, evaluate it once on the test set, draw what it learned."""
    import tempfile
    from pathlib import Path

    from core.config import TrainConfig
    from mnist.split import load_split
    from tracking import champion, mlflow_store
    from tracking.datasets import log_split_inputs
    from tracking.plots import diagnostics_by_epoch
    from tracking.run_logger import RunLogger
    from tracking.run_names import DESCRIPTION_TAG, describe
    from tracking.tracked_training import train_tracked

    train_config = TrainConfig(**{**config, "sizes": tuple(config["sizes"])})
    split = load_split(split_path)
    client = mlflow_store.configure(settings)
    experiment_id = mlflow_store.experiment_id(client, experiment, settings)
    described = describe(train_config)  # the run's name unless one is given, and its description
    logger = RunLogger(client, experiment_id, run_name or described, tags={"kind": "train", DESCRIPTION_TAG: described})
    log_split_inputs(split_path, run_id=logger.run_id)
    tracked = train_tracked(logger, train_config, split, diagnostics=diagnostics, on_epoch=report_epoch)
    result = tracked.result
    evaluation = evaluate_on_test(result.network, split.X_test, split.y_test)
    with tempfile.TemporaryDirectory(prefix="redes-train-") as tmp:
        champion.log_test_evaluation(client, logger.run_id, evaluation, split, Path(tmp))
        champion.log_network_pictures(client, logger.run_id, result.network, diagnostics_by_epoch(result.history), Path(tmp))
        champion.log_expanded_batch(client, logger.run_id, train_config, split.X_train, Path(tmp))
    if result.network.output_encoding == "binary":
        invalid = int((evaluation.predictions >= N_CLASSES).sum())
        client.log_metric(logger.run_id, "test/invalid_codes", invalid)
    return {
        "val_accuracy": result.best_val_accuracy,
        # at the best epoch, measured during the epoch (dropout on): the gap to validation shows overfitting
        "train_accuracy": result.history[result.best_epoch - 1].train_accuracy if result.best_epoch else float("nan"),
        "test_accuracy": evaluation.test_accuracy,
        "best_epoch": result.best_epoch,
        "stopped_epoch": result.stopped_epoch,
        "stop_reason": result.stop_reason,
        "seconds": result.seconds,
        "mlflow_run_id": logger.run_id,
        "experiment_id": experiment_id,
    }


@flow(name="train-once")
def train_once(
    config: dict[str, Any],
    diagnostics: bool = True,
    mirrors: list[str] | None = None,
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    experiment: str = TRAIN_EXPERIMENT,
) -> dict[str, Any]:
    """Prepare the data, then train and evaluate one network with the given hyperparameters."""
    apply_offline_defaults()  # for the MLflow work below; values the host set are kept
    settings = Settings.from_env()
    split_path = prepare_data(mirrors=mirrors, train_size=train_size, val_size=val_size, track=False)
    return train_network(split_path, config, experiment, settings, diagnostics)


def evaluate_on_test(network, X, y):
    """champion.evaluate, except that binary outputs may read back a code 10–15 that is no digit.

    Such a prediction is wrong (it never equals a label) and is left out of the 10×10
    confusion matrix; ``test/invalid_codes`` counts them.
    """
    import numpy as np

    from tracking import champion

    if network.output_encoding != "binary":
        return champion.evaluate(network, X, y)
    loss, accuracy = network.evaluate(X, y)
    predictions = network.predict(X)
    y = np.asarray(y)
    digit = predictions < N_CLASSES
    confusion = np.bincount(y[digit] * N_CLASSES + predictions[digit], minlength=N_CLASSES**2)
    return champion.Evaluation(float(accuracy), float(loss), confusion.reshape(N_CLASSES, N_CLASSES), predictions)


def config_dict(config) -> dict[str, Any]:
    """A TrainConfig as plain JSON-able values for a flow parameter."""
    values = asdict(config)
    values["sizes"] = list(values["sizes"])
    return values
