"""The MLflow tracking server dies and comes back while `redes study` runs: the client retries
(MLflow's HTTP retry settings, tuned in `tracking.mlflow_store.configure`), the study finishes,
and every COMPLETE Optuna trial has its finished MLflow run with all its epochs and its weights.

The server is killed with SIGKILL (a crash, not a clean shutdown) and started again on the same
port and the same SQLite file; its start-up (several seconds here) is the outage the study meets.
A call that was in flight at the crash may fail its trial: recorded FAIL with the reason, its run
ended FAILED, never COMPLETE.
"""

from __future__ import annotations

import signal
import subprocess

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from runtime.servers import free_port, stop_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 10
EPOCHS = 3
NAME = "mlflow-restarted"


def finished(trials: list[optuna.trial.FrozenTrial]) -> int:
    return sum(t.state.is_finished() for t in trials)


def test_a_study_survives_an_mlflow_server_restart(tmp_path, redes_env, mlflow_servers, study_cli):
    root = tmp_path / "mlflow-server"
    port = free_port()
    server = mlflow_servers.start_mlflow_server(root, port)
    url = mlflow_servers.server_url(server)
    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal, MLFLOW_TRACKING_URI=url)
    log = tmp_path / "study.log"
    command = study_cli.study_command(NAME, TRIALS, epochs=EPOCHS)
    study = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        study_cli.wait_for_trials(study, NAME, journal, lambda trials: finished(trials) >= 2, "two trials finished")
        stop_server(server, sig=signal.SIGKILL)
        done_at_crash = finished(study_cli.trials_of(NAME, journal))
        assert study.poll() is None, "the study ended before the server went down"

        server = mlflow_servers.start_mlflow_server(root, port)
        done_at_return = finished(study_cli.trials_of(NAME, journal))
        # no trial can finish while its runs cannot be written: the study waited for the server
        assert done_at_return <= done_at_crash + 1, (done_at_crash, done_at_return)
        assert done_at_return < TRIALS

        assert study.wait(timeout=600) == 0, log.read_text()[-5000:]

        client = MlflowClient(url)
        trials = study_cli.trials_of(NAME, journal)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        failed = [t for t in trials if t.state == TrialState.FAIL]
        # a call in flight when the server died may fail its trial (recorded, with its reason); no more
        assert len(trials) == TRIALS and len(complete) + len(failed) == TRIALS and len(failed) <= 1, [
            (t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in trials
        ]
        for trial in failed:
            assert trial.user_attrs["fail_reason"]
            if "mlflow_run_id" in trial.user_attrs:
                run = client.get_run(trial.user_attrs["mlflow_run_id"])
                assert run.info.status == "FAILED" and run.data.tags["optuna.trial_state"] == "FAIL"
        for trial in complete:
            run = client.get_run(trial.user_attrs["mlflow_run_id"])
            assert run.info.status == "FINISHED", (trial.number, run.info.status)
            assert run.data.tags["optuna.trial_state"] == "COMPLETE"
            history = client.get_metric_history(run.info.run_id, "val/accuracy")
            assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), (trial.number, history)
            assert run.data.metrics["val/best_accuracy"] == pytest.approx(trial.value)
            assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/network.npz"]
        parents = client.search_runs(
            [client.get_experiment_by_name(NAME).experiment_id], filter_string="tags.kind = 'study'"
        )
        assert [p.info.status for p in parents] == ["FINISHED"]
    finally:
        if study.poll() is None:
            study.kill()
            study.wait()
        stop_server(server)  # the restarted one (stopping the killed one again is harmless)
