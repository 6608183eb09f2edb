"""`kill -9` of a worker process mid-trial, study on PostgreSQL: Optuna's heartbeat fails the trial,
`RetryHeartbeatStaleTrialCallback` retries it with the same parameters, its MLflow run is ended
KILLED, and the study reaches its count.

The heartbeat is shortened for the test through REDES_OPTUNA_HEARTBEAT=1,3 (1 s beats, 3 s
grace). A stale trial is failed by the next `optimize()` of any worker: here the worker that
joins the study after the kill.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 4
NAME = "worker-killed"
HEARTBEAT = "1,3"


def test_a_killed_worker_is_failed_by_heartbeat_retried_and_the_study_reaches_its_count(
    tmp_path, redes_env, optuna_postgres_url, study_cli
):
    env = redes_env(optuna_postgres_url, REDES_OPTUNA_HEARTBEAT=HEARTBEAT)
    worker = subprocess.Popen(
        study_cli.study_command(NAME, TRIALS), cwd=tmp_path, env=env, start_new_session=True,
        stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    study_cli.kill_mid_trial(worker, NAME, optuna_postgres_url)

    before = study_cli.trials_of(NAME, optuna_postgres_url)
    complete_before = {t.number: t for t in before if t.state == TrialState.COMPLETE}
    (killed,) = [t for t in before if t.state == TrialState.RUNNING]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert client.get_run(killed.user_attrs["mlflow_run_id"]).info.status == "RUNNING"
    time.sleep(4)  # past the grace period: the killed trial's heartbeat is stale

    replacement = subprocess.run(
        study_cli.study_command(NAME, TRIALS - len(complete_before)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert replacement.returncode == 0, replacement.stdout[-3000:] + replacement.stderr[-3000:]

    after = {t.number: t for t in study_cli.trials_of(NAME, optuna_postgres_url)}
    for number, trial in complete_before.items():
        assert after[number].state == TrialState.COMPLETE
        assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "FINISHED"

    assert after[killed.number].state == TrialState.FAIL
    killed_run = client.get_run(killed.user_attrs["mlflow_run_id"])
    assert killed_run.info.status in ("KILLED", "FAILED")
    assert killed_run.data.tags["optuna.trial_state"] == "FAIL"

    retries = [t for t in after.values() if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed.number]
    assert len(retries) == 1
    assert retries[0].params == killed.params and retries[0].state == TrialState.COMPLETE

    complete = [t for t in after.values() if t.state == TrialState.COMPLETE]
    assert len(complete) == TRIALS
    assert all(client.get_run(t.user_attrs["mlflow_run_id"]).info.status == "FINISHED" for t in complete)
    assert not [t for t in after.values() if t.state == TrialState.RUNNING]
    assert optuna_postgres_url.split("@")[0].split(":")[-1] not in " ".join(study_cli.study_command(NAME, TRIALS))
