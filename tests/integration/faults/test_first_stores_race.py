"""Issue #18: two first `redes study` at once in a new folder. Without a lock both ran MLflow's schema migration on
the new SQLite file and one crashed ("duplicate column name: step"); both Optuna stores are opened the same way.

Three processes open the stores of one new folder at the same instant (the start of every command and worker)."""

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
studies.open_storage("sqlite:///" + str(settings.workdir / "optuna.db"))
print("opened")
"""


def test_three_commands_creating_the_stores_together_all_succeed(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "REDES_"))}
    env.update(QUIET)
    start = time.time() + 8  # after the three imports
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_STORES, str(start)], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0 and "opened" in out, err[-2000:]
    from mlflow.tracking import MlflowClient

    assert [e.name for e in MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()] == ["Default"]
