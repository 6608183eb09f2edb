"""`kill -9` of one worker process of `redes study --workers 2` mid-trial (the OOM killer's way):
the study goes on in a fresh pool and reaches its count; the killed trial, and the one the other
worker was running when the broken pool stopped it, are failed, their runs ended KILLED, and
their parameters run again; nothing already COMPLETE is lost.
"""

from __future__ import annotations

import subprocess

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

TRIALS = 6
NAME = "pool-killed"


def test_a_killed_pool_process_costs_only_its_trial(tmp_path, redes_env, study_cli):
    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal)
    log = tmp_path / "study.log"
    command = study_cli.study_command(NAME, TRIALS, workers=2, epochs=8)
    study = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True, stdout=open(log, "wb"), stderr=subprocess.STDOUT
    )
    victim = study_cli.kill_mid_trial(study, NAME, journal, pool_only=True)
    try:
        assert study.wait(timeout=600) == 0, log.read_text()[-5000:]
    finally:
        if study.poll() is None:
            study.kill()
            study.wait()

    output = log.read_text()
    trials = {t.number: t for t in study_cli.trials_of(NAME, journal)}
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "died" in killed.user_attrs["fail_reason"]
    killed_run = client.get_run(killed.user_attrs["mlflow_run_id"])
    # KILLED even when the kill fell after the run had ended FINISHED and before Optuna heard of the trial
    assert killed_run.info.status == "KILLED" and killed_run.data.tags["optuna.trial_state"] == "FAIL"
    assert f"worker process {victim.user_attrs['worker_pid']}" in output  # the user is told

    failed = [t for t in trials.values() if t.state == TrialState.FAIL]
    assert 1 <= len(failed) <= 2  # the killed trial, and perhaps the other worker's, stopped with the pool
    for trial in failed:
        retries = [t for t in trials.values() if t.user_attrs.get("retry_of") == trial.number]
        # the other worker's trial may have been stopped while its parameters were being sampled: the retry
        # runs what was sampled (and samples the rest); with nothing sampled there is nothing to retry
        if trial.params:
            assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
            assert trial.params.items() <= retries[0].params.items()
        if "mlflow_run_id" in trial.user_attrs:
            assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "KILLED"
        else:
            assert trial is not killed  # killed mid-trial, it had its run

    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    assert len(complete) == TRIALS
    assert all(client.get_run(t.user_attrs["mlflow_run_id"]).info.status == "FINISHED" for t in complete)
    assert not [t for t in trials.values() if t.state == TrialState.RUNNING]
    parent = client.search_runs(
        [client.get_experiment_by_name(NAME).experiment_id], filter_string="tags.kind = 'study'"
    )
    assert [p.info.status for p in parent] == ["FINISHED"]
