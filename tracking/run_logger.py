"""One MLflow run for one training: parameters first, one batched call per epoch, the outcome last.

Every call to the tracking store waits 20-40 ms (a SQLite commit, a server's answer), so each
epoch's metrics travel in a single ``log_batch``, and while a run is open its calls are made in
order by one background thread of the process: training and drawing go on meanwhile. (MLflow's
own asynchronous logging starts threads per run and, at the run's end, waits up to a second
for its queue's reader to wake up: half a second per trial.) A call that failed is raised at the
next epoch's end, by :meth:`RunLogger.flush` or by :meth:`RunLogger.end`; a run is always ended with a
status that matches what happened (FINISHED, KILLED for a pruned trial, FAILED), never left RUNNING.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Any, Callable, Mapping

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

EPOCH_METRICS = ("train/loss", "train/accuracy", "val/loss", "val/accuracy")
#: The tag of a trial's run that shows its Optuna state (RUNNING until it ends).
TRIAL_STATE_TAG = "optuna.trial_state"


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


_writer: tuple[int, ThreadPoolExecutor] | None = None  # (pid, its thread): a forked child starts its own


def writer() -> ThreadPoolExecutor:
    """This process's one thread for tracking calls, which it makes in the order they were handed in."""
    global _writer
    if _writer is None or _writer[0] != os.getpid():
        _writer = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="redes-tracking"))
    return _writer[1]


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
        info = client.create_run(experiment_id, run_name=run_name, tags=all_tags).info
        self.run_id, self._artifact_uri = info.run_id, info.artifact_uri
        self._artifacts: Any = None  # the run's artifact repository, made at the first artifact
        self.ended = False
        self._pending: list[Future] = []

    def _call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """CALL on the background thread while the run is open (after earlier calls), here once it has ended."""
        if self.ended:
            call(*args, **kwargs)
        else:
            self._pending.append(writer().submit(call, *args, **kwargs))

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._call(self.client.log_batch, self.run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self._call(self.client.log_batch, self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._call(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_epoch(self, metrics: Any) -> None:
        """The epoch's metrics in one call, with ``step=epoch``; first, a call that failed is raised (training stops)."""
        if any(f.done() and f.exception() is not None for f in self._pending):
            self.flush()
        now = int(time.time() * 1000)
        values = epoch_metric_values(metrics)
        self._call(self.client.log_batch, self.run_id, metrics=[Metric(k, v, now, metrics.epoch) for k, v in values.items()])

    def flush(self) -> None:
        """Wait for every call handed to the background thread; raise the first that failed."""
        pending, self._pending = self._pending, []
        wait_all(pending)
        for future in pending:
            future.result()

    def log_outcome(
        self,
        best_epoch: int,
        stopped_epoch: int,
        stop_reason: str,
        extra: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """The early-stopping point: metrics `best_epoch`, `stopped_epoch`, tag `stop_reason` (and TAGS), in one call."""
        now = int(time.time() * 1000)
        metrics = [Metric("best_epoch", float(best_epoch), now, 0), Metric("stopped_epoch", float(stopped_epoch), now, 0)]
        metrics += [Metric(k, float(v), now, 0) for k, v in (extra or {}).items()]
        all_tags = [RunTag("stop_reason", stop_reason)] + [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        self._call(self.client.log_batch, self.run_id, metrics=metrics, tags=all_tags)

    def log_artifact(self, path: Any, artifact_path: str | None = None) -> None:
        """Copy the file at PATH into the run's artifacts; it must stay there until :meth:`flush` or :meth:`end`."""
        self._call(self._log_artifact, str(path), artifact_path)

    def _log_artifact(self, path: str, artifact_path: str | None) -> None:
        """What ``client.log_artifact`` does, without first reading the run back from the store to learn where its
        artifacts go (a query of a third of a small trial's tracking time): the run's creation said it."""
        if self._artifacts is None:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            self._artifacts = get_artifact_repository(self._artifact_uri, tracking_uri=self.client.tracking_uri)
        self._artifacts.log_artifact(path, artifact_path)

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
