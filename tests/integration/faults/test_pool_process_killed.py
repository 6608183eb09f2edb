"""`kill -9` of one worker process of `redes study --workers 2` mid-trial (the OOM killer's way):
the study goes on in a fresh pool and reaches its count; the killed trial, and the one the other
worker was running when the broken pool stopped it, are failed, their runs ended KILLED, and
their parameters run again; nothing already COMPLETE is lost.
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
from optuna.trial import TrialState

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

TRIALS = 6
NAME = "pool-killed"


def trials_of(journal: Path) -> list[optuna.trial.FrozenTrial]:
    from tracking import studies

    if not journal.exists():
        return []
    try:
        return optuna.load_study(study_name=NAME, storage=studies.open_storage(str(journal))).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def test_a_killed_pool_process_costs_only_its_trial(tmp_path, redes_env):
    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal)
    redes = Path(sys.executable).with_name("redes")
    command = [
        str(redes), "study", "--name", NAME, "--trials", str(TRIALS), "--workers", "2", "--sampler", "random",
        "--pruner", "none", "--epochs", "8", "--patience", "10", "--train-size", "2000", "--val-size", "500",
        "--space", "space.toml",
    ]  # fmt: skip
    log = tmp_path / "study.log"
    study = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert study.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial was seen running in a pool process after a complete one"
            trials = trials_of(journal)
            running = [
                t for t in trials
                if t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
                and t.user_attrs.get("worker_pid") != study.pid
            ]  # fmt: skip
            if running and any(t.state == TrialState.COMPLETE for t in trials):
                break
            time.sleep(0.05)
        victim = running[0]
        os.kill(victim.user_attrs["worker_pid"], signal.SIGKILL)
        assert study.wait(timeout=600) == 0, log.read_text()[-5000:]
    finally:
        if study.poll() is None:
            study.kill()
            study.wait()

    output = log.read_text()
    trials = {t.number: t for t in trials_of(journal)}
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "died" in killed.user_attrs["fail_reason"]
    killed_run = client.get_run(killed.user_attrs["mlflow_run_id"])
    assert killed_run.info.status == "KILLED" and killed_run.data.tags["optuna.trial_state"] == "FAIL"
    assert f"worker process {victim.user_attrs['worker_pid']}" in output  # the user is told

    failed = [t for t in trials.values() if t.state == TrialState.FAIL]
    assert 1 <= len(failed) <= 2  # the killed trial, and perhaps the other worker's, stopped with the pool
    for trial in failed:
        retries = [t for t in trials.values() if t.user_attrs.get("retry_of") == trial.number]
        assert [t.params for t in retries] == [trial.params] and retries[0].state == TrialState.COMPLETE
        assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "KILLED"

    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    assert len(complete) == TRIALS
    assert all(client.get_run(t.user_attrs["mlflow_run_id"]).info.status == "FINISHED" for t in complete)
    assert not [t for t in trials.values() if t.state == TrialState.RUNNING]
    parent = client.search_runs(
        [client.get_experiment_by_name(NAME).experiment_id], filter_string="tags.kind = 'study'"
    )
    assert [p.info.status for p in parent] == ["FINISHED"]
