"""`redes serve` with a study flow run in progress (issue #18): Ctrl-C stops it within 10 s (8-12 s before:
Prefect's runner waited on the cancelled flow run in steps of 3 s, and each process's teardown took seconds) with
the trial FAIL `interrupted`, no MLflow run left RUNNING and the flow run Cancelled; a second Ctrl-C stops
everything within 2 s; after a `kill -9` of it, nothing it started keeps running.

The runner serves against the session's Prefect test API; a flow run of the nightly deployment is
created at once (`prefect deployment run`), as a user would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from support.processes import processes_in, wait_for_output, wait_gone

from flows.schedules import NIGHTLY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "served"
READY_MARK = "deployments are being served"


@pytest.fixture
def serve(tmp_path, redes_env, study_cli):
    """Start `redes serve` in tmp_path as a terminal's job, start a nightly flow run, return once a trial runs."""
    started = []

    def start(train_size: int = 2000):
        env = redes_env(tmp_path / "optuna-journal.log", PREFECT_RUNNER_POLL_FREQUENCY="1")
        argv = [
            str(Path(sys.executable).with_name("redes")), "serve", "--interval", "3600", "--name", NAME, "--trials", "20",
            "--epochs", "30", "--patience", "30", "--train-size", str(train_size), "--val-size", "500",
        ]  # fmt: skip
        log = tmp_path / "serve.log"
        process = subprocess.Popen(argv, cwd=tmp_path, env=env, start_new_session=True, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        started.append(process)
        wait_for_output(process, log, READY_MARK, timeout=240)
        prefect = str(Path(sys.executable).with_name("prefect"))
        subprocess.run([prefect, "deployment", "run", NIGHTLY.full_name], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)

        def running(trials):
            return any(t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs for t in trials)

        study_cli.wait_for_trials(process, NAME, env["REDES_OPTUNA_STORAGE"], running, "a trial of the flow run", timeout=400)
        return process, log, env

    yield start
    for line in processes_in(tmp_path):
        try:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_ctrl_c_stops_serve_and_its_flow_run_within_seconds(serve, tmp_path, study_cli):
    process, log, env = serve()
    os.killpg(process.pid, signal.SIGINT)
    sent, signalled_at = time.monotonic(), datetime.now()
    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    seconds = time.monotonic() - sent
    gone = wait_gone(tmp_path, timeout=30)

    trials = study_cli.trials_of(NAME, env["REDES_OPTUNA_STORAGE"])
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert stopped and all(t.user_attrs["fail_reason"] == "interrupted" for t in stopped)
    recorded = max((t.datetime_complete - signalled_at).total_seconds() for t in stopped)
    print(f"redes serve: trial recorded {recorded:.1f} s and serve gone {seconds:.1f} s after Ctrl-C")
    assert recorded <= 10, log.read_text()[-3000:]
    assert seconds + gone <= 10, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    assert {r.info.status for r in runs if r.data.tags.get("kind") == "study"} == {"KILLED"}
    assert latest_flow_run_state(env) == "CANCELLED"


def test_a_second_ctrl_c_stops_serve_and_everything_it_started_within_2_s(serve, tmp_path):
    process, log, env = serve(train_size=30000)  # epochs of seconds: the first Ctrl-C waits for the epoch's end
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)
    sent = time.monotonic()
    assert process.wait(timeout=30) == 130, log.read_text()[-3000:]
    wait_gone(tmp_path, timeout=10)
    seconds = time.monotonic() - sent
    print(f"redes serve: everything gone {seconds:.1f} s after the second Ctrl-C")
    assert seconds <= 2, log.read_text()[-3000:]
    assert "second SIGINT: stopped at once" in log.read_text()


def latest_flow_run_state(env) -> str:
    """The state type of the nightly deployment's latest flow run, from the Prefect API the serve used (the session's)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(NIGHTLY.full_name)
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    return max(runs, key=lambda run: run.created).state.type.value


def test_kill_9_of_serve_leaves_no_orphan_training(serve, tmp_path):
    process, log, env = serve()
    os.kill(process.pid, signal.SIGKILL)
    killed = time.monotonic()
    process.wait(timeout=10)
    wait_gone(tmp_path, timeout=30)
    seconds = time.monotonic() - killed
    print(f"kill -9 of redes serve: everything it started gone after {seconds:.1f} s")
    assert seconds <= 10
