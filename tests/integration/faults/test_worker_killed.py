"""`kill -9` of a worker process mid-trial, study on PostgreSQL: Optuna's heartbeat fails the trial,
`RetryHeartbeatStaleTrialCallback` retries it with the same parameters, its MLflow run is ended
KILLED, and the study reaches its count.

The heartbeat is shortened for the test through REDES_OPTUNA_HEARTBEAT=1,3 (1 s beats, 3 s
grace). A stale trial is failed by the next `optimize()` of any worker: here the worker that
joins the study after the kill.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 4
NAME = "worker-killed"
HEARTBEAT = "1,3"


def study_command(trials: int) -> list[str]:
    redes = Path(sys.executable).with_name("redes")
    return [
        str(redes), "study", "--name", NAME, "--trials", str(trials), "--workers", "1", "--sampler", "random",
        "--pruner", "none", "--epochs", "6", "--patience", "10", "--train-size", "2000", "--val-size", "500",
        "--space", "space.toml",
    ]  # the storage URL (with its password) travels in REDES_OPTUNA_STORAGE, not on the command line


def load_study(url: str) -> optuna.Study:
    from tracking import studies

    return optuna.load_study(study_name=NAME, storage=studies.open_storage(url))


def test_a_killed_worker_is_failed_by_heartbeat_retried_and_the_study_reaches_its_count(
    tmp_path, redes_env, optuna_postgres_url
):
    env = redes_env(optuna_postgres_url, REDES_OPTUNA_HEARTBEAT=HEARTBEAT)
    worker = subprocess.Popen(
        study_command(TRIALS), cwd=tmp_path, env=env, start_new_session=True,
        stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial was seen running after a complete one"
            try:
                trials = load_study(optuna_postgres_url).get_trials(deepcopy=False)
            except KeyError:
                trials = []
            if any(t.state == TrialState.COMPLETE for t in trials) and any(
                t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs for t in trials
            ):
                break
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    before = load_study(optuna_postgres_url).get_trials(deepcopy=True)
    complete_before = {t.number: t for t in before if t.state == TrialState.COMPLETE}
    (killed,) = [t for t in before if t.state == TrialState.RUNNING]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert client.get_run(killed.user_attrs["mlflow_run_id"]).info.status == "RUNNING"
    time.sleep(4)  # past the grace period: the killed trial's heartbeat is stale

    replacement = subprocess.run(
        study_command(TRIALS - len(complete_before)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert replacement.returncode == 0, replacement.stdout[-3000:] + replacement.stderr[-3000:]

    after = {t.number: t for t in load_study(optuna_postgres_url).get_trials(deepcopy=True)}
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
    assert optuna_postgres_url.split("@")[0].split(":")[-1] not in " ".join(study_command(TRIALS))
