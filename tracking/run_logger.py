"""One MLflow run for one training: parameters first, one batched call per epoch, the outcome last.

Every call to a tracking server costs about 18 ms, so each epoch's four metrics travel
in a single ``log_batch``; a run is always ended with a status that matches what
happened (FINISHED, KILLED for a pruned trial, FAILED), never left RUNNING.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

EPOCH_METRICS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy")


def epoch_metric_values(metrics: Any) -> dict[str, float]:
    """The per-epoch metric names of redes, from core's EpochMetrics."""
    values = {
        "train/loss": metrics.train_loss,
        "train/accuracy": metrics.train_accuracy,
        "val/loss": metrics.val_loss,
        "val/accuracy": metrics.val_accuracy,
        "epoch/seconds": metrics.seconds,
        "epoch/eta": metrics.eta,
    }
    values.update(getattr(metrics, "diagnostics", None) or {})
    return {k: float(v) for k, v in values.items()}


class RunLogger:
    """A run in an experiment, optionally nested under a parent run (which may live in another process)."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        run_name: str,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        self.run_id = client.create_run(experiment_id, run_name=run_name, tags=all_tags).info.run_id
        self.ended = False
        self._pending: list[Any] = []

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_epoch(self, metrics: Any) -> None:
        """The epoch's metrics in one asynchronous call, with ``step=epoch``: training does not wait for it.

        :meth:`end` waits for every pending call, so a failure still fails the run.
        """
        now = int(time.time() * 1000)
        values = epoch_metric_values(metrics)
        operation = self.client.log_batch(
            self.run_id, metrics=[Metric(k, v, now, metrics.epoch) for k, v in values.items()], synchronous=False
        )
        if operation is not None:
            self._pending.append(operation)

    def flush(self) -> None:
        """Wait for the asynchronous epoch logs; raises what they raised."""
        pending, self._pending = self._pending, []
        for operation in pending:
            operation.wait()

    def log_outcome(self, best_epoch: int, stopped_epoch: int, stop_reason: str, extra: Mapping[str, float] | None = None) -> None:
        """The early-stopping point: metrics `best_epoch`, `stopped_epoch`, tag `stop_reason`, in one call."""
        now = int(time.time() * 1000)
        metrics = [Metric("best_epoch", float(best_epoch), now, 0), Metric("stopped_epoch", float(stopped_epoch), now, 0)]
        metrics += [Metric(k, float(v), now, 0) for k, v in (extra or {}).items()]
        self.client.log_batch(self.run_id, metrics=metrics, tags=[RunTag("stop_reason", stop_reason)])

    def log_artifact(self, path: Any, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        """Flush pending logs, then end the run with ``status`` (FAILED if the logs could not be written)."""
        if self.ended:
            return
        try:
            self.flush()
        except Exception:
            self.client.set_terminated(self.run_id, status="FAILED")
            self.ended = True
            raise
        self.client.set_terminated(self.run_id, status=status)
        self.ended = True


def _param_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)
