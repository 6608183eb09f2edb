"""Load: one study of 200 tiny trials (a 1,000-image slice, one epoch) in several worker processes.

On PostgreSQL with an MLflow server (its runs in PostgreSQL too) with four workers, and on the
embedded default stores (journal file, SQLite) with two: every trial COMPLETE with its own
number, one finished child run per trial, no run left RUNNING, no deadlock or "database is
locked" anywhere. The wall time and trials per minute are printed (`pytest -s -k load`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from runtime.servers import stop_server

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

TRIALS = 200
NAME = "load"
LOCK_ERRORS = ("database is locked", "deadlock detected", "deadlock")


def run_load(tmp_path: Path, env: dict[str, str], workers: int, storage: str, tracking_uri: str, study_cli) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        study_cli.study_command(NAME, TRIALS, workers=workers, epochs=1, train_size=1000), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1400
    )
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    (tmp_path / "study.log").write_text(output)
    assert done.returncode == 0, output[-5000:]
    assert not [e for e in LOCK_ERRORS if e in output.lower()], output[-5000:]

    trials = study_cli.trials_of(NAME, storage)
    assert sorted(t.number for t in trials) == list(range(TRIALS))
    assert [t.number for t in trials if t.state != TrialState.COMPLETE] == []

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(NAME).experiment_id
    children = client.search_runs([experiment], filter_string="tags.kind = 'trial'", max_results=1000)
    assert len(children) == TRIALS
    assert {r.info.run_id for r in children} == {t.user_attrs["mlflow_run_id"] for t in trials}
    assert {r.data.tags["optuna.trial_number"] for r in children} == {str(n) for n in range(TRIALS)}
    everything = client.search_runs([experiment], max_results=1000)
    assert [r.info.run_name for r in everything if r.info.status != "FINISHED"] == []
    return seconds


def report(kind: str, workers: int, seconds: float) -> None:
    print(f"\nload: {kind}, {workers} workers: {TRIALS} trials in {seconds:.0f} s = {60 * TRIALS / seconds:.1f} trials/min")


def test_load_on_postgresql_with_an_mlflow_server_and_four_workers(
    tmp_path, redes_env, mlflow_servers, pg_study_databases, study_cli
):
    server = mlflow_servers.start_mlflow_server(tmp_path / "mlflow-server", backend=pg_study_databases.url("mlflow"))
    try:
        storage = pg_study_databases.url("optuna")
        url = mlflow_servers.server_url(server)
        seconds = run_load(tmp_path, redes_env(storage, MLFLOW_TRACKING_URI=url), 4, storage, url, study_cli)
    finally:
        stop_server(server)
    log = (tmp_path / "mlflow-server" / "server.log").read_text().lower()
    assert not [e for e in LOCK_ERRORS if e in log], log[-5000:]
    report("PostgreSQL + MLflow server", 4, seconds)


def test_load_on_the_embedded_stores_with_two_workers(tmp_path, redes_env, study_cli):
    storage = str(tmp_path / "optuna-journal.log")
    env = redes_env(storage)
    seconds = run_load(tmp_path, env, 2, storage, env["MLFLOW_TRACKING_URI"], study_cli)
    report("embedded (journal file, SQLite)", 2, seconds)
