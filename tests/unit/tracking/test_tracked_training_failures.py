"""A trial whose tracking calls fail ends FAIL with its reason, and its MLflow run ends FAILED,
never left RUNNING, whichever call failed (here: the very first, its parameters)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.config import TrainConfig
from tracking.run_logger import RunLogger
from tracking.tracked_training import train_tracked


class ParamsRefused:
    """A client whose log_batch with parameters fails once, like a server that died mid-answer."""

    def __init__(self, client: MlflowClient):
        self.client, self.failed = client, False

    def __getattr__(self, name):
        return getattr(self.client, name)

    def log_batch(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        if params and not self.failed:
            self.failed = True
            raise MlflowException("API request to /api/2.0/mlflow/runs/log-batch failed: Response body: ''")
        return self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)


def store(tmp_path, uri) -> tuple[MlflowClient, str]:
    """A SQLite MLflow store and one experiment in it."""
    client = MlflowClient(uri)
    return client, client.create_experiment("x", artifact_location=(tmp_path / "artifacts").as_uri())


def tiny_split() -> SimpleNamespace:
    """64 random training images and 32 to validate: enough for a few mini-batches."""
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        X_train=rng.random((64, 784), dtype=np.float32), y_train=rng.integers(0, 10, 64),
        X_val=rng.random((32, 784), dtype=np.float32), y_val=rng.integers(0, 10, 32),
    )  # fmt: skip


def test_a_failed_first_call_fails_the_trial_with_its_reason_and_ends_the_run_failed(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    logger = RunLogger(ParamsRefused(client), experiment, "trial-0")
    split = tiny_split()
    trial = optuna.create_study().ask()
    with pytest.raises(MlflowException, match="log-batch"):
        train_tracked(logger, TrainConfig(sizes=(784, 10), epochs=1, batch_size=16), split, trial=trial)
    assert trial.user_attrs["fail_reason"].startswith("MlflowException: API request")
    run = client.get_run(logger.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["stop_reason"] == "failed"


def test_a_pruned_trial_ends_its_run_killed_and_the_pruning_reaches_optuna(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    logger = RunLogger(client, experiment, "trial-0")
    split = tiny_split()
    trial = optuna.create_study().ask()
    trial.should_prune = lambda: True  # a pruner that stops every trial at its first report
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 1"):
        train_tracked(logger, TrainConfig(sizes=(784, 10), epochs=3, batch_size=16), split, trial=trial)
    run = client.get_run(logger.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["stop_reason"] == "pruned"
