"""`kill -9` of a `redes study` process while a trial runs (embedded journal storage), then the same
command again: the study continues, nothing earned is lost, the killed trial is failed and retried.

Optuna's journal storage has no heartbeat, so a trial whose process died stays RUNNING; the next
invocation fails it (its process on this host is gone), ends its MLflow run KILLED and enqueues
its parameters again (`tracking.orphans.fail_orphaned_trials`).
"""

from __future__ import annotations

import subprocess
import time

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

TRIALS = 4
NAME = "killed"


def test_a_killed_study_continues_and_loses_nothing(tmp_path, redes_env, study_cli):
    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal)
    first = subprocess.Popen(
        study_cli.study_command(NAME, TRIALS), cwd=tmp_path, env=env, start_new_session=True,
        stdout=open(tmp_path / "first.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    study_cli.kill_mid_trial(first, NAME, journal)  # the command and any child it started

    before = study_cli.trials_of(NAME, journal)
    complete_before = {t.number: t for t in before if t.state == TrialState.COMPLETE}
    (killed,) = [t for t in before if t.state == TrialState.RUNNING]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert client.get_run(killed.user_attrs["mlflow_run_id"]).info.status == "RUNNING"

    started = time.monotonic()
    second = subprocess.run(
        study_cli.study_command(NAME, TRIALS - len(complete_before)), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    print(f"second invocation: {time.monotonic() - started:.1f} s")

    after = {t.number: t for t in study_cli.trials_of(NAME, journal)}
    for number, trial in complete_before.items():
        assert after[number].state == TrialState.COMPLETE and after[number].value == trial.value
        assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "FINISHED"

    failed = after[killed.number]
    assert failed.state == TrialState.FAIL
    assert "died" in failed.user_attrs["fail_reason"]
    killed_run = client.get_run(killed.user_attrs["mlflow_run_id"])
    assert killed_run.info.status == "KILLED"
    assert killed_run.data.tags["optuna.trial_state"] == "FAIL"

    (retry,) = [t for t in after.values() if t.user_attrs.get("retry_of") == killed.number]
    assert retry.params == killed.params and retry.state == TrialState.COMPLETE

    complete = [t for t in after.values() if t.state == TrialState.COMPLETE]
    assert len(complete) == TRIALS
    for trial in complete:
        assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "FINISHED"
    assert not [t for t in after.values() if t.state == TrialState.RUNNING]

    # the killed invocation's parent run is ended too, the second one finished normally
    killed_parent = client.get_run(killed_run.data.tags["mlflow.parentRunId"])
    assert killed_parent.info.status == "KILLED"
    parents = client.search_runs([killed_run.info.experiment_id], filter_string="tags.kind = 'study'")
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]
