"""`redes serve` with a study flow run in progress (issue #18): Ctrl-C stops it within seconds with the
trial FAIL `interrupted` and no MLflow run left RUNNING; after a `kill -9` of it, nothing it started
keeps running.

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

    def start():
        env = redes_env(tmp_path / "optuna-journal.log", PREFECT_RUNNER_POLL_FREQUENCY="1")
        argv = [
            str(Path(sys.executable).with_name("redes")), "serve", "--interval", "3600", "--name", NAME, "--trials", "20",
            "--epochs", "30", "--patience", "30", "--train-size", "2000", "--val-size", "500",
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
    # Prefect's runner looks every 3 s whether the flow run it cancelled has exited: 8-12 s seen here
    assert seconds + gone <= 15, log.read_text()[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    assert {r.info.status for r in runs if r.data.tags.get("kind") == "study"} == {"KILLED"}


def test_kill_9_of_serve_leaves_no_orphan_training(serve, tmp_path):
    process, log, env = serve()
    os.kill(process.pid, signal.SIGKILL)
    killed = time.monotonic()
    process.wait(timeout=10)
    wait_gone(tmp_path, timeout=30)
    seconds = time.monotonic() - killed
    print(f"kill -9 of redes serve: everything it started gone after {seconds:.1f} s")
    assert seconds <= 10
