"""Baselines as MLflow runs beside the networks: tagged ``kind=baseline``, scored under the networks' metric names.

A baseline run has the params that define it (``baseline`` names the method), the
metrics ``val/accuracy`` and ``test/accuracy`` (as a network run names them, so one
MLflow comparison shows both), ``seconds`` (wall clock) and ``cpu_seconds`` (CPU time of
the process, which a busy shared machine inflates less) for fitting plus predicting the
validation and test sets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
from mlflow.tracking import MlflowClient

from core.baselines import accuracy
from tracking.datasets import log_split_inputs
from tracking.run_logger import RunLogger

KIND = "baseline"


class Classifier(Protocol):
    def fit(self, X: Any, y: Any) -> Any: ...

    def predict(self, X: Any) -> np.ndarray: ...


@dataclass
class BaselineResult:
    name: str
    val_accuracy: float
    test_accuracy: float
    seconds: float
    cpu_seconds: float
    run_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "run_id": self.run_id,
        }


def baseline_logger(client: MlflowClient, experiment_id: str, name: str, split: Any) -> RunLogger:
    """A new run for baseline NAME, tagged ``kind=baseline`` and ``baseline=NAME``, with the split as its inputs."""
    logger = RunLogger(client, experiment_id, name, tags={"kind": KIND, "baseline": name})
    try:
        log_split_inputs(split.path, run_id=logger.run_id)
    except BaseException:
        logger.end("FAILED")
        raise
    return logger


def split_params(split: Any) -> dict[str, int]:
    return {"train_size": len(split.y_train), "val_size": len(split.y_val), "test_size": len(split.y_test)}


def fit_tracked(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    model: Classifier,
    split: Any,
    params: Mapping[str, Any] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    extra_metrics: Callable[[Any], Mapping[str, float]] | None = None,
    epoch_metrics: Callable[[Any], Sequence[Mapping[str, float]]] | None = None,
) -> BaselineResult:
    """Fit ``model`` on the training set, score it on validation and test, log it all as one run.

    ``fit_kwargs`` go to ``model.fit`` after the training set (e.g. validation data).
    ``extra_metrics(model)`` may return more metrics to log once the model is fitted;
    ``epoch_metrics(model)`` one mapping per training epoch, logged with ``step=epoch``
    (under names of their own: ``val/accuracy`` is the fitted model's).
    The run ends FINISHED, or FAILED (and the error goes on) if anything goes wrong.
    """
    logger = baseline_logger(client, experiment_id, name, split)
    try:
        logger.log_params({"baseline": name, **split_params(split), **(params or {})})
        started, cpu_started = time.perf_counter(), time.process_time()
        model.fit(split.X_train, split.y_train, **(fit_kwargs or {}))
        val_accuracy = accuracy(model.predict(split.X_val), split.y_val)
        test_accuracy = accuracy(model.predict(split.X_test), split.y_test)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        metrics = {
            "val/accuracy": val_accuracy,
            "test/accuracy": test_accuracy,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
        }
        metrics.update(extra_metrics(model) if extra_metrics else {})
        logger.log_metrics(metrics)
        for epoch, values in enumerate(epoch_metrics(model) if epoch_metrics else [], start=1):
            logger.log_metrics(values, step=epoch)
    except BaseException:
        logger.end("FAILED")
        raise
    logger.end("FINISHED")
    return BaselineResult(name, val_accuracy, test_accuracy, seconds, cpu_seconds, logger.run_id)
