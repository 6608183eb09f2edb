"""Issue #18: two first `redes study` at once in a new folder. Without a lock both ran MLflow's schema migration on
the new SQLite file and one crashed ("duplicate column name: step"); both Optuna stores are opened the same way.
On PostgreSQL the same race (both creating the tables of a new database) is serialised by an advisory lock.

Three processes open the stores of one new folder, or of new PostgreSQL databases, at the same instant (the start
of every command and worker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from support.study_cli import QUIET

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OPEN_STORES = """
import sys, time
from runtime.settings import Settings
from tracking import mlflow_store, studies
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.001)
settings = Settings.from_env()
mlflow_store.configure(settings)
studies.open_storage(sys.argv[2] if len(sys.argv) > 2 else "sqlite:///" + str(settings.workdir / "optuna.db"))
print("opened")
"""


def open_together(tmp_path, env: dict[str, str], *optuna_url: str, n: int = 3) -> None:
    """N processes open the stores at the same instant; each must succeed."""
    start = time.time() + 8  # after the imports
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_STORES, str(start), *optuna_url], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0 and "opened" in out, err[-3000:]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "REDES_"))}
    env.update(QUIET)
    return env


def test_three_commands_creating_the_stores_together_all_succeed(tmp_path):
    open_together(tmp_path, clean_env())
    from mlflow.tracking import MlflowClient

    assert [e.name for e in MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()] == ["Default"]


def test_three_commands_creating_postgresql_stores_together_all_succeed(tmp_path, pg_study_databases):
    mlflow_url = pg_study_databases.url("mlflow")
    optuna_url = pg_study_databases.url("optuna")
    open_together(tmp_path, {**clean_env(), "MLFLOW_TRACKING_URI": mlflow_url}, optuna_url)
    from mlflow.tracking import MlflowClient

    assert [e.name for e in MlflowClient(mlflow_url).search_experiments()] == ["Default"]
    import optuna

    assert optuna.get_all_study_summaries(optuna.storages.RDBStorage(optuna_url)) == []
