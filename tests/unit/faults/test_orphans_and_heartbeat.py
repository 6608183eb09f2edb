"""Which RUNNING trials count as orphaned (journal storage), and the heartbeat setting."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import optuna
import pytest

from tracking import studies
from tracking.orphans import _owner_is_dead, fail_orphaned_trials, process_identity


class FakeClient:
    def __init__(self):
        self.calls = []

    def set_tag(self, run_id, key, value):
        self.calls.append(("tag", run_id, key))

    def get_run(self, run_id):
        return type("Run", (), {"info": type("Info", (), {"status": "RUNNING"})()})()

    def set_terminated(self, run_id, status):
        self.calls.append(("end", run_id, status))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_a_dead_process_on_this_host_orphans_a_trial():
    assert not _owner_is_dead(process_identity()), "this process is alive"
    assert _owner_is_dead({"worker_host": socket.gethostname(), "worker_pid": dead_pid(), "worker_started": "1"})
    assert not _owner_is_dead({"worker_host": "another-machine", "worker_pid": dead_pid()})
    assert not _owner_is_dead({})
    reused = {**process_identity(), "worker_started": "12345"}  # same PID, another start time: a reused PID
    assert _owner_is_dead(reused)


def test_orphaned_running_trials_are_failed_their_runs_ended_and_their_params_enqueued(tmp_path):
    study = studies.create_or_load(
        "o", studies.open_storage(str(tmp_path / "j.log")), studies_space(), sampler="random", pruner="none"
    )
    alive = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for key, value in process_identity().items():
        alive.set_user_attr(key, value)
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    orphan.set_user_attr("worker_host", socket.gethostname())
    orphan.set_user_attr("worker_pid", dead_pid())
    orphan.set_user_attr("mlflow_run_id", "run-1")
    client = FakeClient()

    assert fail_orphaned_trials(study, client) == [orphan.number]

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[alive.number].state == optuna.trial.TrialState.RUNNING
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    assert "died" in trials[orphan.number].user_attrs["fail_reason"]
    assert ("end", "run-1", "KILLED") in client.calls
    (waiting,) = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert waiting.user_attrs["retry_of"] == orphan.number
    assert waiting.system_attrs["fixed_params"] == {"x": trials[orphan.number].params["x"]}
    assert fail_orphaned_trials(study, client) == [], "a second look finds nothing more"


def test_a_trial_whose_process_died_before_naming_itself_is_failed_once_unclaimed(tmp_path, monkeypatch):
    """A pool broken just after a worker created (or took from the queue) a trial: the trial names no process.
    The caller that knows its workers are gone fails it at once; anyone else once it is UNCLAIMED_AFTER old."""
    import time

    from tracking import orphans

    study = studies.create_or_load(
        "u", studies.open_storage(str(tmp_path / "j.log")), studies_space(), sampler="random", pruner="none"
    )
    created = study.ask()  # died right after: no attribute, no parameter
    study.enqueue_trial({"x": 0.25})
    queued = study.ask()  # taken from the queue, then died
    client = FakeClient()
    assert fail_orphaned_trials(study, client) == [], "just begun: its process may be naming itself now"
    monkeypatch.setattr(orphans, "UNCLAIMED_AFTER", 0.0)
    assert sorted(fail_orphaned_trials(study, client, unclaimed_before=time.time() - 3600)) == [created.number, queued.number]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    assert trials[created.number].state == trials[queued.number].state == optuna.trial.TrialState.FAIL
    assert trials[created.number].user_attrs["fail_reason"] == "its worker process died as it began"
    (retry,) = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert retry.user_attrs["retry_of"] == queued.number and retry.system_attrs["fixed_params"] == {"x": 0.25}


def test_a_caller_whose_workers_are_gone_fails_their_unclaimed_trials_at_once(tmp_path):
    import time

    study = studies.create_or_load(
        "w", studies.open_storage(str(tmp_path / "j.log")), studies_space(), sampler="random", pruner="none"
    )
    created = study.ask()
    claimed = study.ask()
    for key, value in process_identity().items():
        claimed.set_user_attr(key, value)
    assert fail_orphaned_trials(study, FakeClient(), unclaimed_before=time.time() + 1) == [created.number]


def test_a_run_ended_before_its_process_died_is_ended_killed_like_its_failed_trial(tmp_path, mlflow_db):
    """Killed after its run ended FINISHED and before Optuna heard the trial's value: the trial is FAIL,
    so its run is ended KILLED and tagged FAIL with the reason, like a run left RUNNING; a FAILED run stays FAILED."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_db)
    experiment_id = client.create_experiment("o")
    study = studies.create_or_load(
        "o", studies.open_storage(str(tmp_path / "j.log")), studies_space(), sampler="random", pruner="none"
    )
    runs = {}
    for status in ("FINISHED", "RUNNING", "FAILED"):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr("worker_host", socket.gethostname())
        trial.set_user_attr("worker_pid", dead_pid())
        run_id = client.create_run(experiment_id, tags={"optuna.trial_state": "RUNNING"}).info.run_id  # as the objective leaves it
        if status != "RUNNING":
            client.set_terminated(run_id, status=status)
        trial.set_user_attr("mlflow_run_id", run_id)
        runs[status] = run_id

    assert len(fail_orphaned_trials(study, client)) == 3

    ended = {status: client.get_run(run_id) for status, run_id in runs.items()}
    assert {status: run.info.status for status, run in ended.items()} == {"FINISHED": "KILLED", "RUNNING": "KILLED", "FAILED": "FAILED"}
    for run in ended.values():
        assert run.data.tags["optuna.trial_state"] == "FAIL" and "died" in run.data.tags["fail_reason"]


def studies_space():
    from tracking.search_space import default_space

    return default_space()


@pytest.mark.parametrize("text, expected", [("", (10, 30)), ("1,3", (1, 3)), (" 5 , 20 ", (5, 20))])
def test_heartbeat_setting(text, expected):
    from runtime.settings import Settings

    assert studies.heartbeat_settings(Settings.from_env({"REDES_OPTUNA_HEARTBEAT": text})) == expected


@pytest.mark.parametrize("text", ["1", "a,b", "0,3", "3,3", "1,2,3"])
def test_a_bad_heartbeat_setting_is_a_settings_error(text):
    from runtime.settings import SettingsError

    from runtime.settings import Settings

    with pytest.raises(SettingsError, match="REDES_OPTUNA_HEARTBEAT"):
        studies.heartbeat_settings(Settings.from_env({"REDES_OPTUNA_HEARTBEAT": text}))
